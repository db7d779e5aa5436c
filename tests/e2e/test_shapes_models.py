"""The shipped `shapes` models give meaningful results: a caption finds its own scene, even against its twin."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow
from engine.training.synth import write_synthetic_set
from tests.e2e.conftest import glimpse

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
FAST, SLOW = MODELS / "shapes-fast.pt", MODELS / "shapes-slow.pt"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set the models never saw (another seed): its test split has 20 scenes, most with a twin."""
    root = tmp_path_factory.mktemp("shapes")
    write_synthetic_set(root, 200, seed=2026)
    return root


def _test_images(root: Path) -> list[dict]:
    return [i for i in json.loads((root / "dataset.json").read_text())["images"] if i["split"] == "test"]


def _load(root: Path, entries: list[dict]) -> list[Image.Image]:
    return [Image.open(root / "images" / e["filename"]).convert("RGB") for e in entries]


def _reranked_first(fast, slow, vectors: np.ndarray, images: list[Image.Image], caption: str) -> int:
    """The scene the Slow model puts first among the Fast model's top 10 of the 20."""
    shortlist = np.argsort(-(vectors @ fast.embed_texts([caption])[0]))[:10]
    return int(shortlist[int(np.argmax(slow.score(caption, [images[i] for i in shortlist])))])


def test_a_caption_ranks_its_own_scene_first_after_re_ranking(scenes: Path) -> None:
    """Fast shortlists 10 of 20 scenes, Slow re-ranks them: the first captions of the first scenes find theirs."""
    fast, slow = load_checkpoint_fast(FAST), load_checkpoint_slow(SLOW)
    entries = _test_images(scenes)
    images = _load(scenes, entries)
    vectors = fast.embed_images(images)
    for own, entry in enumerate(entries[:6]):
        caption = entry["sentences"][0]["raw"]
        best = _reranked_first(fast, slow, vectors, images, caption)
        assert best == own, f"{caption!r} found {entries[best]['sentences'][0]['raw']!r}"


def test_re_ranking_finds_most_scenes_first_and_beats_the_fast_model_alone(scenes: Path) -> None:
    """Over all 100 captions. The shipped pair still misses some twins (see docs/evaluation.md), so a rate."""
    fast, slow = load_checkpoint_fast(FAST), load_checkpoint_slow(SLOW)
    entries = _test_images(scenes)
    images = _load(scenes, entries)
    vectors = fast.embed_images(images)
    captions = [(own, s["raw"]) for own, e in enumerate(entries) for s in e["sentences"]]
    fast_first = np.mean([np.argmax(vectors @ fast.embed_texts([c])[0]) == own for own, c in captions])
    reranked_first = np.mean([_reranked_first(fast, slow, vectors, images, c) == own for own, c in captions])
    assert reranked_first >= 0.75
    assert reranked_first > fast_first


def test_the_slow_model_tells_most_scenes_from_their_twins(scenes: Path) -> None:
    """Twins share every word of their captions; only the binding differs, and the Slow model reads it."""
    slow = load_checkpoint_slow(SLOW)
    entries = _test_images(scenes)
    pairs = [(a, b) for a, b in itertools.pairwise(entries) if _twins(a["scene"], b["scene"])]
    assert len(pairs) >= 5
    right = []
    for pair in pairs:
        images = _load(scenes, list(pair))
        for own, entry in enumerate(pair):
            right += [int(np.argmax(slow.score(s["raw"], images))) == own for s in entry["sentences"]]
    assert np.mean(right) >= 0.75


def _twins(a: dict, b: dict) -> bool:
    bag = lambda s: sorted(str(v) for g in (s["a"], s["b"]) for v in g.values())  # noqa: E731
    return a != b and bag(a) == bag(b)


@pytest.mark.slow
def test_glimpse_eval_ranks_shapes_far_better_than_chance(scenes: Path) -> None:
    arguments = ["--rerank", "10", "--queries", "40", "--device", "cpu", "--json"]
    run = glimpse("eval", scenes, "--fast", FAST, "--slow", SLOW, *arguments)
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["images"] == 20 and report["queries"] == 100
    # Chance would be R@1 = 5 in 20 scenes.
    assert report["fast"]["r1"] >= 40
    assert report["rerank"]["10"]["r1"] >= 80
