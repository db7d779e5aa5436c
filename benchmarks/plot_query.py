"""Plot query latency against library size from `glimpse bench query --json` results.

    .venv/bin/python benchmarks/plot_query.py OUT.png RESULT.json...

Each RESULT.json is named query-<frames>.json and holds one bench document, or a list of them (runs, whose
median is plotted).
"""

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(out: str, files: list[str]) -> None:
    keys = ("end_to_end_ms_p50", "text_ms_p50", "brute_force_ms_p50", "ann_ms_p50")
    sizes, series = [], {key: [] for key in keys}
    for file in sorted(files, key=lambda f: int(Path(f).stem.split("-")[1])):
        runs = json.loads(Path(file).read_text())
        runs = runs if isinstance(runs, list) else [runs]
        sizes.append(int(Path(file).stem.split("-")[1]))
        for key, values in series.items():
            values.append(statistics.median(run[key] for run in runs))
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    labels = {
        "end_to_end_ms_p50": "end to end (text + ANN + catalogue + grouping)",
        "text_ms_p50": "text encoding alone (int8)",
        "brute_force_ms_p50": "brute force (float32 matrix product)",
        "ann_ms_p50": "index top 10 (usearch f16: exact scan to 20,000 frames, HNSW above)",
    }
    for key, values in series.items():
        axes.plot(sizes, values, marker="o", label=labels[key])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("library size (frames)")
    axes.set_ylabel("median latency per query (ms)")
    axes.set_title("Query latency, 2 shared CPU cores")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
