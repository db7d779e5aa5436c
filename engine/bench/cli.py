"""`glimpse bench cli`: `glimpse search` as a whole process, the way a person at a terminal waits for it: with the
library's resident engine running (re-ranking as by default, and `--no-rerank`, the Fast model alone as rclip
searches), with none running yet (the first query, and how much of it is imports), and in the process itself
(`--no-daemon`); against rclip's own query process on the same folder, in turns in the same run (the machine's
speed drifts).

rclip is another program (PyPI: rclip, in a virtual environment of its own); `--rclip` names its command and
`--rclip-data` its data folder (RCLIP_DATADIR), which must hold its models: `/work/shared/tools/rclip-offline
DATADIR` exports them from random weights, so that it runs offline, as Glimpse's `@random` presets do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from engine.bench.common import QUERIES, emit, median, percentile, photo_folder

#: `glimpse`, next to the Python running this benchmark.
GLIMPSE = Path(sys.executable).with_name("glimpse")
#: A line of `python -X importtime`: "import time: SELF | CUMULATIVE | NAME", the name indented by depth.
_IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)")


@click.command("cli")
@click.option("--photos", type=click.IntRange(1, 100_000), default=120, show_default=True)
@click.option("--model", default="vit-b-32@random", show_default=True, help="Fast model preset.")
@click.option(
    "--queries", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Timed queries each."
)
@click.option(
    "--cold",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="First queries and --no-daemon ones.",
)
@click.option("--rclip", "rclip", type=click.Path(dir_okay=False, path_type=Path), help="rclip's command.")
@click.option(
    "--rclip-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="rclip's data folder (RCLIP_DATADIR) holding its models.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the photos and both indexes here and reuse them (default: a temporary folder, deleted after).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def command(
    photos: int,
    model: str,
    queries: int,
    cold: int,
    rclip: Path | None,
    rclip_data: Path | None,
    cache: Path | None,
    as_json: bool,
) -> None:
    """Time `glimpse search` as a process, with and without its engine, against rclip's query process."""
    if (rclip is None) != (rclip_data is None):
        raise click.UsageError("--rclip and --rclip-data go together")
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-cli-"))
    try:
        runtime = work / "run"
        runtime.mkdir(mode=0o700)
        # Its own engine folder, for this process and those it starts: no engine of another run, or of the
        # person's own libraries, answers here.
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        os.environ.pop("GLIMPSE_NO_DAEMON", None)
        result = time_cli(
            cache or work, photos, model=model, queries=queries, cold=cold, rclip=rclip, rclip_data=rclip_data
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(result, as_json)


def time_cli(
    folder: Path,
    photos: int,
    *,
    model: str,
    queries: int,
    cold: int,
    rclip: Path | None,
    rclip_data: Path | None,
) -> dict:
    """The figures of `glimpse bench cli`; `folder` keeps the photos and the indexes (built once)."""
    from engine.serve.client import stop_engine

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    pictures, library = folder / f"photos-{photos}", folder / f"library-{photos}"
    if not pictures.is_dir():
        photo_folder(pictures, photos)
    if _run([GLIMPSE, "index", pictures, "--model", model, "--library", library], env).returncode:
        raise click.ClickException("glimpse index failed; see the library's log")
    rclip_env = {**env, "RCLIP_DATADIR": str(rclip_data)} if rclip_data else env
    if rclip is not None:  # rclip indexes the folder it runs in, on its first query there
        _run([rclip, "-f", "-t", "1", "warm up"], rclip_env, cwd=pictures)

    def search(text: str, *flags: str) -> float:
        started = time.perf_counter()
        done = _run([GLIMPSE, "search", text, "--json", "--library", library, *flags], env)
        if done.returncode:
            raise click.ClickException(f"glimpse search failed: {done.stderr.decode(errors='replace')}")
        return time.perf_counter() - started

    first = []
    for i in range(cold):
        stop_engine(library)
        first.append(search(QUERIES[i % len(QUERIES)]))
    stop_engine(library)
    imports = _first_query_imports(library, env)
    engine, fast, peer = [], [], []
    search(QUERIES[0])  # the engine is up and warm
    for i in range(queries):
        text = QUERIES[i % len(QUERIES)]
        engine.append(search(text))
        fast.append(search(text, "--no-rerank"))  # the Fast model alone, as rclip searches
        if rclip is not None:
            started = time.perf_counter()
            _run([rclip, "-n", "-f", "-t", "20", text], rclip_env, cwd=pictures)
            peer.append(time.perf_counter() - started)
    rss = _engine_rss_mb(library)
    stop_engine(library)
    in_process = [search(QUERIES[i % len(QUERIES)], "--no-daemon") for i in range(cold)]
    result = {
        "photos": photos,
        "model": model,
        "engine_s_p50": median(engine),
        "engine_s_p95": percentile(engine, 95),
        "engine_no_rerank_s_p50": median(fast),
        "engine_no_rerank_s_p95": percentile(fast, 95),
        "first_query_s": median(first),
        **imports,
        "no_daemon_s_p50": median(in_process),
        "engine_rss_mb": rss,
    }
    if peer:
        result["rclip_s_p50"] = median(peer)
        result["rclip_over_engine"] = round(median(peer) / median(engine), 2)
        result["rclip_over_engine_no_rerank"] = round(median(peer) / median(fast), 2)
    return result


def _first_query_imports(library: Path, env: dict) -> dict:
    """One more first query, with `-X importtime` in the command and in the engine it starts: the seconds each
    spends importing modules (top-level imports' cumulative times, summed)."""
    from engine.serve.sockets import EnginePlace

    profiled = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    log = EnginePlace.of(library).log
    log.unlink(missing_ok=True)
    started = time.perf_counter()
    done = _run([GLIMPSE, "search", QUERIES[1], "--json", "--library", library], profiled)
    total = time.perf_counter() - started
    return {
        "first_query_profiled_s": round(total, 3),
        "first_query_client_imports_s": _import_seconds(done.stderr.decode(errors="replace")),
        "first_query_engine_imports_s": _import_seconds(log.read_text(errors="replace")),
    }


def _import_seconds(text: str) -> float:
    total_us = 0
    for match in _IMPORT_LINE.finditer(text):
        cumulative, indent, _name = match.groups()
        if not indent:  # a top-level import: its cumulative time holds those it pulled in
            total_us += int(cumulative)
    return round(total_us / 1e6, 3)


def _engine_rss_mb(library: Path) -> float:
    """The running engine's resident memory (its own pages and the shared libraries it maps)."""
    from engine.serve.client import running_engine
    from engine.serve.sockets import EnginePlace

    info = running_engine(EnginePlace.of(library))
    if info is None:
        return float("nan")
    with open(f"/proc/{info.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _run(argv: list, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.fspath(a) for a in argv], env=env, cwd=cwd, capture_output=True, timeout=1800, check=False
    )
