"""The Slow model: a captioning transformer decoder that cross-attends to multi-scale visual tokens.

Its score for a text and an image is log p(text | image), the sum of the decoder's log-probabilities of the
text's tokens (and of `<eos>`) given the image, read left to right. The paper's bi-directional variant
(`SlowConfig.directions = 2`) adds a right-to-left decoder over the same visual tokens and scores the mean of
the two directions' log-likelihoods: each reads a word with the context the other lacks, for twice the
decoding cost per candidate. Texts are compared on one image set at a time, so the language prior (how
likely a caption is a priori) shifts every candidate's score equally and does not change a ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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
    dropout: float = 0.0
    #: 1: a left-to-right decoder; 2: a right-to-left one beside it (the score is the mean of the two).
    directions: int = 1


@dataclass(frozen=True)
class Generation:
    """How the decoder writes captions for an image."""

    #: "greedy" (one caption, the likeliest word at each step), "beam" (the `count` best of a beam search of
    #: `beams`) or "sample" (`count` captions drawn word by word at `temperature`, from the `top_k` likeliest).
    strategy: Literal["greedy", "beam", "sample"] = "sample"
    count: int = 5
    beams: int = 8
    temperature: float = 1.0
    #: Sample only among this many likeliest words; 0: among all of them.
    top_k: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Written:
    """A caption the decoder wrote: its token ids (no `<bos>`, no `<eos>`) and its log p(text | image)."""

    ids: tuple[int, ...]
    log_likelihood: float


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
        self.decoder = self._decoder(config)
        self.norm = nn.LayerNorm(width)
        if config.directions == 2:
            # The right-to-left reader has its own layers and positions; words and the output layer are shared.
            self.backward_position_embedding = nn.Parameter(torch.randn(config.max_length, width) * 0.02)
            self.backward_decoder = self._decoder(config)
            self.backward_norm = nn.LayerNorm(width)

    @staticmethod
    def _decoder(config: SlowConfig) -> nn.TransformerDecoder:
        layer = nn.TransformerDecoderLayer(
            config.trunk.width,
            config.heads,
            config.feedforward,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        return nn.TransformerDecoder(layer, config.layers)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, S, S) → visual tokens (N, T, width): computed once per image, read by every text."""
        return self.trunk(images)

    def next_token_logits(
        self, visual: torch.Tensor, tokens: torch.Tensor, backward: bool = False
    ) -> torch.Tensor:
        """Logits (N, L-1, vocab) of tokens[:, 1:] given tokens[:, :-1] and the visual tokens (N, T, width).

        Padding sits only at the end of a row, and the causal mask keeps it from reaching any earlier
        position, so a padded row scores exactly as it would alone. `backward`: the right-to-left decoder,
        which reads `reversed_captions(tokens)`.
        """
        return self.logits_after(visual, tokens[:, :-1], backward)

    def logits_after(
        self, visual: torch.Tensor, inputs: torch.Tensor, backward: bool = False
    ) -> torch.Tensor:
        """Logits (N, L, vocab) of the token that follows each prefix inputs[:, : i + 1]."""
        length = inputs.shape[1]
        positions = self.backward_position_embedding if backward else self.position_embedding
        decoder, norm = (self.backward_decoder, self.backward_norm) if backward else (self.decoder, self.norm)
        hidden = self.token_embedding(inputs) + positions[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(
            length, device=inputs.device, dtype=hidden.dtype
        )
        hidden = decoder(hidden, visual, tgt_mask=mask, tgt_is_causal=True)
        # The output layer shares the input embedding's weights: fewer parameters, and it trains faster.
        return norm(hidden) @ self.token_embedding.weight.T

    def log_likelihood(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """log p(text | image) for each row: the sum of its non-padding target tokens' log-probabilities.

        With two directions, the mean of the left-to-right and the right-to-left sums.
        """
        score = self._directed_log_likelihood(visual, tokens, backward=False)
        if self.config.directions == 2:
            reverse = self._directed_log_likelihood(visual, reversed_captions(tokens), backward=True)
            score = (score + reverse) / 2
        return score

    def _directed_log_likelihood(
        self, visual: torch.Tensor, tokens: torch.Tensor, backward: bool
    ) -> torch.Tensor:
        log_probs = functional.log_softmax(self.next_token_logits(visual, tokens, backward).float(), dim=-1)
        targets = tokens[:, 1:]
        picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (picked * (targets != 0)).sum(dim=1)

    def score_candidates(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """One text (1, L) against K candidates' visual tokens (K, T, width) → (K,), in one batched pass."""
        return self.log_likelihood(visual, tokens.expand(visual.shape[0], -1))

    @torch.inference_mode()
    def generate(
        self, visual: torch.Tensor, bos: int, eos: int, banned: Sequence[int], options: Generation
    ) -> list[list[Written]]:
        """Captions for each image given its visual tokens (N, T, width) → N lists of `Written`, likeliest first.

        `banned` ids (padding, `<bos>`, `<unk>`) are never written. A caption is at most the model's
        `max_length` tokens with `<bos>` and `<eos>`. Sampled captions may repeat; beams never do.
        """
        if options.strategy == "beam":
            return self._beam_search(visual, bos, eos, banned, options)
        count = 1 if options.strategy == "greedy" else options.count
        rows = visual.repeat_interleave(count, dim=0)
        generator = torch.Generator(device=visual.device).manual_seed(options.seed)
        sequence = torch.full((len(rows), 1), bos, dtype=torch.long, device=visual.device)
        total = torch.zeros(len(rows), device=visual.device)
        done = torch.zeros(len(rows), dtype=torch.bool, device=visual.device)
        for _ in range(self.config.max_length - 1):
            log_probs = self._next_log_probs(rows, sequence, eos, banned)
            if options.strategy == "greedy":
                chosen = log_probs.argmax(dim=1)
            else:
                logits = log_probs / options.temperature
                if options.top_k:
                    floor = logits.topk(min(options.top_k, logits.shape[1]), dim=1).values[:, -1:]
                    logits = logits.masked_fill(logits < floor, float("-inf"))
                chosen = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
            chosen = chosen.masked_fill(done, 0)
            # The true log-likelihood (temperature 1) of what was written, whatever the sampling temperature.
            total += log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0)
            sequence = torch.cat([sequence, chosen.unsqueeze(1)], dim=1)
            done |= chosen == eos
            if bool(done.all()):
                break
        written = [
            Written(tuple(t for t in row[1:] if t not in (0, eos)), float(score))
            for row, score in zip(sequence.tolist(), total.tolist(), strict=True)
        ]
        per_image = [written[i * count : (i + 1) * count] for i in range(len(visual))]
        return [sorted(captions, key=lambda w: -w.log_likelihood) for captions in per_image]

    def _next_log_probs(
        self, visual: torch.Tensor, sequence: torch.Tensor, eos: int, banned: Sequence[int]
    ) -> torch.Tensor:
        """log p(next token | prefix, image) for each row, with the ids that may not be written at -inf.

        The log-probabilities are the model's own (normalised over the whole vocabulary, as in `log_likelihood`),
        so what a caption accumulates is its score; banned ids, and every id but `<eos>` at the length cap, are
        then masked out without renormalising.
        """
        log_probs = functional.log_softmax(self.logits_after(visual, sequence)[:, -1].float(), dim=-1)
        log_probs[:, list(banned)] = float("-inf")
        if sequence.shape[1] == self.config.max_length - 1:
            keep = log_probs[:, eos].clone()
            log_probs.fill_(float("-inf"))
            log_probs[:, eos] = keep
        return log_probs

    def _beam_search(
        self, visual: torch.Tensor, bos: int, eos: int, banned: Sequence[int], options: Generation
    ) -> list[list[Written]]:
        """The `count` likeliest finished captions of a beam search of width `beams`, per image."""
        width = max(options.beams, options.count)
        images = len(visual)
        rows = visual.repeat_interleave(width, dim=0)
        sequence = torch.full((images * width, 1), bos, dtype=torch.long, device=visual.device)
        # Only the first beam of each image is live at the start: the others would repeat it.
        scores = torch.full((images, width), float("-inf"), device=visual.device)
        scores[:, 0] = 0.0
        finished: list[list[Written]] = [[] for _ in range(images)]
        for _ in range(self.config.max_length - 1):
            log_probs = self._next_log_probs(rows, sequence, eos, banned)
            vocab = log_probs.shape[1]
            total = (scores.view(-1, 1) + log_probs).view(images, width * vocab)
            best, index = total.topk(2 * width, dim=1)
            next_rows, next_tokens, next_scores = [], [], []
            for image in range(images):
                kept = 0
                for score, flat in zip(best[image].tolist(), index[image].tolist(), strict=True):
                    beam, token = divmod(flat, vocab)
                    row = image * width + beam
                    if score == float("-inf"):
                        break
                    if token == eos:
                        if len(finished[image]) < width:
                            ids = tuple(sequence[row, 1:].tolist())
                            finished[image].append(Written(ids, score))
                        continue
                    next_rows.append(row)
                    next_tokens.append(token)
                    next_scores.append(score)
                    kept += 1
                    if kept == width:
                        break
                # Keep the batch rectangular: an image with fewer live beams pads with dead ones.
                for _ in range(width - kept):
                    next_rows.append(image * width)
                    next_tokens.append(eos)
                    next_scores.append(float("-inf"))
            picked = torch.tensor(next_rows, device=visual.device)
            sequence = torch.cat(
                [sequence[picked], torch.tensor(next_tokens, device=visual.device).unsqueeze(1)], dim=1
            )
            scores = torch.tensor(next_scores, device=visual.device).view(images, width)
            # Scores only fall as captions grow: an image is done once no live beam can beat its count-th best.
            best_live = scores.max(dim=1).values.tolist()
            if all(
                len(f) >= options.count and live <= sorted(w.log_likelihood for w in f)[-options.count]
                for f, live in zip(finished, best_live, strict=True)
            ):
                break
        return [sorted(f, key=lambda w: -w.log_likelihood)[: options.count] for f in finished]


def reversed_captions(tokens: torch.Tensor) -> torch.Tensor:
    """`<bos>` w1 … wn `<eos>` (right-padded rows) → `<bos>` wn … w1 `<eos>`, the right-to-left decoder's input."""
    positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
    lengths = (tokens != 0).sum(dim=1, keepdim=True)
    inside = (positions >= 1) & (positions <= lengths - 2)
    return tokens.gather(1, torch.where(inside, lengths - 1 - positions, positions))
