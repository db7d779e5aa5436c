"""`glimpse bench query`: search latency on a synthetic library of N frames, built through the real catalogue and
index code, against brute-force float32 scoring of every frame (the rclip way) in the same run.

Besides visual queries it times queries that name a place, a date or words read in the pictures (the
library's files have places, dates and read text, `synthetic.py`), each path of the query pipeline once.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from engine.bench.common import QUERIES, emit, median, percentile
from engine.bench.synthetic import (
    BUILD_CHUNK_FRAMES,
    FRAMES_PER_VIDEO,
    LAYOUT,
    all_vectors,
    synthetic_date,
    synthetic_frames,
    synthetic_place,
    synthetic_reading,
    topics,
)

#: Queries that narrow the search by what the files' metadata and read text say, by the path they take.
REMEMBERED = {
    "place": "a dog on a beach in Lisbon",
    "date": "a birthday cake in July 2019",
    "place_only": "photos from Iceland",
    "date_only": "last summer",
    "words": 'a sign that says "exit"',
    "code": "shop 1234",
}


@click.command("query")
@click.option("--frames", type=click.IntRange(10, 10_000_000), required=True, help="Library size in frames.")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the built library here and reuse it (default: a temporary folder, deleted after).",
)
@click.option("--model", default="vit-b-32@random", show_default=True, help="Fast model preset.")
@click.option(
    "--queries", type=click.IntRange(1, 10_000), default=40, show_default=True, help="Timed queries."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(frames: int, cache: Path | None, model: str, queries: int, as_json: bool) -> None:
    """Search a synthetic library of N frames built through the real catalogue and index code."""
    work = None
    if cache is None:
        work = Path(tempfile.mkdtemp(prefix="glimpse-bench-query-"))
        cache = work
    try:
        result = time_query(cache / f"frames-{frames}", frames, model=model, queries=queries)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, as_json)


def time_query(folder: Path, frames: int, *, model: str, queries: int) -> dict:
    """Builds (once) the library in `folder`, then times the search path in a fresh process."""
    build_library(folder, frames, model)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        measured = pool.apply(_measure_search, (str(folder), model, queries))
    vectors = all_vectors(folder, model)
    truth, brute_ms = [], []
    for q in measured["vectors"]:
        # Brute force the rclip way: one float32 matrix product over every frame, then the top 10.
        started = time.perf_counter()
        scores = vectors @ np.asarray(q, dtype=np.float32)
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        brute_ms.append((time.perf_counter() - started) * 1000)
        truth.append(top)
    keys = measured["keys"]
    frame_ids = measured["frame_ids"]
    recalls = [
        len(set(frame_ids[t].tolist()) & set(found)) / 10 for t, found in zip(truth, keys, strict=True)
    ]
    index_file = next(folder.glob("vectors-*.usearch"))
    remembered = measured["remembered"]
    return {
        "end_to_end_ms_p50": median(measured["end_to_end"]),
        "end_to_end_ms_p95": percentile(measured["end_to_end"], 95),
        "remembered_ms_p95": percentile([t for times in remembered.values() for t in times], 95),
        **{f"{case}_ms_p50": median(times) for case, times in remembered.items()},
        "text_ms_p50": median(measured["text"]),
        "ann_ms_p50": median(measured["ann"]),
        "brute_force_ms_p50": median(brute_ms),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "open_ms": median(measured["open"]),
        "rss_mb": round(measured["rss_mb"], 1),
        "index_bytes_per_frame": round(index_file.stat().st_size / frames, 1),
    }


def build_library(folder: Path, frames: int, model: str, log: Callable[[str], None] | None = None) -> None:
    """A library of `frames` synthetic frames (videos and photos), written through Catalogue and VectorIndex
    exactly as the indexer writes them; done once: a folder with a saved index of that size is reused."""
    from engine.library import MODEL_SETTING, Library
    from engine.models import load_fast
    from engine.models.presets import parse_model_spec

    key = parse_model_spec(model).key
    done = folder / "built.json"
    built = {"frames": frames, "model": model, "layout": LAYOUT}
    if done.exists() and json.loads(done.read_text()) == built:
        return
    shutil.rmtree(folder, ignore_errors=True)
    log = log or (lambda message: click.echo(message, err=True))
    encoder = load_fast(model, "cpu")
    directions = topics(encoder, 2000)
    with Library.open(folder, writable=True) as library:
        catalogue = library.catalogue
        model_id = catalogue.model_id(key, encoder.dim)
        catalogue.set_setting(MODEL_SETTING, model)
        library.set_rerank_k(0)  # the figures are for the Fast path; re-ranking has its own benchmark
        current = library.current_model()
        assert current is not None
        index = library.vector_index(current.space)
        rng = np.random.default_rng(1)
        written, media, started = 0, 0, time.monotonic()
        while written < frames:
            chunk_end = min(frames, written + BUILD_CHUNK_FRAMES)
            while written < chunk_end:
                is_video = media % 5 != 0
                count = min(FRAMES_PER_VIDEO if is_video else 1, chunk_end - written)
                kind = "video" if is_video else "image"
                path = f"/synthetic/{media // 1000:04d}/{kind}-{media:07d}.{'mp4' if is_video else 'jpg'}"
                media_id = catalogue.upsert_pending(path.encode(), kind, 1, 1)
                place = synthetic_place(media)
                catalogue.record_indexed(
                    media_id,
                    model_id=model_id,
                    fingerprint=None,
                    width=1920,
                    height=1080,
                    duration_ms=count * 2000 if is_video else None,
                    taken_at=synthetic_date(rng),
                    frames=synthetic_frames(rng, directions, count, is_video),
                    location=place[0] if place else None,
                    place=place[1] if place else None,
                )
                reading = synthetic_reading(media)
                if reading is not None:
                    catalogue.record_reading(media_id, *reading)
                written += count
                media += 1
            index.catch_up(catalogue, model_id)
            rate = written / (time.monotonic() - started)
            log(f"built {written}/{frames} frames ({rate:.0f} frames/s)")
        index.save(catalogue, model_id)
    done.write_text(json.dumps(built))


def _measure_search(folder: str, model: str, queries: int) -> dict:
    """In a fresh process, as an app would be: open the library, then search; returns the timings."""
    import torch

    from engine.library import Library
    from engine.models import load_fast

    encoder = load_fast(model, "cpu")
    opened = []
    for _ in range(5):
        started = time.perf_counter()
        library = Library.open(folder)
        current = library.current_model()
        assert current is not None
        library.vector_index(current.space)
        opened.append((time.perf_counter() - started) * 1000)
        library.close()
    library = Library.open(folder)
    try:
        index = library.vector_index(current.space)
        with torch.inference_mode():
            library.search(QUERIES[0], limit=20, rerank=0)  # warm-up: first calls allocate
        end_to_end, text_ms, ann_ms, vectors, keys = [], [], [], [], []
        for i in range(queries):
            text = QUERIES[i % len(QUERIES)]
            started = time.perf_counter()
            library.search(text, limit=20, rerank=0)
            end_to_end.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            vector = encoder.embed_texts([text])[0]
            text_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            found, _ = index.search(vector, 10)
            ann_ms.append((time.perf_counter() - started) * 1000)
            if i < len(QUERIES):
                vectors.append(vector)
                keys.append(found.tolist())
        remembered: dict[str, list[float]] = {case: [] for case in REMEMBERED}
        for text in REMEMBERED.values():
            library.search(text, limit=20, rerank=0)  # warm-up: the first date or place parse loads tables
        for _ in range(queries):
            for case, text in REMEMBERED.items():
                started = time.perf_counter()
                library.search(text, limit=20, rerank=0)
                remembered[case].append((time.perf_counter() - started) * 1000)
        frame_ids = np.sort(library.catalogue.vector_keys(current.space.id))
        return {
            "remembered": remembered,
            "end_to_end": end_to_end,
            "text": text_ms,
            "ann": ann_ms,
            "open": opened,
            "rss_mb": _rss_mb(),
            "vectors": vectors,
            "keys": keys,
            "frame_ids": frame_ids,
        }
    finally:
        library.close()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only
