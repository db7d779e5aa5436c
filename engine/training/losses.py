"""The losses Glimpse's own models are trained with."""

from __future__ import annotations

import torch
from torch.nn import functional

from engine.models.caption_scorer import CaptionScorer


def info_nce(image_vectors: torch.Tensor, text_vectors: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i of each side matches row i of the other; every other row is a negative."""
    logits = scale * text_vectors @ image_vectors.T
    target = torch.arange(len(logits), device=logits.device)
    return (functional.cross_entropy(logits, target) + functional.cross_entropy(logits.T, target)) / 2


def caption_loss(
    model: CaptionScorer, images: torch.Tensor, tokens: torch.Tensor, image_of_row: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy per target token: the captioning loss the Slow model is trained with.

    Row r of `tokens` captions image `image_of_row[r]`: an image with several captions is encoded once.
    """
    logits = model.next_token_logits(model.encode_images(images)[image_of_row], tokens)
    return functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=0)
