"""The two small protocols every model hides behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image


@runtime_checkable
class FastEncoder(Protocol):
    """A dual encoder: images and texts embedded separately into one space."""

    #: Identifies the vector space: vectors of two different keys never mix.
    key: str
    #: Width of the embeddings.
    dim: int
    #: "cpu" or "cuda".
    device: str

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the model's input tensor (C, H, W); CPU only, thread-safe."""
        ...

    def embed_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of prepared tensors (N, C, H, W) → (N, dim) float32, L2-normalised."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed decoded RGB images → (N, dim) float32, L2-normalised."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_prepared(torch.stack([self.prepare(image) for image in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised."""
        ...


@runtime_checkable
class SlowScorer(Protocol):
    """A cross-attention model scoring how well a text describes each candidate image."""

    key: str
    device: str

    def score(self, text: str, images: Sequence[Image.Image]) -> np.ndarray:
        """log p(text | image) for each image → (N,) float32; higher is better."""
        ...

    def scored_tokens(self, text: str) -> int:
        """How many tokens `score` sums the log-probabilities of for `text` (its words and the end token):
        the fusion compares log-likelihoods per token, so that one weight means the same for any query."""
        ...


@runtime_checkable
class TokenSlowScorer(SlowScorer, Protocol):
    """A SlowScorer whose per-image work, the visual tokens, can be done once and kept (see TokenCache).

    `score(text, images)` equals `score_tokens(text, image_tokens(images))`, and `image_tokens(images)` equals
    `image_tokens_prepared(stack of prepare(image))`: the reranker prepares pictures on the CPU while the
    model works, and computes tokens only for the frames the cache misses.
    """

    #: Side of the square the image tower reads: decode pictures to at least this.
    image_size: int

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the image tower's input tensor (C, H, W); CPU only, thread-safe."""
        ...

    def image_tokens(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Run the image tower → (N, tokens, width) visual tokens, on the scorer's device."""
        ...

    def image_tokens_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        """Visual tokens of prepared images (N, C, H, W) → (N, tokens, width), on the scorer's device."""
        ...

    def score_tokens(self, text: str, tokens: torch.Tensor) -> np.ndarray:
        """log p(text | image) for each image given its visual tokens (N, tokens, width) → (N,) float32.

        `tokens` may be on any device and in any float type (a cache keeps them in float16).
        """
        ...
