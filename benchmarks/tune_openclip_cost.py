"""What `glimpse tune` costs on an open_clip pair, stage by stage, on random pictures and weights.

    python benchmarks/tune_openclip_cost.py vit-b-32@random coca-vit-b-32@random 8

prints the seconds of CoCa's caption writing and teacher scoring (per picture) and of 3 text-tower steps.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from PIL import Image

from engine.training import openclip_tune
from engine.training.train import TrainOptions


def main() -> None:
    fast, slow, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)) for _ in range(count)]
    seconds: dict[str, float] = {}

    def timed(name, function):
        def run(*args, **kwargs):
            started = time.monotonic()
            result = function(*args, **kwargs)
            seconds[name] = time.monotonic() - started
            print(f"{name}: {seconds[name]:.1f} s ({seconds[name] / count:.2f} s a picture)", flush=True)
            return result

        return run

    openclip_tune.write_captions = timed("caption writing", openclip_tune.write_captions)
    openclip_tune._teacher_scores = timed("teacher scoring", openclip_tune._teacher_scores)
    openclip_tune.optimise = timed("3 training steps", openclip_tune.optimise)
    options = TrainOptions(steps=3, batch_size=count, learning_rate=1e-5)
    with TemporaryDirectory() as folder:
        report = openclip_tune.tune_open_clip(pictures, fast, slow, Path(folder) / "tuned.pt", options)
    print(f"{report.written} captions written, {report.kept} kept")


if __name__ == "__main__":
    main()
