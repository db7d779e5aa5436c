"""The Slow scorer over open_clip CoCa: log p(text | image) from its captioning decoder.

The score of a query for an image is the sum, over the query's tokens after `<start_of_text>` and including
`<end_of_text>`, of the decoder's log-probability of each token given the image's visual tokens and the tokens
before it; padding takes no part. It is not divided by the query's length: re-ranking compares one query across
K images, so the length and the language prior are the same for every candidate and the raw log-likelihood
already ranks them; a fusion with Fast scores should rescale it over the shortlist (it grows with the query).

One query over K candidates costs far less here than open_clip's own forward pass (`naive_log_likelihoods`,
kept as the reference), with the same numbers:

- the text is trimmed to its real length, and the text tower, which never sees the image, runs once and is
  broadcast over the K candidates;
- each cross-attention is computed in the image tokens' own space: the query is pulled back through the key
  projection (q·Wk x = (Wkᵀq)·x) and the attention-weighted image tokens are pushed through the value projection
  afterwards (the weights sum to one), so the (K × tokens × width) keys and values of twelve layers are never
  built. The key bias and the shared normalisation of each layer's LayerNorm fold in the same way. Per layer and
  candidate this costs heads × text length × tokens × width instead of tokens × width², about 7× less for a
  nine-token query on ViT-B-32 (8 heads, 255 tokens, width 512), and the gap is what made the naive pass slow;
- only the log-probabilities of the query's own tokens are kept: the target's logit minus the log-sum-exp of
  its row, never a full log-softmax tensor;
- candidates go in batches, under inference_mode, in float16 autocast on CUDA (the vocabulary in float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import open_clip
import torch
from open_clip.coca_model import CoCa
from open_clip.transformer import ResidualAttentionBlock
from PIL import Image
from torch.nn import functional

from engine.models.openclip import build
from engine.models.presets import ModelSpec

#: Bytes one batch of candidates' logits may take (candidates × query tokens × vocabulary × 4 bytes); a long
#: query decodes fewer candidates at a time: 64 for a 9-token query, 9 for a 76-token one (`score_batch`).
LOGITS_BUDGET_BYTES = 128 << 20
#: At most this many candidates decode together, however short the query.
SCORE_BATCH = 64
#: Images run through the image tower together.
IMAGE_BATCH = 32


class CocaSlowScorer:
    """An open_clip CoCa model behind the TokenSlowScorer protocol."""

    def __init__(
        self,
        model: CoCa,
        preprocess: torch.nn.Module,
        tokenizer: open_clip.SimpleTokenizer,
        *,
        key: str,
        device: str,
    ) -> None:
        self.key = key
        self.device = device
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, spec: ModelSpec, device: str) -> CocaSlowScorer:
        """Build the spec's CoCa on `device` ("cpu" or "cuda"), fetching pretrained weights if need be."""
        built = build(spec, device)
        if not isinstance(built.model, CoCa):
            raise TypeError(f"Preset {spec.preset.name} does not build a CoCa model")
        return cls(built.model, built.preprocess, built.tokenizer, key=spec.key, device=device)

    @property
    def token_shape(self) -> tuple[int, int]:
        """(tokens, width) of one image's visual tokens: (255, 512) for ViT-B-32, (255, 768) for ViT-L-14."""
        # The attentional pooler's first query becomes the pooled latent; the others are the tokens.
        queries = self._model.visual.attn_pool.query
        return queries.shape[0] - 1, queries.shape[1]

    @property
    def image_size(self) -> int:
        """Side of the square the image tower reads: decode photos to at least this."""
        return min(self._model.visual.image_size)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the image tower's input (C, H, W); CPU only, thread-safe."""
        return self._preprocess(image)

    def image_tokens(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Run the image tower → (N, tokens, width) visual tokens, on the scorer's device."""
        if not images:
            return torch.zeros((0, *self.token_shape), device=self.device)
        return self.image_tokens_prepared(torch.stack([self.prepare(image) for image in images]))

    def image_tokens_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        """Visual tokens of prepared images (N, C, H, W) → (N, tokens, width), on the scorer's device."""
        with torch.inference_mode(), self._autocast():
            return torch.cat(
                [
                    self._model._encode_image(chunk.to(self.device, non_blocking=True))[1].float()
                    for chunk in batch.split(IMAGE_BATCH)
                ]
            )

    def score_tokens(self, text: str, tokens: torch.Tensor) -> np.ndarray:
        """log p(text | image) for each image given its visual tokens (N, tokens, width) → (N,) float32.

        `tokens` may be on any device and in any float type (a cache keeps them in float16).
        """
        if len(tokens) == 0:
            return np.zeros(0, np.float32)
        ids = self._query_ids(text)
        batch = score_batch(len(ids) - 1, self._model.text_decoder.text_projection.shape[1])
        with torch.inference_mode(), self._autocast():
            # The text tower is causal and never sees the image: its states for the query's own tokens are
            # the same for every candidate and for any amount of padding after them.
            _, text_states = self._model.text(ids[None])
            # Position i predicts token i + 1: every token but the last is an input, every token but the first a target.
            queries, targets = text_states[:, :-1], ids[1:]
            scores = [
                self._decode(queries, targets, chunk.to(self.device, torch.float32, non_blocking=True))
                for chunk in tokens.split(batch)
            ]
        return torch.cat(scores).cpu().numpy()

    def score(self, text: str, images: Sequence[Image.Image]) -> np.ndarray:
        """log p(text | image) for each image → (N,) float32; higher is better."""
        return self.score_tokens(text, self.image_tokens(images))

    def scored_tokens(self, text: str) -> int:
        """How many tokens `score` sums for `text`: every one after `<start_of_text>`, `<end_of_text>` included."""
        return len(self._query_ids(text)) - 1

    def _query_ids(self, text: str) -> torch.Tensor:
        """The query's token ids from `<start_of_text>` to `<end_of_text>`, without padding."""
        ids = self._tokenizer([text])[0]
        # Up to the end token, not over the ids that differ from padding: id 0 pads, but it is also the BPE
        # piece "!" (as in "hello!(world)"), which counts.
        return ids[: _end_of_text(ids, self._tokenizer) + 1].to(self.device)

    def _decode(
        self, queries: torch.Tensor, targets: torch.Tensor, image_tokens: torch.Tensor
    ) -> torch.Tensor:
        """Sum of log p(target | image, earlier tokens) for each candidate → (N,) float32."""
        decoder = self._model.text_decoder
        count = len(image_tokens)
        x = queries.expand(count, -1, -1)
        # Each cross-attention normalises the image tokens with its own LayerNorm; the normalisation itself is
        # shared, done once here, and each layer's gain and bias are folded into its attention below.
        first = decoder.cross_attn[0].ln_1_kv
        normalised = functional.layer_norm(image_tokens, first.normalized_shape, eps=first.eps)
        for self_block, cross_block in zip(decoder.resblocks, decoder.cross_attn, strict=True):
            x = x + self_block.ls_1(_causal_self_attention(self_block, self_block.ln_1(x)))
            x = x + self_block.ls_2(self_block.mlp(self_block.ln_2(x)))
            attended = _cross_attention(cross_block, cross_block.ln_1(x), normalised)
            x = x + cross_block.ls_1(attended)
            x = x + cross_block.ls_2(cross_block.mlp(cross_block.ln_2(x)))
        # Half precision would blur the log-sum-exp over 49408 logits: the last projection runs in float32.
        with torch.autocast(x.device.type, enabled=False):
            logits = decoder.ln_final(x.float()) @ decoder.text_projection.float()
        picked = logits.gather(-1, targets.expand(count, -1)[..., None])[..., 0]
        return (picked - logits.logsumexp(-1)).sum(-1)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        # float16 rather than bfloat16: three more bits of mantissa, and open_clip's own mixed precision.
        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def __repr__(self) -> str:
        return f"CocaSlowScorer(key={self.key!r}, device={self.device!r})"


def score_batch(targets: int, vocabulary: int) -> int:
    """How many candidates decode together for a query of `targets` scored tokens: as many as the logits'
    byte budget allows (`LOGITS_BUDGET_BYTES`), at least 1 and at most `SCORE_BATCH`."""
    per_candidate = max(1, targets) * vocabulary * 4  # float32 logits
    return max(1, min(SCORE_BATCH, LOGITS_BUDGET_BYTES // per_candidate))


def _end_of_text(ids: torch.Tensor, tokenizer: open_clip.SimpleTokenizer) -> int:
    """Position of the first `<end_of_text>` in a tokenised text (the tokenizer always writes one)."""
    return int((ids == tokenizer.eot_token_id).nonzero()[0])


def _causal_self_attention(block: ResidualAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """`block`'s causal multi-head self-attention over x (N, L, width), as `block.attention(x, attn_mask=causal)`.

    nn.MultiheadAttention's general path transposes and copies its inputs several times per call; with no
    padding to mask, one fused scaled_dot_product_attention call does the same work.
    """
    attention = block.attn
    count, length, width = x.shape
    heads = attention.num_heads
    qkv = functional.linear(x, attention.in_proj_weight, attention.in_proj_bias)
    query, key, value = qkv.view(count, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    mixed = functional.scaled_dot_product_attention(query, key, value, is_causal=True)
    return attention.out_proj(mixed.transpose(1, 2).reshape(count, length, width))


def _cross_attention(
    block: ResidualAttentionBlock, x: torch.Tensor, normalised: torch.Tensor
) -> torch.Tensor:
    """`block`'s multi-head attention from text states x (N, L, width) to LayerNorm-ed image tokens (N, T, width).

    Equal to `block.attention(x, ln_1_kv(tokens), ln_1_kv(tokens))`, computed without keys or values. For head h
    with key and value weights Wk, Wv (head width × width), LayerNorm gain g and bias b:
    score(q, t) = q·(Wk (g∘t + b) + bk) = (g∘Wkᵀq)·t + terms without t, which softmax ignores; and since the
    attention weights a sum to one, Σ a_t (Wv (g∘t + b) + bv) = Wv (g∘Σ a_t t + b) + bv.
    """
    attention, layer_norm = block.attn, block.ln_1_kv
    count, length, width = x.shape
    heads = attention.num_heads
    head_width = width // heads
    query_weight, key_weight, value_weight = attention.in_proj_weight.chunk(3)
    query_bias, _, value_bias = attention.in_proj_bias.chunk(3)
    query = functional.linear(x, query_weight, query_bias).view(count, length, heads, head_width)
    query = query * head_width**-0.5
    # (N, heads × L, width): each head's query pulled back into the image tokens' space.
    pulled = (
        torch.einsum("blhd,hdw->bhlw", query, key_weight.view(heads, head_width, width)) * layer_norm.weight
    )
    weights = torch.bmm(pulled.reshape(count, heads * length, width), normalised.transpose(1, 2)).softmax(-1)
    mixed = torch.bmm(weights, normalised) * layer_norm.weight + layer_norm.bias
    values = torch.einsum(
        "bhlw,hdw->blhd", mixed.view(count, heads, length, width), value_weight.view(heads, head_width, width)
    )
    values = values.reshape(count, length, width) + value_bias
    return attention.out_proj(values)


def naive_log_likelihoods(scorer: CocaSlowScorer, text: str, tokens: torch.Tensor) -> np.ndarray:
    """The reference: log p(text | image) the way open_clip's own forward pass and caption loss compute it.

    The 76-token padded text, repeated for each candidate, through CoCa's full forward pass, a log-softmax over
    the whole vocabulary at every position, then the targets' log-probabilities summed over the real tokens,
    up to `<end_of_text>`. (open_clip's caption loss skips every target of id 0 instead: padding, but also the
    piece "!", whose term belongs to the text's likelihood.) Slow on purpose: the benchmark times it and the
    tests check `score_tokens` against it.
    """
    model = scorer._model
    with torch.inference_mode(), scorer._autocast():
        image_tokens = tokens.to(scorer.device, torch.float32)
        texts = scorer._tokenizer([text]).to(scorer.device).expand(len(image_tokens), -1)
        # The pooled image latent feeds only CoCa's contrastive head, not the decoder's logits.
        latent = torch.zeros(len(image_tokens), model.text.output_dim, device=scorer.device)
        output = model(None, texts, image_latent=latent, image_embs=image_tokens)
        log_probs = output["logits"].float().log_softmax(-1)
        labels = output["labels"]
        picked = log_probs.gather(-1, labels[..., None])[..., 0]
        real = torch.arange(labels.shape[1], device=labels.device) < _end_of_text(texts[0], scorer._tokenizer)
        return (picked * real).sum(-1).cpu().numpy()
