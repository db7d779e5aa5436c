"""Text-to-visual retrieval evaluation of Fast, Slow and Fast+Slow re-ranking, as the paper measures it.

Every caption of the evaluated split is a query whose one right answer is its own item (image or video); a
video is scored by its best frame. Recall@k is the share of queries whose item ranks within the first k.

- **Fast**: every item's frames are embedded once beforehand (the library's index); a query costs one text
  embedding, one matrix-vector product and a top-k selection.
- **Slow**: the Slow model scores the query against every frame of every item, through the same
  `SlowScorer.score` call the search uses (images already decoded, as the library's thumbnails would be).
  A `TokenSlowScorer`'s visual tokens are computed once per frame beforehand, as the library's token cache
  keeps them, so a query costs the decoding alone (`score_tokens`). That is still too slow for every caption,
  so it runs on a seeded subset of `slow_queries` queries, reported.
- **Fast+Slow at K**: the Fast model shortlists K items, the Slow model re-scores their frames (from the same
  cached tokens where it has them) and reorders them; items past K keep the Fast order. Evaluated on the same
  query subset as Slow, so the two compare query for query.

`ms_per_query` is the mean wall time of answering one query at a time, on the device the models run on.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from engine.models.base import FastEncoder, SlowScorer, TokenSlowScorer
from engine.search.fusion import Shortlist
from engine.training.datasets import Query, RetrievalSet, load_frames

#: Frames embedded per Fast forward pass when building the index.
INDEX_BATCH = 64


@dataclass(frozen=True)
class Recall:
    """Recall@1/5/10 in percent over `queries` queries, and the mean milliseconds per query."""

    r1: float
    r5: float
    r10: float
    ms_per_query: float
    queries: int


@dataclass(frozen=True)
class EvaluationReport:
    """The numbers of one evaluation; `to_json` gives the `glimpse eval --json` document."""

    images: int
    queries: int
    fast: Recall
    slow: Recall | None
    rerank: dict[int, Recall]

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "queries": self.queries,
            "fast": asdict(self.fast),
            "slow": asdict(self.slow) if self.slow else None,
            "rerank": {str(k): asdict(v) for k, v in sorted(self.rerank.items())},
        }


@dataclass(frozen=True)
class _Index:
    """Every frame's Fast vector, and which item each frame belongs to (frames of an item are contiguous)."""

    frames: list[Image.Image]
    vectors: np.ndarray
    item_starts: np.ndarray  # first frame of each item, for np.maximum.reduceat

    def item_scores(self, frame_scores: np.ndarray) -> np.ndarray:
        """An item scores as its best frame."""
        return np.maximum.reduceat(frame_scores, self.item_starts)

    def item_frame_indices(self, item: int) -> np.ndarray:
        end = self.item_starts[item + 1] if item + 1 < len(self.item_starts) else len(self.frames)
        return np.arange(self.item_starts[item], end)


def evaluate(
    dataset: RetrievalSet,
    fast: FastEncoder,
    slow: SlowScorer | None,
    rerank: Sequence[int] = (1, 5, 10, 20, 50),
    slow_queries: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> EvaluationReport:
    """Recall and time per query of Fast, Slow over every item, and Fast+Slow at each K in `rerank`."""
    index = _build_index(dataset, fast, progress)
    queries = dataset.queries()
    fast_ranks, fast_ms = [], []
    for query in tqdm(queries, desc="fast", disable=not progress, file=sys.stderr):
        start = time.perf_counter()
        _, rank = _fast_search(fast, index, query, max(rerank, default=10))
        fast_ms.append(time.perf_counter() - start)
        fast_ranks.append(rank)
    report_fast = _recall(fast_ranks, fast_ms)
    if slow is None:
        return EvaluationReport(len(dataset.items), len(queries), report_fast, None, {})

    subset = _subset(queries, slow_queries, seed)
    scorer = _FrameScorer(slow, index.frames, progress)
    report_slow = _slow_over_all(scorer, index, subset, progress)
    reranked: dict[int, Recall] = {}
    for k in rerank:
        ranks, ms = [], []
        for query in tqdm(subset, desc=f"fast+slow K={k}", disable=not progress, file=sys.stderr):
            start = time.perf_counter()
            rank = _reranked_rank(fast, scorer, index, query, k)
            ms.append(time.perf_counter() - start)
            ranks.append(rank)
        reranked[k] = _recall(ranks, ms)
    return EvaluationReport(len(dataset.items), len(queries), report_fast, report_slow, reranked)


def slow_recall(
    dataset: RetrievalSet,
    slow: SlowScorer,
    slow_queries: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Recall:
    """Slow over every item alone, with no Fast model: the same numbers as `evaluate`'s Slow row."""
    frames, starts = _decode(dataset, progress)
    index = _Index(frames, np.zeros((len(frames), 0), np.float32), starts)
    subset = _subset(dataset.queries(), slow_queries, seed)
    return _slow_over_all(_FrameScorer(slow, frames, progress), index, subset, progress)


def _subset(queries: list[Query], count: int | None, seed: int) -> list[Query]:
    """The seeded subset of queries Slow and re-ranking run on (all of them when `count` is None)."""
    if count is None or count >= len(queries):
        return queries
    return random.Random(seed).sample(queries, count)


def _slow_over_all(scorer: _FrameScorer, index: _Index, subset: list[Query], progress: bool) -> Recall:
    ranks, ms = [], []
    for query in tqdm(subset, desc="slow over all", disable=not progress, file=sys.stderr):
        start = time.perf_counter()
        scores = index.item_scores(scorer.score(query.text, np.arange(len(index.frames))))
        ms.append(time.perf_counter() - start)
        ranks.append(int((scores > scores[query.item]).sum()))
    return _recall(ranks, ms)


def _decode(dataset: RetrievalSet, progress: bool) -> tuple[list[Image.Image], np.ndarray]:
    """Every item's frames, and the index of each item's first frame."""
    frames: list[Image.Image] = []
    starts: list[int] = []
    for item in tqdm(dataset.items, desc="decoding", disable=not progress, file=sys.stderr):
        starts.append(len(frames))
        frames.extend(load_frames(item))
    return frames, np.asarray(starts)


def _build_index(dataset: RetrievalSet, fast: FastEncoder, progress: bool) -> _Index:
    frames, starts = _decode(dataset, progress)
    vectors = np.concatenate(
        [
            fast.embed_images(frames[start : start + INDEX_BATCH])
            for start in tqdm(
                range(0, len(frames), INDEX_BATCH), desc="fast index", disable=not progress, file=sys.stderr
            )
        ]
    )
    return _Index(frames, vectors, starts)


def _fast_search(fast: FastEncoder, index: _Index, query: Query, shortlist: int) -> tuple[np.ndarray, int]:
    """→ (the top `shortlist` items in Fast order, the 0-based Fast rank of the query's own item)."""
    scores = index.item_scores(index.vectors @ fast.embed_texts([query.text])[0])
    shortlist = min(shortlist, len(scores))
    top = np.argpartition(-scores, shortlist - 1)[:shortlist]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, int((scores > scores[query.item]).sum())


class _FrameScorer:
    """The Slow model's scores of a text against some of the index's frames, from cached tokens if it can."""

    def __init__(self, slow: SlowScorer, frames: list[Image.Image], progress: bool) -> None:
        self._slow, self._frames = slow, frames
        self._tokens = None
        if isinstance(slow, TokenSlowScorer):
            chunks = range(0, len(frames), INDEX_BATCH)
            # Kept in float16 on the CPU, as the library's token cache keeps them: a large set's tokens fit.
            self._tokens = torch.cat(
                [
                    slow.image_tokens(frames[start : start + INDEX_BATCH]).half().cpu()
                    for start in tqdm(chunks, desc="slow tokens", disable=not progress, file=sys.stderr)
                ]
            )

    def score(self, text: str, frames: np.ndarray) -> np.ndarray:
        if self._tokens is not None:
            return self._slow.score_tokens(text, self._tokens[torch.from_numpy(frames)])  # type: ignore[attr-defined]
        return self._slow.score(text, [self._frames[i] for i in frames])


def fusion_shortlists(
    dataset: RetrievalSet,
    fast: FastEncoder,
    slow: SlowScorer,
    k: int = 10,
    queries: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[Shortlist]:
    """For each query (a seeded subset of `queries`): the Fast model's top `k` items with their Fast and Slow
    scores (an item scores as its best frame) and where its own item is among them: what
    `engine.search.fusion.calibrate` weighs the two scores on."""
    index = _build_index(dataset, fast, progress)
    scorer = _FrameScorer(slow, index.frames, progress)
    found = []
    for query in tqdm(
        _subset(dataset.queries(), queries, seed), desc="fusion", disable=not progress, file=sys.stderr
    ):
        top, _ = _fast_search(fast, index, query, k)
        frames = [index.item_frame_indices(int(item)) for item in top]
        frame_ids = np.concatenate(frames)
        starts = np.cumsum([0] + [len(f) for f in frames[:-1]])
        fast_scores = np.maximum.reduceat(
            index.vectors[frame_ids] @ fast.embed_texts([query.text])[0], starts
        )
        slow_scores = np.maximum.reduceat(scorer.score(query.text, frame_ids), starts)
        right = np.flatnonzero(top == query.item)
        found.append(
            Shortlist(
                fast=fast_scores.tolist(),
                slow=slow_scores.tolist(),
                tokens=slow.scored_tokens(query.text),
                right=int(right[0]) if len(right) else None,
            )
        )
    return found


def _reranked_rank(fast: FastEncoder, slow: _FrameScorer, index: _Index, query: Query, k: int) -> int:
    """The query's own item's rank after the Slow model reorders the Fast model's top k."""
    top, fast_rank = _fast_search(fast, index, query, k)
    frames = [index.item_frame_indices(int(item)) for item in top]
    frame_scores = slow.score(query.text, np.concatenate(frames))
    starts = np.cumsum([0] + [len(f) for f in frames[:-1]])
    slow_scores = np.maximum.reduceat(frame_scores, starts)
    if query.item not in top:
        return fast_rank
    own = int(np.flatnonzero(top == query.item)[0])
    return int((slow_scores > slow_scores[own]).sum())


def _recall(ranks: list[int], seconds: list[float]) -> Recall:
    ranks_array = np.asarray(ranks)
    return Recall(
        r1=round(100 * float(np.mean(ranks_array < 1)), 2),
        r5=round(100 * float(np.mean(ranks_array < 5)), 2),
        r10=round(100 * float(np.mean(ranks_array < 10)), 2),
        ms_per_query=round(1000 * float(np.mean(seconds)), 3),
        queries=len(ranks),
    )
