"""`glimpse eval --calibrate-fusion`: a preset's fusion weight measured on a labelled set and used from then on."""

from __future__ import annotations

import json
import math

import pytest

from engine.search.fusion import calibration_file, fusion_weight
from tests.e2e.conftest import glimpse


@pytest.mark.slow
def test_a_calibrated_weight_is_kept_and_searches_use_it(tmp_path) -> None:
    data = tmp_path / "synth"
    assert glimpse("dataset", "synth", data, "--images", "60", "--seed", "5").code == 0
    run = glimpse(
        "eval", data, "--split", "val", "--model", "shapes", "--rerank", "5", "--queries", "20",
        "--calibrate-fusion", "--device", "cpu", "--json",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    result = run.json()
    assert result["preset"] == "shapes" and result["k"] == 5 and result["queries"] == 20
    assert result["best_weight"] in [float(w) for w in result["r1_by_weight"] if w != "inf"]
    assert result["r1_by_weight"][str(result["best_weight"])] == max(result["r1_by_weight"].values())
    kept = json.loads(calibration_file().read_text())["shapes"]
    assert kept["weight"] == result["best_weight"] and "synth" in kept["dataset"]
    assert fusion_weight("shapes") == result["best_weight"] and math.isfinite(fusion_weight("shapes"))
    calibration_file().unlink()  # the shipped weight again, for the other tests


def test_calibrating_needs_a_preset(tmp_path) -> None:
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "dataset.json").write_text('{"images": []}')
    run = glimpse("eval", tmp_path / "set", "--fast", "shapes", "--calibrate-fusion")
    assert run.code == 2 and "--model PRESET" in run.stderr
