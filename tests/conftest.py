"""What every test shares: nothing of the person's own Glimpse configuration leaks into a test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.search.fusion import CONFIG_ENV


@pytest.fixture(scope="session", autouse=True)
def config_folder() -> Iterator[Path]:
    """A configuration folder of the tests' own (calibrated fusion weights live there), for this process and
    every `glimpse` it starts."""
    with (
        tempfile.TemporaryDirectory(prefix="glimpse-config-") as folder,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(CONFIG_ENV, folder)
        yield Path(folder)
