"""Distillation: the Slow model writes captions, scores candidates, and the Fast student learns from both."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.models.caption_scorer import CaptionScorer, Generation, SlowConfig, reversed_captions
from engine.models.checkpoints import read_checkpoint
from engine.models.visual_trunk import TrunkConfig
from engine.training.distill import DistillOptions, soft_loss
from engine.training.mining import mine_groups, word_vectors
from engine.training.synth import write_synthetic_set
from engine.training.teacher_captions import CaptionDistillOptions, _kept, _own_columns
from engine.training.train import TrainOptions, train_fast, train_slow
from tests.e2e.conftest import glimpse

BOS, EOS, BANNED = 1, 2, (0, 1, 3)


def _scorer(directions: int = 1) -> CaptionScorer:
    torch.manual_seed(0)
    config = SlowConfig(TrunkConfig(image_size=32), vocab_size=12, max_length=8, directions=directions)
    return CaptionScorer(config).eval()


def _visual(model: CaptionScorer, count: int = 2) -> torch.Tensor:
    with torch.inference_mode():
        return model.encode_images(torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(1)))


def _sequence(ids: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor([[BOS, *ids, EOS]])


def test_beams_are_distinct_likeliest_first_and_carry_their_log_likelihood() -> None:
    model = _scorer()
    visual = _visual(model)
    captions = model.generate(visual, BOS, EOS, BANNED, Generation("beam", count=3, beams=4))
    assert [len(c) for c in captions] == [3, 3]
    for image, written in enumerate(captions):
        assert len({w.ids for w in written}) == 3
        assert [w.log_likelihood for w in written] == sorted(
            (w.log_likelihood for w in written), reverse=True
        )
        for w in written:
            assert not set(w.ids) & {*BANNED, EOS}
            with torch.inference_mode():
                score = model.log_likelihood(visual[image : image + 1], _sequence(w.ids))
            assert w.log_likelihood == pytest.approx(float(score), abs=1e-4)


def test_greedy_writes_the_single_best_beam_and_samples_repeat_with_their_seed() -> None:
    model = _scorer()
    visual = _visual(model)
    greedy = model.generate(visual, BOS, EOS, BANNED, Generation("greedy"))
    beam = model.generate(visual, BOS, EOS, BANNED, Generation("beam", count=1, beams=1))
    assert [c[0].ids for c in greedy] == [c[0].ids for c in beam]
    sample = Generation("sample", count=4, seed=3)
    assert model.generate(visual, BOS, EOS, BANNED, sample) == model.generate(
        visual, BOS, EOS, BANNED, sample
    )
    other = model.generate(visual, BOS, EOS, BANNED, Generation("sample", count=4, seed=4))
    assert other != model.generate(visual, BOS, EOS, BANNED, sample)
    # Nearly frozen sampling is greedy decoding.
    cold = model.generate(visual, BOS, EOS, BANNED, Generation("sample", count=2, temperature=1e-4))
    assert all(w.ids == g[0].ids for c, g in zip(cold, greedy, strict=True) for w in c)


def test_the_right_to_left_reader_sees_the_words_reversed_and_the_score_is_the_mean_of_both() -> None:
    tokens = torch.tensor([[1, 5, 6, 7, 2, 0], [1, 8, 2, 0, 0, 0]])
    assert reversed_captions(tokens).tolist() == [[1, 7, 6, 5, 2, 0], [1, 8, 2, 0, 0, 0]]
    model = _scorer(directions=2)
    visual = _visual(model).repeat_interleave(1, 0)
    with torch.inference_mode():
        both = model.log_likelihood(visual, tokens)
        forward = model._directed_log_likelihood(visual, tokens, backward=False)
        backward = model._directed_log_likelihood(visual, reversed_captions(tokens), backward=True)
    torch.testing.assert_close(both, (forward + backward) / 2)
    assert not torch.allclose(forward, backward)


def test_the_soft_term_vanishes_when_the_student_agrees_with_the_teacher() -> None:
    teacher = torch.tensor([[0.0, -1.0, -3.0, -4.0]])
    columns = torch.tensor([[0, 1, 2, 3]])
    options = DistillOptions(temperature=2.0, student_temperature=1.0)
    agreeing = torch.cat([teacher / 2.0, torch.full((1, 4), -50.0)], dim=1)  # 4 easy negatives outside
    assert float(soft_loss(agreeing, teacher, columns, options)) == pytest.approx(0.0, abs=1e-5)
    disagreeing = agreeing[:, [3, 2, 1, 0, 4, 5, 6, 7]]
    assert float(soft_loss(disagreeing, teacher, columns, options)) > 0.1
    # Over the whole batch, mass the student puts outside the group is a loss too.
    leaky = torch.cat([teacher / 2.0, torch.zeros((1, 4))], dim=1)
    batch = DistillOptions(temperature=2.0, scope="batch")
    assert float(soft_loss(leaky, teacher, columns, batch)) > float(
        soft_loss(leaky, teacher, columns, options)
    )


def test_mining_groups_each_image_with_those_it_is_confused_with() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16))
    # Twenty images in ten pairs of near-copies: a pair is what a Fast model would confuse.
    images = np.repeat(centres, 2, axis=0) + rng.normal(scale=0.01, size=(20, 16))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    groups = mine_groups(images, images, 2, random.Random(0))
    assert groups.shape == (10, 2)
    assert sorted(tuple(sorted(g)) for g in groups.tolist()) == [(2 * i, 2 * i + 1) for i in range(10)]


def test_word_mining_pairs_a_scene_with_its_twin_before_any_model_is_trained(tmp_path: Path) -> None:
    """Twins use the same words bound otherwise: the bags of words of their captions find each other."""
    from engine.models.vocabulary import Vocabulary

    write_synthetic_set(tmp_path, 300, seed=1)
    images = json.loads((tmp_path / "dataset.json").read_text())["images"]
    captions = [[s["raw"] for s in image["sentences"]] for image in images]
    vocabulary = Vocabulary.build([c for own in captions for c in own])
    tokens = vocabulary.encode([c for own in captions for c in own])
    captions_of_image = [list(range(5 * i, 5 * i + 5)) for i in range(len(images))]
    vectors = word_vectors(tokens, captions_of_image, len(vocabulary))

    def bag(scene: dict) -> list[str]:
        return sorted(str(v) for group in (scene["a"], scene["b"]) for v in group.values())

    def twins(a: int, b: int) -> bool:
        return bag(images[a]["scene"]) == bag(images[b]["scene"])

    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1)
    with_twin = [i for i in range(len(images)) if any(twins(i, j) for j in range(len(images)) if j != i)]
    assert np.mean([twins(i, int(similarity[i].argmax())) for i in with_twin]) >= 0.7
    # Greedy pairing gives some images a near-twin instead; random pairs would hold a twin once in ~300.
    pairs = mine_groups(vectors, vectors, 2, random.Random(0)).tolist()
    assert np.mean([twins(a, b) for a, b in pairs]) >= 0.4


def test_only_captions_whose_own_image_the_teacher_ranks_first_are_kept() -> None:
    groups = torch.tensor([[0, 1], [2, 3]])
    image_of_caption = torch.tensor([0, 1, 2, 3, 3])
    scores = torch.tensor([[-1.0, -5.0], [-1.0, -5.0], [-2.0, -3.0], [-9.0, -3.0], [-1.0, -2.0]])
    own = _own_columns(groups, image_of_caption, 4)
    assert own.tolist() == [0, 1, 0, 1, 1]
    assert _kept(scores, own, "first") == [0, 2, 3]
    assert _kept(scores, own, "all") == [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    write_synthetic_set(root / "data", 100, seed=9)
    from engine.training.datasets import load_dataset

    options = TrainOptions(steps=15, batch_size=16, learning_rate=2e-3, image_size=32, progress=False)
    data = load_dataset(root / "data")
    train_fast(data, root / "fast.pt", options)
    train_slow(data, root / "slow.pt", options)
    return {"data": root / "data", "fast": root / "fast.pt", "slow": root / "slow.pt", "root": root}


def _adapt(tiny: dict[str, Path], data: Path, out: Path) -> dict:
    run = glimpse(
        *("train", "distill", data, "--teacher", tiny["slow"], "--init", tiny["fast"], "--out", out),
        *("--captions", "teacher", "--split", "all", "--keep", "all", "--group", "4"),
        *("--steps", "4", "--batch-size", "16", "--device", "cpu", "--json"),
    )
    assert run.code == 0, run.stderr
    return run.json()


@pytest.mark.slow
def test_distilling_from_the_teachers_captions_never_reads_the_sets_own(tiny: dict[str, Path]) -> None:
    """The same images with other captions adapt to the same weights: only the teacher's captions count."""
    report = _adapt(tiny, tiny["data"], tiny["root"] / "adapted.pt")
    assert report["images"] == 100 and 0 < report["kept"] <= report["written"]
    assert report["held_out_captions"] == round(report["kept"] * CaptionDistillOptions().held_out)
    document = json.loads((tiny["data"] / "dataset.json").read_text())
    for entry in document["images"]:
        for sentence in entry["sentences"]:
            sentence["raw"] = "nothing the teacher would ever write"
    relabelled = tiny["root"] / "relabelled"
    relabelled.mkdir()
    (relabelled / "dataset.json").write_text(json.dumps(document))
    (relabelled / "images").symlink_to(tiny["data"] / "images")
    again = _adapt(tiny, relabelled, tiny["root"] / "again.pt")
    assert again["kept"] == report["kept"]
    first = read_checkpoint(tiny["root"] / "adapted.pt", "fast").model.state_dict()
    second = read_checkpoint(tiny["root"] / "again.pt", "fast").model.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
