"""The Slow model: a captioning transformer decoder that cross-attends to multi-scale visual tokens.

Its score for a text and an image is log p(text | image), the sum of the decoder's log-probabilities of the
text's tokens (and of `<eos>`) given the image, read left to right. The paper also reports a bi-directional
variant that adds a right-to-left decoder's likelihood; Glimpse scores one direction only: it halves the
cost per candidate, and on the shapes set the left-to-right score already separates a scene from its twin
(see docs/evaluation.md). Texts are compared on one image set at a time, so the language prior (how likely a
caption is a priori) shifts every candidate's score equally and does not change a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from engine.models.visual_trunk import TrunkConfig, VisualTrunk


@dataclass(frozen=True)
class SlowConfig:
    """Shape of the Slow model; saved in its checkpoint."""

    trunk: TrunkConfig
    vocab_size: int
    max_length: int
    heads: int = 4
    layers: int = 2
    feedforward: int = 384
    dropout: float = 0.1


class CaptionScorer(nn.Module):
    """Visual trunk + causal text decoder with cross-attention; scores log p(text | image)."""

    def __init__(self, config: SlowConfig) -> None:
        super().__init__()
        self.config = config
        width = config.trunk.width
        self.trunk = VisualTrunk(config.trunk)
        self.token_embedding = nn.Embedding(config.vocab_size, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.Parameter(torch.randn(config.max_length, width) * 0.02)
        layer = nn.TransformerDecoderLayer(
            width,
            config.heads,
            config.feedforward,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, config.layers)
        self.norm = nn.LayerNorm(width)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, S, S) → visual tokens (N, T, width): computed once per image, read by every text."""
        return self.trunk(images)

    def next_token_logits(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (N, L-1, vocab) of tokens[:, 1:] given tokens[:, :-1] and the visual tokens (N, T, width).

        Padding sits only at the end of a row, and the causal mask keeps it from reaching any earlier
        position, so a padded row scores exactly as it would alone.
        """
        inputs = tokens[:, :-1]
        length = inputs.shape[1]
        hidden = self.token_embedding(inputs) + self.position_embedding[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(
            length, device=tokens.device, dtype=hidden.dtype
        )
        hidden = self.decoder(hidden, visual, tgt_mask=mask, tgt_is_causal=True)
        # The output layer shares the input embedding's weights: fewer parameters, and it trains faster.
        return self.norm(hidden) @ self.token_embedding.weight.T

    def log_likelihood(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """log p(text | image) for each row: the sum of its non-padding target tokens' log-probabilities."""
        log_probs = functional.log_softmax(self.next_token_logits(visual, tokens).float(), dim=-1)
        targets = tokens[:, 1:]
        picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (picked * (targets != 0)).sum(dim=1)

    def score_candidates(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """One text (1, L) against K candidates' visual tokens (K, T, width) → (K,), in one batched pass."""
        return self.log_likelihood(visual, tokens.expand(visual.shape[0], -1))
