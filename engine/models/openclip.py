"""open_clip models: one factory for every preset (pretrained, random or a local file), and the Fast encoder."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import open_clip
import open_clip.factory
import torch
from open_clip.transformer import MultimodalTransformer
from PIL import Image

from engine.errors import ModelUnavailable
from engine.models import hub
from engine.models.presets import ARCHITECTURES, ModelSpec

#: Seed of every random initialisation, so `tiny-test` and `NAME@random` give the same vectors on every load.
RANDOM_SEED = 0


@dataclass(frozen=True)
class OpenClipModel:
    """An open_clip model in eval mode with its image preprocessing and its tokenizer."""

    model: torch.nn.Module
    preprocess: torch.nn.Module
    tokenizer: open_clip.SimpleTokenizer


def build(spec: ModelSpec, device: str) -> OpenClipModel:
    """Build the spec's open_clip model on `device`, fetching pretrained weights if need be; Fast or Slow alike."""
    preset = spec.preset
    _register_architecture(preset.architecture)
    if spec.source == "pretrained":
        weights = hub.weights_path(preset)
    elif spec.source == "file":
        weights = spec.path
    else:
        weights = None
    # A local file holds the same kind of weights as the preset's own, so it is preprocessed the same way.
    tag = open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained) if preset.pretrained else {}
    # open_clip loads weights over a random initialisation; seeding it inside fork_rng keeps `@random`
    # repeatable without disturbing anyone else's use of torch's global generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                preset.architecture,
                pretrained=str(weights) if weights is not None else None,
                device=device,
                force_quick_gelu=tag.get("quick_gelu", False),
                image_mean=tag.get("mean"),
                image_std=tag.get("std"),
                image_interpolation=tag.get("interpolation"),
                image_resize_mode=tag.get("resize_mode"),
            )
        except torch.OutOfMemoryError:
            raise
        # What torch.load, safetensors and open_clip's checks raise on a file that is not these weights.
        except (
            RuntimeError,
            OSError,
            ValueError,
            KeyError,
            AssertionError,
            pickle.UnpicklingError,
        ) as error:
            if weights is None:
                raise
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise ModelUnavailable(
                f"The weights file {weights} does not fit model {preset.name} "
                f"(open_clip {preset.architecture}): {reason}."
            ) from error
        if weights is None:
            _initialise_left_out(model)
    model.eval().requires_grad_(False)
    return OpenClipModel(model, preprocess, open_clip.get_tokenizer(preset.architecture))


def _initialise_left_out(model: torch.nn.Module) -> None:
    """Give random values to what open_clip leaves as raw `torch.empty` memory when it loads no weights.

    CoCa's decoder never runs its `init_parameters`, so its output projection (`text_projection`) holds whatever
    the allocator returned, often zeros: every caption then gets the same uniform likelihood, or NaNs. This is
    the initialisation that `init_parameters` means to give it.
    """
    for module in model.modules():
        if isinstance(module, MultimodalTransformer):
            torch.nn.init.normal_(module.text_projection, std=module.width**-0.5)


class OpenClipFastEncoder:
    """An open_clip dual encoder (CLIP) behind the FastEncoder protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: torch.nn.Module,
        tokenizer: open_clip.SimpleTokenizer,
        *,
        key: str,
        dim: int,
        device: str,
    ) -> None:
        self.key = key
        self.dim = dim
        self.device = device
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, spec: ModelSpec, device: str) -> OpenClipFastEncoder:
        """Build the spec's model on `device` ("cpu" or "cuda"), fetching pretrained weights if need be."""
        built = build(spec, device)
        dim = open_clip.get_model_config(spec.preset.architecture)["embed_dim"]
        return cls(built.model, built.preprocess, built.tokenizer, key=spec.key, dim=dim, device=device)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the model's input tensor (C, H, W); CPU only, thread-safe."""
        return self._preprocess(image)

    def embed_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of prepared tensors (N, C, H, W) → (N, dim) float32, L2-normalised."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            features = self._model.encode_image(batch.to(self.device, non_blocking=True))
            return _normalised(features)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed decoded RGB images → (N, dim) float32, L2-normalised."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_prepared(torch.stack([self.prepare(image) for image in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self._tokenizer(list(texts))
        with torch.inference_mode():
            return _normalised(self._model.encode_text(tokens.to(self.device)))

    def __repr__(self) -> str:
        return f"OpenClipFastEncoder(key={self.key!r}, dim={self.dim}, device={self.device!r})"


def _normalised(features: torch.Tensor) -> np.ndarray:
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy()


def _register_architecture(name: str) -> None:
    """open_clip builds models by config name; add Glimpse's own configs to its registry on first use."""
    if name in ARCHITECTURES and name not in open_clip.factory._MODEL_CONFIGS:
        open_clip.factory._MODEL_CONFIGS[name] = copy.deepcopy(ARCHITECTURES[name])
