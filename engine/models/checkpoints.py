"""Self-describing checkpoints of Glimpse's own models, and loading them behind FastEncoder / TokenSlowScorer.

A checkpoint is one `torch.save` file holding plain data only (it loads with `weights_only=True`):
`format`, `role` ("fast" or "slow"), `config` (the model's dataclass as a dict), `vocabulary` (the word list),
`state_dict` (weights, stored as float16 to keep the shipped files small; they compute in float32), and
`training` (what produced it: data set, steps, minutes, seed, losses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.errors import UsageError
from engine.models.base import FastEncoder
from engine.models.caption_scorer import CaptionScorer, SlowConfig
from engine.models.dual_encoder import DualEncoder, FastConfig
from engine.models.visual_trunk import TrunkConfig, image_tensor
from engine.models.vocabulary import Vocabulary

FORMAT = "glimpse-checkpoint-1"
#: What the models written before a config field existed did, by field: such a checkpoint loads as it was.
_LEGACY_FIELDS: dict[str, dict[str, Any]] = {"fast": {"image_tokens": "all"}, "slow": {"directions": 1}}
_LEGACY_TRUNK: dict[str, Any] = {"patch": 4}
Role = Literal["fast", "slow"]
#: Images scored by the Slow model per forward pass: bounds memory when a caller passes thousands at once.
SLOW_CHUNK = 256


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: its model (in eval mode, on the asked device), vocabulary and provenance."""

    role: Role
    model: nn.Module
    vocabulary: Vocabulary
    training: dict[str, Any]
    digest: str


def save_checkpoint(
    path: Path,
    role: Role,
    model: DualEncoder | CaptionScorer,
    vocabulary: Vocabulary,
    training: dict[str, Any],
) -> None:
    """Write `model` with everything needed to rebuild it; replaced atomically."""
    state = {name: (t.half() if t.is_floating_point() else t).cpu() for name, t in model.state_dict().items()}
    document = {
        "format": FORMAT,
        "role": role,
        "config": asdict(model.config),
        "vocabulary": list(vocabulary.tokens),
        "max_length": vocabulary.max_length,
        "state_dict": state,
        "training": training,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(document, temporary)
    temporary.replace(path)


def read_checkpoint(path: Path, role: Role, device: str = "cpu") -> Checkpoint:
    """Rebuild the model saved at `path`, which must be a `role` checkpoint."""
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise UsageError(f"Cannot read the checkpoint {path}: {error}.") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(
            f"{path} is not a Glimpse training checkpoint; open_clip weights are named with --model NAME@{path}."
        )
    if document["role"] != role:
        raise UsageError(f"{path} holds a {document['role']} model, not a {role} one.")
    # A field a checkpoint lacks was written before the field existed: it takes the value models had then.
    config = {**_LEGACY_FIELDS[role], **document["config"]}
    trunk = {**_LEGACY_TRUNK, **config["trunk"]}
    config["trunk"] = TrunkConfig(**{**trunk, "channels": tuple(trunk["channels"])})
    model: nn.Module = (
        DualEncoder(FastConfig(**config)) if role == "fast" else CaptionScorer(SlowConfig(**config))
    )
    model.load_state_dict(
        {name: t.float() if t.is_floating_point() else t for name, t in document["state_dict"].items()}
    )
    model.to(device).eval().requires_grad_(False)
    vocabulary = Vocabulary(tuple(document["vocabulary"]), document["max_length"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Checkpoint(role, model, vocabulary, dict(document["training"]), digest)


class CheckpointFastEncoder(FastEncoder):
    """A trained `DualEncoder` checkpoint behind the FastEncoder protocol."""

    def __init__(self, checkpoint: Checkpoint, device: str) -> None:
        assert isinstance(checkpoint.model, DualEncoder)
        self._model = checkpoint.model
        self._vocabulary = checkpoint.vocabulary
        # Two files with the same bytes give the same vectors: the digest names the vector space.
        self.key = f"glimpse-fast-{checkpoint.digest[:12]}"
        self.dim = self._model.config.embed_dim
        self.device = device
        self.image_size = self._model.config.trunk.image_size

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the model's input tensor (C, H, W); CPU only, thread-safe."""
        return image_tensor(image, self.image_size)

    def embed_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of prepared tensors (N, C, H, W) → (N, dim) float32, L2-normalised."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            return self._model.encode_images(batch.to(self.device)).float().cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            tokens = self._vocabulary.encode(texts).to(self.device)
            return self._model.encode_texts(tokens).float().cpu().numpy()

    def __repr__(self) -> str:
        return f"CheckpointFastEncoder(key={self.key!r}, dim={self.dim}, device={self.device!r})"


class CheckpointSlowScorer:
    """A trained `CaptionScorer` checkpoint behind the TokenSlowScorer protocol: log p(text | image)."""

    def __init__(self, checkpoint: Checkpoint, device: str) -> None:
        assert isinstance(checkpoint.model, CaptionScorer)
        self._model = checkpoint.model
        self._vocabulary = checkpoint.vocabulary
        self.key = f"glimpse-slow-{checkpoint.digest[:12]}"
        self.device = device
        self.image_size = self._model.config.trunk.image_size

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the trunk's input tensor (C, H, W); CPU only, thread-safe."""
        return image_tensor(image, self.image_size)

    def image_tokens(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Run the visual trunk → (N, tokens, width) visual tokens, on the scorer's device."""
        return self.image_tokens_prepared(torch.stack([self.prepare(image) for image in images]))

    def image_tokens_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        """Visual tokens of prepared images (N, C, H, W) → (N, tokens, width), in chunks of SLOW_CHUNK."""
        with torch.inference_mode():
            return torch.cat(
                [self._model.encode_images(chunk.to(self.device)) for chunk in batch.split(SLOW_CHUNK)]
            )

    def score_tokens(self, text: str, tokens: torch.Tensor) -> np.ndarray:
        """log p(text | image) for each image given its visual tokens → (N,) float32.

        The text is decoded against all candidates in one batched pass (in chunks of SLOW_CHUNK images).
        """
        if len(tokens) == 0:
            return np.zeros(0, np.float32)
        ids = self._vocabulary.encode([text]).to(self.device)
        with torch.inference_mode():
            scores = [
                self._model.score_candidates(chunk.to(self.device, torch.float32), ids).float().cpu()
                for chunk in tokens.split(SLOW_CHUNK)
            ]
        return torch.cat(scores).numpy()

    def score(self, text: str, images: Sequence[Image.Image]) -> np.ndarray:
        """log p(text | image) for each image → (N,) float32; higher is better."""
        if not images:
            return np.zeros(0, np.float32)
        return self.score_tokens(text, self.image_tokens(images))

    def scored_tokens(self, text: str) -> int:
        """How many tokens `score` sums for `text`: its words (as the vocabulary cuts them) and `<eos>`."""
        return len(self._vocabulary.ids(text)) - 1

    def __repr__(self) -> str:
        return f"CheckpointSlowScorer(key={self.key!r}, device={self.device!r})"


def load_checkpoint_fast(path: Path | str, device: str = "cpu") -> CheckpointFastEncoder:
    """The Fast encoder of a `glimpse train fast|distill` checkpoint, on `device` ("cpu" or "cuda")."""
    return CheckpointFastEncoder(read_checkpoint(Path(path), "fast", device), device)


def load_checkpoint_slow(path: Path | str, device: str = "cpu") -> CheckpointSlowScorer:
    """The Slow scorer of a `glimpse train slow` checkpoint, on `device` ("cpu" or "cuda")."""
    return CheckpointSlowScorer(read_checkpoint(Path(path), "slow", device), device)
