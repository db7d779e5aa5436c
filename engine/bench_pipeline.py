"""`glimpse bench index | query | video`: the indexing and search figures docs/benchmarks.md quotes.

Every figure is measured next to its naive baseline in the same run, because the machine these numbers come
from is shared and its speed drifts from minute to minute: `index` against the plain fp32 image tower on
pre-decoded tensors, `query` against brute-force float32 scoring of every frame (the rclip way), `video`
against nothing but the clock (decoding only, no model). Random weights (`NAME@random`) cost exactly what
trained ones do, so the benchmarks run offline.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

#: Size of the generated photos: a 12-megapixel phone camera picture.
PHOTO_SIZE = (4032, 3024)
#: Queries of a few lengths, as typed into a search box; benchmarks cycle through them (query i is
#: QUERIES[i % len(QUERIES)]).
QUERIES = (
    "two kids flying a red kite on a beach",
    "a dog",
    "a birthday cake with candles on a wooden table",
    "snowy mountains at sunset seen from a car window",
    "my grandmother laughing in the kitchen",
    "a black cat sleeping on a laptop keyboard next to a cup of coffee",
    "fireworks over a harbour",
    "a red bicycle leaning against a yellow wall",
)
#: Synthetic library layout: one photo for every four videos of this many frames (one every 2 s).
FRAMES_PER_VIDEO = 60
#: Media rows written per catalogue batch while building a synthetic library (then the index catches up).
BUILD_CHUNK_FRAMES = 20_000


def register(group: click.Group) -> None:
    """Add `index`, `query` and `video` to the `glimpse bench` group."""
    for command in (index, query, video):
        group.add_command(command)


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3)


# index ------------------------------------------------------------------------------------------------


@click.command()
@click.option("--model", default="vit-b-32@random", show_default=True, help="Fast model preset.")
@click.option("--images", type=click.IntRange(2, 100_000), default=64, show_default=True)
@click.option("--runs", type=click.IntRange(1, 20), default=1, show_default=True, help="Median over runs.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--naive", is_flag=True, help="Also time sequential decode-then-encode in fp32.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "auto", "int8"]),
    default="auto",
    show_default=True,
    help="The Fast towers' precision (GLIMPSE_FAST_PRECISION); the library's default is auto.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def index(
    model: str, images: int, runs: int, device: str, naive: bool, precision: str, as_json: bool
) -> None:
    """Index generated 12 MP JPEGs through the real engine; compare with the bare fp32 image tower."""
    from engine.models.openclip import PRECISION_ENV

    os.environ[PRECISION_ENV] = precision  # read when the encoder loads, in this process
    result = time_index(model, images=images, runs=runs, device=device, naive=naive)
    _emit(result, as_json)


def time_index(model: str, *, images: int, runs: int, device: str = "auto", naive: bool = False) -> dict:
    """images/s of `Library.index` on `images` 12 MP JPEGs, and of the fp32 tower alone (batch 32)."""
    import torch

    from engine.library import Library
    from engine.media.images import decode_image
    from engine.models import load_fast

    encoder = load_fast(model, device)
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-index-"))
    try:
        photos = _photo_folder(work / "photos", images)
        warmup = _photo_folder(work / "warmup", 2)
        paths = sorted(os.fsencode(p) for p in photos.iterdir())
        side = encoder.image_size
        decode_ms = []
        for path in paths[: min(len(paths), 16)]:
            started = time.perf_counter()
            decode_image(path, side)
            decode_ms.append((time.perf_counter() - started) * 1000)
        tensors = [encoder.prepare(decode_image(p, side).image) for p in paths[:32]]
        batch = torch.stack([tensors[i % len(tensors)] for i in range(32)]).to(encoder.device)
        tower = encoder._model.visual  # the plain fp32 tower, whatever the encoder itself runs
        reference, pipeline, sequential = [], [], []
        precision = None
        with torch.inference_mode():
            tower(batch[:2])
        encoder.embed_prepared(batch)  # the first batch of real photos: the int8 self-check, done untimed
        for run in range(runs):
            # Reference and pipeline take turns, so a drift in the machine's load touches both.
            with torch.inference_mode():
                started = time.perf_counter()
                tower(batch)
                _sync(encoder.device)
                reference.append(len(batch) / (time.perf_counter() - started))
            library_dir = work / f"library-{run}"
            with Library.open(library_dir, writable=True, device=device) as library:
                library.index([warmup], model=model)  # starts the decode workers
                started = time.perf_counter()
                report = library.index([photos], model=model)
                seconds = time.perf_counter() - started
                if report.images != images:
                    raise click.ClickException(f"indexed {report.images} of {images} photos: {report}")
                pipeline.append(images / seconds)
                precision = encoder.precision
            shutil.rmtree(library_dir, ignore_errors=True)
            if naive:
                sequential.append(_sequential(paths, side, encoder, tower))
        result = {
            "images_per_second": _median(pipeline),
            "model_only_per_second": _median(reference),
            "ratio": round(statistics.median(pipeline) / statistics.median(reference), 3),
            "decode_ms_p50": _median(decode_ms),
            "device": encoder.device,
            "precision": precision,
        }
        if naive:
            result["sequential_fp32_per_second"] = _median(sequential)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sequential(paths: Sequence[bytes], side: int, encoder, tower) -> float:
    """images/s of the naive loop: decode a batch of 32, then run the fp32 tower on it, and so on."""
    import torch

    from engine.media.images import decode_image

    started = time.perf_counter()
    for start in range(0, len(paths), 32):
        prepared = [encoder.prepare(decode_image(p, side).image) for p in paths[start : start + 32]]
        with torch.inference_mode():
            tower(torch.stack(prepared).to(encoder.device))
    _sync(encoder.device)
    return len(paths) / (time.perf_counter() - started)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _photo_folder(folder: Path, count: int) -> Path:
    """`count` 12 MP JPEGs (eight distinct pictures, each file unique by a trailing byte)."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    bases = []
    for _ in range(min(count, 8)):
        # Smooth colour fields like a photo's, not noise (which would make JPEG slower than any photo).
        small = rng.integers(0, 256, (PHOTO_SIZE[1] // 16, PHOTO_SIZE[0] // 16, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
        target = folder / f"base-{len(bases)}.jpg"
        picture.save(target, quality=90)
        bases.append(target.read_bytes())
        target.unlink()
    for i in range(count):
        (folder / f"photo-{i:06d}.jpg").write_bytes(bases[i % len(bases)] + i.to_bytes(4, "big"))
    return folder


# query ------------------------------------------------------------------------------------------------


@click.command()
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
def query(frames: int, cache: Path | None, model: str, queries: int, as_json: bool) -> None:
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
    _emit(result, as_json)


def time_query(folder: Path, frames: int, *, model: str, queries: int) -> dict:
    """Builds (once) the library in `folder`, then times the search path in a fresh process."""
    build_library(folder, frames, model)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        measured = pool.apply(_measure_search, (str(folder), model, queries))
    vectors = _all_vectors(folder, model)
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
    return {
        "end_to_end_ms_p50": _median(measured["end_to_end"]),
        "end_to_end_ms_p95": _percentile(measured["end_to_end"], 95),
        "text_ms_p50": _median(measured["text"]),
        "ann_ms_p50": _median(measured["ann"]),
        "brute_force_ms_p50": _median(brute_ms),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "open_ms": _median(measured["open"]),
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
    if done.exists() and json.loads(done.read_text()) == {"frames": frames, "model": model}:
        return
    shutil.rmtree(folder, ignore_errors=True)
    log = log or (lambda message: click.echo(message, err=True))
    encoder = load_fast(model, "cpu")
    topics = _topics(encoder, 2000)
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
                catalogue.record_indexed(
                    media_id,
                    model_id=model_id,
                    fingerprint=None,
                    width=1920,
                    height=1080,
                    duration_ms=count * 2000 if is_video else None,
                    taken_at=None,
                    frames=_synthetic_frames(rng, topics, count, is_video),
                )
                written += count
                media += 1
            index.catch_up(catalogue, model_id)
            rate = written / (time.monotonic() - started)
            log(f"built {written}/{frames} frames ({rate:.0f} frames/s)")
        index.save(catalogue, model_id)
    done.write_text(json.dumps({"frames": frames, "model": model}))


def _topics(encoder, count: int) -> np.ndarray:
    """Directions the synthetic frames cluster around, shaped like CLIP's image space: every topic shares one
    common component (CLIP's image vectors sit in a narrow cone, pairwise cosine about 0.5), and the first
    ones lean towards the benchmark's queries as the model embeds them, so each query has frames to find."""
    rng = np.random.default_rng(0)
    common = _unit(rng.standard_normal(encoder.dim))
    own = _unit(rng.standard_normal((count, encoder.dim)))
    texts = encoder.embed_texts(list(QUERIES))
    own[: len(texts)] = texts
    return _unit(common + own)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def _synthetic_frames(rng: np.random.Generator, topics: np.ndarray, count: int, is_video: bool):
    """Frames of one file: near its own centre (a video's frames alike), the centre near a topic."""
    from engine.catalogue import NewFrame

    centre = topics[rng.integers(len(topics))] + _unit(rng.standard_normal(topics.shape[1])) * 0.8
    vectors = _unit(_unit(centre) + _unit(rng.standard_normal((count, topics.shape[1]))) * 0.5)
    return [NewFrame(i * 2000 if is_video else None, v) for i, v in enumerate(vectors)]


def _all_vectors(folder: Path, model: str) -> np.ndarray:
    """Every frame's vector as one float32 matrix, rows in frame id order (frame id = row + 1)."""
    from engine.catalogue import Catalogue
    from engine.models.presets import parse_model_spec

    catalogue = Catalogue(folder / "catalogue.sqlite")
    try:
        space = catalogue.find_model(parse_model_spec(model).key)
        assert space is not None
        keys, vectors, _ = catalogue.vectors_since(space.id, 0, space.dim)
    finally:
        catalogue.close()
    order = np.argsort(keys)
    return np.ascontiguousarray(vectors[order])


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
        frame_ids = np.sort(library.catalogue.vector_keys(current.space.id))
        return {
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


# video ------------------------------------------------------------------------------------------------


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between frames.")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True, help="Median over runs.")
@click.option(
    "--naive", is_flag=True, help="Also time OpenCV reading every frame and keeping one per interval."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def video(file: Path, interval: float, runs: int, naive: bool, as_json: bool) -> None:
    """Sample a video's frames as indexing does (decoding only, no model): how many times real time."""
    _emit(time_video(os.fsencode(file), interval=interval, runs=runs, naive=naive), as_json)


def time_video(path: bytes, *, interval: float = 2.0, runs: int = 3, naive: bool = False) -> dict:
    from engine.media.video import FrameSampler

    sampler = FrameSampler(interval_s=interval, min_side=224)
    timings, naive_timings, frames, duration_ms = [], [], 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        with sampler.open(path) as opened:
            duration_ms = opened.info.duration_ms
            frames = sum(1 for _ in opened.frames())
        timings.append(time.perf_counter() - started)
        if naive:
            naive_timings.append(_every_frame(path, interval))
    seconds = statistics.median(timings)
    result = {
        "realtime_factor": round(duration_ms / 1000 / seconds, 2),
        "frames": frames,
        "seconds": round(seconds, 3),
    }
    if naive:
        result["every_frame_realtime_factor"] = round(
            duration_ms / 1000 / statistics.median(naive_timings), 2
        )
    return result


def _every_frame(path: bytes, interval: float) -> float:
    """Seconds for the naive way: OpenCV decodes every frame, one per `interval` is kept."""
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(os.fsdecode(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % max(1, round(fps * interval)) == 0:
            cv2.resize(frame, (398, 224))
        index += 1
    capture.release()
    return time.perf_counter() - started
