"""Glimpse's engine: catalogue, vector index, models, ingestion, search and watching; never imports Qt.

The facade is `Library`; the `glimpse` command line (engine.cli) and the desktop app are faces over it.
"""

import os

# OpenMP threads that spin while they wait turn each small tensor operation into a wait for the scheduler as
# soon as another process holds a core (measured 1.1–25× slower here, docs/benchmarks.md); sleeping waiters
# cost microseconds. OpenMP reads this once, when torch loads, which is after this point.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import TYPE_CHECKING, Any

from engine.errors import GlimpseError

if TYPE_CHECKING:
    from engine.library import Library

__all__ = ["GlimpseError", "Library"]


def __getattr__(name: str) -> Any:
    # `Library` loads SQLAlchemy, usearch and numpy: only when asked for, so that a command the resident
    # engine answers (engine.cli, engine.serve's client) starts without them.
    if name == "Library":
        from engine.library import Library

        return Library
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
