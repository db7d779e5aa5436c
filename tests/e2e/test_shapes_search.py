"""The shipped `shapes` models through the real `glimpse` command: a caption finds its own scene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import glimpse


@pytest.mark.slow
def test_captions_find_their_own_scene_among_distractors(tmp_path):
    data = tmp_path / "synth"
    assert glimpse("dataset", "synth", data, "--images", "80", "--seed", "11").code == 0
    images = json.loads((data / "dataset.json").read_text())["images"]
    library = tmp_path / "library"
    run = glimpse("index", data / "images", "--model", "shapes", "--json", library=library)
    assert run.code == 0 and run.json()["images"] == 80

    queries = [(image["filename"], image["sentences"][0]["raw"]) for image in images[:12]]
    firsts = 0
    for filename, caption in queries:
        results = glimpse("search", caption, "--limit", "5", "--json", library=library).json()
        assert results[0]["slow_score"] is not None  # re-ranked by the shipped Slow model
        firsts += Path(results[0]["path"]).name == filename
    # 80 scenes, most with a twin that swaps colours, sizes or the relation: chance is about 1 in 80.
    assert firsts >= 9, f"{firsts} of {len(queries)} captions found their own scene first"
