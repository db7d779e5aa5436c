"""Glimpse's own Fast model: an image encoder and a text encoder into one space (trained by engine/training)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional

from engine.models.visual_trunk import TrunkConfig, VisualTrunk


@dataclass(frozen=True)
class FastConfig:
    """Shape of the Fast model; saved in its checkpoint."""

    trunk: TrunkConfig
    vocab_size: int
    max_length: int
    embed_dim: int = 128
    heads: int = 4
    layers: int = 2
    feedforward: int = 384
    dropout: float = 0.0
    #: The visual tokens the image transformer reads: "coarse" (the coarse grid and the pooled token) or
    #: "all" (the fine grid too, as the first shapes models did: 4× the tokens, 2–3× the cost of a step,
    #: and no better a vector at the same number of steps; docs/evaluation.md).
    image_tokens: Literal["coarse", "all"] = "coarse"


def _encoder(width: int, config: FastConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        width,
        config.heads,
        config.feedforward,
        config.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)


class DualEncoder(nn.Module):
    """Images and texts → L2-normalised vectors; their dot product is the Fast score.

    Each side is a 2-layer transformer whose first token summarises its input: a learned [CLS] token over the
    visual trunk's tokens, the `<bos>` token over the words. Nothing crosses between the two sides, which is
    what lets a library embed every image once and answer a query with one text encoding.
    """

    def __init__(self, config: FastConfig) -> None:
        super().__init__()
        self.config = config
        width = config.trunk.width
        self.trunk = VisualTrunk(config.trunk)
        self.image_cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.image_encoder = _encoder(width, config)
        self.image_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, config.embed_dim))
        self.token_embedding = nn.Embedding(config.vocab_size, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.Parameter(torch.randn(config.max_length, width) * 0.02)
        self.text_encoder = _encoder(width, config)
        self.text_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, config.embed_dim))
        # CLIP's learned temperature, starting at 1/0.07.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, S, S) → (N, embed_dim), L2-normalised."""
        tokens = self.trunk(images)
        if self.config.image_tokens == "coarse":
            tokens = tokens[:, self.config.trunk.fine_side**2 :]
        tokens = torch.cat([self.image_cls.expand(len(tokens), -1, -1), tokens], dim=1)
        return functional.normalize(self.image_proj(self.image_encoder(tokens)[:, 0]), dim=-1)

    def encode_texts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L) from `Vocabulary.encode` → (N, embed_dim), L2-normalised."""
        hidden = self.token_embedding(tokens) + self.position_embedding[: tokens.shape[1]]
        hidden = self.text_encoder(hidden, src_key_padding_mask=tokens == 0)
        return functional.normalize(self.text_proj(hidden[:, 0]), dim=-1)

    def scale(self) -> torch.Tensor:
        """Inverse temperature of the similarity logits, capped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=100.0)
