"""Grouping images with the images they are hardest to tell from, for batches that hold hard negatives.

Two views of "hard to tell apart": a trained Fast model's (its image vectors against the mean vector of an
image's captions), or, before any model is trained, the captions' words (two images whose captions use the
same words in other bindings, a twin and its scene, are the hardest pair a caption can face).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch


def mine_groups(
    image_vectors: np.ndarray, query_vectors: np.ndarray, group: int, rng: random.Random
) -> torch.Tensor:
    """Partition images into groups of `group` that look alike → (N // group, group).

    Greedy: visit images in random order; an unassigned image takes the group-1 unassigned images its query
    vector ranks highest. Images left over (fewer than a group) are dropped.
    """
    order = list(range(len(image_vectors)))
    rng.shuffle(order)
    free = np.ones(len(image_vectors), dtype=bool)
    groups: list[list[int]] = []
    for image in order:
        if not free[image] or free.sum() < group:
            continue
        free[image] = False
        similarity = np.where(free, image_vectors @ query_vectors[image], -np.inf)
        partners = np.argpartition(-similarity, group - 2)[: group - 1].tolist()
        free[partners] = False
        groups.append([image, *partners])
    return torch.tensor(groups, dtype=torch.long).view(-1, group)


def word_vectors(
    tokens: torch.Tensor, captions_of_image: Sequence[Sequence[int]], vocab_size: int
) -> np.ndarray:
    """Each image's bag of words over all its captions, tf-idf weighted and L2-normalised → (N, vocab_size).

    Words every image's captions use (articles, template words) weigh nothing; the ones that tell scenes
    apart (colours, shapes, counts) weigh most.
    """
    counts = np.zeros((len(captions_of_image), vocab_size), np.float32)
    rows = tokens.numpy()
    for image, captions in enumerate(captions_of_image):
        ids = rows[list(captions)].ravel()
        np.add.at(counts[image], ids[ids > 3], 1.0)  # padding, <bos>, <eos> and <unk> say nothing
    documents = (counts > 0).sum(0)
    idf = np.log((1 + len(counts)) / (1 + documents))
    vectors = counts * idf
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
