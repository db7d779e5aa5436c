"""The Slow model side: CoCa log-likelihoods, their agreement with open_clip's own pass, presets and the bench."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from engine.cli import main
from engine.errors import ModelUnavailable, UsageError
from engine.models import coca
from engine.models.base import SlowScorer, TokenSlowScorer
from engine.models.coca import CocaSlowScorer, naive_log_likelihoods
from engine.models.loader import clear_cache, load_fast, load_slow
from engine.models.presets import PRESETS, paired_slow, parse_model_spec

QUERIES = [
    "two kids flying a red kite on a beach",
    "a dog",
    "",
    # "!(" tokenises to id 0, the padding id, then "(": a real token all the same.
    'a t-shirt saying "hello!(world)"',
    # Longer than the 76-token context: truncated, and still ends with <end_of_text>.
    " ".join(["a red square next to a blue circle"] * 12),
]
#: How far the fused scorer may be from open_clip's own pass: 1e-4, or float32's seventh digit on the long
#: query's sum of 75 terms (hundreds of nats).
ATOL, RTOL = 1e-4, 1e-6


def scene(colour: tuple[int, int, int], box: tuple[int, int, int, int] = (20, 20, 50, 50)) -> Image.Image:
    image = Image.new("RGB", (96, 80), colour)
    image.paste((255, 255, 255), box)
    return image


SCENES = [scene((200, 30, 30)), scene((30, 30, 200), (40, 10, 90, 70)), scene((20, 160, 20), (0, 0, 30, 80))]


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def tiny() -> CocaSlowScorer:
    scorer = load_slow("tiny-test-slow", device="cpu")
    assert isinstance(scorer, CocaSlowScorer)
    return scorer


def randomise_norms_and_biases(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every LayerNorm a gain in [0.5, 1.5) and a bias, and every attention and MLP layer a bias: random
    initialisation leaves them at one and zero, where the scorer's LayerNorm and bias folds vanish."""
    generator = torch.Generator().manual_seed(seed)

    def draw(like: torch.Tensor, scale: float, offset: float = 0.0) -> torch.Tensor:
        return offset + scale * torch.randn(like.shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                module.bias.copy_(draw(module.bias, 0.2))
            elif isinstance(module, torch.nn.MultiheadAttention):
                module.in_proj_bias.copy_(draw(module.in_proj_bias, 0.2))
            elif isinstance(module, torch.nn.Linear) and module.bias is not None:  # out_proj, c_fc, c_proj
                module.bias.copy_(draw(module.bias, 0.2))


def randomised(spec: str) -> CocaSlowScorer:
    # Built afresh, not through the loader: its cached scorer must keep open_clip's initialisation.
    scorer = CocaSlowScorer.load(parse_model_spec(spec), "cpu")
    randomise_norms_and_biases(scorer._model)
    return scorer


def padded_log_likelihoods(
    scorer: CocaSlowScorer, text: str, tokens: torch.Tensor, length: int
) -> np.ndarray:
    """open_clip's forward pass on the text padded (or trimmed) to `length` tokens, summed over the targets up
    to <end_of_text>."""
    model = scorer._model
    ids = scorer._tokenizer([text])
    end = int((ids[0] == scorer._tokenizer.eot_token_id).nonzero()[0])
    ids = ids[:, :length].expand(len(tokens), -1)
    with torch.inference_mode():
        output = model(None, ids, image_latent=torch.zeros(len(tokens), 64), image_embs=tokens)
        labels = output["labels"]
        picked = output["logits"].log_softmax(-1).gather(-1, labels[..., None])[..., 0]
        return picked[:, :end].sum(-1).numpy()


# --- scores -------------------------------------------------------------------------------------------------


def test_tiny_scores_equal_the_naive_forward_pass(tiny: CocaSlowScorer) -> None:
    assert isinstance(tiny, SlowScorer) and isinstance(tiny, TokenSlowScorer)
    assert (tiny.key, tiny.device, tiny.token_shape) == ("tiny-test-slow", "cpu", (16, 64))
    tokens = tiny.image_tokens(SCENES)
    assert tokens.shape == (3, 16, 64)
    for text in QUERIES:
        scores = tiny.score_tokens(text, tokens)
        assert scores.shape == (3,) and scores.dtype == np.float32
        assert np.allclose(scores, naive_log_likelihoods(tiny, text, tokens), rtol=RTOL, atol=ATOL)
    assert np.array_equal(tiny.score(text, SCENES), scores)


def test_scores_equal_the_naive_pass_with_random_layer_norms_and_biases() -> None:
    # Every fold of the fused pass at work: LayerNorm gains and biases, key, value and MLP biases.
    scorer = randomised("tiny-test-slow")
    tokens = scorer.image_tokens(SCENES)
    for text in QUERIES:
        expected = naive_log_likelihoods(scorer, text, tokens)
        assert np.allclose(scorer.score_tokens(text, tokens), expected, rtol=RTOL, atol=ATOL), text
    # The randomisation reaches the scores: the same query scores differently than with ones and zeros.
    assert not np.allclose(
        scorer.score_tokens(QUERIES[0], tokens),
        naive_log_likelihoods(load_slow("tiny-test-slow", device="cpu"), QUERIES[0], tokens),
        atol=0.1,
    )


@pytest.mark.slow
def test_coca_vit_b_32_scores_equal_the_naive_forward_pass() -> None:
    scorer = load_slow("coca-vit-b-32@random", device="cpu")
    assert scorer.token_shape == (255, 512)
    tokens = scorer.image_tokens(SCENES[:2])
    text = QUERIES[0]
    scores = scorer.score_tokens(text, tokens)
    assert np.allclose(scores, naive_log_likelihoods(scorer, text, tokens), rtol=RTOL, atol=ATOL)
    # open_clip leaves CoCa's output projection uninitialised without weights: no uniform likelihood here.
    assert scores[0] != scores[1]


@pytest.mark.slow
def test_coca_vit_b_32_with_random_layer_norms_and_biases_equals_the_naive_pass() -> None:
    scorer = randomised("coca-vit-b-32@random")
    tokens = scorer.image_tokens(SCENES[:2])
    for text in QUERIES[:2]:
        expected = naive_log_likelihoods(scorer, text, tokens)
        assert np.allclose(scorer.score_tokens(text, tokens), expected, rtol=RTOL, atol=ATOL), text


def test_a_query_with_an_exclamation_mark_keeps_every_term(tiny: CocaSlowScorer) -> None:
    # "!(" is the BPE piece "!" (id 0, the padding id) then "(": counting the ids that differ from padding
    # cut the query short, and its <end_of_text> term was lost.
    text = 'a t-shirt saying "hello!(world)"'
    ids = tiny._query_ids(text).tolist()
    assert 0 in ids and ids[0] == tiny._tokenizer.sot_token_id and ids[-1] == tiny._tokenizer.eot_token_id
    tokens = tiny.image_tokens(SCENES)
    expected = padded_log_likelihoods(tiny, text, tokens, 76)
    assert np.allclose(tiny.score_tokens(text, tokens), expected, rtol=RTOL, atol=ATOL)


def test_a_long_query_decodes_fewer_candidates_at_a_time_and_scores_the_same(
    tiny: CocaSlowScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vocabulary = tiny._model.text_decoder.text_projection.shape[1]
    # A 9-token query fills a batch; a 76-token one takes a seventh of it, its logits within the budget.
    assert coca.score_batch(8, vocabulary) == coca.SCORE_BATCH
    assert 1 <= coca.score_batch(75, vocabulary) < coca.score_batch(20, vocabulary) < coca.SCORE_BATCH
    assert coca.score_batch(75, vocabulary) * 75 * vocabulary * 4 <= coca.LOGITS_BUDGET_BYTES
    assert coca.score_batch(75, 10**9) == 1  # never none at all

    long = QUERIES[-1]
    assert len(tiny._query_ids(long)) == 76
    tokens = tiny.image_tokens(SCENES * 3)
    together = tiny.score_tokens(long, tokens)
    batches: list[int] = []
    decode = CocaSlowScorer._decode

    def counted(self, queries, targets, image_tokens):
        batches.append(len(image_tokens))
        return decode(self, queries, targets, image_tokens)

    monkeypatch.setattr(CocaSlowScorer, "_decode", counted)
    monkeypatch.setattr(coca, "LOGITS_BUDGET_BYTES", 2 * 75 * vocabulary * 4)  # two long queries' logits
    assert np.allclose(tiny.score_tokens(long, tokens), together, rtol=RTOL, atol=ATOL)
    assert batches == [2, 2, 2, 2, 1]
    batches.clear()
    tiny.score_tokens("a dog", tokens)  # a short query still goes in one batch
    assert batches == [9]


def test_padding_takes_no_part_in_the_score(tiny: CocaSlowScorer) -> None:
    tokens = tiny.image_tokens(SCENES)
    text = "a white square on a red background"
    real = len(tiny._query_ids(text))
    expected = tiny.score_tokens(text, tokens)
    for length in (real, real + 1, 40, 76):
        assert np.allclose(padded_log_likelihoods(tiny, text, tokens, length), expected, rtol=0, atol=1e-3)
    assert not np.allclose(padded_log_likelihoods(tiny, text, tokens, real - 1), expected, atol=1e-3)


def test_scores_are_log_likelihoods_that_tell_images_apart(tiny: CocaSlowScorer) -> None:
    scores = tiny.score("a red square", SCENES)
    assert np.all(scores <= 0)
    assert len(set(scores.round(4))) == 3
    # The empty query is the single token <end_of_text>: a probability, however bad the model.
    assert np.all(np.exp(tiny.score("", SCENES)) <= 1)


def test_candidates_are_scored_independently_in_any_batch(
    tiny: CocaSlowScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "a blue circle"
    tokens = tiny.image_tokens(SCENES)
    together = tiny.score_tokens(text, tokens)
    alone = np.concatenate([tiny.score_tokens(text, tokens[i : i + 1]) for i in range(3)])
    monkeypatch.setattr(coca, "SCORE_BATCH", 2)
    assert np.allclose(tiny.score_tokens(text, tokens), together, atol=1e-5)
    assert np.allclose(alone, together, atol=1e-5)
    # Cached float16 tokens score as the float32 ones did, within rounding.
    assert np.allclose(tiny.score_tokens(text, tokens.half()), together, atol=0.05)
    assert tiny.score_tokens(text, tiny.image_tokens([])).shape == (0,)


def test_tiny_slow_is_the_same_model_on_every_load(tiny: CocaSlowScorer) -> None:
    assert load_slow("tiny-test-slow", device="cpu") is tiny
    before = tiny.score("a dog", SCENES)
    clear_cache()
    assert np.array_equal(load_slow("tiny-test-slow", device="cpu").score("a dog", SCENES), before)


# --- presets ------------------------------------------------------------------------------------------------


def test_fast_presets_pair_with_a_slow_one() -> None:
    for preset in PRESETS.values():
        if preset.kind == "fast" and preset.slow is not None:
            assert PRESETS[preset.slow].kind == "slow"
    assert paired_slow("vit-b-32") == "coca-vit-b-32"
    assert paired_slow("vit-l-14") == "coca-vit-l-14"
    # Random Fast weights pair with random Slow ones, so an offline run stays offline.
    assert paired_slow("vit-b-32@random") == "coca-vit-b-32@random"
    assert paired_slow("tiny-test") == "tiny-test-slow"
    with pytest.raises(UsageError, match="not a Fast encoder"):
        paired_slow("coca-vit-b-32")


def test_fast_and_slow_presets_are_not_interchangeable() -> None:
    with pytest.raises(UsageError, match=r"coca-vit-b-32 is a Slow re-ranker"):
        load_fast("coca-vit-b-32@random")
    with pytest.raises(
        UsageError, match=r"vit-b-32 is a Fast encoder, not a Slow re-ranker: its Slow pair is"
    ):
        load_slow("vit-b-32")


def test_coca_offline_without_weights_fails_fast_saying_which_file_and_how_to_fix_it(
    hub_env: Callable[[str], Path], closed_port: int
) -> None:
    hub_env(f"http://127.0.0.1:{closed_port}")
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as error:
        load_slow("coca-vit-b-32")
    message = str(error.value)
    assert time.monotonic() - started < 3
    assert (
        "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k" in message and "cannot be reached" in message
    )
    assert "--model coca-vit-b-32@/path/to/open_clip_pytorch_model.bin" in message


# --- bench rerank ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["cached", "recomputed"])
def test_bench_rerank_reports_both_passes_as_json(source: str) -> None:
    args = ["bench", "rerank", "--model", "tiny-test-slow", "--k", "3", "--queries", "2"]
    result = CliRunner().invoke(main, [*args, "--image-tokens", source, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"ms_per_query", "k", "device", "image_tokens", "naive_ms_per_query", "speedup"} <= set(report)
    assert (report["k"], report["device"], report["image_tokens"]) == (3, "cpu", source)
    assert report["ms_per_query"] > 0 and report["naive_ms_per_query"] > 0 and report["speedup"] > 0
    assert report["max_abs_difference"] < 1e-3
    # 16 tokens × 64 float16 values, and the .npy header.
    assert 16 * 64 * 2 < report["token_bytes_per_image"] < 16 * 64 * 2 + 256


def test_bench_rerank_of_an_unknown_model_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["bench", "rerank", "--model", "coca-z-99", "--no-naive"])
    assert result.exit_code == 2
    assert "Unknown model 'coca-z-99'" in result.stderr
