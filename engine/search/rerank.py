"""Re-ranking: the Slow model re-scores the head of the Fast shortlist, and the two scores are fused.

Only the first K candidates are re-scored (a video on its best few frames by Fast score; the best of them by Slow
score sets its score and moment). The re-scored head is sorted by the fused score (engine/search/fusion.py);
candidates whose file can no longer be read keep their Fast order after it; the rest of the shortlist follows in
Fast order, scores capped so that the order and the scores agree.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from engine.catalogue import FrameHit
from engine.decoding import DecodeJob, DecodePool
from engine.models.base import SlowScorer, TokenSlowScorer
from engine.paths import display
from engine.search.candidates import Candidate
from engine.search.fusion import DEFAULT_FUSION_WEIGHT, fuse
from engine.token_cache import TokenCache

log = logging.getLogger(__name__)

#: A video's best few frames (by Fast score) are re-scored; the best of them sets its score and moment.
FRAMES_PER_VIDEO = 3


class Reranker:
    """Re-scores candidates with a Slow scorer, decoding their frames in the crash-contained decode pool."""

    def __init__(
        self,
        scorer: SlowScorer,
        decoders: DecodePool,
        cache: TokenCache | None = None,
        weight: float = DEFAULT_FUSION_WEIGHT,
    ) -> None:
        """`weight`: the fusion's, cosine units per nat per token (engine/search/fusion.py)."""
        self.scorer = scorer
        self.decoders = decoders
        self.cache = cache
        self.weight = weight

    def rerank(self, text: str, candidates: Sequence[Candidate], k: int) -> list[Candidate]:
        """The shortlist with its first `k` re-scored and re-ordered, and the rest after them."""
        head, tail = list(candidates[:k]), list(candidates[k:])
        rescored, unreadable = self._rescore(text, head)
        rescored.sort(key=lambda c: -c.score)
        return rescored + _capped(unreadable + tail, min((c.score for c in rescored), default=None))

    def _rescore(self, text: str, head: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
        """(re-scored candidates, candidates none of whose frames could be read)."""
        frames = [(c, hit) for c in head for hit in _frames_to_rescore(c)]
        if not frames:
            return [], head
        scores = self._scores(text, [hit for _, hit in frames])
        best: dict[int, tuple[float, FrameHit]] = {}
        for (candidate, hit), slow in zip(frames, scores, strict=True):
            if np.isfinite(slow) and (candidate.media_id not in best or slow > best[candidate.media_id][0]):
                best[candidate.media_id] = (float(slow), hit)
        readable = [dataclasses.replace(c, best=best[c.media_id][1]) for c in head if c.media_id in best]
        unreadable = [c for c in head if c.media_id not in best]
        if not readable:
            return [], unreadable
        slow_scores = [best[c.media_id][0] for c in readable]
        tokens = self.scorer.scored_tokens(text)
        fused = fuse([c.fast_score for c in readable], slow_scores, tokens, self.weight)
        rescored = [
            dataclasses.replace(c, score=score, slow_score=slow)
            for c, score, slow in zip(readable, fused, slow_scores, strict=True)
        ]
        return rescored, unreadable

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
        job = DecodeJob(hit.path, hit.kind, at_ms=hit.timestamp_ms if hit.kind == "video" else None)
        pixels, error = self.decoders.first_picture(job)
        if pixels is None:
            log.warning("cannot re-rank %s: %s", display(hit.path), error)
            return None
        return Image.fromarray(pixels)


def _frames_to_rescore(candidate: Candidate) -> list[FrameHit]:
    """A photo's frame; a video's moment when an earlier stage chose it (where its words were read), else its
    best few frames by Fast score."""
    if candidate.best is not None:
        return [candidate.best]
    return [hit for hit, _ in candidate.frames[: FRAMES_PER_VIDEO if candidate.kind == "video" else 1]]


def _capped(tail: list[Candidate], ceiling: float | None) -> list[Candidate]:
    """The candidates past the re-ranked head, in Fast order, their scores capped so that they never rise."""
    capped = []
    for candidate in tail:
        if ceiling is not None and candidate.score > ceiling:
            candidate = dataclasses.replace(candidate, score=ceiling)
        capped.append(candidate)
        ceiling = candidate.score
    return capped
