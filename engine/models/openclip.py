"""open_clip models: one factory for every preset (pretrained, random or a local file), and the Fast encoder."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import open_clip
import open_clip.factory
import open_clip.transformer
import torch
from open_clip.transformer import MultimodalTransformer
from PIL import Image

from engine.errors import ModelUnavailable
from engine.models import hub
from engine.models.base import FastEncoder
from engine.models.presets import ARCHITECTURES, ModelSpec

log = logging.getLogger(__name__)

#: Overrides the Fast towers' precision: auto (int8 on a CPU when it agrees with fp32), fp32 or int8.
PRECISION_ENV = "GLIMPSE_FAST_PRECISION"
#: int8 on a CPU when its self-check on the first input agrees with fp32, else fp32: indexing then runs at about
#: 1.5x the bare fp32 image tower's speed (docs/benchmarks.md, "Indexing"). The int8 layers quantise each token
#: on its own scale (`_RowScaledInt8Linear`), so an image's vector does not depend on the other images of its
#: batch: an interrupted and resumed index equals an uninterrupted one to float rounding, as in fp32.
DEFAULT_PRECISION = "auto"
#: The int8 image tower is used only if every image of the first batch embeds this close to fp32 (cosine).
MIN_INT8_COSINE = 0.995

#: Up to this many texts are embedded on one thread (see `embed_texts`).
SINGLE_THREAD_TEXTS = 4

#: Seed of every random initialisation, so `tiny-test` and `NAME@random` give the same vectors on every load.
RANDOM_SEED = 0


@dataclass(frozen=True)
class OpenClipModel:
    """An open_clip model in eval mode with its image preprocessing and its tokenizer."""

    model: torch.nn.Module
    preprocess: torch.nn.Module
    tokenizer: open_clip.SimpleTokenizer


def build(spec: ModelSpec, device: str) -> OpenClipModel:
    """Build the spec's open_clip model on `device`, fetching pretrained weights if need be; Fast or Slow alike."""
    preset = spec.preset
    _register_architecture(preset.architecture)
    if spec.source == "pretrained":
        weights = hub.weights_path(preset)
    elif spec.source == "file":
        weights = spec.path
    else:
        weights = None
    # A local file holds the same kind of weights as the preset's own, so it is preprocessed the same way.
    tag = open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained) if preset.pretrained else {}
    # open_clip loads weights over a random initialisation; seeding it inside fork_rng keeps `@random`
    # repeatable without disturbing anyone else's use of torch's global generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                preset.architecture,
                pretrained=str(weights) if weights is not None else None,
                device=device,
                force_quick_gelu=tag.get("quick_gelu", False),
                image_mean=tag.get("mean"),
                image_std=tag.get("std"),
                image_interpolation=tag.get("interpolation"),
                image_resize_mode=tag.get("resize_mode"),
            )
        except torch.OutOfMemoryError:
            raise
        # What torch.load, safetensors and open_clip's checks raise on a file that is not these weights.
        except (
            RuntimeError,
            OSError,
            ValueError,
            KeyError,
            AssertionError,
            pickle.UnpicklingError,
        ) as error:
            if weights is None:
                raise
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise ModelUnavailable(
                f"The weights file {weights} does not fit model {preset.name} "
                f"(open_clip {preset.architecture}): {reason}."
            ) from error
        if weights is None:
            _initialise_left_out(model)
    model.eval().requires_grad_(False)
    return OpenClipModel(model, preprocess, open_clip.get_tokenizer(preset.architecture))


def _initialise_left_out(model: torch.nn.Module) -> None:
    """Give random values to what open_clip leaves as raw `torch.empty` memory when it loads no weights.

    CoCa's decoder never runs its `init_parameters`, so its output projection (`text_projection`) holds whatever
    the allocator returned, often zeros: every caption then gets the same uniform likelihood, or NaNs. This is
    the initialisation that `init_parameters` means to give it.
    """
    for module in model.modules():
        if isinstance(module, MultimodalTransformer):
            torch.nn.init.normal_(module.text_projection, std=module.width**-0.5)


class OpenClipFastEncoder(FastEncoder):
    """An open_clip dual encoder (CLIP) behind the FastEncoder protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: torch.nn.Module,
        tokenizer: open_clip.SimpleTokenizer,
        *,
        key: str,
        dim: int,
        device: str,
        precision: str | None = None,
    ) -> None:
        self.key = key
        self.dim = dim
        self.device = device
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._image_tower: torch.nn.Module = model.visual
        wanted = precision or os.environ.get(PRECISION_ENV, DEFAULT_PRECISION)
        if wanted not in ("auto", "fp32", "int8"):
            raise ValueError(f"{PRECISION_ENV} must be auto, fp32 or int8, not {wanted!r}")
        wanted = wanted if device == "cpu" else "fp32"  # int8 kernels are the CPU's
        self._image_int8 = _Int8Twin("image", wanted, lambda: quantized_tower(model.visual))
        self._text_int8 = _Int8Twin("text", wanted, lambda: quantized_tower(model.transformer))

    @property
    def precision(self) -> str:
        """What the image tower runs in: "fp32", "int8", or "int8?" until the first batch's self-check."""
        return self._image_int8.precision

    @property
    def text_precision(self) -> str:
        """What the text tower runs in: "fp32", "int8", or "int8?" until the first query's self-check."""
        return self._text_int8.precision

    @property
    def image_size(self) -> int:
        """Side of the square the image tower reads: decoding to more than this is wasted."""
        size = self._model.visual.image_size
        return min(size) if isinstance(size, tuple | list) else int(size)

    @classmethod
    def load(cls, spec: ModelSpec, device: str) -> OpenClipFastEncoder:
        """Build the spec's model on `device` ("cpu" or "cuda"), fetching pretrained weights if need be."""
        built = build(spec, device)
        dim = open_clip.get_model_config(spec.preset.architecture)["embed_dim"]
        return cls(built.model, built.preprocess, built.tokenizer, key=spec.key, dim=dim, device=device)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the model's input tensor (C, H, W); CPU only, thread-safe."""
        return self._preprocess(image)

    def embed_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of prepared tensors (N, C, H, W) → (N, dim) float32, L2-normalised."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            batch = batch.to(self.device, non_blocking=True)
            return self._image_int8.run(lambda: self._image_tower(batch), lambda int8: int8(batch))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self._tokenizer(list(texts))
        # A query or two is too little work to split across cores: the threads' hand-offs cost more than
        # they save, and far more on a busy machine. torch's thread count is per calling thread.
        threads = 1 if len(texts) <= SINGLE_THREAD_TEXTS and self.device == "cpu" else None
        tokens = tokens.to(self.device)
        with torch.inference_mode(), _torch_threads(threads):
            return self._text_int8.run(
                lambda: encode_text_trimmed(self._model, tokens),
                lambda int8: encode_text_trimmed(self._model, tokens, transformer=int8),
            )

    def __repr__(self) -> str:
        return f"OpenClipFastEncoder(key={self.key!r}, dim={self.dim}, device={self.device!r})"


class _Int8Twin:
    """A tower's int8 copy: built on first use (a process that never embeds images never pays for that
    tower's), and kept only if its answers on that first real input agree with fp32's (cosine >= 0.995)."""

    def __init__(self, what: str, wanted: str, build: Callable[[], torch.nn.Module | None]) -> None:
        self.what = what
        self.wanted = wanted
        self.module: torch.nn.Module | None = None
        self.ok: bool | None = False if wanted == "fp32" else None  # None: not decided yet
        #: Lowest cosine between the int8 and fp32 embeddings of the first input (None: not checked).
        self.min_cosine: float | None = None
        self._build = build
        self._lock = threading.Lock()

    @property
    def precision(self) -> str:
        if self.ok is None:
            return "int8?"
        return "int8" if self.ok else "fp32"

    def run(
        self, fp32: Callable[[], torch.Tensor], int8: Callable[[torch.nn.Module], torch.Tensor]
    ) -> np.ndarray:
        """Normalised embeddings from the int8 copy when it is trusted, else from `fp32()`."""
        if self.ok is None:
            with self._lock:
                if self.ok is None:
                    return self._decide(fp32, int8)
        if self.ok:
            assert self.module is not None
            return _normalised(int8(self.module))
        return _normalised(fp32())

    def _decide(
        self, fp32: Callable[[], torch.Tensor], int8: Callable[[torch.nn.Module], torch.Tensor]
    ) -> np.ndarray:
        self.module = self._build()
        if self.module is None:
            self.ok = False
            return _normalised(fp32())
        quantized = _normalised(int8(self.module))
        if self.wanted == "int8":
            self.ok = True
            return quantized
        reference = _normalised(fp32())
        self.min_cosine = float(np.min(np.sum(reference * quantized, axis=1)))
        self.ok = self.min_cosine >= MIN_INT8_COSINE
        if not self.ok:
            self.module = None
            log.warning(
                "the int8 %s tower disagrees with fp32 (cosine %.4f < %.3f): staying in fp32",
                self.what,
                self.min_cosine,
                MIN_INT8_COSINE,
            )
            return reference
        log.info(
            "int8 %s tower checked against fp32 (lowest cosine %.5f): using it", self.what, self.min_cosine
        )
        return quantized


def quantized_tower(tower: torch.nn.Module) -> torch.nn.Module | None:
    """A copy of a transformer tower with its linear layers, attention projections included, in dynamic int8.

    torch leaves nn.MultiheadAttention's projections in fp32 (its input projection is a bare parameter), a
    third of a ViT's matrix work; each is rebuilt from two nn.Linear so that quantisation reaches them too.
    Every nn.Linear then becomes a `_RowScaledInt8Linear`: int8 weights, each token's activations on its own
    scale, so that no input's result depends on the others in its batch.
    """
    tower = copy.deepcopy(tower)
    for module in list(tower.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.MultiheadAttention) and _is_plain_self_attention(child):
                setattr(module, child_name, _LinearSelfAttention(child))
    try:
        with warnings.catch_warnings():
            # torch warns that quantised tensors will move to torchao; they work, and are checked at run time.
            warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
            for module in list(tower.modules()):
                for child_name, child in list(module.named_children()):
                    # Exactly nn.Linear: a subclass such as nn.MultiheadAttention's own out_proj is read as a
                    # weight by its owner, not called.
                    if type(child) is torch.nn.Linear:
                        setattr(module, child_name, _RowScaledInt8Linear(child))
    except (AttributeError, RuntimeError, NotImplementedError) as error:  # a torch without int8 CPU kernels
        log.info("no int8 tower on this torch (%s): staying in fp32", error)
        return None
    return tower


class _RowScaledInt8Linear(torch.nn.Module):
    """nn.Linear in dynamic int8 whose activations are quantised row by row (per token), not per tensor.

    torch's dynamic int8 kernel (`quantized::linear_dynamic`, fbgemm on x86) quantises its whole input on one
    scale, from the input's smallest and largest values: every token's result then depends on every other
    token of the batch, so an image's vector would depend on the other images it was embedded with. Here each
    row is divided by its own largest magnitude first, and one extra row holding +1 and -1 fixes the range the
    kernel sees to [-1, 1]: its one scale is then the same whatever the batch, so each row is quantised on a
    scale of its own, and the product is multiplied back by the row's magnitude. Calling the kernel once per
    image would also be independent of the batch, but indexed slower (docs/benchmarks.md).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        # One symmetric int8 scale per output channel: finer than one for the whole matrix, about as fast.
        scales = (weight.abs().amax(dim=1).clamp_min(1e-12) / 127).double()
        zero_points = torch.zeros(len(weight), dtype=torch.long)
        quantized = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
        self._packed = torch.ops.quantized.linear_prepack(quantized, None)
        self.bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.out_features = linear.out_features
        self._range = torch.zeros(linear.in_features)
        self._range[:2] = torch.tensor([1.0, -1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        count = len(rows)
        # Each row's largest magnitude (two reductions cost less than writing out abs(rows) first).
        scale = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
        scale.clamp_min_(1e-30)
        scaled = rows.new_empty(count + 1, rows.shape[1])
        torch.div(rows, scale, out=scaled[:count])
        scaled[count] = self._range
        # reduce_range: 7-bit activations, as torch's own dynamic Linear uses, so no x86 int16 sum saturates.
        y = torch.ops.quantized.linear_dynamic(scaled, self._packed, reduce_range=True)[:count]
        y = y.mul_(scale) if self.bias is None else torch.addcmul(self.bias, y, scale, out=y)
        return y.view(*x.shape[:-1], self.out_features)


def _is_plain_self_attention(attention: torch.nn.MultiheadAttention) -> bool:
    return (
        attention.batch_first
        and attention._qkv_same_embed_dim
        and attention.in_proj_bias is not None
        and attention.bias_k is None
        and attention.dropout == 0.0
    )


class _LinearSelfAttention(torch.nn.Module):
    """nn.MultiheadAttention (batch first, self-attention) with its projections as nn.Linear layers."""

    def __init__(self, attention: torch.nn.MultiheadAttention) -> None:
        super().__init__()
        width = attention.embed_dim
        self.heads = attention.num_heads
        self.in_proj = torch.nn.Linear(width, 3 * width)
        self.in_proj.weight = torch.nn.Parameter(attention.in_proj_weight.detach().clone())
        self.in_proj.bias = torch.nn.Parameter(attention.in_proj_bias.detach().clone())
        self.out_proj = torch.nn.Linear(width, width)
        self.out_proj.load_state_dict(attention.out_proj.state_dict())

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None):
        batch, length, width = query.shape
        qkv = self.in_proj(query).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width)), None


def encode_text_trimmed(
    model: torch.nn.Module, tokens: torch.Tensor, *, transformer: torch.nn.Module | None = None
) -> torch.Tensor:
    """`model.encode_text(tokens)` run on the tokens' real length instead of the padded context (77).

    In CLIP's causal text tower a position sees only those before it and the embedding is read at the end
    token, so the padding after it changes nothing: dropping it gives the same embedding 3-10x sooner.
    `transformer` replaces the model's own text transformer (its int8 copy).
    """
    pool = getattr(model, "text_pool_type", None)
    if not isinstance(model, open_clip.CLIP) or pool != "argmax" or model.attn_mask is None:
        if transformer is not None:
            raise ValueError("only CLIP's causal text tower runs with a replaced transformer")
        return model.encode_text(tokens)
    length = int(tokens.ne(0).any(dim=0).nonzero().max()) + 1 if tokens.numel() else 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = (transformer or model.transformer)(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = open_clip.transformer.text_global_pool(x, tokens, pool)
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection if model.text_projection is not None else x


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run torch CPU ops of the calling thread on `count` threads (None: leave as is)."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _normalised(features: torch.Tensor) -> np.ndarray:
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy()


def _register_architecture(name: str) -> None:
    """open_clip builds models by config name; add Glimpse's own configs to its registry on first use."""
    if name in ARCHITECTURES and name not in open_clip.factory._MODEL_CONFIGS:
        open_clip.factory._MODEL_CONFIGS[name] = copy.deepcopy(ARCHITECTURES[name])
