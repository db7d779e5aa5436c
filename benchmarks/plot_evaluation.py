"""Turn `glimpse eval --json` documents into the report's table and its recall-against-time plot.

Usage: python benchmarks/plot_evaluation.py PLAIN.json DISTILLED.json OUT.png
PLAIN.json evaluates the plain Fast model alone; DISTILLED.json the distilled Fast model with the Slow model
(Slow over all images and Fast+Slow at each K). Prints the Markdown table on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def rows(plain: dict, distilled: dict) -> list[tuple[str, dict]]:
    """(method, recall) in the report's order."""
    table = [
        ("Fast (plain)", plain["fast"]),
        ("Fast (distilled)", distilled["fast"]),
        ("Slow, all images", distilled["slow"]),
    ]
    table += [(f"Fast (distilled) + Slow, K = {k}", v) for k, v in distilled["rerank"].items()]
    return table


def markdown(table: list[tuple[str, dict]]) -> str:
    lines = ["| Method | R@1 | R@5 | R@10 | ms / query | queries |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in table:
        lines.append(
            f"| {name} | {r['r1']:.1f} | {r['r5']:.1f} | {r['r10']:.1f} | {r['ms_per_query']:.1f} | {r['queries']} |"
        )
    return "\n".join(lines)


def plot(table: list[tuple[str, dict]], out: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    rerank = [(name, r) for name, r in table if "K =" in name]
    axes.plot(
        [r["ms_per_query"] for _, r in rerank],
        [r["r1"] for _, r in rerank],
        "o-",
        color="tab:blue",
        label="Fast + Slow re-ranking",
    )
    for name, r in rerank:
        axes.annotate(
            name.split(", ")[-1],
            (r["ms_per_query"], r["r1"]),
            textcoords="offset points",
            xytext=(5, -12),
            fontsize=8,
        )
    markers = {
        "Fast (plain)": ("s", "tab:gray"),
        "Fast (distilled)": ("s", "tab:green"),
        "Slow, all images": ("D", "tab:red"),
    }
    for name, r in table:
        if name in markers:
            marker, colour = markers[name]
            axes.plot(r["ms_per_query"], r["r1"], marker, color=colour, markersize=8, label=name)
    axes.set_xscale("log")
    axes.set_xlabel("milliseconds per query (log scale)")
    axes.set_ylabel("text-to-image R@1 (%)")
    axes.set_title("Shapes test split (1,000 images): recall against time per query")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(out)


def main(plain_path: str, distilled_path: str, out: str) -> None:
    table = rows(json.loads(Path(plain_path).read_text()), json.loads(Path(distilled_path).read_text()))
    plot(table, Path(out))
    print(markdown(table))


if __name__ == "__main__":
    main(*sys.argv[1:])
