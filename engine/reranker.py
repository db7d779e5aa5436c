"""Re-ranking the Fast shortlist with the Slow model, and fusing the two scores.

Fusion: within one query's shortlist, a candidate's score is

    score = fast + FUSION_WEIGHT × (slow − best slow of the shortlist)

where `fast` is the Fast cosine similarity and `slow` the Slow log-likelihood log p(query | image). The order
is the order of slow + fast / FUSION_WEIGHT (the Slow model decides, the Fast score breaks near-ties), and the
score stays on the cosine scale: the Slow model's favourite keeps its Fast score, the others lose in proportion
to how much less likely the Slow model finds the query for them. That keeps scores comparable across queries,
which a relevance cutoff needs. The raw log-likelihood is not length-normalised: every candidate of one query
is scored on the same tokens.

The weight was calibrated on the validation split of the synthetic shapes set with the shipped `shapes` pair,
K = 10, 400 captions (`benchmarks/calibrate_fusion.py build/shapes/data --queries 400`, results in
benchmarks/results/fusion-shapes-val.json): R@1 is 43.8 for Fast alone, 77.2 for Slow alone (the order of the
Slow scores), and peaks at 78.0 for w = 0.05, where the Fast score breaks the Slow model's near-ties; w = 0.01
gives 73.0 and w = 0.1 gives 77.8.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from engine.catalogue import FrameHit
from engine.decoding import DecodeJob, DecodePool
from engine.models.base import SlowScorer, TokenSlowScorer
from engine.paths import display
from engine.searcher import Candidate
from engine.token_cache import TokenCache

log = logging.getLogger(__name__)

#: Cosine units per log-likelihood unit, calibrated on a validation split (see the module docstring).
FUSION_WEIGHT = 0.05
#: A video's best few frames (by Fast score) are re-scored; the best of them sets its score and moment.
FRAMES_PER_VIDEO = 3


class Reranker:
    """Re-scores candidates with a Slow scorer, decoding their frames in the crash-contained decode pool."""

    def __init__(self, scorer: SlowScorer, decoders: DecodePool, cache: TokenCache | None = None) -> None:
        self.scorer = scorer
        self.decoders = decoders
        self.cache = cache

    def rerank(self, text: str, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates re-scored and re-ordered; ones whose file can no longer be read keep Fast order, last."""
        frames = [
            (c, hit)
            for c in candidates
            for hit, _ in c.frames[: FRAMES_PER_VIDEO if c.kind == "video" else 1]
        ]
        if not frames:
            return list(candidates)
        scores = self._scores(text, [hit for _, hit in frames])
        best: dict[int, tuple[float, FrameHit]] = {}
        for (candidate, hit), slow in zip(frames, scores, strict=True):
            if np.isfinite(slow) and (candidate.media_id not in best or slow > best[candidate.media_id][0]):
                best[candidate.media_id] = (float(slow), hit)
        if not best:
            return list(candidates)
        top = max(slow for slow, _ in best.values())
        scored, unreadable = [], []
        for candidate in candidates:
            if candidate.media_id not in best:
                unreadable.append(candidate)
                continue
            slow, hit = best[candidate.media_id]
            fast = dict((f.frame_id, s) for f, s in candidate.frames)[hit.frame_id]
            candidate.slow_score, candidate.best = slow, hit
            candidate.score = fast + FUSION_WEIGHT * (slow - top)
            scored.append(candidate)
        scored.sort(key=lambda c: -c.score)
        return scored + unreadable

    def _scores(self, text: str, hits: list[FrameHit]) -> np.ndarray:
        """log p(text | frame) for each frame; -inf for a frame that could not be decoded."""
        scores = np.full(len(hits), -np.inf, dtype=np.float32)
        scorer, cache = self.scorer, self.cache
        if not (isinstance(scorer, TokenSlowScorer) and cache is not None):
            pictures = {hit.frame_id: self._picture(hit) for hit in hits}
            readable = [i for i, hit in enumerate(hits) if pictures[hit.frame_id] is not None]
            if readable:
                scores[readable] = scorer.score(text, [pictures[hits[i].frame_id] for i in readable])
            return scores
        # Decode only the frames whose visual tokens are not cached.
        pictures = {
            hit.frame_id: self._picture(hit) for hit in hits if cache.get(scorer.key, hit.frame_id) is None
        }
        readable = [i for i, hit in enumerate(hits) if pictures.get(hit.frame_id, True) is not None]
        by_id = {hit.frame_id: hit for hit in hits}

        def compute(ids: list[int]) -> torch.Tensor:
            # A frame evicted from the cache since the look-up above is decoded now.
            images = [pictures.get(i) or self._picture(by_id[i]) for i in ids]
            return scorer.image_tokens_prepared(torch.stack([scorer.prepare(image) for image in images]))

        if readable:
            tokens = cache.tokens(scorer.key, [hits[i].frame_id for i in readable], compute)
            scores[readable] = scorer.score_tokens(text, tokens)
        return scores

    def _picture(self, hit: FrameHit) -> Image.Image | None:
        """Decode a frame (a photo, or a video's frame at its moment); None where it cannot be read."""
        got: list[np.ndarray] = []
        job = DecodeJob(hit.path, hit.kind, at_ms=hit.timestamp_ms if hit.kind == "video" else None)
        summary = self.decoders.decode(job, lambda _ts, pixels: got.append(pixels) or True, threading.Event())
        if summary.error or not got:
            log.warning("cannot re-rank %s: %s", display(hit.path), summary.error)
            return None
        return Image.fromarray(got[0])
