"""`glimpse bench index`: photos per second of `Library.index` on 12-megapixel JPEGs, against the fp32 image
tower alone on pre-decoded tensors, measured in turns in the same run (the machine's speed drifts)."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from engine.bench.common import emit, median, photo_folder, sync


@click.command("index")
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
def command(
    model: str, images: int, runs: int, device: str, naive: bool, precision: str, as_json: bool
) -> None:
    """Index generated 12 MP JPEGs through the real engine; compare with the bare fp32 image tower."""
    from engine.models import PRECISION_ENV

    os.environ[PRECISION_ENV] = precision  # read when the library loads its encoder, in this process
    result = time_index(model, images=images, runs=runs, device=device, naive=naive)
    emit(result, as_json)


def time_index(model: str, *, images: int, runs: int, device: str = "auto", naive: bool = False) -> dict:
    """images/s of `Library.index` on `images` 12 MP JPEGs, and of the fp32 tower alone (batch 32)."""
    import torch

    from engine.library import Library
    from engine.media.images import decode_image
    from engine.models import load_fast

    encoder = load_fast(model, device)  # the library's own (its precision from GLIMPSE_FAST_PRECISION)
    fp32 = load_fast(model, device, precision="fp32")  # the plain fp32 tower, whatever the library runs
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-index-"))
    try:
        photos = photo_folder(work / "photos", images)
        warmup = photo_folder(work / "warmup", 2)
        paths = sorted(os.fsencode(p) for p in photos.iterdir())
        side = encoder.image_size
        decode_ms = []
        for path in paths[: min(len(paths), 16)]:
            started = time.perf_counter()
            decode_image(path, side)
            decode_ms.append((time.perf_counter() - started) * 1000)
        tensors = [encoder.prepare(decode_image(p, side).image) for p in paths[:32]]
        batch = torch.stack([tensors[i % len(tensors)] for i in range(32)]).to(encoder.device)
        reference, pipeline, sequential = [], [], []
        precision = None
        fp32.embed_prepared(batch[:2])  # first calls allocate
        encoder.embed_prepared(batch[:2])
        for run in range(runs):
            # Reference and pipeline take turns, so a drift in the machine's load touches both.
            started = time.perf_counter()
            fp32.embed_prepared(batch)
            sync(encoder.device)
            reference.append(len(batch) / (time.perf_counter() - started))
            library_dir = work / f"library-{run}"
            with Library.open(library_dir, writable=True, device=device) as library:
                library.index([warmup], model=model, read_text=False)  # starts the decode workers
                started = time.perf_counter()
                report = library.index([photos], model=model, read_text=False)  # the visual pass alone
                seconds = time.perf_counter() - started
                if report.images != images:
                    raise click.ClickException(f"indexed {report.images} of {images} photos: {report}")
                pipeline.append(images / seconds)
                precision = getattr(encoder, "precision", "fp32")  # Glimpse's own models run in fp32
            shutil.rmtree(library_dir, ignore_errors=True)
            if naive:
                sequential.append(_sequential(paths, side, fp32))
        result = {
            "images_per_second": median(pipeline),
            "model_only_per_second": median(reference),
            "ratio": round(statistics.median(pipeline) / statistics.median(reference), 3),
            "decode_ms_p50": median(decode_ms),
            "device": encoder.device,
            "precision": precision,
        }
        if naive:
            result["sequential_fp32_per_second"] = median(sequential)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sequential(paths: Sequence[bytes], side: int, fp32) -> float:
    """images/s of the naive loop: decode a batch of 32, then run the fp32 encoder on it, and so on."""
    import torch

    from engine.media.images import decode_image

    started = time.perf_counter()
    for start in range(0, len(paths), 32):
        prepared = [fp32.prepare(decode_image(p, side).image) for p in paths[start : start + 32]]
        fp32.embed_prepared(torch.stack(prepared))
    sync(fp32.device)
    return len(paths) / (time.perf_counter() - started)
