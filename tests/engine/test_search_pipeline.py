"""The query pipeline (engine/search): one way from a request to the results, for search and similar alike."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import Library
from engine.catalogue import FrameHit
from engine.decoding import DecodePool
from engine.models import load_slow
from engine.models.base import SlowScorer, TokenSlowScorer
from engine.search.candidates import Candidate
from engine.search.cutoff import MIN_SHOWN, RELEVANCE_GAP, relevant_count
from engine.search.rerank import Reranker
from engine.token_cache import TokenCache
from tests.factory import make_photo, make_video


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Twelve dated photos and two videos, indexed with tiny-test."""
    root = tmp_path_factory.mktemp("pipeline")
    media = root / "media"
    for seed in range(12):
        make_photo(media / f"p{seed:02d}.jpg", seed=seed, taken_at=dt.datetime(2020 + seed % 4, 1 + seed, 1))
    make_video(media / "clip.mp4", seconds=6, seed=3)
    make_video(media / "other.mp4", seconds=4, seed=8)
    with Library.open(root / "library", writable=True) as writer:
        writer.index([media], model="tiny-test")
    with Library.open(root / "library") as reader:
        yield reader, media


def when(result) -> dt.datetime:
    return result.details.when


def test_every_result_carries_its_files_details(library) -> None:
    reader, _ = library
    found = reader.search("a photo", limit=50, rerank=0)
    assert len(found.all) == 14
    for result in found.all:
        details = result.details
        assert (
            details is not None and details.path == result.path and details.size == result.path.stat().st_size
        )
        assert (details.duration_s is not None) == (result.kind == "video")
        assert details.when == (details.taken_at or details.modified)
    assert [r.rank for r in found.all] == list(range(1, 15))


def test_results_sort_by_the_date_taken_either_way(library) -> None:
    reader, _ = library
    newest = reader.search("a photo", limit=50, rerank=0, sort="newest").all
    oldest = reader.search("a photo", limit=50, rerank=0, sort="oldest").all
    assert [when(r) for r in newest] == sorted((when(r) for r in newest), reverse=True)
    assert [when(r) for r in oldest] == sorted(when(r) for r in oldest)
    assert {r.path for r in newest} == {r.path for r in oldest}
    assert [r.rank for r in newest] == list(range(1, len(newest) + 1))  # ranks follow the order shown


def test_similar_of_a_photo_outside_the_library_finds_videos_too(library, tmp_path) -> None:
    reader, _ = library
    outsider = make_photo(tmp_path / "outsider.jpg", seed=40)
    kinds = {r.kind for r in reader.similar(outsider, limit=50).all}
    assert kinds == {"image", "video"}  # the file's own kind is no filter
    assert {r.kind for r in reader.similar(outsider, limit=50, kind="video").all} == {"video"}


def test_similar_sorts_like_search(library) -> None:
    reader, media = library
    results = reader.similar(media / "p03.jpg", limit=50, sort="oldest").all
    assert [when(r) for r in results] == sorted(when(r) for r in results)
    assert media / "p03.jpg" not in {r.path for r in results}


def test_an_unknown_sort_is_a_usage_error(library) -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="sort by"):
        library[0].search("a photo", sort="random")


def frame(frame_id: int, media_id: int, path: bytes, kind: str = "image", ms: int | None = None) -> FrameHit:
    return FrameHit(frame_id, media_id, path, kind, ms, dt.datetime(2024, 1, 1))


def candidate(media_id: int, fast: float, slow: float | None = None) -> Candidate:
    hit = frame(media_id, media_id, f"/p{media_id}.jpg".encode())
    return Candidate(media_id, hit.path, "image", ((hit, fast),), score=fast, slow_score=slow)


def test_the_cutoff_keeps_results_near_the_best_and_a_minimum() -> None:
    near = [candidate(1, 0.9), candidate(2, 0.9 - RELEVANCE_GAP / 2)]
    far = [candidate(10 + i, 0.5) for i in range(20)]
    assert relevant_count(near + far) == MIN_SHOWN  # two close to the best, topped up to the minimum
    assert relevant_count([candidate(i, 0.9) for i in range(30)]) == 30
    assert relevant_count([]) == 0
    reranked = [candidate(i, 0.5, slow=-3.0) for i in range(12)] + [candidate(20 + i, 0.5) for i in range(5)]
    assert relevant_count(reranked) == 12  # the Slow model's shortlist


def test_the_cutoff_splits_the_results_the_command_line_and_the_window_see(library) -> None:
    reader, _ = library
    found = reader.search("a photo", limit=50, rerank=0)
    expected = relevant_count(
        [candidate(i, r.fast_score) for i, r in enumerate(found.all)]
    )  # the results' own scores, best first
    assert len(found.shown) == expected and found.all == found.shown + found.hidden
    assert all(r.fast_score >= found.shown[0].fast_score - RELEVANCE_GAP for r in found.shown[MIN_SHOWN:])


class PlainScorer:
    """A Slow model following only the SlowScorer protocol: it reads pictures, scores their brightness."""

    key = "plain-test-scorer"
    device = "cpu"

    def score(self, text: str, images) -> np.ndarray:
        return np.array([float(np.asarray(image.convert("L")).mean()) for image in images], np.float32)

    def scored_tokens(self, text: str) -> int:
        return 1


class TokenScorer(PlainScorer):
    """The same score through the TokenSlowScorer protocol: tokens are the pictures' mean brightness."""

    key = "token-test-scorer"
    image_size = 32

    def prepare(self, image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image.convert("L").resize((32, 32)), np.float32).copy())[None]

    def image_tokens(self, images) -> torch.Tensor:
        return self.image_tokens_prepared(torch.stack([self.prepare(image) for image in images]))

    def image_tokens_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(1, 2, 3)).view(-1, 1, 1)

    def score_tokens(self, text: str, tokens: torch.Tensor) -> np.ndarray:
        return tokens.float().view(-1).numpy()


@pytest.mark.parametrize("scorer", [PlainScorer(), TokenScorer(), load_slow("tiny-test-slow", "cpu")])
def test_any_scorer_that_follows_the_protocols_reranks(scorer, tmp_path) -> None:
    assert isinstance(scorer, SlowScorer)
    dark = make_photo(tmp_path / "dark.jpg", seed=1, color=(20, 20, 20))
    light = make_photo(tmp_path / "light.jpg", seed=2, color=(240, 240, 240))
    shortlist = [
        Candidate(1, bytes(dark), "image", ((frame(1, 1, bytes(dark)), 0.30),), score=0.30),
        Candidate(2, bytes(light), "image", ((frame(2, 2, bytes(light)), 0.29),), score=0.29),
        Candidate(3, b"/gone.jpg", "image", ((frame(3, 3, b"/gone.jpg"), 0.28),), score=0.28),
        Candidate(4, bytes(dark), "image", ((frame(4, 4, bytes(dark)), 0.20),), score=0.20),
    ]
    before = [dataclasses.replace(c) for c in shortlist]
    with DecodePool(workers=1) as decoders:
        cache = TokenCache(tmp_path / "tokens") if isinstance(scorer, TokenSlowScorer) else None
        reranked = Reranker(scorer, decoders, cache).rerank("a bright sky", shortlist, k=3)
    assert shortlist == before  # no stage changes the candidates it is given
    assert [c.slow_score is not None for c in reranked] == [True, True, False, False]
    assert reranked[2].media_id == 3  # the file that cannot be read keeps its place after the re-scored ones
    assert [c.score for c in reranked] == sorted((c.score for c in reranked), reverse=True)
    if not isinstance(scorer, PlainScorer):
        return
    assert [c.media_id for c in reranked[:2]] == [2, 1]  # the brighter photo wins the Slow model's vote


def test_search_and_similar_need_an_indexed_library(tmp_path) -> None:
    from engine.errors import UsageError

    photo = make_photo(tmp_path / "p.jpg")
    with Library.open(tmp_path / "library") as reader:
        for ask in (lambda: reader.search("a dog"), lambda: reader.similar(photo)):
            with pytest.raises(UsageError, match="glimpse index"):
                ask()


def test_results_json_is_unchanged_by_the_details(library) -> None:
    reader, _ = library
    result = reader.search("a photo", limit=1, rerank=0).all[0]
    data = result.to_json()
    assert "details" not in data and data["path"] == os.fspath(result.path)
    assert Path(data["path"]).exists()
