"""The visual retriever: a query vector → its nearest frames in the ANN index → one candidate per file."""

from __future__ import annotations

import numpy as np

from engine.catalogue import Catalogue, FrameHit
from engine.search.candidates import Candidate
from engine.search.query import Filters
from engine.vector_index import VectorIndex

NO_FILTERS = Filters()


class VectorRetriever:
    """Nearest frames of a query vector, grouped into files, best first."""

    def __init__(self, catalogue: Catalogue, index: VectorIndex) -> None:
        self.catalogue = catalogue
        self.index = index

    def nearest_files(self, query: np.ndarray, limit: int, filters: Filters = NO_FILTERS) -> list[Candidate]:
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
            Candidate(media_id, frames[0][0].path, frames[0][0].kind, tuple(frames), score=frames[0][1])
            for media_id, frames in by_media.items()
        ]
        candidates.sort(key=lambda c: -c.score)
        return candidates[:limit]
