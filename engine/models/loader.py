"""Loading models by spec string, once per process: a running app keeps its models in memory."""

from __future__ import annotations

import threading

import torch

from engine.errors import UsageError
from engine.models.base import FastEncoder, TokenSlowScorer
from engine.models.coca import CocaSlowScorer
from engine.models.openclip import OpenClipFastEncoder
from engine.models.presets import CHECKPOINT, Kind, ModelSpec, parse_model_spec

_fast: dict[tuple[str, str], FastEncoder] = {}
_slow: dict[tuple[str, str], TokenSlowScorer] = {}
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


def load_fast(spec: str, device: str = "auto") -> FastEncoder:
    """The Fast encoder named by `spec` (NAME, NAME@random or NAME@/path/to/weights), loaded once per process."""
    model = _parsed(spec, "fast")
    resolved = resolve_device(device)
    cache_key = (model.key, resolved)
    with _loading:
        encoder = _fast.get(cache_key)
        if encoder is None:
            if model.preset.architecture == CHECKPOINT:
                from engine.training.checkpoints import load_checkpoint_fast

                assert model.path is not None
                encoder = load_checkpoint_fast(model.path, resolved)
                encoder.key = model.key  # the spec's identity names the library's vector space
            else:
                encoder = OpenClipFastEncoder.load(model, resolved)
            _fast[cache_key] = encoder
    return encoder


def load_slow(spec: str, device: str = "auto") -> TokenSlowScorer:
    """The Slow scorer named by `spec` (e.g. coca-vit-b-32, coca-vit-b-32@random), loaded once per process.

    `presets.paired_slow` gives the Slow spec that goes with a Fast one.
    """
    model = _parsed(spec, "slow")
    resolved = resolve_device(device)
    cache_key = (model.key, resolved)
    with _loading:
        scorer = _slow.get(cache_key)
        if scorer is None:
            if model.preset.architecture == CHECKPOINT:
                from engine.training.checkpoints import load_checkpoint_slow

                assert model.path is not None
                scorer = load_checkpoint_slow(model.path, resolved)
                scorer.key = model.key
            else:
                scorer = CocaSlowScorer.load(model, resolved)
            _slow[cache_key] = scorer
    return scorer


def clear_cache() -> None:
    """Forget every loaded model (their memory is freed once nobody else holds them)."""
    with _loading:
        _fast.clear()
        _slow.clear()


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
