"""Glimpse's engine: catalogue, vector index, models, ingestion, search and watching; never imports Qt.

The facade is `Library`; the `glimpse` command line (engine.cli) and the desktop app are faces over it.
"""

from engine.errors import GlimpseError
from engine.library import Library

__all__ = ["GlimpseError", "Library"]
