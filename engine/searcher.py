"""Query → text encoder → index → catalogue rows → results (one per file; a video by its best frame)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engine.catalogue import Catalogue, FrameHit
from engine.paths import is_inside, to_path
from engine.results import SearchResult
from engine.vector_index import VectorIndex

#: Neighbouring frames of one video whose scores are within this of the best merge into a segment.
SEGMENT_MARGIN = 0.02


@dataclass(frozen=True)
class Filters:
    kind: str | None = None  # "image" | "video"
    folder: bytes | None = None
    exclude_path: bytes | None = None
    #: Taken (else last changed) on or after / before this moment.
    after: datetime | None = None
    before: datetime | None = None

    def accept(self, hit: FrameHit) -> bool:
        if self.kind and hit.kind != self.kind:
            return False
        if self.folder and not is_inside(hit.path, self.folder):
            return False
        if self.after is not None and (hit.when is None or hit.when < self.after):
            return False
        if self.before is not None and (hit.when is None or hit.when >= self.before):
            return False
        return hit.path != self.exclude_path


@dataclass
class Candidate:
    """One file of a shortlist: its frames that matched, best first, and its scores so far."""

    media_id: int
    path: bytes
    kind: str
    frames: list[tuple[FrameHit, float]]  # (frame, Fast score), best first
    score: float
    slow_score: float | None = None
    best: FrameHit | None = None  # the frame that sets the score and the moment; the Fast best by default

    @property
    def fast_score(self) -> float:
        return self.frames[0][1]

    @property
    def moment(self) -> FrameHit:
        return self.best or self.frames[0][0]


class Searcher:
    """Nearest frames of a query vector, grouped into files, best first."""

    def __init__(self, catalogue: Catalogue, index: VectorIndex, frame_interval_ms: int) -> None:
        self.catalogue = catalogue
        self.index = index
        self.frame_interval_ms = frame_interval_ms

    def shortlist(self, query: np.ndarray, limit: int, filters: Filters = Filters()) -> list[Candidate]:
        """Up to `limit` files nearest to `query`, widening the ANN search until enough pass the filters."""
        if limit <= 0:
            return []
        count = max(limit * 8, 64)
        hits: dict[int, FrameHit] = {}
        looked_up: set[int] = set()
        while True:
            keys, scores = self.index.search(query, count)
            # A wider round starts with the narrower one's frames: look up only the new ones.
            fresh = [key for key in keys.tolist() if key not in looked_up]
            hits.update(self.catalogue.frames(fresh))
            looked_up.update(fresh)
            by_media: dict[int, list[tuple[FrameHit, float]]] = {}
            for key, score in zip(keys.tolist(), scores.tolist(), strict=True):
                hit = hits.get(key)
                if hit is None or not filters.accept(hit):
                    continue  # deleted since the index was saved, unavailable, or filtered out
                by_media.setdefault(hit.media_id, []).append((hit, score))  # keys come best first
            if len(by_media) >= limit or count >= len(self.index):
                break
            count *= 4
        candidates = [
            Candidate(media_id, frames[0][0].path, frames[0][0].kind, frames, score=frames[0][1])
            for media_id, frames in by_media.items()
        ]
        candidates.sort(key=lambda c: -c.score)
        return candidates[:limit]

    def results(self, candidates: list[Candidate]) -> list[SearchResult]:
        """The user-facing results of candidates, in the order given."""
        results = []
        for rank, candidate in enumerate(candidates, start=1):
            moment = candidate.moment
            is_video = candidate.kind == "video"
            results.append(
                SearchResult(
                    rank=rank,
                    path=to_path(candidate.path),
                    kind=candidate.kind,
                    score=candidate.score,
                    fast_score=dict((f.frame_id, s) for f, s in candidate.frames)[moment.frame_id],
                    slow_score=candidate.slow_score,
                    timestamp=(moment.timestamp_ms or 0) / 1000 if is_video else None,
                    media_id=candidate.media_id,
                    frame_id=moment.frame_id,
                    segments=self._segments(candidate.frames, moment) if is_video else [],
                )
            )
        return results

    def _segments(self, frames: list[tuple[FrameHit, float]], moment: FrameHit) -> list[tuple[float, float]]:
        """Runs of neighbouring well-matching frames of one video, as (start, end) seconds."""
        gap = self.frame_interval_ms * 1.5
        best = frames[0][1]
        times = sorted(
            {f.timestamp_ms or 0 for f, score in frames if score >= best - SEGMENT_MARGIN}
            | {moment.timestamp_ms or 0}
        )
        segments: list[list[int]] = []
        for t in times:
            if segments and t - segments[-1][1] <= gap:
                segments[-1][1] = t
            else:
                segments.append([t, t])
        return [(start / 1000, end / 1000) for start, end in segments]
