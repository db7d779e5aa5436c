"""The Fast encoder's speed-ups keep its answers: trimmed text, the int8 image tower and its self-check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import openclip
from engine.models.openclip import OpenClipFastEncoder, encode_text_trimmed, quantized_tower
from engine.models.presets import parse_model_spec


def encoder(precision: str | None = "auto") -> OpenClipFastEncoder:
    # A fresh encoder each time: the loader's cached one keeps its precision decision for the process.
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


def test_the_int8_tower_is_used_when_it_agrees_with_fp32() -> None:
    fast = encoder()
    assert fast.precision == "int8?"
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(fast._model.visual(images()), dim=-1).numpy()
    vectors = fast.embed_prepared(images())
    assert fast.precision == "int8" and fast._image_int8.min_cosine >= 0.995
    assert np.min(np.sum(vectors * reference, axis=1)) >= 0.995
    modules = list(fast._image_int8.module.modules())
    assert any(isinstance(m, openclip._LinearSelfAttention) for m in modules), "attention is quantised too"
    assert not any(type(m) is torch.nn.Linear for m in modules)


def test_the_int8_text_tower_is_checked_on_the_first_query_and_agrees_with_fp32() -> None:
    fast, reference = encoder(), encoder("fp32")
    assert fast.text_precision == "int8?"
    texts = ["a dog", "two kids flying a red kite on a beach"]
    vectors = fast.embed_texts(texts[:1])
    assert fast.text_precision == "int8" and fast._text_int8.min_cosine >= 0.995
    assert np.sum(vectors[0] * reference.embed_texts(texts[:1])[0]) >= 0.995
    both = np.sum(fast.embed_texts(texts) * reference.embed_texts(texts), axis=1)
    assert both.min() >= 0.99  # the causal mask still holds in the rebuilt attention


def test_int8_that_disagrees_with_fp32_falls_back_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openclip, "MIN_INT8_COSINE", 1.01)  # no int8 result can pass
    fast = encoder()
    vectors = fast.embed_prepared(images())
    assert fast.precision == "fp32" and fast._image_int8.module is None
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(fast._model.visual(images()), dim=-1).numpy()
    assert np.allclose(vectors, reference, atol=1e-6)
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
    fast.embed_prepared(images())
    fast.embed_texts(["a dog"])
    assert fast.precision == expected and fast.text_precision == expected
    assert (fast._image_int8.module is None) == (expected == "fp32")


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
