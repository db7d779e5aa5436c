"""End-to-end tests run the installed `glimpse` command, as a user would, on folders they build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

GLIMPSE = Path(sys.executable).with_name("glimpse")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def glimpse(
    *args: str | os.PathLike | bytes,
    library: Path | None = None,
    env: dict | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Run:
    """Run the real `glimpse` command; arguments may be bytes (non-UTF-8 file names)."""
    argv = [os.fsencode(GLIMPSE), *(os.fsencode(a) for a in args)]
    if library is not None:
        argv += [b"--library", os.fsencode(library)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    done = subprocess.run(argv, capture_output=True, env=full_env, timeout=300, preexec_fn=preexec_fn)
    return Run(
        done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


def wait_for(condition, seconds: float = 60.0, every: float = 0.5) -> bool:
    """Poll `condition` `every` so many seconds; False if it did not hold within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


#: The e2e tests' resident engines (one per library a test searches) stop soon after their last request
#: instead of staying a quarter of an hour, each with its models in memory.
ENGINE_IDLE_S = "30"


@pytest.fixture(scope="session", autouse=True)
def engines() -> Iterator[Path]:
    """Every engine the tests' commands start lives in a runtime folder of their own and stops when idle."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: socket paths have a length limit
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(folder))
        patch.setenv("GLIMPSE_ENGINE_IDLE_S", ENGINE_IDLE_S)
        patch.delenv("GLIMPSE_NO_DAEMON", raising=False)
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"
