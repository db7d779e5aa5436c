"""Tuning an open_clip Fast preset on captionless pictures, taught by its CoCa: the plumbing, on tiny-test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import UsageError
from engine.training.train import TrainOptions
from engine.tuning import tunable_pair


def _pictures(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)) for _ in range(count)]


def test_an_open_clip_fast_model_tunes_its_text_tower_into_weights_its_preset_loads(tmp_path: Path) -> None:
    from engine.models.loader import load_fast
    from engine.training.openclip_tune import tune_open_clip

    pictures = _pictures(16)
    out = tmp_path / "tuned" / "tiny-test.pt"
    options = TrainOptions(steps=3, batch_size=16, learning_rate=1e-3, progress=False)
    report = tune_open_clip(pictures, "tiny-test", "tiny-test-slow", out, options)

    assert report.images == 16 and report.written > 0
    assert report.written >= report.kept >= report.held_out_captions
    assert report.train.steps == 3 and out.is_file()
    assert isinstance(report.improved, bool)
    before, after = load_fast("tiny-test", "cpu"), load_fast(f"tiny-test@{out}", "cpu")
    # The vision tower is frozen: the library's pictures embed as before; the text tower learned.
    assert np.allclose(before.embed_images(pictures[:2]), after.embed_images(pictures[:2]), atol=1e-5)
    assert not np.allclose(
        before.embed_texts(["a red circle"]), after.embed_texts(["a red circle"]), atol=1e-5
    )


def test_a_tuned_model_learns_from_the_slow_model_its_origin_is_paired_with(tmp_path: Path) -> None:
    assert tunable_pair("tiny-test") == ("tiny-test", "tiny-test-slow")
    tuned = tmp_path / "tuned.pt"
    tuned.write_bytes(b"")
    # A tuned vit-b-32@random is taught by random CoCa weights, as its origin was, not the published ones.
    assert tunable_pair(f"vit-b-32@{tuned}", "vit-b-32@random")[1] == "coca-vit-b-32@random"


def test_a_model_and_a_slow_model_of_two_kinds_are_not_tuned() -> None:
    with pytest.raises(UsageError, match="cannot be tuned"):
        tunable_pair("shapes", "tiny-test")


def test_a_tuned_model_is_re_ranked_by_the_slow_model_of_the_model_it_was_tuned_from(tmp_path: Path) -> None:
    from engine.library import MODEL_SETTING, Library
    from engine.tuning import TUNED_FROM_SETTING

    weights = tmp_path / "tuned.pt"
    weights.write_bytes(b"")  # the spec names a file; nothing loads it here
    with Library.open(tmp_path / "library", writable=True) as library:
        assert library.slow_model is None  # not indexed yet
        library.catalogue.set_setting(MODEL_SETTING, "vit-b-32@random")
        assert library.slow_model == "coca-vit-b-32@random"
        # Tuned: its weights file says nothing of the Slow model's; the origin's random teacher stays.
        library.catalogue.set_setting(MODEL_SETTING, f"vit-b-32@{weights}")
        library.catalogue.set_setting(TUNED_FROM_SETTING, "vit-b-32@random")
        assert library.slow_model == "coca-vit-b-32@random"
        library.catalogue.delete_setting(TUNED_FROM_SETTING)
        assert library.slow_model == "coca-vit-b-32"  # a plain weights file keeps the preset's own Slow model
