"""Glimpse's engine: catalogue, vector index, models, ingestion, search and watching; never imports Qt.

The facade is `Library`; the `glimpse` command line (engine.cli) and the desktop app are faces over it.
"""

import os

# OpenMP threads that spin while they wait turn each small tensor operation into a wait for the scheduler as
# soon as another process holds a core (measured 1.1–25× slower here, docs/benchmarks.md); sleeping waiters
# cost microseconds. OpenMP reads this once, when torch loads, which is after this point.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.errors import GlimpseError
from engine.library import Library

__all__ = ["GlimpseError", "Library"]
