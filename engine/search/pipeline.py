"""The query pipeline: the whole way from a `SearchRequest` to the `SearchResults` a person sees.

    request → parse → query vector → candidates (vector index) → Slow re-ranking → relevance cutoff
            → sort → results with their files' details

`QueryPipeline.run` is the one entry point; the command line and the window both get their results from it
(through `Library.search` and `Library.similar`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engine.catalogue import Catalogue, FrameHit, VectorSpace
from engine.decoding import DecodeJob, DecodePool
from engine.errors import UsageError
from engine.models.base import FastEncoder
from engine.paths import display, to_path
from engine.results import MediaDetails, SearchResult, SearchResults
from engine.search.candidates import Candidate
from engine.search.cutoff import relevant_count
from engine.search.query import SearchRequest, SortOrder, parse
from engine.search.rerank import Reranker
from engine.search.vector import VectorRetriever
from engine.vector_index import VectorIndex

#: Neighbouring frames of one video whose scores are within this of the best merge into a segment.
SEGMENT_MARGIN = 0.02
#: A video that is not in the library is compared by the mean of its first few frames.
SIMILAR_VIDEO_FRAMES = 8


@dataclass(frozen=True)
class Searchable:
    """What a search reads: the library's catalogue, its current model's vectors and that model's encoder."""

    catalogue: Catalogue
    space: VectorSpace
    index: VectorIndex
    encoder: FastEncoder
    frame_interval_ms: int


class QueryPipeline:
    """Answers search requests over one library; see the module docstring for the stages."""

    def __init__(
        self,
        library: Searchable,
        *,
        reranker: Callable[[bool], Reranker | None],
        decoders: Callable[[], DecodePool],
        default_rerank: int,
    ) -> None:
        """`reranker(explicit)` gives the Slow re-ranker, built only when a search re-ranks (None: there is
        none; `explicit` says the person asked for re-ranking, so its absence is an error, not a notice)."""
        self.library = library
        self._reranker = reranker
        self._decoders = decoders
        self._default_rerank = default_rerank

    def run(self, request: SearchRequest) -> SearchResults:
        request.check()
        if request.similar_to is not None:
            vector, text = self._vector_of_file(request.similar_to), None
        else:
            query = parse(request.text)
            vector, text = self.library.encoder.embed_texts([query.visual])[0], query.visual
        k = self._rerank_depth(request) if text is not None else 0
        reranker = self._reranker(request.rerank is not None) if k else None
        retriever = VectorRetriever(self.library.catalogue, self.library.index)
        candidates = retriever.nearest_files(
            vector, max(request.limit, k if reranker else 0), request.filters()
        )
        if reranker is not None and text is not None:
            candidates = reranker.rerank(text, candidates, k)
        candidates = candidates[: request.limit]
        shown = relevant_count(candidates)
        return self._results(candidates[:shown], candidates[shown:], request.sort)

    def _rerank_depth(self, request: SearchRequest) -> int:
        return self._default_rerank if request.rerank is None else request.rerank

    def _vector_of_file(self, raw: bytes) -> np.ndarray:
        """A file's look: its stored vectors if it is in the library, else decoded and embedded now."""
        catalogue, space = self.library.catalogue, self.library.space
        media = catalogue.media_by_path(raw)
        if media is not None:
            frames = catalogue.frames_of_media(media.id)
            stored = catalogue.vectors_of([f for f, _ in frames], space.id, space.dim)
            if stored:
                return _unit(np.mean(list(stored.values()), axis=0))
        from engine.media.scanner import kind_of

        file_kind = kind_of(raw)
        if file_kind is None:
            raise UsageError(f"{display(raw)} is not a photo or video Glimpse can read")
        frames: list[np.ndarray] = []
        summary = self._decoders().decode(
            DecodeJob(raw, file_kind),
            lambda _ts, pixels: frames.append(pixels) or len(frames) < SIMILAR_VIDEO_FRAMES,
            threading.Event(),
        )
        if summary.error or not frames:
            raise UsageError(f"cannot read {display(raw)}: {summary.error}")
        from PIL import Image

        vectors = self.library.encoder.embed_images([Image.fromarray(f) for f in frames])
        return _unit(vectors.mean(axis=0))

    def _results(self, shown: list[Candidate], hidden: list[Candidate], sort: SortOrder) -> SearchResults:
        """Candidates as results with their files' details (one catalogue query), each group in `sort` order."""
        details = self.library.catalogue.details([c.media_id for c in shown + hidden])
        shown, hidden = (_sorted(group, details, sort) for group in (shown, hidden))
        results = [
            self._result(rank, candidate, details.get(candidate.media_id))
            for rank, candidate in enumerate(shown + hidden, start=1)
        ]
        return SearchResults(shown=results[: len(shown)], hidden=results[len(shown) :])

    def _result(self, rank: int, candidate: Candidate, details: MediaDetails | None) -> SearchResult:
        moment = candidate.moment
        is_video = candidate.kind == "video"
        return SearchResult(
            rank=rank,
            path=to_path(candidate.path),
            kind=candidate.kind,
            score=candidate.score,
            fast_score=candidate.fast_score,
            slow_score=candidate.slow_score,
            timestamp=(moment.timestamp_ms or 0) / 1000 if is_video else None,
            media_id=candidate.media_id,
            frame_id=moment.frame_id,
            segments=self._segments(candidate.frames, moment) if is_video else [],
            details=details,
        )

    def _segments(
        self, frames: tuple[tuple[FrameHit, float], ...], moment: FrameHit
    ) -> list[tuple[float, float]]:
        """Runs of neighbouring well-matching frames of one video, as (start, end) seconds."""
        gap = self.library.frame_interval_ms * 1.5
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


def _sorted(
    candidates: list[Candidate], details: dict[int, MediaDetails], sort: SortOrder
) -> list[Candidate]:
    if sort == "relevance":
        return candidates

    def when(candidate: Candidate) -> datetime:
        found = details.get(candidate.media_id)
        return found.when if found is not None else datetime.min

    # Stable: files of the same moment keep their relevance order.
    return sorted(candidates, key=when, reverse=sort == "newest")


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)
