"""Synthetic libraries for the query benchmarks: frame vectors shaped like CLIP's, written as the indexer does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.bench.common import QUERIES

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
