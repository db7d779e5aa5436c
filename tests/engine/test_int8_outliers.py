"""int8 on weights that look like real ones: outlier channels planted into the image tower keep int8 on and
its vectors as close to fp32 as on weights without them (docs/models.md, "int8")."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.models import openclip
from engine.models.openclip import OpenClipFastEncoder
from engine.models.presets import parse_model_spec
from tests.factory import make_photo
from tests.outliers import plant_outliers

SCALES = (10, 30, 100)
#: The lowest cosine between an int8 and an fp32 photo vector that these tests accept.
MIN_COSINE = 0.999
#: int8 may swap near-ties, and only those: at each rank of a query's top 10, the fp32 score of int8's pick
#: is within this many standard deviations (of the query's fp32 scores over the library) of fp32's own pick.
NEAR_TIE = 0.1


@dataclass
class Reference:
    """A model's fp32 answers on a photo library and a set of query photos kept out of it."""

    built: openclip.OpenClipModel
    spec_key: str
    dim: int
    library: torch.Tensor  # prepared photos
    queries: torch.Tensor
    library_vectors: np.ndarray  # fp32
    query_vectors: np.ndarray


def reference(name: str, folder: Path, photos: int, queries: int, size: tuple[int, int]) -> Reference:
    spec = parse_model_spec(name)
    built = openclip.build(spec, "cpu")
    paths = [make_photo(folder / f"{seed}.jpg", size=size, seed=seed) for seed in range(photos + queries)]
    prepared = torch.stack([built.preprocess(Image.open(path).convert("RGB")) for path in paths])
    fp32 = encoder(built, built.model, spec.key, "fp32")
    vectors = np.concatenate([fp32.embed_prepared(chunk) for chunk in prepared.split(32)])
    return Reference(
        built, spec.key, fp32.dim, prepared[:photos], prepared[photos:], vectors[:photos], vectors[photos:]
    )


def encoder(
    built: openclip.OpenClipModel, model: torch.nn.Module, key: str, precision: str | None = None
) -> OpenClipFastEncoder:
    dim = model.text_projection.shape[1]
    return OpenClipFastEncoder(
        model, built.preprocess, built.tokenizer, key=key, dim=dim, device="cpu", precision=precision
    )


def planted(ref: Reference, scale: float) -> OpenClipFastEncoder:
    """An encoder over the reference model with outliers planted in its image tower, precision left to auto."""
    # The same model but for a planted copy of its image tower: the text tower, shared, is left alone.
    model = copy.copy(ref.built.model)
    model._modules = {**model._modules, "visual": plant_outliers(copy.deepcopy(model.visual), scale)}
    return encoder(ref.built, model, ref.spec_key)


def worst_near_tie(fp32_scores: np.ndarray, int8_scores: np.ndarray) -> float:
    """The largest fp32 score lost at any rank of any query's top 10 by taking int8's order, in standard
    deviations of that query's fp32 scores; 0 when every top 10 is fp32's."""
    rows = np.arange(len(fp32_scores))[:, None]
    ours, theirs = np.argsort(-fp32_scores, axis=1)[:, :10], np.argsort(-int8_scores, axis=1)[:, :10]
    lost = fp32_scores[rows, ours] - fp32_scores[rows, theirs]
    return float((lost / fp32_scores.std(axis=1, keepdims=True)).max())


def assert_int8_as_good_as_fp32(fast: OpenClipFastEncoder, ref: Reference) -> np.ndarray:
    assert fast.precision == "int8" and fast.key == ref.spec_key + "+int8"
    assert fast.image_check.min_cosine >= openclip.MIN_INT8_COSINE
    vectors = np.concatenate([fast.embed_prepared(chunk) for chunk in ref.library.split(32)])
    cosines = np.sum(vectors * ref.library_vectors, axis=1)
    assert cosines.min() >= MIN_COSINE
    fp32_scores = ref.query_vectors @ ref.library_vectors.T
    assert worst_near_tie(fp32_scores, ref.query_vectors @ vectors.T) <= NEAR_TIE
    return vectors


def test_planted_outliers_leave_fp32_unchanged_and_are_outliers() -> None:
    built = openclip.build(parse_model_spec("tiny-test"), "cpu")
    tower = plant_outliers(copy.deepcopy(built.model.visual), 100)
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    after_ln: list[torch.Tensor] = []
    hook = tower.transformer.resblocks[0].ln_2.register_forward_hook(lambda m, i, out: after_ln.append(out))
    with torch.inference_mode():
        torch.testing.assert_close(tower(images), built.model.visual(images), atol=1e-4, rtol=1e-4)
    hook.remove()
    peaks = after_ln[0].abs().amax(dim=(0, 1))
    assert peaks.max() > 30 * peaks.median()  # what a real ViT's LayerNorm hands its MLP


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return reference("tiny-test", tmp_path_factory.mktemp("photos"), photos=300, queries=20, size=(160, 120))


def test_without_outliers_int8_is_as_good_as_fp32(tiny: Reference) -> None:
    assert_int8_as_good_as_fp32(encoder(tiny.built, tiny.built.model, tiny.spec_key), tiny)


@pytest.mark.parametrize("scale", SCALES)
def test_planted_outliers_keep_tiny_test_in_int8_and_as_good_as_fp32(tiny: Reference, scale: float) -> None:
    vectors = assert_int8_as_good_as_fp32(planted(tiny, scale), tiny)
    # Smoothing undoes any per-channel rescaling: int8 computes what it did without the outliers, but for
    # the odd value that float rounding moves across a quantisation step.
    without = encoder(tiny.built, tiny.built.model, tiny.spec_key).embed_prepared(tiny.library)
    assert np.sum(vectors * without, axis=1).min() >= 0.99999


def test_unsmoothed_int8_would_have_failed(tiny: Reference) -> None:
    # What int8 did before smoothing: the same planted outliers cost it most of its agreement with fp32.
    tower = openclip.quantized_tower(plant_outliers(copy.deepcopy(tiny.built.model.visual), 100))
    with torch.inference_mode():
        vectors = torch.nn.functional.normalize(tower(tiny.library), dim=-1).numpy()
    assert np.sum(vectors * tiny.library_vectors, axis=1).min() < 0.99


@pytest.mark.slow
def test_planted_outliers_keep_vit_b_32_in_int8_and_as_good_as_fp32(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The real ViT-B/32 architecture (random weights, about 600 MB); fewer photos than for tiny-test, to stay
    # under a minute on two cores.
    ref = reference(
        "vit-b-32@random", tmp_path_factory.mktemp("photos"), photos=96, queries=16, size=(320, 240)
    )
    ref.built.model.transformer = None  # the text tower takes no part: free its memory
    for scale in SCALES:
        assert_int8_as_good_as_fp32(planted(ref, scale), ref)
