"""Models: presets by name, the Fast encoder and the Slow scorer behind their small protocols.

Presets and spec parsing import nothing heavy; everything that needs torch, open_clip or huggingface_hub is
imported on first use, so `glimpse --help` and `glimpse models` start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.models.presets import DEFAULT_PRESET, PRESETS, ModelSpec, Preset, paired_slow, parse_model_spec

#: Overrides the Fast towers' precision for open_clip presets: auto (int8 on a CPU when it agrees with fp32),
#: fp32 or int8 (engine/models/openclip.py).
PRECISION_ENV = "GLIMPSE_FAST_PRECISION"
#: Appended to the vector-space key of an encoder whose image tower runs in int8: its vectors are not fp32's,
#: so a library never mixes the two.
INT8_KEY_SUFFIX = "+int8"

if TYPE_CHECKING:
    from engine.models.base import FastEncoder, SlowScorer, TokenSlowScorer
    from engine.models.hub import download, is_available
    from engine.models.loader import clear_cache, load_fast, load_slow, resolve_device

_LAZY = {
    "FastEncoder": "engine.models.base",
    "SlowScorer": "engine.models.base",
    "TokenSlowScorer": "engine.models.base",
    "download": "engine.models.hub",
    "is_available": "engine.models.hub",
    "clear_cache": "engine.models.loader",
    "load_fast": "engine.models.loader",
    "load_slow": "engine.models.loader",
    "resolve_device": "engine.models.loader",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PRESET",
    "INT8_KEY_SUFFIX",
    "PRECISION_ENV",
    "PRESETS",
    "FastEncoder",
    "ModelSpec",
    "Preset",
    "SlowScorer",
    "TokenSlowScorer",
    "clear_cache",
    "download",
    "is_available",
    "load_fast",
    "load_slow",
    "paired_slow",
    "parse_model_spec",
    "resolve_device",
]
