"""What the teacher adds: distillation variants against the same recipe with no teacher, at a fixed step count.

Usage: python benchmarks/distill_ablation.py DATASET SLOW FAST OUT.jsonl VARIANT... [--steps N] [--seeds 0 1 2]
                                             [--split val|test] [--lr 5e-4]

For each seed, the student starts from the Fast checkpoint FAST, which also mines the groups; the Slow
checkpoint SLOW scores every caption against its group once per seed and group size, and every variant of
that seed trains on those same groups and scores (so a variant and the control differ only by the soft term).
Each trained student is evaluated on the split (every caption over every image) and one JSON line per
(variant, seed) is appended to OUT.jsonl: the variant's options, seed, steps, CPU seconds and R@1/5/10.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch

from engine.models.checkpoints import load_checkpoint_fast
from engine.training.datasets import load_dataset
from engine.training.distill import DistillOptions, prepare, train_prepared
from engine.training.evaluate import evaluate
from engine.training.train import TrainOptions

VARIANTS = {
    "control": DistillOptions(weight=0.0),
    "t1": DistillOptions(),
    "t2": DistillOptions(temperature=2.0),
    "t4": DistillOptions(temperature=4.0),
    "t2-student2": DistillOptions(temperature=2.0, student_temperature=2.0),
    "t2-batch": DistillOptions(temperature=2.0, scope="batch"),
    "t2-ramp": DistillOptions(temperature=2.0, schedule="ramp"),
    "t2-w3": DistillOptions(temperature=2.0, weight=3.0),
    "control-g8": DistillOptions(weight=0.0, group=8),
    "t2-g8": DistillOptions(temperature=2.0, group=8),
    "t2-g8-batch": DistillOptions(temperature=2.0, group=8, scope="batch"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("teacher", type=Path)
    parser.add_argument("student", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    data = load_dataset(arguments.dataset)
    evaluated = data.split(arguments.split)
    with tempfile.TemporaryDirectory() as work:
        for seed in arguments.seeds:
            options = TrainOptions(
                steps=arguments.steps, learning_rate=arguments.lr, seed=seed, progress=False
            )
            prepared = {}
            for name in arguments.variants:
                distill = VARIANTS[name]
                # One preparation per group size: the teacher always scores, so the control sees the same groups.
                if distill.group not in prepared:
                    scoring = replace(distill, weight=1.0)
                    prepared[distill.group] = prepare(
                        data, arguments.teacher, options, scoring, arguments.student, arguments.student
                    )
                out = Path(work) / f"{name}-{seed}.pt"
                report = train_prepared(
                    prepared[distill.group], data.name, out, options, distill, arguments.student, "teacher"
                )
                recall = evaluate(evaluated, load_checkpoint_fast(out), None, (), progress=False).fast
                row = {
                    "variant": name,
                    "distill": asdict(distill),
                    "seed": seed,
                    "steps": report.steps,
                    "lr": arguments.lr,
                    "split": arguments.split,
                    "cpu_seconds": round(report.cpu_seconds, 1),
                    "preparation_seconds": round(prepared[distill.group].seconds, 1),
                    "r1": recall.r1,
                    "r5": recall.r5,
                    "r10": recall.r10,
                }
                with arguments.out.open("a") as file:
                    file.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
