"""`glimpse bench video`: how many times real time a video's frames are sampled as indexing samples them
(decoding only, no model), against OpenCV reading every frame."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import click

from engine.bench.common import emit


@click.command("video")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between frames.")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True, help="Median over runs.")
@click.option(
    "--naive", is_flag=True, help="Also time OpenCV reading every frame and keeping one per interval."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(file: Path, interval: float, runs: int, naive: bool, as_json: bool) -> None:
    """Sample a video's frames as indexing does (decoding only, no model): how many times real time."""
    emit(time_video(os.fsencode(file), interval=interval, runs=runs, naive=naive), as_json)


def time_video(path: bytes, *, interval: float = 2.0, runs: int = 3, naive: bool = False) -> dict:
    from engine.media.video import FrameSampler

    sampler = FrameSampler(interval_s=interval, min_side=224)
    timings, naive_timings, frames, duration_ms = [], [], 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        with sampler.open(path) as opened:
            duration_ms = opened.info.duration_ms
            frames = sum(1 for _ in opened.frames())
        timings.append(time.perf_counter() - started)
        if naive:
            naive_timings.append(_every_frame(path, interval))
    seconds = statistics.median(timings)
    result = {
        "realtime_factor": round(duration_ms / 1000 / seconds, 2),
        "frames": frames,
        "seconds": round(seconds, 3),
    }
    if naive:
        result["every_frame_realtime_factor"] = round(
            duration_ms / 1000 / statistics.median(naive_timings), 2
        )
    return result


def _every_frame(path: bytes, interval: float) -> float:
    """Seconds for the naive way: OpenCV decodes every frame, one per `interval` is kept."""
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(os.fsdecode(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % max(1, round(fps * interval)) == 0:
            cv2.resize(frame, (398, 224))
        index += 1
    capture.release()
    return time.perf_counter() - started
