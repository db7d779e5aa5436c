"""A weights file with outlier channels planted in it, as a user can write one, indexes in int8 through the
real `glimpse index` (docs/models.md, "int8")."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.models import openclip
from engine.models.presets import parse_model_spec
from tests.e2e.conftest import glimpse
from tests.factory import make_photo
from tests.outliers import plant_outliers


def test_a_weights_file_with_planted_outliers_indexes_in_int8(tmp_path: Path, library: Path) -> None:
    built = openclip.build(parse_model_spec("tiny-test"), "cpu")
    plant_outliers(built.model.visual, 100)
    plant_outliers(built.model.transformer, 100)
    weights = tmp_path / "planted.pt"
    torch.save(built.model.state_dict(), weights)
    photos = tmp_path / "photos"
    for seed in range(3):
        make_photo(photos / f"photo-{seed}.jpg", seed=seed)

    run = glimpse(
        "index",
        photos,
        "--model",
        f"tiny-test@{weights}",
        library=library,
        env={openclip.PRECISION_ENV: "auto"},
    )
    assert run.code == 0, run.stderr
    logged = (library / "glimpse.log").read_text()
    check = next(line for line in logged.splitlines() if "int8 image tower of tiny-test@file-" in line)
    assert " INFO " in check and "using int8" in check and "threshold 0.998" in check
    cosine = float(check.split("lowest cosine ")[1].split()[0])
    assert cosine >= 0.999
