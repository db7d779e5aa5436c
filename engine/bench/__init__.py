"""`glimpse bench`: the timings docs/benchmarks.md quotes, each measured next to its baseline in the same run.

- rerank.py  the Slow re-ranking of K candidates, against open_clip's naive forward pass
- index.py   photos per second of indexing 12-megapixel JPEGs, against the bare fp32 image tower
- query.py   search latency at N frames, against brute-force scoring (synthetic.py builds the library)
- video.py   video sampling, times real time, against OpenCV reading every frame
- read.py    the reading pass's photos per second, against rapidocr's own call per photo, words compared
- cli.py     `glimpse search` as a whole process, with its resident engine and without, against rclip's process
- process.py `glimpse index` as a whole process, photos and a clip, against rclip's indexing and OpenCV

Random weights (`NAME@random`) cost exactly what trained ones do, so every benchmark runs offline. Heavy modules
are imported inside the commands, so that `glimpse --help` stays quick.
"""

from __future__ import annotations

import click

from engine.bench import cli, index, process, query, read, rerank, video


@click.group()
def bench() -> None:
    """Measure Glimpse's speed (the figures in docs/benchmarks.md)."""


for _benchmark in (rerank, index, query, video, read, cli, process):
    bench.add_command(_benchmark.command)
