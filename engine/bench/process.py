"""`glimpse bench process`: `glimpse index FOLDER --no-read-text` as a whole process, the way a person waits for
it, against rclip indexing the same photos and OpenCV reading every frame of the same clip, in turns in the same
run (the machine's speed drifts).

Each run times, in this order: `glimpse index` of an empty folder (its start-up: imports, the model, the int8
self-check), of the photos, and of the clip, each into a fresh library; rclip on an empty folder and on the
photos, each with a fresh database; OpenCV reading every frame of the clip (in this process, as `glimpse bench
video --naive` does: it pays no start-up). Photos per second are the photos over the difference between the photo
run and the empty run, for Glimpse and rclip alike; the clip's time is its run's minus the empty run.

rclip is another program (PyPI: rclip, in a virtual environment of its own): `--rclip` names its command and
`--rclip-data` a data folder holding its models (`/work/shared/tools/rclip-offline DATADIR` exports random-weight
ones); each run gets a data folder of its own that links to those models, so every rclip run indexes from scratch.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from engine.bench.common import emit, median, photo_folder

#: `glimpse`, next to the Python running this benchmark.
GLIMPSE = Path(sys.executable).with_name("glimpse")


@click.command("process")
@click.option("--photos", type=click.IntRange(1, 100_000), default=120, show_default=True)
@click.option("--model", default="vit-b-32@random", show_default=True, help="Fast model preset.")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True, help="Median over runs.")
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also index this clip (benchmarks/make_test_video.py makes the 60 s 1080p one).",
)
@click.option("--rclip", "rclip", type=click.Path(dir_okay=False, path_type=Path), help="rclip's command.")
@click.option(
    "--rclip-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="A data folder (RCLIP_DATADIR) holding rclip's models.",
)
@click.option(
    "--other-tree",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also time Glimpse from this source tree (PYTHONPATH=DIR), in the same turns: a before and after.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(
    photos: int,
    model: str,
    runs: int,
    video: Path | None,
    rclip: Path | None,
    rclip_data: Path | None,
    other_tree: Path | None,
    as_json: bool,
) -> None:
    """Time `glimpse index` as a process on photos and a clip, against rclip and OpenCV in the same run."""
    if (rclip is None) != (rclip_data is None):
        raise click.UsageError("--rclip and --rclip-data go together")
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-process-"))
    try:
        result = time_processes(
            work,
            photos,
            model=model,
            runs=runs,
            video=video,
            rclip=rclip,
            rclip_data=rclip_data,
            other_tree=other_tree,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(result, as_json)


def time_processes(
    work: Path,
    photos: int,
    *,
    model: str,
    runs: int,
    video: Path | None = None,
    rclip: Path | None = None,
    rclip_data: Path | None = None,
    other_tree: Path | None = None,
) -> dict:
    """The figures of `glimpse bench process`; `work` is a scratch folder."""
    from engine.bench.video import _every_frame

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GLIMPSE_NO_DAEMON": "1"}
    pictures, empty = photo_folder(work / "photos", photos), work / "empty"
    empty.mkdir()
    clips = None
    if video is not None:
        clips = work / "clip"
        clips.mkdir()
        shutil.copy(video, clips)
    glimpses = {"glimpse": env}
    if other_tree is not None:
        glimpses["other"] = {**env, "PYTHONPATH": str(other_tree.resolve())}
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for run in range(runs):
        # Glimpse and its peers take turns, so a drift in the machine's load touches all of them.
        starts = {}
        for name, variant in glimpses.items():
            starts[name] = _glimpse_index(empty, work / f"library-{name}-empty-{run}", model, variant)
            add(f"{name}_empty_s", starts[name])
            seconds = _glimpse_index(pictures, work / f"library-{name}-photos-{run}", model, variant)
            add(f"{name}_photos_s", seconds - starts[name])
        if rclip is not None and rclip_data is not None:
            rclip_start = _rclip_index(rclip, rclip_data, empty, work / f"rclip-empty-{run}", env)
            add("rclip_empty_s", rclip_start)
            rclip_photos = _rclip_index(rclip, rclip_data, pictures, work / f"rclip-photos-{run}", env)
            add("rclip_photos_s", rclip_photos - rclip_start)
        if clips is not None:
            for name, variant in glimpses.items():
                seconds = _glimpse_index(clips, work / f"library-{name}-clip-{run}", model, variant)
                add(f"{name}_clip_s", seconds - starts[name])
            add("opencv_every_frame_s", _every_frame(os.fsencode(clips / os.listdir(clips)[0]), 2.0))
        for leftover in [*work.glob("library-*"), *work.glob("rclip-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
    result: dict = {"photos": photos, "model": model, "runs": runs}
    result.update({name: median(values) for name, values in figures.items()})
    for name in glimpses:
        result[f"{name}_photos_per_second"] = round(
            photos / statistics.median(figures[f"{name}_photos_s"]), 2
        )
        if "rclip_photos_s" in figures:
            result[f"{name}_over_rclip"] = _median_ratio(
                figures["rclip_photos_s"], figures[f"{name}_photos_s"]
            )
        if clips is not None:
            result[f"{name}_over_opencv"] = _median_ratio(
                figures["opencv_every_frame_s"], figures[f"{name}_clip_s"]
            )
    if "rclip_photos_s" in figures:
        result["rclip_photos_per_second"] = round(photos / statistics.median(figures["rclip_photos_s"]), 2)
    result["per_run"] = figures
    return result


def _median_ratio(slower: list[float], faster: list[float]) -> float:
    """The median over runs of one run's ratio: each run's two figures were measured side by side."""
    return round(statistics.median(s / f for s, f in zip(slower, faster, strict=True)), 2)


def _glimpse_index(folder: Path, library: Path, model: str, env: dict) -> float:
    argv = [GLIMPSE, "index", folder, "--model", model, "--no-read-text", "--library", library]
    return _timed(argv, env)


def _rclip_index(rclip: Path, models: Path, folder: Path, data: Path, env: dict) -> float:
    """Seconds of rclip's first query in `folder`, which indexes it, with a database of its own in `data`."""
    data.mkdir()
    for entry in models.iterdir():
        if entry.is_dir():  # its models and tokenizer, not a database left by another run
            (data / entry.name).symlink_to(entry.resolve())
    return _timed([rclip, "-f", "-t", "1", "a photo"], {**env, "RCLIP_DATADIR": str(data)}, cwd=folder)


def _timed(argv: list, env: dict, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [os.fspath(a) for a in argv], env=env, cwd=cwd, capture_output=True, timeout=3600, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        stderr = done.stderr.decode(errors="replace").strip().splitlines()
        raise click.ClickException(
            f"{os.fspath(argv[0])} failed: {stderr[-1] if stderr else done.returncode}"
        )
    return seconds
