"""Ablations of Glimpse's training recipe at a fixed number of steps: what each change of the recipe buys.

Usage: python benchmarks/recipe_ablation.py DATASET OUT.jsonl fast|slow VARIANT... [--steps N] [--seed S]

Each variant trains a Fast (or Slow) model from scratch on DATASET's train split for N steps, then evaluates it
on the val split (Fast: every caption over every image; Slow: 200 seeded captions over every image) and appends
one JSON line to OUT.jsonl: the variant, its settings, steps, wall and CPU seconds, CPU milliseconds per step and
R@1/5/10. Runs single-threaded (OMP_WAIT_POLICY=PASSIVE, one torch thread) so CPU time per step is comparable
on a machine shared with other work. The variants are named in VARIANTS below; `recipe` is the current one.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine.models.caption_scorer import SlowConfig
from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow
from engine.models.dual_encoder import FastConfig
from engine.models.visual_trunk import TrunkConfig
from engine.training.datasets import RetrievalSet, load_dataset
from engine.training.evaluate import evaluate, slow_recall
from engine.training.train import TrainOptions, train_fast, train_slow


@dataclass(frozen=True)
class Variant:
    """A change of the recipe: the image size, the trunk's patch side and the models' shapes."""

    image_size: int = 64
    patch: int = 4
    fast: dict = field(default_factory=dict)
    slow: dict = field(default_factory=dict)
    captions_per_image: int = 5
    hard_group: int = 1
    contrast: float = 0.0


_OLD_FAST = {"image_tokens": "all", "dropout": 0.1}
VARIANTS = {
    "recipe": Variant(),
    # The first shapes recipe: every token to the Fast image tower, dropout, one caption per image.
    "old": Variant(fast=_OLD_FAST, slow={"dropout": 0.1}, captions_per_image=1),
    "old-coarse": Variant(fast={"dropout": 0.1}, captions_per_image=1),
    "old-coarse-nodrop": Variant(captions_per_image=1),
    # A 96 px set at its own size: 4 px patches (12×12 fine tokens), or 6 px ones (8×8, as at 64 px).
    "96px": Variant(96),
    "96px-6px-patches": Variant(96, 6),
    "all-tokens": Variant(fast={"image_tokens": "all"}),
    "one-caption": Variant(captions_per_image=1),
    "dropout": Variant(fast={"dropout": 0.1}, slow={"dropout": 0.1}),
    "bidirectional": Variant(slow={"directions": 2}),
    # Batches of word-mined pairs (a scene beside the scene its captions' words describe best); for the Slow
    # model, with the term that ranks a caption's own image above its pair's.
    "hard-pairs": Variant(hard_group=2),
    "hard-pairs-contrast": Variant(hard_group=2, contrast=1.0),
    "hard-quads-contrast": Variant(hard_group=4, contrast=1.0),
}


def run(data: RetrievalSet, role: str, name: str, steps: int, seed: int, work: Path) -> dict:
    variant = VARIANTS[name]
    size = variant.image_size
    options = TrainOptions(
        steps=steps,
        seed=seed,
        image_size=size,
        captions_per_image=variant.captions_per_image,
        hard_group=variant.hard_group,
        contrast=variant.contrast,
        progress=False,
    )
    out = work / f"{role}-{name}.pt"
    trunk = TrunkConfig(image_size=size, patch=variant.patch)
    started = time.process_time()
    if role == "fast":
        report = train_fast(data, out, options, architecture=FastConfig(trunk, 0, 0, **variant.fast))
        evaluation = evaluate(data.split("val"), load_checkpoint_fast(out), None, (), progress=False)
        recall = evaluation.fast
    else:
        report = train_slow(data, out, options, architecture=SlowConfig(trunk, 0, 0, **variant.slow))
        recall = slow_recall(data.split("val"), load_checkpoint_slow(out), 200, progress=False)
    return {
        "variant": name,
        "role": role,
        "settings": asdict(variant),
        "seed": seed,
        "steps": report.steps,
        "seconds": round(report.seconds, 1),
        "cpu_seconds": round(report.cpu_seconds, 1),
        "cpu_ms_per_step": round(1000 * report.cpu_seconds / report.steps, 1),
        "run_cpu_seconds": round(time.process_time() - started, 1),
        "r1": recall.r1,
        "r5": recall.r5,
        "r10": recall.r10,
        "queries": recall.queries,
        "load_average": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("role", choices=["fast", "slow"])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(arguments.dataset)
    with tempfile.TemporaryDirectory() as work:
        for name in arguments.variants:
            row = run(data, arguments.role, name, arguments.steps, arguments.seed, Path(work))
            with arguments.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
