"""The query pipeline: the whole way from a `SearchRequest` to the `SearchResults` a person sees.

    request → parse (visual description, words to read, places, dates)
            → the files the places and dates allow (catalogue)
            → candidates: nearest frames to the visual description (vector index), files whose text holds the
              words (full-text index), or, with neither, every file allowed, newest first
            → fusion (a file's share of the words found written in it ranks it first)
            → Slow re-ranking of the visual description → relevance cutoff → sort
            → results with their files' details, place, date and the text that matched

`QueryPipeline.run` is the one entry point; the command line and the window both get their results from it
(through `Library.search` and `Library.similar`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.catalogue import Catalogue, FrameHit, VectorSpace
from engine.decoding import DecodeJob, DecodePool
from engine.errors import UsageError
from engine.models.base import FastEncoder
from engine.paths import display, to_path
from engine.results import MediaDetails, QueryPart, SearchResult, SearchResults
from engine.search.candidates import Candidate
from engine.search.cutoff import relevant_count
from engine.search.fusion import total
from engine.search.query import Filters, Query, SearchRequest, SortOrder, parse
from engine.search.rerank import Reranker
from engine.search.text import TextMatch, TextRetriever, spans_of
from engine.search.vector import VectorRetriever
from engine.vector_index import VectorIndex

#: Neighbouring frames of one video whose scores are within this of the best merge into a segment.
SEGMENT_MARGIN = 0.02
#: A video that is not in the library is compared by the mean of its first few frames.
SIMILAR_VIDEO_FRAMES = 8
#: When a place or a date narrows the search to this many files or fewer, their frames are scored exactly
#: (vectors fetched from the index) instead of asking the graph for neighbours and discarding most of them.
EXACT_WITHIN_FILES = 20_000


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
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        """`reranker(explicit)` gives the Slow re-ranker, built only when a search re-ranks (None: there is
        none; `explicit` says the person asked for re-ranking, so its absence is an error, not a notice)."""
        self.library = library
        self._reranker = reranker
        self._decoders = decoders
        self._default_rerank = default_rerank
        self._today = today

    def run(self, request: SearchRequest) -> SearchResults:
        request.check()
        catalogue = self.library.catalogue
        if request.similar_to is not None:
            query, vector = Query(text="", visual=""), self._vector_of_file(request.similar_to)
        else:
            known = catalogue.places()
            query = parse(request.text, today=self._today(), places=known.values())
            vector = self.library.encoder.embed_texts([query.visual])[0] if query.visual else None
        filters = self._filters(request, query)
        candidates = self._candidates(request, query, vector, filters)
        if query.visual:
            k = self._default_rerank if request.rerank is None else request.rerank
            reranker = self._reranker(request.rerank is not None) if k else None
            if reranker is not None:
                candidates = sorted(reranker.rerank(query.visual, candidates, k), key=lambda c: -total(c))
        candidates = candidates[: request.limit]
        shown = len(candidates) if vector is None else relevant_count(candidates)
        sort = request.sort
        if sort == "relevance" and vector is None and not query.read_words:
            sort = "newest"  # nothing to rank by: a place or a date alone lists every match, newest first
        return self._results(query, candidates[:shown], candidates[shown:], sort)

    # what the query allows -------------------------------------------------------------------------------

    def _filters(self, request: SearchRequest, query: Query) -> Filters:
        """The request's filters, narrowed to the files at the query's places and on its dates."""
        filters = request.filters()
        if not query.places and not query.dates:
            return filters
        catalogue = self.library.catalogue
        place_ids = None
        if query.places:
            ids_of = {place: place_id for place_id, place in catalogue.places().items()}
            place_ids = {ids_of[p] for found in query.places for p in found.places if p in ids_of}
        days = None
        if query.dates:
            span = catalogue.date_span()
            first, last = (span[0].year, span[1].year) if span else (self._today().year,) * 2
            days = [(o.start, o.end) for found in query.dates for o in found.occurrences(first, last)]
        allowed = catalogue.media_matching(place_ids=place_ids, days=days)
        return dataclasses.replace(filters, media_ids=frozenset(allowed))

    # candidates ----------------------------------------------------------------------------------------

    def _candidates(
        self, request: SearchRequest, query: Query, vector: np.ndarray | None, filters: Filters
    ) -> list[Candidate]:
        """The files the query may mean, best first by fused score."""
        catalogue = self.library.catalogue
        wanted = max(request.limit, self._default_rerank if request.rerank is None else request.rerank)
        by_media: dict[int, Candidate] = {}
        if vector is not None:
            by_media = {c.media_id: c for c in self._nearest(vector, wanted, filters)}
        matches: dict[int, TextMatch] = {}
        if query.read_words:
            matches = TextRetriever(catalogue).find(query.read_words, filters.media_ids)
        # Files found by their words but not by their looks: scored on their looks exactly, to rank among equals.
        missing = [m for m in matches if m not in by_media]
        if vector is None and not query.read_words:
            missing = self._newest(request, filters, wanted)
        if missing:
            frames = [hit for hit in catalogue.frames_of(missing).values() if filters.accept(hit)]
            by_media |= {c.media_id: c for c in self._scored(vector, frames)}
        candidates = []
        for media_id, candidate in by_media.items():
            match = matches.get(media_id)
            if match is not None:
                candidate = dataclasses.replace(candidate, text=match, best=_frame_at(candidate, match))
            elif query.read_words and vector is None:
                continue  # only words were asked for, and this file does not hold them
            candidates.append(candidate)
        candidates.sort(key=lambda c: -total(c))
        return candidates

    def _nearest(self, vector: np.ndarray, wanted: int, filters: Filters) -> list[Candidate]:
        if filters.media_ids is not None and len(filters.media_ids) <= EXACT_WITHIN_FILES:
            frames = [
                h
                for h in self.library.catalogue.frames_of(list(filters.media_ids)).values()
                if filters.accept(h)
            ]
            return self._scored(vector, frames)[:wanted]
        return VectorRetriever(self.library.catalogue, self.library.index).nearest_files(
            vector, wanted, filters
        )

    def _scored(self, vector: np.ndarray | None, frames: list[FrameHit]) -> list[Candidate]:
        """Candidates of these frames' files, each frame scored exactly against `vector` (0 with none)."""
        by_id = {hit.frame_id: hit for hit in frames}
        if vector is None:
            scored = [(hit, 0.0) for hit in frames]
        else:
            keys, scores = self.library.index.score(
                vector, np.fromiter(by_id, dtype=np.uint64, count=len(by_id))
            )
            scored = [(by_id[int(k)], float(s)) for k, s in zip(keys.tolist(), scores.tolist(), strict=True)]
        grouped: dict[int, list[tuple[FrameHit, float]]] = {}
        for hit, score in scored:
            grouped.setdefault(hit.media_id, []).append((hit, score))  # best first
        candidates = [
            Candidate(media_id, frames[0][0].path, frames[0][0].kind, tuple(frames), score=frames[0][1])
            for media_id, frames in grouped.items()
        ]
        candidates.sort(key=lambda c: -c.score)
        return candidates

    def _newest(self, request: SearchRequest, filters: Filters, wanted: int) -> list[int]:
        """With nothing to rank by, the files allowed, newest (or oldest) first."""
        if filters.media_ids is not None:
            return list(filters.media_ids)
        return self.library.catalogue.media_matching(limit=wanted * 4, newest_first=request.sort != "oldest")

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

    # results -------------------------------------------------------------------------------------------

    def _results(
        self, query: Query, shown: list[Candidate], hidden: list[Candidate], sort: SortOrder
    ) -> SearchResults:
        """Candidates as results with their files' details (one catalogue query), each group in `sort` order."""
        details = self.library.catalogue.details([c.media_id for c in shown + hidden])
        shown, hidden = (_sorted(group, details, sort) for group in (shown, hidden))
        results = [
            self._result(rank, candidate, query, details.get(candidate.media_id))
            for rank, candidate in enumerate(shown + hidden, start=1)
        ]
        parts = [QueryPart(p.kind, p.label, p.detail, list(p.spans)) for p in query.parts]
        return SearchResults(
            shown=results[: len(shown)], hidden=results[len(shown) :], query=query.text, parts=parts
        )

    def _result(
        self, rank: int, candidate: Candidate, query: Query, details: MediaDetails | None
    ) -> SearchResult:
        moment = candidate.moment
        is_video = candidate.kind == "video"
        match = candidate.text
        text = "\n".join(match.lines) if match is not None else None
        matched = [kind for kind, said in (("visual", query.visual), ("place", query.places)) if said]
        matched[1:1] = ["text"] if match is not None else []
        matched += ["date"] if query.dates else []
        return SearchResult(
            rank=rank,
            path=to_path(candidate.path),
            kind=candidate.kind,
            score=total(candidate),
            fast_score=candidate.fast_score,
            slow_score=candidate.slow_score,
            timestamp=(moment.timestamp_ms or 0) / 1000 if is_video else None,
            media_id=candidate.media_id,
            frame_id=moment.frame_id,
            segments=self._segments(candidate.frames, moment) if is_video else [],
            place=details.place if details is not None else None,
            taken=details.taken_at.isoformat() if details is not None and details.taken_at else None,
            text=text,
            matched=matched,
            text_spans=spans_of(text, match.found) if text is not None and match is not None else [],
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


def _frame_at(candidate: Candidate, match: TextMatch) -> FrameHit:
    """The frame where the words were read: a video's frame nearest that moment (a photo's only frame)."""
    if match.timestamp_ms is None:
        return candidate.moment
    return min(
        (f for f, _ in candidate.frames), key=lambda f: abs((f.timestamp_ms or 0) - match.timestamp_ms)
    )


def _sorted(
    candidates: list[Candidate], details: dict[int, MediaDetails], sort: SortOrder
) -> list[Candidate]:
    if sort == "relevance":
        return candidates

    def when(candidate: Candidate) -> dt.datetime:
        found = details.get(candidate.media_id)
        return found.when if found is not None else dt.datetime.min

    # Stable: files of the same moment keep their relevance order.
    return sorted(candidates, key=when, reverse=sort == "newest")


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)
