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
    model: CaptionScorer,
    images: torch.Tensor,
    tokens: torch.Tensor,
    image_of_row: torch.Tensor,
    negatives_of_row: torch.Tensor | None = None,
    contrast: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy per target token: the captioning loss the Slow model is trained with.

    Row r of `tokens` captions image `image_of_row[r]`: an image with several captions is encoded once. A
    bi-directional model averages the loss of its two decoders. With `negatives_of_row` (R, K) (images of the
    batch that row r does not caption), `contrast` × the cross-entropy of each caption's own image among it
    and its K negatives, under the model's own score log p(text | image), is added: the captioning loss
    spends its gradient on every word alike, most of them predictable from the words before; this term
    spends it on the few words that tell an image from its hardest neighbour, which is what ranking needs.
    """
    visual = model.encode_images(images)
    loss, own = _caption_terms(model, visual[image_of_row], tokens)
    if negatives_of_row is None or contrast == 0:
        return loss
    negatives = negatives_of_row.shape[1]
    against = model.log_likelihood(
        visual[negatives_of_row.flatten()], tokens.repeat_interleave(negatives, dim=0)
    ).view(-1, negatives)
    scores = torch.cat([own.unsqueeze(1), against], dim=1)
    return loss + contrast * functional.cross_entropy(scores, torch.zeros_like(image_of_row))


def _caption_terms(
    model: CaptionScorer, visual: torch.Tensor, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean token cross-entropy, each row's log p(text | image)), from one decoding per direction."""
    directions = [(tokens, False)]
    if model.config.directions == 2:
        directions.append((reversed_captions(tokens), True))
    losses, scores = [], []
    for rows, backward in directions:
        log_probs = functional.log_softmax(model.next_token_logits(visual, rows, backward).float(), dim=-1)
        targets = rows[:, 1:]
        picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * (targets != 0)
        losses.append(-picked.sum() / (targets != 0).sum())
        scores.append(picked.sum(1))
    return sum(losses) / len(losses), sum(scores) / len(scores)
