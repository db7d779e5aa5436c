"""Query → text encoder → index → catalogue rows → results (one per file; a video by its best frame)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

    def accept(self, hit: FrameHit) -> bool:
        if self.kind and hit.kind != self.kind:
            return False
        if self.folder and not is_inside(hit.path, self.folder):
            return False
        return hit.path != self.exclude_path


class Searcher:
    """Nearest frames of a query vector, grouped into files, best first."""

    def __init__(
        self, catalogue: Catalogue, index: VectorIndex, frame_interval_ms: Callable[[], int]
    ) -> None:
        self.catalogue = catalogue
        self.index = index
        self.frame_interval_ms = frame_interval_ms

    def search_vector(
        self, query: np.ndarray, limit: int, filters: Filters = Filters()
    ) -> list[SearchResult]:
        """Up to `limit` files nearest to `query`, widening the ANN search until enough pass the filters."""
        if limit <= 0:
            return []
        count = max(limit * 8, 64)
        while True:
            keys, scores = self.index.search(query, count)
            hits = self.catalogue.frames(keys.tolist())
            best: dict[int, tuple[float, FrameHit]] = {}
            by_media: dict[int, list[tuple[int, float]]] = {}
            for key, score in zip(keys.tolist(), scores.tolist(), strict=True):
                hit = hits.get(key)
                if hit is None or not filters.accept(hit):
                    continue  # deleted since the index was saved, unavailable, or filtered out
                by_media.setdefault(hit.media_id, []).append((hit.timestamp_ms or 0, score))
                if hit.media_id not in best or score > best[hit.media_id][0]:
                    best[hit.media_id] = (score, hit)
            exhausted = count >= len(self.index)
            if len(best) >= limit or exhausted:
                break
            count *= 4
        ranked = sorted(best.values(), key=lambda item: -item[0])[:limit]
        results = []
        for rank, (score, hit) in enumerate(ranked, start=1):
            is_video = hit.kind == "video"
            results.append(
                SearchResult(
                    rank=rank,
                    path=to_path(hit.path),
                    kind=hit.kind,
                    score=score,
                    fast_score=score,
                    slow_score=None,
                    timestamp=(hit.timestamp_ms or 0) / 1000 if is_video else None,
                    media_id=hit.media_id,
                    frame_id=hit.frame_id,
                    segments=self._segments(by_media[hit.media_id], score) if is_video else [],
                )
            )
        return results

    def _segments(self, frames: list[tuple[int, float]], best: float) -> list[tuple[float, float]]:
        """Runs of neighbouring well-matching frames of one video, as (start, end) seconds."""
        gap = self.frame_interval_ms() * 1.5
        times = sorted(t for t, score in frames if score >= best - SEGMENT_MARGIN)
        segments: list[list[int]] = []
        for t in times:
            if segments and t - segments[-1][1] <= gap:
                segments[-1][1] = t
            else:
                segments.append([t, t])
        return [(start / 1000, end / 1000) for start, end in segments]
