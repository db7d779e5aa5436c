"""What the benchmarks share: the queries, the photo size, generated photo folders and how results print."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
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


def emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3)


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def photo_folder(folder: Path, count: int) -> Path:
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
