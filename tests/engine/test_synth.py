"""The synthetic shapes set: deterministic, in Karpathy's format, with hard negatives in the test split."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from PIL import Image

from engine.models.vocabulary import words
from engine.training.synth import INVERSE, Scene, captions_for, random_scene, twin_of, write_synthetic_set


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "images").iterdir())}


def test_the_same_seed_writes_the_same_set_and_another_seed_another(tmp_path: Path) -> None:
    write_synthetic_set(tmp_path / "a", 30, seed=3)
    write_synthetic_set(tmp_path / "b", 30, seed=3)
    write_synthetic_set(tmp_path / "c", 30, seed=4)
    assert (tmp_path / "a/dataset.json").read_text() == (tmp_path / "b/dataset.json").read_text()
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert (tmp_path / "a/dataset.json").read_text() != (tmp_path / "c/dataset.json").read_text()


def test_it_is_in_karpathys_format_with_five_captions_per_image(tmp_path: Path) -> None:
    report = write_synthetic_set(tmp_path, 50, seed=0)
    document = json.loads((tmp_path / "dataset.json").read_text())
    images = document["images"]
    assert len(images) == report.images == 50
    assert Counter(i["split"] for i in images) == {"train": 40, "val": 5, "test": 5}
    sentids = [s["sentid"] for i in images for s in i["sentences"]]
    assert sentids == list(range(250))
    for imgid, image in enumerate(images):
        assert image["imgid"] == imgid
        assert len(image["sentences"]) == 5
        assert image["sentids"] == [s["sentid"] for s in image["sentences"]]
        assert all(s["imgid"] == imgid and s["tokens"] == s["raw"].split() for s in image["sentences"])
        with Image.open(tmp_path / image["filepath"] / image["filename"]) as picture:
            assert picture.size == (64, 64) and picture.mode == "RGB"


def test_every_caption_names_both_groups_and_the_relation() -> None:
    rng = random.Random(1)
    for _ in range(50):
        scene = random_scene(rng)
        for caption in captions_for(scene, rng):
            said = set(words(caption))
            for group in (scene.a, scene.b):
                assert {group.size, group.colour} <= said
            relation = set(scene.relation.split()) | set(INVERSE[scene.relation].split())
            assert said & (relation | {"over", "under", "beneath", "top"})


def _bag(scene: dict) -> tuple:
    """What a dual encoder with no sense of binding sees: the attributes, unbound, and the relation's axis."""
    values = sorted(str(v) for group in (scene["a"], scene["b"]) for v in group.values())
    axis = "horizontal" if scene["relation"] in ("left of", "right of") else "vertical"
    return (*values, axis)


def test_most_test_scenes_have_a_hard_negative_in_the_test_split(tmp_path: Path) -> None:
    write_synthetic_set(tmp_path, 400, seed=0)
    test = [
        i["scene"]
        for i in json.loads((tmp_path / "dataset.json").read_text())["images"]
        if i["split"] == "test"
    ]
    with_twin = sum(any(_bag(s) == _bag(t) and s != t for t in test) for s in test)
    assert with_twin >= 0.6 * len(test)


def test_a_twin_keeps_the_words_and_changes_the_scene() -> None:
    rng = random.Random(2)
    for _ in range(100):
        scene = random_scene(rng)
        twin = twin_of(scene, rng)
        assert twin != scene
        flipped = Scene(twin.b, twin.a, INVERSE[twin.relation])  # the same scene said the other way round
        assert flipped != scene
