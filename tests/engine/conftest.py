"""Fixtures shared by the model tests: a Hugging Face hub endpoint of the test's choosing."""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Point huggingface_hub at `endpoint` with an empty cache; it reads its environment once, at import."""

    def point_at(endpoint: str) -> Path:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        for name in (
            "HF_HUB_CACHE",
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE",
            "HF_HUB_ETAG_TIMEOUT",
            "HF_TOKEN",
        ):
            monkeypatch.delenv(name, raising=False)
        importlib.reload(huggingface_hub.constants)
        return tmp_path / "hf-home" / "hub"

    yield point_at
    monkeypatch.undo()
    importlib.reload(huggingface_hub.constants)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
