"""The shipped `shapes` models give meaningful results: a caption finds its own scene, even against its twin."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.training.checkpoints import load_checkpoint_fast, load_checkpoint_slow
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


def test_a_caption_ranks_its_own_scene_first_after_re_ranking(scenes: Path) -> None:
    """Fast shortlists 10 of 20 scenes, Slow re-ranks them: the first caption of each scene finds it first."""
    fast, slow = load_checkpoint_fast(FAST), load_checkpoint_slow(SLOW)
    entries = _test_images(scenes)
    images = [Image.open(scenes / "images" / e["filename"]).convert("RGB") for e in entries]
    vectors = fast.embed_images(images)
    for own, entry in enumerate(entries[:8]):
        caption = entry["sentences"][0]["raw"]
        shortlist = np.argsort(-(vectors @ fast.embed_texts([caption])[0]))[:10]
        assert own in shortlist, caption
        best = shortlist[int(np.argmax(slow.score(caption, [images[i] for i in shortlist])))]
        assert best == own, f"{caption!r} found {entries[best]['sentences'][0]['raw']!r}"


def test_the_slow_model_tells_a_scene_from_its_twin(scenes: Path) -> None:
    """Twins share every word of their captions; only the binding differs, and the Slow model reads it."""
    slow = load_checkpoint_slow(SLOW)
    entries = _test_images(scenes)
    pairs = [(a, b) for a, b in itertools.pairwise(entries) if _twins(a["scene"], b["scene"])][:5]
    assert len(pairs) >= 3
    for a, b in pairs:
        images = [Image.open(scenes / "images" / e["filename"]).convert("RGB") for e in (a, b)]
        for own, entry in enumerate((a, b)):
            scores = slow.score(entry["sentences"][0]["raw"], images)
            assert int(np.argmax(scores)) == own, entry["sentences"][0]["raw"]


def _twins(a: dict, b: dict) -> bool:
    bag = lambda s: sorted(str(v) for g in (s["a"], s["b"]) for v in g.values())  # noqa: E731
    return a != b and bag(a) == bag(b)


def test_glimpse_eval_ranks_shapes_far_better_than_chance(scenes: Path) -> None:
    run = glimpse(
        "eval", scenes, "--fast", FAST, "--slow", SLOW, "--rerank", "10", "--device", "cpu", "--json"
    )
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["images"] == 20 and report["queries"] == 100
    # Chance would be R@1 = 5 in 20 scenes.
    assert report["fast"]["r1"] >= 40
    assert report["rerank"]["10"]["r1"] >= 80
