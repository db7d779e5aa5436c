"""Search re-ranks the Fast shortlist with the Slow model (tiny-test pairs with the tiny CoCa scorer)."""

from __future__ import annotations

import pytest

from engine import Library
from engine.media.images import decode_image
from engine.media.video import frame_at
from engine.models import load_slow
from engine.search.fusion import fusion_weight
from tests.factory import make_photo, make_video

QUERIES = ["a red kite on the beach", "two dogs", "grandma cutting the cake", "fireworks at night"]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("rerank")
    for seed in range(8):
        make_photo(root / "media" / f"p{seed}.jpg", seed=seed)
    make_video(root / "media" / "clip.mp4", seconds=10, seed=3, scenes=3)
    with Library.open(root / "library", writable=True) as writer:
        writer.index([root / "media"], model="tiny-test")
    with Library.open(root / "library") as reader:
        yield reader


def test_no_rerank_gives_the_fast_order(library):
    results = library.search("a dog", limit=9, rerank=0).all
    assert [r.fast_score for r in results] == sorted((r.fast_score for r in results), reverse=True)
    assert all(r.slow_score is None and r.score == r.fast_score for r in results)


def test_reranked_head_follows_the_fused_scores(library):
    for query in QUERIES:
        fast = library.search(query, limit=9, rerank=0).all
        results = library.search(query, limit=9, rerank=5).all
        head, tail = results[:5], results[5:]
        assert {r.path for r in head} == {r.path for r in fast[:5]}  # re-ranking reorders the shortlist only
        assert all(r.slow_score is not None for r in head) and all(r.slow_score is None for r in tail)
        top = max(r.slow_score for r in head)
        tokens, weight = load_slow("tiny-test-slow", "cpu").scored_tokens(query), fusion_weight("tiny-test")
        for r in head:  # compared per token (engine/search/fusion.py)
            assert r.score == pytest.approx(r.fast_score + weight * (r.slow_score - top) / tokens, abs=1e-5)
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
        assert [r.path for r in tail] == [r.path for r in fast[5:]]


def test_the_slow_model_changes_the_order_when_its_scores_say_so(library):
    changed = [
        [r.path for r in library.search(q, limit=9, rerank=9).all]
        != [r.path for r in library.search(q, limit=9, rerank=0).all]
        for q in QUERIES
    ]
    assert any(changed)


def test_slow_scores_are_the_scorers_log_likelihoods_of_the_chosen_frame(library):
    scorer = load_slow("tiny-test-slow", "cpu")
    for r in library.search("a red kite on the beach", limit=9, rerank=9).all:
        # A video is scored by its best re-scored frame, whose moment the result carries.
        picture = (
            frame_at(bytes(r.path), r.timestamp) if r.kind == "video" else decode_image(bytes(r.path)).image
        )
        expected = scorer.score("a red kite on the beach", [picture])[0]
        assert r.slow_score == pytest.approx(expected, abs=0.05)  # tokens are cached in float16


def test_a_negative_rerank_is_a_usage_error(library):
    from engine.errors import UsageError

    with pytest.raises(UsageError):
        library.search("a dog", rerank=-1)
