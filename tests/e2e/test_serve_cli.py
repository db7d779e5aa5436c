"""The real `glimpse` command through the library's resident engine: the same bytes as without it, started on
demand, stopped when idle or asked, replaced when it dies, refused when others could reach it, and a light
client (tiny-test model, offline)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.serve.client import REPLACED_DEAD, running_engine, stop_engine
from engine.serve.sockets import EnginePlace
from tests.e2e.conftest import GLIMPSE, Run, glimpse, wait_for
from tests.factory import make_photo, make_video

#: Modules a search answered by a running engine must not load in the command's process.
HEAVY = ("torch", "open_clip", "PySide6", "numpy", "sqlalchemy")


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    """A private runtime folder for this module's engines (and this process, to find them)."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(folder))
        patch.setenv("GLIMPSE_ENGINE_IDLE_S", "300")
        patch.delenv("GLIMPSE_NO_DAEMON", raising=False)
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for seed in range(6):
        make_photo(folder / "photos" / f"photo-{seed}.jpg", size=(320, 240), seed=seed)
    make_video(folder / "videos" / "clip.mp4", seconds=6, seed=1)
    return folder


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, media: Path, runtime: Path) -> Iterator[Path]:
    library = tmp_path_factory.mktemp("lib") / "library"
    run = glimpse("index", media, "--model", "tiny-test", "--no-read-text", library=library)
    assert run.code == 0, run.stderr
    yield library
    stop_engine(library)


def fresh(indexed: Path, tmp_path: Path) -> Path:
    """A copy of the indexed library, with no engine of its own yet."""
    return Path(shutil.copytree(indexed, tmp_path / "library", ignore=shutil.ignore_patterns("*.log")))


def same_run(args: tuple, library: Path) -> tuple[Run, Run]:
    through = glimpse(*args, library=library)
    without = glimpse(*args, "--no-daemon", library=library)
    return through, without


@pytest.mark.slow  # each case runs the command once through the engine, once loading the models itself
@pytest.mark.parametrize(
    "args",
    [
        ("search", "a photo", "--json"),
        ("search", "a photo"),
        ("search", "a photo", "--all", "--no-rerank", "--json"),
        ("search", "people dancing", "--type", "video", "--rerank", "2", "--json"),
        ("search", "a sunny sky", "--sort", "newest", "--limit", "3", "--json"),
        ("status", "--json"),
        ("status",),
        ("check", "--json"),
        ("search", "a photo", "--device", "cuda"),  # no GPU here: the engine's UsageError, exit 2
    ],
    ids=" ".join,
)
def test_the_command_prints_the_same_bytes_through_the_engine_and_without(indexed: Path, args: tuple) -> None:
    if args[-1] == "cuda" and _has_cuda():
        pytest.skip("this machine has a GPU")
    through, without = same_run(args, indexed)
    assert (through.code, through.stdout, through.stderr) == (without.code, without.stdout, without.stderr)
    assert "Traceback" not in through.stderr


@pytest.mark.slow
def test_similar_and_a_folder_filter_print_the_same_bytes_too(indexed: Path, media: Path) -> None:
    for args in (
        ("similar", media / "photos" / "photo-3.jpg", "--json"),
        ("search", "a photo", "--folder", media / "photos", "--json"),
    ):
        through, without = same_run(args, indexed)
        assert through.code == 0, through.stderr
        assert (through.stdout, through.stderr) == (without.stdout, without.stderr)


@pytest.mark.slow
def test_an_unindexed_library_says_so_the_same_way(tmp_path: Path, runtime: Path) -> None:
    library = tmp_path / "empty"
    through, without = same_run(("search", "a dog"), library)
    assert (
        (through.code, through.stderr)
        == (without.code, without.stderr)
        == (
            2,
            "glimpse: this library has not been indexed yet; run `glimpse index` first\n",
        )
    )
    stop_engine(library)


def test_a_question_that_cannot_be_answered_starts_no_engine(tmp_path: Path, runtime: Path) -> None:
    library = tmp_path / "library"
    run = glimpse("search", "   ", library=library)
    assert (run.code, run.stderr) == (2, "glimpse: type a few words describing what you are looking for\n")
    assert running_engine(EnginePlace.of(library)) is None


@pytest.mark.slow
def test_the_engine_starts_on_demand_and_stops_when_idle(indexed: Path, tmp_path: Path) -> None:
    library = fresh(indexed, tmp_path)
    place = EnginePlace.of(library)
    assert running_engine(place) is None
    run = glimpse("status", "--json", library=library, env={"GLIMPSE_ENGINE_IDLE_S": "3"})
    assert run.code == 0 and run.json()["media"] == 7 and run.stderr == ""
    info = running_engine(place)
    assert info is not None and info.pid != os.getpid()
    assert wait_for(lambda: not place.socket.exists(), 60)
    assert wait_for(lambda: not _alive(info.pid), 60)


@pytest.mark.slow
def test_a_killed_engine_is_replaced_with_one_line(indexed: Path) -> None:
    before = glimpse("search", "a photo", "--json", library=indexed)
    assert before.code == 0, before.stderr
    place = EnginePlace.of(indexed)
    killed = running_engine(place)
    assert killed is not None
    os.kill(killed.pid, signal.SIGKILL)
    assert wait_for(lambda: not _alive(killed.pid), 30)
    assert place.socket.exists()  # a dead engine's socket stays behind, refusing connections
    after = glimpse("search", "a photo", "--json", library=indexed)
    assert (after.code, after.stdout) == (0, before.stdout)
    assert after.stderr == REPLACED_DEAD + "\n"
    replaced = running_engine(place)
    assert replaced is not None and replaced.pid != killed.pid
    assert glimpse("status", "--json", library=indexed).stderr == ""  # once replaced, nothing more is said


@pytest.mark.slow
def test_a_stale_socket_is_cleared_away(indexed: Path, tmp_path: Path) -> None:
    library = fresh(indexed, tmp_path)
    place = EnginePlace.of(library)
    with socket.socket(socket.AF_UNIX) as dead:  # bound, never listening: what a dead engine leaves
        dead.bind(str(place.socket))
    place.socket.chmod(0o600)
    run = glimpse("status", "--json", library=library)
    assert run.code == 0 and run.json()["media"] == 7
    assert run.stderr == REPLACED_DEAD + "\n"
    assert running_engine(place) is not None
    stop_engine(library)


@pytest.mark.slow
def test_a_second_engine_says_so_and_stop_stops_it(indexed: Path) -> None:
    assert glimpse("status", library=indexed).code == 0
    place = EnginePlace.of(indexed)
    info = running_engine(place)
    assert info is not None
    second = glimpse("serve", library=indexed)
    assert second.code == 1
    assert second.stderr == (
        f"glimpse: an engine already serves the library {place.library} (pid {info.pid}); "
        "`glimpse serve --stop` stops it\n"
    )
    stopped = glimpse("serve", "--stop", library=indexed)
    assert (stopped.code, stopped.stderr) == (0, f"stopped the engine of {indexed} (pid {info.pid})\n")
    assert running_engine(place) is None and not place.socket.exists()
    assert glimpse("serve", "--stop", library=indexed).stderr == "no engine was running\n"


@pytest.mark.slow
def test_two_commands_at_once_start_one_engine(indexed: Path, tmp_path: Path) -> None:
    library = fresh(indexed, tmp_path)
    argv = [GLIMPSE, "search", "a photo", "--json", "--library", library]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    both = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    assert outputs[0] == outputs[1] and outputs[0][1] == b""
    engines = subprocess.run(["pgrep", "-f", f"engine.serve {library}"], capture_output=True, text=True)
    assert len(engines.stdout.split()) == 1
    stop_engine(library)


@pytest.mark.slow
def test_a_socket_others_could_reach_is_refused(indexed: Path) -> None:
    assert glimpse("status", library=indexed).code == 0
    place = EnginePlace.of(indexed)
    place.socket.chmod(0o666)
    try:
        run = glimpse("status", library=indexed)
    finally:
        place.socket.chmod(0o600)
    assert run.code == 1
    assert run.stderr == (
        f"glimpse: the engine socket {place.socket} can be opened by other users (mode 666); make it private "
        f"(chmod 600 {place.socket}), or use --no-daemon\n"
    )


def _client_modules(library: Path) -> list[str]:
    """The heavy modules loaded by `glimpse search` in its own process, its engine already running."""
    script = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr))\n"
        "from engine.cli import main\n"
        f"main(['search', 'a photo', '--json', '--library', {str(library)!r}])\n"
    )
    # The environment `glimpse()` gives its commands: an engine answers only commands of its own environment.
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_command_that_asks_the_engine_loads_no_model(indexed: Path) -> None:
    assert glimpse("status", library=indexed).code == 0  # the engine is up
    loaded = _client_modules(indexed)
    assert not {"torch", "open_clip", "PySide6"} & set(loaded), loaded


@pytest.mark.slow
def test_the_command_that_asks_the_engine_loads_neither_numpy_nor_sqlalchemy(indexed: Path) -> None:
    assert glimpse("status", library=indexed).code == 0
    assert _client_modules(indexed) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waits for its parent, but no longer runs
        return stat.read().split(") ")[1][0] != "Z"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
