"""The Fast model side: presets, spec strings, the open_clip encoder, local weights and the hub download path."""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import open_clip
import open_clip.pretrained
import pytest
import torch
from PIL import Image

from engine.errors import ModelUnavailable, UsageError
from engine.models import (
    DEFAULT_PRESET,
    PRESETS,
    FastEncoder,
    Preset,
    clear_cache,
    download,
    is_available,
    load_fast,
    parse_model_spec,
    resolve_device,
)
from engine.models.openclip import PRECISION_ENV
from engine.models.presets import ARCHITECTURES, CHECKPOINT
from tests.hub import HubServer, serve_hub

REPO_ROOT = Path(__file__).resolve().parents[2]


def scene(colour: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> Image.Image:
    image = Image.new("RGB", size, colour)
    image.paste((255, 255, 255), (20, 20, 50, 50))
    return image


def tiny_weights(path: Path, seed: int) -> torch.nn.Module:
    """Save a random-initialised tiny CLIP's state dict (torch.save or safetensors, by suffix) and return it."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(**ARCHITECTURES["glimpse-tiny"]).eval()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return model


def reference_image_embedding(model: torch.nn.Module, encoder: FastEncoder, image: Image.Image) -> np.ndarray:
    with torch.inference_mode():
        return model.encode_image(encoder.prepare(image)[None], normalize=True).numpy()


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


# --- presets and spec strings -------------------------------------------------------------------------------


def test_presets_name_the_weights_open_clip_publishes() -> None:
    assert DEFAULT_PRESET in PRESETS
    for preset in PRESETS.values():
        if preset.architecture == CHECKPOINT:  # the shipped file describes itself
            assert parse_model_spec(preset.name).path.is_file()
            if preset.kind == "fast":
                assert load_fast(preset.name, "cpu").dim == preset.dim
            continue
        config = ARCHITECTURES.get(preset.architecture) or open_clip.get_model_config(preset.architecture)
        assert preset.dim == config["embed_dim"]
        if preset.offline:
            assert preset.pretrained is None and preset.hf_repo is None
            continue
        # open_clip's registry says 'org/repo/' (its default file name) or 'org/repo/file'.
        repo, filename = os.path.split(
            open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained)["hf_hub"]
        )
        assert (preset.hf_repo, preset.weights_file) == (repo, filename or "open_clip_pytorch_model.bin")


def test_presets_import_neither_torch_nor_open_clip() -> None:
    probe = "import sys, engine.models.presets; print(sorted({'torch', 'open_clip'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_spec_strings_name_pretrained_random_or_file_weights(tmp_path: Path) -> None:
    vit = PRESETS["vit-b-32"]
    spec = parse_model_spec("vit-b-32")
    assert (spec.preset, spec.source, spec.path, spec.key) == (vit, "pretrained", None, "vit-b-32")

    spec = parse_model_spec("vit-b-32@random")
    assert (spec.preset, spec.source, spec.key) == (vit, "random", "vit-b-32@random")

    weights = tmp_path / "my weights.bin"
    weights.write_bytes(b"not really weights")
    spec = parse_model_spec(f"vit-b-32@{weights}")
    digest = hashlib.sha256(b"not really weights").hexdigest()[:12]
    assert (spec.source, spec.path, spec.key) == ("file", weights, f"vit-b-32@file-{digest}")
    assert "/" not in spec.key and " " not in spec.key

    # tiny-test's own weights are the seeded random ones.
    assert parse_model_spec("tiny-test").key == parse_model_spec("tiny-test@random").key == "tiny-test"


def test_bad_spec_strings_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as unknown:
        parse_model_spec("vit-z-99")
    assert str(unknown.value) == (
        "Unknown model 'vit-z-99': the known presets are shapes, shapes-slow, tiny-test, tiny-test-slow, "
        "vit-b-32, vit-b-16, vit-l-14, coca-vit-b-32 and coca-vit-l-14."
    )
    with pytest.raises(UsageError, match="does not exist"):
        parse_model_spec(f"vit-b-32@{tmp_path / 'missing.bin'}")
    with pytest.raises(UsageError, match="names no weights"):
        parse_model_spec("vit-b-32@")


def test_device_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UsageError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="auto, cpu or cuda"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


# --- the encoder ----------------------------------------------------------------------------------------------


def test_tiny_test_embeds_images_and_texts_into_one_unit_norm_space() -> None:
    encoder = load_fast("tiny-test", device="cpu")
    assert isinstance(encoder, FastEncoder)
    assert (encoder.dim, encoder.device, encoder.precision) == (32, "cpu", "int8")
    assert encoder.key == "tiny-test+int8"  # int8 vectors are a vector space of their own

    images = encoder.embed_images([scene((200, 30, 30)), scene((30, 30, 200), (40, 120))])
    texts = encoder.embed_texts(["a red square", "a blue square", "a dog"])
    for vectors, count in ((images, 2), (texts, 3)):
        assert vectors.shape == (count, 32) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (images @ texts.T).shape == (2, 3)

    prepared = encoder.prepare(scene((0, 200, 0)))
    assert prepared.shape == (3, 64, 64) and prepared.dtype == torch.float32
    assert np.allclose(encoder.embed_prepared(prepared[None]), encoder.embed_images([scene((0, 200, 0))]))
    assert encoder.embed_texts([]).shape == (0, 32) and encoder.embed_images([]).shape == (0, 32)


def test_tiny_test_is_the_same_model_on_every_load_and_leaves_the_global_rng_alone() -> None:
    image, text = scene((120, 60, 10)), ["an orange square"]
    first = load_fast("tiny-test")
    assert load_fast("tiny-test") is first  # kept loaded for the process
    before = (first.embed_images([image]), first.embed_texts(text))

    clear_cache()
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    second = load_fast("tiny-test")
    assert torch.equal(torch.rand(3), expected_draw)
    assert second is not first
    assert np.array_equal(second.embed_images([image]), before[0])
    assert np.array_equal(second.embed_texts(text), before[1])


def test_vit_b_32_at_random_builds_the_real_architecture() -> None:
    encoder = load_fast("vit-b-32@random")
    assert (encoder.key, encoder.dim) == ("vit-b-32@random+int8", 512)
    assert encoder.prepare(scene((10, 10, 10))).shape == (3, 224, 224)
    vectors = np.concatenate(
        [encoder.embed_images([scene((10, 90, 10))]), encoder.embed_texts(["a green square"])]
    )
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- local weights file ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_a_local_weights_file_loads_into_the_preset_architecture(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRECISION_ENV, "fp32")  # the weights are on trial here, compared exactly
    weights = tmp_path / f"trained{suffix}"
    model = tiny_weights(weights, seed=7)

    encoder = load_fast(f"tiny-test@{weights}")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    assert encoder.key == f"tiny-test@file-{digest}"
    image = scene((200, 200, 0))
    loaded = encoder.embed_images([image])
    assert np.allclose(loaded, reference_image_embedding(model, encoder, image), atol=1e-6)
    assert not np.allclose(loaded, load_fast("tiny-test").embed_images([image]), atol=1e-3)


def test_weights_that_do_not_fit_the_architecture_are_reported(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.bin"
    tiny_weights(weights, seed=7)
    with pytest.raises(ModelUnavailable, match=r"does not fit model vit-b-32 \(open_clip ViT-B-32\)"):
        load_fast(f"vit-b-32@{weights}")


# --- the hub: offline error and first-run download ------------------------------------------------------------


def test_offline_without_weights_fails_fast_saying_which_file_and_how_to_fix_it(
    hub_env: Callable[[str], Path], closed_port: int
) -> None:
    hub_env(f"http://127.0.0.1:{closed_port}")
    assert not is_available("vit-b-32")

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as error:
        load_fast("vit-b-32")
    elapsed = time.monotonic() - started

    message = str(error.value)
    assert elapsed < 3, f"offline failure took {elapsed:.1f} s"
    assert "open_clip_pytorch_model.bin" in message and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert "--model vit-b-32@/path/to/open_clip_pytorch_model.bin" in message and "tiny-test" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        download("vit-b-32")


def test_hub_offline_mode_is_respected(
    hub_env: Callable[[str], Path], closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_env(f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    importlib.reload(huggingface_hub.constants)
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE"):
        download("vit-b-32")


@pytest.fixture
def loopback_hub() -> Iterator[HubServer]:
    with serve_hub() as server:
        yield server


TINY_HUB = Preset(
    name="tiny-hub",
    description="tiny-test's architecture with weights published on a loopback hub",
    architecture="glimpse-tiny",
    pretrained="loopback",
    hf_repo="glimpse-tests/tiny-clip",
    weights_file="open_clip_pytorch_model.bin",
    dim=32,
    download_mb=13,
    offline=False,
)


def publish(hub: HubServer, folder: Path, filename: str, seed: int) -> tuple[str, torch.nn.Module]:
    """Publish a tiny CLIP's weights as `filename` of the tiny-hub repository → (URL path, the model)."""
    model = tiny_weights(folder / filename, seed=seed)
    url_path = f"/{TINY_HUB.hf_repo}/resolve/main/{filename}"
    hub.files[url_path] = (folder / filename).read_bytes()
    return url_path, model


def test_first_run_downloads_the_weights_into_the_cache_once(
    hub_env: Callable[[str], Path],
    loopback_hub: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    preset = TINY_HUB
    monkeypatch.setitem(PRESETS, preset.name, preset)
    # A repository with the .bin only, as some of open_clip's have: the safetensors one is looked for first.
    url_path, model = publish(loopback_hub, tmp_path, "open_clip_pytorch_model.bin", seed=11)
    published = tmp_path / "open_clip_pytorch_model.bin"
    cache = hub_env(loopback_hub.endpoint)
    # hf_hub_download shows its bar only on a terminal; this is huggingface_hub's switch to show it anyway.
    monkeypatch.setenv("TQDM_POSITION", "-1")
    monkeypatch.setenv(PRECISION_ENV, "fp32")  # the downloaded weights are compared exactly

    assert not is_available("tiny-hub")
    encoder = load_fast("tiny-hub")
    assert loopback_hub.downloads == [url_path]
    assert "open_clip_pytorch_model.bin" in capfd.readouterr().err  # the progress bar names the file
    assert is_available("tiny-hub")
    cached = download("tiny-hub")
    assert cached.is_relative_to(cache) and cached.read_bytes() == published.read_bytes()
    image = scene((0, 120, 240))
    assert np.allclose(
        encoder.embed_images([image]), reference_image_embedding(model, encoder, image), atol=1e-6
    )

    # From now on the cache serves it, with the hub gone.
    loopback_hub.files.clear()
    clear_cache()
    assert load_fast("tiny-hub").key == "tiny-hub"
    assert loopback_hub.downloads == [url_path]


def test_the_safetensors_weights_are_downloaded_where_the_repository_has_them(
    hub_env: Callable[[str], Path], loopback_hub: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(PRESETS, TINY_HUB.name, TINY_HUB)
    publish(loopback_hub, tmp_path, "open_clip_pytorch_model.bin", seed=11)
    safe_path, safe_model = publish(loopback_hub, tmp_path, "open_clip_model.safetensors", seed=12)
    hub_env(loopback_hub.endpoint)
    monkeypatch.setenv(PRECISION_ENV, "fp32")

    encoder = load_fast("tiny-hub")
    assert loopback_hub.downloads == [safe_path]  # and never the .bin
    assert download("tiny-hub").name == "open_clip_model.safetensors"
    image = scene((240, 120, 0))
    assert np.allclose(
        encoder.embed_images([image]), reference_image_embedding(safe_model, encoder, image), atol=1e-6
    )


@pytest.mark.parametrize(
    "published",
    [("open_clip_model.safetensors", "open_clip_pytorch_model.bin"), ("open_clip_pytorch_model.bin",)],
)
def test_weights_that_open_clip_downloaded_are_used_offline(
    hub_env: Callable[[str], Path],
    loopback_hub: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    published: tuple[str, ...],
) -> None:
    monkeypatch.setitem(PRESETS, TINY_HUB.name, TINY_HUB)
    models = {name: publish(loopback_hub, tmp_path, name, seed=20 + i)[1] for i, name in enumerate(published)}
    hub_env(loopback_hub.endpoint)
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    # open_clip's own download, as `open_clip.create_model(..., pretrained=...)` does it for a hub tag.
    filled = Path(open_clip.pretrained.download_pretrained_from_hf(TINY_HUB.hf_repo))
    assert filled.name == published[0]
    fetched = list(loopback_hub.downloads)

    loopback_hub.files.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    importlib.reload(huggingface_hub.constants)
    assert is_available("tiny-hub") and download("tiny-hub") == filled
    encoder = load_fast("tiny-hub")
    assert loopback_hub.downloads == fetched  # nothing more
    image = scene((90, 20, 160))
    expected = reference_image_embedding(models[published[0]], encoder, image)
    assert np.allclose(encoder.embed_images([image]), expected, atol=1e-6)
