"""Training: each trainer lowers its loss in a few steps and writes a checkpoint the engine loads as a model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional

from engine.errors import UsageError
from engine.models.base import FastEncoder, SlowScorer
from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow, read_checkpoint
from engine.models.visual_trunk import image_tensor
from engine.training.datasets import load_dataset, load_frames
from engine.training.distill import train_distill
from engine.training.synth import write_synthetic_set
from engine.training.train import TrainOptions, train_fast, train_slow

# Small images keep each run to a few seconds; the models are the shipped architecture all the same.
OPTIONS = TrainOptions(steps=20, batch_size=16, learning_rate=2e-3, image_size=32, progress=False)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    write_synthetic_set(root, 60, seed=5)
    return root


@pytest.fixture(scope="module")
def trained(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("checkpoints")
    data = load_dataset(shapes)
    reports = {
        "fast": train_fast(data, out / "fast.pt", OPTIONS),
        "slow": train_slow(data, out / "slow.pt", OPTIONS),
    }
    reports["distill"] = train_distill(
        data, out / "distill.pt", out / "slow.pt", OPTIONS, miner=out / "fast.pt"
    )
    # Word-mined pairs in every batch, the Slow model ranking each caption's image above its pair's, both
    # directions read: the recipe's options that change a batch or a loss.
    hard = replace(OPTIONS, hard_group=2, contrast=1.0)
    reports["fast-hard-pairs"] = train_fast(data, out / "fast-hard.pt", hard)
    reports["slow-contrast"] = train_slow(data, out / "slow-contrast.pt", hard, directions=2)
    return reports


@pytest.mark.parametrize("role", ["fast", "slow", "distill", "fast-hard-pairs", "slow-contrast"])
def test_a_short_run_lowers_the_loss_and_writes_a_loadable_checkpoint(trained: dict, role: str) -> None:
    report = trained[role]
    assert report.steps == OPTIONS.steps
    assert report.last_loss < report.first_loss
    if role.startswith("slow"):
        assert isinstance(load_checkpoint_slow(report.out), SlowScorer)
    else:
        encoder = load_checkpoint_fast(report.out)
        assert isinstance(encoder, FastEncoder)
        vectors = encoder.embed_texts(["a small red circle left of a large blue square"])
        assert vectors.shape == (1, encoder.dim)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_the_same_seed_and_steps_train_the_same_weights(shapes: Path, trained: dict, tmp_path: Path) -> None:
    again = train_fast(load_dataset(shapes), tmp_path / "fast.pt", OPTIONS)
    assert again.last_loss == pytest.approx(trained["fast"].last_loss, rel=1e-4)


def test_the_slow_score_is_the_captions_log_likelihood_token_by_token(shapes: Path, trained: dict) -> None:
    """Batched scoring (padding, one pass for every candidate) equals decoding each caption prefix alone."""
    scorer = load_checkpoint_slow(trained["slow"].out)
    checkpoint = read_checkpoint(trained["slow"].out, "slow")
    model, vocabulary = checkpoint.model, checkpoint.vocabulary
    data = load_dataset(shapes).split("test")
    images = [load_frames(item)[0] for item in data.items[:4]]
    text = data.items[0].captions[0]
    scores = scorer.score(text, images)

    ids = torch.tensor([vocabulary.ids(text)])
    for image, score in zip(images, scores, strict=True):
        with torch.inference_mode():
            visual = model.encode_images(image_tensor(image, scorer.image_size).unsqueeze(0))
            total = 0.0
            for t in range(1, ids.shape[1]):
                # Only the prefix up to token t is given: nothing later can leak into this prediction.
                logits = model.next_token_logits(visual, ids[:, : t + 1])[0, -1]
                total += float(functional.log_softmax(logits, dim=-1)[ids[0, t]])
        assert score == pytest.approx(total, abs=1e-3)


def test_a_checkpoint_of_the_wrong_kind_is_refused_with_a_clear_error(trained: dict, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds a slow model"):
        load_checkpoint_fast(trained["slow"].out)
    foreign = tmp_path / "weights.pt"
    torch.save({"visual.proj": torch.zeros(2)}, foreign)
    with pytest.raises(UsageError, match="not a Glimpse training checkpoint"):
        load_checkpoint_slow(foreign)


@pytest.mark.parametrize(
    ("preset", "role"), [("tiny-test@random", "fast"), ("tiny-test-slow@random", "slow")]
)
def test_an_open_clip_preset_fine_tunes_into_weights_its_preset_loads(
    shapes: Path, tmp_path: Path, preset: str, role: str
) -> None:
    from engine.models.loader import load_fast, load_slow
    from engine.training.finetune import finetune_open_clip

    out = tmp_path / f"{role}.pt"
    options = TrainOptions(steps=2, batch_size=4, learning_rate=1e-4, progress=False)
    report = finetune_open_clip(load_dataset(shapes), out, preset, role, options)
    assert report.steps == 2 and out.is_file()
    spec = f"{preset.split('@')[0]}@{out}"
    image = load_frames(load_dataset(shapes).items[0])[0]
    if role == "fast":
        assert load_fast(spec, "cpu").embed_images([image]).shape[0] == 1
    else:
        assert np.isfinite(load_slow(spec, "cpu").score("a red circle", [image])).all()
