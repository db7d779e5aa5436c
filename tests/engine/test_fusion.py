"""The fusion of Fast and Slow scores at the ranges real models give (CLIP cosines 0.15–0.35, CoCa log-likelihoods
-10 to -80), for short and long queries; its calibration and where calibrated weights are kept."""

from __future__ import annotations

import math

import pytest

from engine.search import fusion
from engine.search.fusion import DEFAULT_FUSION_WEIGHT, Shortlist, calibrate, fuse, fusion_weight

W = DEFAULT_FUSION_WEIGHT


def order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


@pytest.mark.parametrize("tokens", [2, 6, 20])  # "beach" + <eot>; a caption; a long description
def test_a_sure_slow_model_decides_and_the_score_stays_a_cosine(tokens) -> None:
    fast = [0.31, 0.30, 0.29, 0.27, 0.22]
    # The Slow model is sure about candidate 3: a nat per token more likely than the rest.
    slow = [-2.6 * tokens, -2.5 * tokens, -2.7 * tokens, -1.5 * tokens, -3.0 * tokens]
    fused = fuse(fast, slow, tokens, W)
    assert order(fused)[0] == 3
    assert fused[3] == pytest.approx(0.27)  # its Fast score, unchanged
    assert all(0.0 < f <= 0.35 for f in fused)  # still cosines: -0.71 is what raw log-likelihoods gave


@pytest.mark.parametrize("tokens", [2, 6, 20])
def test_an_unsure_slow_model_keeps_the_fast_order(tokens) -> None:
    fast = [0.34, 0.32, 0.30, 0.25, 0.18]
    # Near-equal log-likelihoods: the Slow model cannot tell them apart (0.01 nat per token at most).
    slow = [-40.0 - 0.01 * tokens * (i % 2) for i in range(5)]
    assert order(fuse(fast, slow, tokens, W)) == [0, 1, 2, 3, 4]


def test_one_weight_means_the_same_for_a_short_and_a_long_query() -> None:
    fast = [0.30, 0.28]
    # The same per-token preference, read from a 3-token and a 30-token query.
    short = fuse(fast, [-9.0, -7.5], 3, W)
    long = fuse(fast, [-90.0, -75.0], 30, W)
    assert order(short) == order(long) == [1, 0]
    assert short == pytest.approx(long)


def test_infinity_is_the_slow_order_alone() -> None:
    assert order(fuse([0.35, 0.2, 0.1], [-30.0, -12.0, -20.0], 6, math.inf)) == [1, 2, 0]


def test_calibration_picks_the_smallest_of_the_best_weights() -> None:
    # The Slow model is right when sure; the Fast model decides the near-ties it cannot.
    sure = Shortlist(fast=[0.31, 0.29], slow=[-40.0, -20.0], tokens=10, right=1)
    tie = Shortlist(fast=[0.31, 0.29], slow=[-30.05, -30.0], tokens=10, right=0)
    missed = Shortlist(fast=[0.3, 0.2], slow=[-10.0, -20.0], tokens=10, right=None)
    result = calibrate([sure, tie, missed])
    assert result.recall_by_weight[0.0] == pytest.approx(100 / 3, abs=0.01)  # Fast alone: the tie only
    assert result.recall_by_weight[math.inf] == pytest.approx(100 / 3, abs=0.01)  # Slow alone: the sure one
    assert result.recall_by_weight[result.best_weight] == pytest.approx(200 / 3, abs=0.01)
    assert result.best_weight == 0.02 and not math.isinf(result.best_weight)
    with pytest.raises(ValueError):
        calibrate([])


def test_a_calibrated_weight_is_kept_per_preset_and_wins_over_the_presets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(fusion.CONFIG_ENV, str(tmp_path / "config"))
    assert fusion_weight("vit-b-32@random") == 0.1  # the preset's own
    result = calibrate([Shortlist(fast=[0.3, 0.2], slow=[-20.0, -10.0], tokens=5, right=1)])
    path = fusion.save_calibration("vit-b-32", result, "flickr30k val")
    assert path == tmp_path / "config" / "fusion.json"
    assert fusion_weight("vit-b-32@random") == result.best_weight  # the preset, whatever its weights
    assert fusion_weight("tiny-test") == DEFAULT_FUSION_WEIGHT  # others keep theirs
    (tmp_path / "config" / "fusion.json").write_text('{"vit-b-32": {"weight": "a lot"}}')
    assert fusion_weight("vit-b-32") == 0.1  # a broken file is no calibration
