"""The losses Glimpse's own models are trained with."""

from __future__ import annotations

import torch
from torch.nn import functional

from engine.models.caption_scorer import CaptionScorer, reversed_captions


def info_nce(
    image_vectors: torch.Tensor,
    text_vectors: torch.Tensor,
    scale: torch.Tensor,
    image_of_text: torch.Tensor | None = None,
    text_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over a batch; every pair that is not a caption and its own image is a negative.

    Text t captions image `image_of_text[t]` (default: text i captions image i). Text → image is the usual
    cross-entropy; image → text, when an image has several captions in the batch, is the mean over its own
    captions of their log-probability among all the batch's texts (each caption counts, none is the "right" one).
    `text_weights` (one per text, default all 1) weigh each pair's share of both terms.
    """
    logits = scale * text_vectors @ image_vectors.T
    if image_of_text is None:
        image_of_text = torch.arange(len(logits), device=logits.device)
    if text_weights is None:
        text_weights = torch.ones(len(logits), device=logits.device)
    text_to_image = (functional.cross_entropy(logits, image_of_text, reduction="none") * text_weights).sum()
    text_to_image = text_to_image / text_weights.sum().clamp(min=1e-6)
    own = image_of_text.unsqueeze(0) == torch.arange(len(image_vectors), device=logits.device).unsqueeze(1)
    own = own * text_weights.unsqueeze(0)
    captioned = own.sum(1) > 0
    log_probs = functional.log_softmax(logits.T[captioned], dim=1)
    own = own[captioned]
    image_to_text = -((log_probs * own).sum(1) / own.sum(1)).mean()
    return (text_to_image + image_to_text) / 2


def caption_loss(
    model: CaptionScorer, images: torch.Tensor, tokens: torch.Tensor, image_of_row: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy per target token: the captioning loss the Slow model is trained with.

    Row r of `tokens` captions image `image_of_row[r]`: an image with several captions is encoded once. A
    bi-directional model averages the loss of its two decoders.
    """
    visual = model.encode_images(images)[image_of_row]
    loss = _token_cross_entropy(model.next_token_logits(visual, tokens), tokens)
    if model.config.directions == 2:
        reverse = reversed_captions(tokens)
        loss = (loss + _token_cross_entropy(model.next_token_logits(visual, reverse, True), reverse)) / 2
    return loss


def _token_cross_entropy(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=0)
