"""Calibrate the re-ranking fusion weight (engine/reranker.py, FUSION_WEIGHT) on a validation split.

For each validation caption: the Fast model's top K over the split's images, the Slow log-likelihoods of those
K, then R@1 of the order by `fast + w × slow` for a range of weights w. Prints one JSON document: R@1 per
weight, the best weight, and Fast-only and Slow-only R@1 for reference.

Usage: .venv/bin/python benchmarks/calibrate_fusion.py DATASET [--model shapes] [--k 10] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from engine.models import load_fast, load_slow
from engine.models.presets import paired_slow
from engine.training.datasets import load_dataset, load_frames

WEIGHTS = [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1e9]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    fast = load_fast(args.model, "cpu")
    slow_spec = paired_slow(args.model)
    assert slow_spec is not None, f"{args.model} has no Slow pair"
    slow = load_slow(slow_spec, "cpu")
    split = load_dataset(args.dataset).split("val")
    images = [load_frames(item)[0] for item in split.items]
    image_vectors = fast.embed_images(images)
    queries = split.queries()
    queries = random.Random(args.seed).sample(queries, min(args.queries, len(queries)))

    hits = {w: 0 for w in WEIGHTS}
    for query in queries:
        fast_scores = image_vectors @ fast.embed_texts([query.text])[0]
        top = np.argsort(-fast_scores)[: args.k]
        slow_scores = slow.score(query.text, [images[i] for i in top])
        for w in WEIGHTS:
            best = top[int(np.argmax(fast_scores[top] + w * slow_scores))]
            hits[w] += int(best == query.item)
    recall = {str(w): round(100 * hits[w] / len(queries), 1) for w in WEIGHTS}
    best_weight = max(WEIGHTS[:-1], key=lambda w: hits[w])  # the smallest of equals: Fast keeps the most say
    print(
        json.dumps(
            {
                "model": args.model,
                "k": args.k,
                "queries": len(queries),
                "r1_by_weight": recall,
                "fast_only_r1": recall["0.0"],
                "slow_only_r1": recall[str(1e9)],
                "best_weight": best_weight,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
