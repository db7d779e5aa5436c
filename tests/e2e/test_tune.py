"""`glimpse tune` through the real command: the library's Fast model learns from captions its Slow model writes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import glimpse


def _error(stderr: str) -> str:
    """The command's one-sentence error (a line of its own, no traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("glimpse: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_tune_uses_a_better_model_searches_with_it_and_undo_goes_back(tmp_path):
    data = tmp_path / "synth"
    assert glimpse("dataset", "synth", data, "--images", "40", "--seed", "11").code == 0
    library = tmp_path / "library"
    assert glimpse("index", data / "images", "--model", "shapes", "--no-read-text", library=library).code == 0

    run = glimpse("tune", "--minutes", "0.25", "--json", library=library)
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["pictures"] == 40
    assert report["written"] >= report["kept"] > report["held_out"] > 0
    # The shipped model at the tuning learning rate gains on the held-out captions (82 → 89 R@1 here).
    assert report["tuned"] is True and report["r1_after"] > report["r1_before"], report
    checkpoint = Path(report["checkpoint"])
    assert checkpoint.is_file() and checkpoint.parent == (library / "tuned").resolve()
    assert report["model"] == f"shapes@{checkpoint}"
    # Progress on stderr: the captions written, the training, the re-embedding.
    assert "writing captions" in run.stderr
    assert "distilling fast" in run.stderr
    assert "re-embedded" in run.stderr

    status = glimpse("status", "--json", library=library).json()
    assert status["model"] == report["model"] and status["tuned"] is True
    assert status["frames"] == 40 and status["pending"] == 0
    caption = json.loads((data / "dataset.json").read_text())["images"][0]["sentences"][0]["raw"]
    results = glimpse("search", caption, "--limit", "5", "--json", library=library).json()
    assert len(results) == 5 and results[0]["slow_score"] is not None

    run = glimpse("tune", "--undo", "--json", library=library)
    assert run.code == 0, run.stderr
    assert run.json() == {"model": "shapes", "tuned": False}
    status = glimpse("status", "--json", library=library).json()
    assert status["model"] == "shapes" and status["tuned"] is False and status["pending"] == 0

    again = glimpse("tune", "--undo", library=library)
    assert again.code == 2
    assert "nothing to undo" in _error(again.stderr)


def test_an_unindexed_library_is_not_tuned(tmp_path):
    run = glimpse("tune", "--minutes", "0.1", library=tmp_path / "library")
    assert run.code == 2
    assert "glimpse index" in _error(run.stderr)


def test_a_library_of_too_few_pictures_is_not_tuned(tmp_path):
    data = tmp_path / "synth"
    assert glimpse("dataset", "synth", data, "--images", "6", "--seed", "3").code == 0
    library = tmp_path / "library"
    assert glimpse("index", data / "images", "--model", "shapes", "--no-read-text", library=library).code == 0
    run = glimpse("tune", "--minutes", "0.1", library=library)
    assert run.code == 2
    assert "6 pictures" in _error(run.stderr)


def test_an_open_clip_library_is_tuned_by_its_coca(tmp_path):
    """The plumbing on tiny-test's random CLIP and CoCa: captions written, the decision reported."""
    data = tmp_path / "synth"
    assert glimpse("dataset", "synth", data, "--images", "16", "--seed", "3").code == 0
    library = tmp_path / "library"
    assert (
        glimpse("index", data / "images", "--model", "tiny-test", "--no-read-text", library=library).code == 0
    )
    run = glimpse("tune", "--minutes", "0.05", "--json", library=library)
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["pictures"] == 16 and report["written"] >= report["kept"] >= report["held_out"]
    assert "writing captions" in run.stderr and "teacher scoring" in run.stderr
    status = glimpse("status", "--json", library=library).json()
    assert status["tuned"] is report["tuned"] and status["model"] == report["model"]
    if report["tuned"]:
        assert Path(report["checkpoint"]).is_file() and report["model"].startswith("tiny-test@")
    else:
        assert report["checkpoint"] is None and report["model"] == "tiny-test"
        assert "not used" in run.stderr and not list((library / "tuned").glob("*.pt"))
