"""The Fast encoder's speed-ups keep its answers: trimmed text, the int8 image tower and its self-check."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import UsageError
from engine.models import openclip
from engine.models.openclip import OpenClipFastEncoder, encode_text_trimmed, quantized_tower
from engine.models.presets import parse_model_spec

REPO_ROOT = Path(__file__).resolve().parents[2]


def encoder(precision: str | None = "auto") -> OpenClipFastEncoder:
    # A fresh encoder each time, not the loader's cached one.
    spec = parse_model_spec("tiny-test")
    built = openclip.build(spec, "cpu")
    return OpenClipFastEncoder(
        built.model,
        built.preprocess,
        built.tokenizer,
        key=spec.key,
        dim=32,
        device="cpu",
        precision=precision,
    )


def images(count: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(count, 3, 64, 64, generator=generator) * 2 - 1


def test_trimmed_text_gives_the_padded_embedding() -> None:
    fast = encoder("fp32")
    tokens = fast._tokenizer(["a dog", "two kids flying a red kite on a beach at sunset", ""])
    with torch.inference_mode():
        padded = fast._model.encode_text(tokens)
        trimmed = encode_text_trimmed(fast._model, tokens)
    torch.testing.assert_close(trimmed, padded, atol=1e-5, rtol=1e-5)
    one = fast.embed_texts(["a dog"])[0]
    assert np.allclose(one, torch.nn.functional.normalize(padded[:1], dim=-1)[0].numpy(), atol=1e-5)


def test_attention_rebuilt_from_linear_layers_computes_the_same() -> None:
    torch.manual_seed(0)
    attention = torch.nn.MultiheadAttention(64, 2, batch_first=True)
    rebuilt = openclip._LinearSelfAttention(attention)
    x = torch.randn(3, 5, 64)
    with torch.inference_mode():
        expected = attention(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(rebuilt(x, x, x, need_weights=False)[0], expected, atol=1e-5, rtol=1e-5)


def test_the_int8_image_tower_is_decided_on_the_probe_before_any_image() -> None:
    fast = encoder()
    # Decided before any image: on the fixed probe, not on whatever the first batch happens to hold.
    check = fast.image_check
    assert fast.precision == check.precision == "int8" and fast.key == "tiny-test+int8"
    assert check.min_cosine >= check.threshold == openclip.MIN_INT8_COSINE and check.ms > 0
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(fast._model.visual(images()), dim=-1).numpy()
    vectors = fast.embed_prepared(images())
    assert np.min(np.sum(vectors * reference, axis=1)) >= 0.999
    assert fast.image_check is check and fast.key == "tiny-test+int8"  # final
    modules = list(fast._image_int8.modules())
    assert any(isinstance(m, openclip._LinearSelfAttention) for m in modules), "attention is quantised too"
    assert not any(type(m) is torch.nn.Linear for m in modules)


def test_the_decision_and_its_threshold_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="engine.models.openclip"):
        fast = encoder()
        check = fast.image_check  # decided when first needed
    record = next(r for r in caplog.records if "int8 image tower of tiny-test" in r.getMessage())
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert f"{check.min_cosine:.5f}" in message and "threshold 0.998" in message
    assert "using int8" in message


def test_the_decision_is_the_same_whatever_is_embedded_first() -> None:
    first, second = encoder(), encoder()
    first.embed_prepared(images() * 4)  # far brighter and darker than a photo
    second.embed_texts([" ".join(["a very long query"] * 20)])
    assert first.image_check.min_cosine == second.image_check.min_cosine
    assert first.text_check.min_cosine == second.text_check.min_cosine


@pytest.mark.slow
def test_every_process_decides_alike() -> None:
    # A library is written by one process and searched by others: all must name the same vector space.
    probe = (
        "from engine.models.openclip import OpenClipFastEncoder as E; from engine.models.presets import "
        "parse_model_spec as p; e = E.load(p('tiny-test'), 'cpu'); "
        "print(e.key, repr(e.image_check.min_cosine), e.text_precision, repr(e.text_check.min_cosine))"
    )
    environment = {k: v for k, v in os.environ.items() if k != openclip.PRECISION_ENV}
    runs = [
        subprocess.run(
            [sys.executable, "-c", probe],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.split()
        for _ in range(2)
    ]
    fast = encoder()
    assert (
        runs[0]
        == runs[1]
        == [fast.key, repr(fast.image_check.min_cosine), "int8", repr(fast.text_check.min_cosine)]
    )


def test_the_int8_text_tower_is_decided_on_fixed_queries_and_agrees_with_fp32() -> None:
    fast, reference = encoder(), encoder("fp32")
    texts = ["a dog", "two kids flying a red kite on a beach"]
    vectors = fast.embed_texts(texts[:1])
    check = fast.text_check
    assert fast.text_precision == check.precision == "int8" and check.min_cosine >= check.threshold
    assert np.sum(vectors[0] * reference.embed_texts(texts[:1])[0]) >= 0.995
    both = np.sum(fast.embed_texts(texts) * reference.embed_texts(texts), axis=1)
    assert both.min() >= 0.99  # the causal mask still holds in the rebuilt attention
    assert fast.key == "tiny-test+int8" and reference.key == "tiny-test"  # texts write no vectors


def test_int8_that_disagrees_with_fp32_falls_back_to_fp32(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(openclip, "MIN_INT8_COSINE", 1.01)  # no int8 result can pass
    with caplog.at_level(logging.INFO, logger="engine.models.openclip"):
        fast = encoder()
    assert fast.precision == "fp32" and fast._image_int8 is None and fast.key == "tiny-test"
    assert fast.image_check.min_cosine < 1.01 and fast.image_check.threshold == 1.01
    warning = next(r for r in caplog.records if r.name == openclip.log.name and r.levelno == logging.WARNING)
    assert "staying in fp32" in warning.getMessage() and "threshold 1.010" in warning.getMessage()
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(fast._model.visual(images()), dim=-1).numpy()
    assert np.allclose(fast.embed_prepared(images()), reference, atol=1e-6)


@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "int8"), ("auto", "int8"), ("int8", "int8"), ("fp32", "fp32")]
)
def test_precision_is_int8_unless_the_environment_asks_for_fp32(monkeypatch, setting, expected) -> None:
    if setting is None:
        monkeypatch.delenv(openclip.PRECISION_ENV, raising=False)
    else:
        monkeypatch.setenv(openclip.PRECISION_ENV, setting)
    fast = encoder(None)
    assert fast.precision == expected and fast.text_precision == expected
    assert (fast._image_int8 is None) == (expected == "fp32")
    assert fast.key == "tiny-test" + ("+int8" if expected == "int8" else "")


def test_the_precision_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(openclip.PRECISION_ENV, "int8")
    assert (
        OpenClipFastEncoder.load(parse_model_spec("tiny-test"), "cpu", precision="fp32").precision == "fp32"
    )
    monkeypatch.setenv(openclip.PRECISION_ENV, "int4")
    with pytest.raises(UsageError, match="auto, fp32 or int8, not 'int4'"):
        OpenClipFastEncoder.load(parse_model_spec("tiny-test"), "cpu")


def test_forced_int8_is_kept_even_below_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openclip, "MIN_INT8_COSINE", 1.01)
    fast = encoder("int8")
    assert fast.precision == "int8" and fast.image_check.reason == "int8 as asked"


def test_a_gpu_encoder_stays_in_fp32_without_trying_int8() -> None:
    spec = parse_model_spec("tiny-test")
    built = openclip.build(spec, "cpu")
    # Nothing runs at construction on a GPU: the check is the CPU's, so this needs no GPU to test.
    fast = OpenClipFastEncoder(
        built.model, built.preprocess, built.tokenizer, key=spec.key, dim=32, device="cuda"
    )
    assert fast.precision == "fp32" and fast.key == "tiny-test" and fast.image_check.min_cosine is None
    assert "CPU" in fast.image_check.reason


def test_the_probe_is_the_same_pictures_every_time() -> None:
    pictures = openclip.probe_pictures()
    assert len(pictures) == openclip.PROBE_PICTURES and {p.size for p in pictures} == {(256, 192)}
    drawn_again = openclip.probe_pictures.__wrapped__()
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pictures, drawn_again, strict=True)
    )
    # Pictures, not noise: varied brightness and contrast from one to the next.
    means = [np.asarray(p).mean() for p in pictures]
    assert max(means) - min(means) > 100 and all(np.asarray(p).std() > 5 for p in pictures)


def test_an_int8_image_vector_does_not_depend_on_the_other_images_of_its_batch() -> None:
    # A killed and resumed index embeds a photo with other photos than an uninterrupted one does: its vector
    # must come out the same, or the two libraries would rank near-ties differently.
    fast = encoder("int8")
    photo = images(1)
    generator = torch.Generator().manual_seed(1)
    others = torch.rand(31, 3, 64, 64, generator=generator) * 8 - 4  # far brighter and darker than the photo
    alone = fast.embed_prepared(photo)[0]
    among_others = fast.embed_prepared(torch.cat([others[:20], photo, others[20:]]))[20]
    among_itself = fast.embed_prepared(photo.expand(8, -1, -1, -1))
    assert fast.precision == "int8"
    np.testing.assert_allclose(among_others, alone, atol=1e-5)
    np.testing.assert_allclose(among_itself, np.broadcast_to(alone, among_itself.shape), atol=1e-5)


def test_a_tower_without_attention_modules_still_quantises() -> None:
    tower = torch.nn.Sequential(torch.nn.Linear(8, 8))
    quantized = quantized_tower(tower)
    assert quantized is not None and not isinstance(quantized[0], torch.nn.Linear)


def test_the_image_size_is_the_towers() -> None:
    assert encoder().image_size == 64
