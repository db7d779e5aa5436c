"""Loading models by spec string, once per process: a running app keeps its models in memory."""

from __future__ import annotations

import os
import threading
from typing import Any

import torch

from engine.errors import UsageError
from engine.models import PRECISION_ENV
from engine.models.base import FastEncoder, SlowScorer
from engine.models.presets import CHECKPOINT, Kind, ModelSpec, parse_model_spec

#: Loaded models by (kind, vector-space key, device): a running app keeps its models in memory.
_loaded: dict[tuple[str, str, str], Any] = {}
# One load at a time: two threads asking for the same model must not download or build it twice.
_loading = threading.Lock()


def resolve_device(device: str = "auto") -> str:
    """ "auto" | "cpu" | "cuda" → the device to run on: "cpu" or "cuda"."""
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"Unknown device {device!r}: choose auto, cpu or cuda.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("The cuda device was asked for but PyTorch finds no CUDA GPU here: use auto or cpu.")
    return device


def load_fast(spec: str, device: str = "auto", precision: str | None = None) -> FastEncoder:
    """The Fast encoder named by `spec` (NAME, NAME@random or NAME@/path/to/weights), loaded once per process.

    `precision` ("auto", "fp32", "int8"; None: $GLIMPSE_FAST_PRECISION, else auto) applies to open_clip presets;
    the encoder's `key` says which one its image tower runs in, and so names the vector space it embeds into.
    """
    return _load(spec, "fast", device, precision or os.environ.get(PRECISION_ENV) or "auto")


def load_slow(spec: str, device: str = "auto") -> SlowScorer:
    """The Slow scorer named by `spec` (e.g. coca-vit-b-32, coca-vit-b-32@random), loaded once per process.

    Every scorer Glimpse ships is also a `TokenSlowScorer`, whose visual tokens the re-ranker caches.

    `presets.paired_slow` gives the Slow spec that goes with a Fast one.
    """
    return _load(spec, "slow", device, None)


def clear_cache() -> None:
    """Forget every loaded model (their memory is freed once nobody else holds them)."""
    with _loading:
        _loaded.clear()


def _load(spec: str, kind: Kind, device: str, precision: str | None) -> Any:
    model = _parsed(spec, kind)
    resolved = resolve_device(device)
    cache_key = (kind, model.key, resolved, precision)
    with _loading:
        if cache_key not in _loaded:
            _loaded[cache_key] = _build(model, kind, resolved, precision)
        return _loaded[cache_key]


def _build(model: ModelSpec, kind: Kind, device: str, precision: str | None) -> Any:
    if model.preset.architecture == CHECKPOINT:
        from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow

        assert model.path is not None
        loaded = (load_checkpoint_fast if kind == "fast" else load_checkpoint_slow)(model.path, device)
        loaded.key = model.key  # the spec's identity names the library's vector space
        return loaded
    # open_clip (and torchvision under it) load only for the presets that need them, and through
    # engine.models.openclip first, which leaves out the parts of torchvision and timm Glimpse never uses.
    from engine.models.openclip import OpenClipFastEncoder

    if kind == "fast":
        return OpenClipFastEncoder.load(model, device, precision)
    from engine.models.coca import CocaSlowScorer

    return CocaSlowScorer.load(model, device)


def _parsed(spec: str, kind: Kind) -> ModelSpec:
    model = parse_model_spec(spec)
    if model.preset.kind == kind:
        return model
    if kind == "fast":
        raise UsageError(
            f"Model {model.preset.name} is a Slow re-ranker, not a Fast encoder: name a Fast preset such as "
            "vit-b-32, which brings its Slow pair with it."
        )
    pair = f": its Slow pair is {model.preset.slow}" if model.preset.slow else ""
    raise UsageError(f"Model {model.preset.name} is a Fast encoder, not a Slow re-ranker{pair}.")
