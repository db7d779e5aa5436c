"""Synthetic libraries for the query benchmarks: frame vectors shaped like CLIP's, written as the indexer does,
and the metadata and read text a real library has: capture dates over a decade, a place for a third of the
files, words read in a fifth of them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from engine.bench.common import QUERIES
from engine.media.location import Coordinates, Place
from engine.search.words import deletions, fold, words

#: Changes whenever what a built library holds changes: a cached library of another layout is rebuilt.
LAYOUT = 2
#: Places files are taken at, with where they are: a third of the files are at one of them.
PLACES = (
    (Coordinates(38.7223, -9.1393), Place("Lisbon", "Lisbon", "Portugal", "PT")),
    (Coordinates(64.1355, -21.8954), Place("Reykjavík", "Capital Region", "Iceland", "IS")),
    (Coordinates(35.6762, 139.6503), Place("Tokyo", "Tokyo", "Japan", "JP")),
    (Coordinates(-1.2921, 36.8219), Place("Nairobi", "Nairobi County", "Kenya", "KE")),
    (Coordinates(48.8566, 2.3522), Place("Paris", "Île-de-France", "France", "FR")),
    (Coordinates(40.7128, -74.006), Place("New York City", "New York", "United States", "US")),
)
#: Words written in the pictures that have text: shop signs, exits, receipts, codes.
SIGN_WORDS = ("EXIT", "OPEN", "BAKERY", "PHARMACY", "CAFE", "HOTEL", "TOTAL", "GATE", "PLATFORM", "SALE")

#: Synthetic library layout: one photo for every four videos of this many frames (one every 2 s).
FRAMES_PER_VIDEO = 60
#: Media rows written per catalogue batch while building a synthetic library (then the index catches up).
BUILD_CHUNK_FRAMES = 20_000


def topics(encoder, count: int) -> np.ndarray:
    """Directions the synthetic frames cluster around, shaped like CLIP's image space: every topic shares one
    common component (CLIP's image vectors sit in a narrow cone, pairwise cosine about 0.5), and the first
    ones lean towards the benchmark's queries as the model embeds them, so each query has frames to find."""
    rng = np.random.default_rng(0)
    common = unit(rng.standard_normal(encoder.dim))
    own = unit(rng.standard_normal((count, encoder.dim)))
    texts = encoder.embed_texts(list(QUERIES))
    own[: len(texts)] = texts
    return unit(common + own)


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_frames(rng: np.random.Generator, topics: np.ndarray, count: int, is_video: bool):
    """Frames of one file: near its own centre (a video's frames alike), the centre near a topic."""
    from engine.catalogue import NewFrame

    centre = topics[rng.integers(len(topics))] + unit(rng.standard_normal(topics.shape[1])) * 0.8
    vectors = unit(unit(centre) + unit(rng.standard_normal((count, topics.shape[1]))) * 0.5)
    return [NewFrame(i * 2000 if is_video else None, v) for i, v in enumerate(vectors)]


def all_vectors(folder: Path, model: str) -> np.ndarray:
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


def synthetic_date(rng: np.random.Generator) -> dt.datetime:
    """A capture date between 2015 and 2026."""
    return dt.datetime(2015, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 12 * 365 * 86400)))


def synthetic_place(media: int) -> tuple[Coordinates, Place] | None:
    """Where file number `media` was taken: one of PLACES for every third file, else unknown."""
    return PLACES[media // 3 % len(PLACES)] if media % 3 == 0 else None


def synthetic_reading(media: int):
    """What the reading pass would record for file number `media` (every fifth has words), as
    `Catalogue.record_reading`'s (readings, terms); None for a file with no text."""
    from engine.catalogue import NewReading

    if media % 5 != 1:
        return None
    text = f"{SIGN_WORDS[media // 5 % len(SIGN_WORDS)]}\nSHOP {media % 10_000}"
    lines = [
        {"text": line, "box": [[0, 0], [1, 0], [1, 1], [0, 1]], "confidence": 0.9}
        for line in text.split("\n")
    ]
    terms = {
        (variant, word) for word in words(text) for variant in deletions(word) | {word} if deletions(word)
    }
    return [NewReading(None, text, fold(text), json.dumps(lines))], terms
