"""End-to-end tests run the installed `glimpse` command, as a user would, on folders they build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
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


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"
