"""Which frames of a video are worth reading: those whose picture changed since the last one read."""

from __future__ import annotations

import numpy as np


def frames_to_read(vectors: np.ndarray, threshold: float, *, max_gap: int | None = None) -> list[int]:
    """Indices of the frames to read, given a video's L2-normalised Fast vectors (N, D) in time order.

    The first frame is read, then every frame whose cosine similarity to the last frame read is below
    `threshold` (its picture changed: a cut, a new slide, a caption that appeared). Comparing with the last frame
    read rather than the previous one catches a slow pan too. With `max_gap`, a frame is also read when that many
    frames have passed since the last one read, whatever the vectors say.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"frame vectors must be a matrix (frames, dimensions), not of shape {vectors.shape}")
    if max_gap is not None and max_gap < 1:
        raise ValueError("max_gap must be at least 1")
    if len(vectors) == 0:
        return []
    chosen = [0]
    last = vectors[0]
    for index in range(1, len(vectors)):
        # A vector that is not finite (a broken frame) reads as changed: reading it costs one frame, at most.
        similarity = float(vectors[index] @ last)
        gap_reached = max_gap is not None and index - chosen[-1] >= max_gap
        if not similarity >= threshold or gap_reached:
            chosen.append(index)
            last = vectors[index]
    return chosen
