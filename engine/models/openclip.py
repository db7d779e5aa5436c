"""open_clip models: one factory for every preset (pretrained, random or a local file), and the Fast encoder."""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import os
import pickle
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.errors import ModelUnavailable, UsageError
from engine.models import INT8_KEY_SUFFIX, PRECISION_ENV, hub
from engine.models.base import FastEncoder
from engine.models.presets import ARCHITECTURES, ModelSpec

log = logging.getLogger(__name__)

#: Packages whose `__init__` importing open_clip would run for nothing. open_clip needs torchvision's transforms
#: and one layer of torchvision.ops (`FrozenBatchNorm2d`), and imports timm.layers for towers Glimpse never
#: builds (timm.layers takes one module of torchvision.models); but torchvision's and torchvision.ops' own
#: `__init__` import every model and detection op, roi_align bringing all of torch._dynamo with it (6 of the 7 s
#: torchvision took to import), and timm's imports all of timm.models (2 s). Deferred, each package's submodules
#: import as usual, and its `__init__` runs on the first look-up of a name it defines, so a caller that uses the
#: whole package gets it whole (docs/benchmarks.md, "Start-up").
DEFERRED_INITS = ("torchvision", "torchvision.ops", "torchvision.models", "timm")


def _import_open_clip() -> types.ModuleType:
    """open_clip, imported with the `__init__` of `DEFERRED_INITS` deferred (unless they were imported already)."""
    for name in DEFERRED_INITS:
        defer_init(name)
    import open_clip
    import open_clip.factory
    import open_clip.transformer

    return open_clip


def defer_init(name: str) -> None:
    """Put package `name` in sys.modules with its `__init__` not run yet: its submodules import as usual from
    its path, and the first look-up of a name the `__init__` defines runs it, in the same module object."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or spec.submodule_search_locations is None or not hasattr(spec.loader, "exec_module"):
        return  # not an ordinary package here (a frozen app's may differ): imported as usual when needed
    package = importlib.util.module_from_spec(spec)
    lock = threading.RLock()

    def __getattr__(attribute: str) -> object:
        # Dunder look-ups (the import system's, pickle's, inspect's) never need the package's own names.
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        with lock:
            if package.__dict__.get("__getattr__") is __getattr__:
                del package.__dict__["__getattr__"]
                spec.loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = __getattr__
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)


open_clip = _import_open_clip()

PRECISIONS = ("auto", "fp32", "int8")
#: int8 on a CPU when its self-check at load agrees with fp32, else fp32: indexing then runs at about 1.5x the
#: bare fp32 image tower's speed (docs/benchmarks.md, "Indexing"). The int8 layers quantise each token on its
#: own scale (`_RowScaledInt8Linear`), so an image's vector does not depend on the other images of its batch:
#: an interrupted and resumed index equals an uninterrupted one to float rounding, as in fp32.
DEFAULT_PRECISION = "auto"
#: A tower runs in int8 only if every probe input embeds at least this close to fp32 (cosine). Smoothed int8
#: measured 0.9997 or more on the ViT-B/32 architecture whatever the planted outliers, and the old unsmoothed
#: scheme 0.9956 at s = 10, where its rankings of similar photos already moved (docs/models.md, "int8").
MIN_INT8_COSINE = 0.998
#: SmoothQuant's migration strength: each smoothed channel's activation range and weight range meet halfway
#: (factor = activation peak^α / weight peak^(1-α)); measured no worse than 0.75 (docs/models.md, "int8").
SMOOTHING_ALPHA = 0.5

#: The self-check's inputs: pictures drawn from this seed, and these queries. Fixed, so that every process on
#: a machine decides alike.
PROBE_SEED = 0
PROBE_PICTURES = 8
PROBE_QUERIES = (
    "a dog running on a beach",
    "two kids flying a red kite in a park at sunset",
    "receipt",
    "a plate of pasta with tomato sauce on a wooden table",
    "snow!",
    "the skyline of a city at night, seen from the river, with boats and lights reflected in the water",
)

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
        if isinstance(module, open_clip.transformer.MultimodalTransformer):
            torch.nn.init.normal_(module.text_projection, std=module.width**-0.5)


@dataclass(frozen=True)
class PrecisionCheck:
    """How a tower's precision was decided: int8 is kept only where it agrees with fp32 on the fixed probe."""

    #: "image" or "text".
    tower: str
    #: What the tower runs in: "int8" or "fp32".
    precision: str
    #: What was asked for: "auto", "int8" or "fp32".
    asked: str
    #: Lowest cosine between the int8 and the fp32 embeddings of the probe; None when int8 was not tried.
    min_cosine: float | None
    #: The lowest cosine "auto" accepts (`MIN_INT8_COSINE`).
    threshold: float
    #: Time the decision took: quantising the tower, smoothing it on the probe and the comparison.
    ms: float
    #: Why, in a few words a log line can carry.
    reason: str


def resolve_precision(precision: str | None = None) -> str:
    """The precision asked for: `precision`, else the GLIMPSE_FAST_PRECISION variable, else auto."""
    asked = precision or os.environ.get(PRECISION_ENV) or DEFAULT_PRECISION
    if asked not in PRECISIONS:
        raise UsageError(
            f"The Fast precision must be auto, fp32 or int8, not {asked!r} (set by {PRECISION_ENV})."
        )
    return asked


class OpenClipFastEncoder(FastEncoder):
    """An open_clip dual encoder (CLIP) behind the FastEncoder protocol.

    Its image tower's precision is decided once, on a fixed probe, the first time it is needed: the first image
    embedded, or the first look at `key`, `precision` or `image_check`. On a CPU it runs in int8 when that agrees
    with fp32 on the probe, and the vector-space `key` says so, so every process on a machine embeds into the
    same space and a library never mixes int8 and fp32 vectors; a process that embeds only texts (a search)
    never pays for the image tower's int8 copy. The text tower writes no vectors: it decides alike, on fixed
    queries, the first time a text is embedded.
    """

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
        #: The weights' own identity (`ModelSpec.key`), whatever the precision.
        self.spec_key = key
        self.dim = dim
        self.device = device
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._asked = resolve_precision(precision)
        self._image_int8: torch.nn.Module | None = None
        self._image_check: PrecisionCheck | None = None
        self._image_lock = threading.Lock()
        self._text_int8: torch.nn.Module | None = None
        self._text_check: PrecisionCheck | None = None
        self._text_lock = threading.Lock()

    @property
    def key(self) -> str:
        """Identifies the vector space: the weights and the image tower's precision."""
        return self.spec_key + INT8_KEY_SUFFIX if self.precision == "int8" else self.spec_key

    @property
    def precision(self) -> str:
        """What the image tower runs in: "int8" or "fp32"."""
        return self.image_check.precision

    @property
    def image_check(self) -> PrecisionCheck:
        """How the image tower's precision was decided (on the probe, when first needed)."""
        self._image_tower()
        assert self._image_check is not None
        return self._image_check

    @property
    def text_check(self) -> PrecisionCheck:
        """How the text tower's precision was decided (on first use: a process that never embeds a text never
        pays for its int8 copy)."""
        self._text_tower()
        assert self._text_check is not None
        return self._text_check

    @property
    def text_precision(self) -> str:
        """What the text tower runs in: "int8" or "fp32"."""
        return self.text_check.precision

    @property
    def image_size(self) -> int:
        """Side of the square the image tower reads: decoding to more than this is wasted."""
        size = self._model.visual.image_size
        return min(size) if isinstance(size, tuple | list) else int(size)

    @classmethod
    def load(cls, spec: ModelSpec, device: str, precision: str | None = None) -> OpenClipFastEncoder:
        """Build the spec's model on `device` ("cpu" or "cuda"), fetching pretrained weights if need be.

        `precision`: "auto", "fp32" or "int8"; None reads GLIMPSE_FAST_PRECISION, else auto.
        """
        asked = resolve_precision(precision)  # a bad setting fails before the weights are read
        built = build(spec, device)
        dim = open_clip.get_model_config(spec.preset.architecture)["embed_dim"]
        return cls(
            built.model,
            built.preprocess,
            built.tokenizer,
            key=spec.key,
            dim=dim,
            device=device,
            precision=asked,
        )

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Turn a decoded RGB image into the model's input tensor (C, H, W); CPU only, thread-safe."""
        return self._preprocess(image)

    def embed_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """Embed a batch of prepared tensors (N, C, H, W) → (N, dim) float32, L2-normalised."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        tower = self._image_tower() or self._model.visual
        with torch.inference_mode():
            return _normalised(tower(batch.to(self.device, non_blocking=True)))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        transformer = self._text_tower()
        tokens = self._tokenizer(list(texts))
        # A query or two is too little work to split across cores: the threads' hand-offs cost more than
        # they save, and far more on a busy machine. torch's thread count is per calling thread.
        threads = 1 if len(texts) <= SINGLE_THREAD_TEXTS and self.device == "cpu" else None
        tokens = tokens.to(self.device)
        with torch.inference_mode(), _torch_threads(threads):
            return _normalised(encode_text_trimmed(self._model, tokens, transformer=transformer))

    def _image_tower(self) -> torch.nn.Module | None:
        """The int8 image tower, or None for the model's own: decided on the fixed probe pictures, once."""
        with self._image_lock:
            if self._image_check is None:
                probe = torch.stack([self._preprocess(picture) for picture in probe_pictures()])
                self._image_int8, self._image_check = self._decide(
                    "image", self._model.visual, lambda tower: tower(probe.to(self.device))
                )
            return self._image_int8

    def _text_tower(self) -> torch.nn.Module | None:
        """The int8 text transformer, or None for the model's own: decided on the fixed queries, once."""
        with self._text_lock:
            if self._text_check is None:
                tokens = self._tokenizer(list(PROBE_QUERIES)).to(self.device)
                self._text_int8, self._text_check = self._decide(
                    "text",
                    self._model.transformer if _trims_text(self._model) else None,
                    lambda tower: encode_text_trimmed(self._model, tokens, transformer=tower),
                )
            return self._text_int8

    def _decide(
        self, what: str, tower: torch.nn.Module | None, run: Callable[[torch.nn.Module | None], torch.Tensor]
    ) -> tuple[torch.nn.Module | None, PrecisionCheck]:
        """The int8 copy of `tower` and the check that kept it, or None and the reason it stays in fp32.

        `run(tower)` embeds the probe through `tower`; the fp32 pass that measures the smoothing factors gives
        the reference, so the check costs one fp32 and one int8 pass over the probe.
        """
        started = time.perf_counter()

        def decided(module: torch.nn.Module | None, min_cosine: float | None, reason: str) -> PrecisionCheck:
            ms = (time.perf_counter() - started) * 1000
            precision = "fp32" if module is None else "int8"
            return PrecisionCheck(
                what, precision, self._asked, min_cosine, MIN_INT8_COSINE, round(ms, 1), reason
            )

        if self._asked == "fp32":
            return None, decided(None, None, f"fp32 as {PRECISION_ENV} or the caller asked")
        if self.device != "cpu":
            return None, decided(None, None, f"int8 kernels are the CPU's, not {self.device}'s")
        if tower is None:
            return None, decided(None, None, "this text tower has no int8 copy")
        references: list[torch.Tensor] = []
        module = quantized_tower(tower, calibrate=lambda fp32: references.append(run(fp32)))
        if module is None:
            return None, decided(None, None, "this torch has no int8 kernels")
        with torch.inference_mode():
            quantized = _normalised(run(module))
        reference = _normalised(references[0])
        min_cosine = float(np.min(np.sum(reference * quantized, axis=1)))
        if self._asked == "int8" or min_cosine >= MIN_INT8_COSINE:
            check = decided(module, min_cosine, "int8 as asked" if self._asked == "int8" else "int8 agrees")
            level = logging.WARNING if min_cosine < MIN_INT8_COSINE else logging.INFO
            log.log(
                level,
                "int8 %s tower of %s checked against fp32 on the probe: lowest cosine %.5f (threshold %.3f), "
                "%s; using int8 (%.0f ms)",
                what,
                self.spec_key,
                min_cosine,
                MIN_INT8_COSINE,
                check.reason,
                check.ms,
            )
            return module, check
        check = decided(None, min_cosine, "int8 disagrees with fp32")
        log.warning(
            "int8 %s tower of %s disagrees with fp32 on the probe: lowest cosine %.5f < threshold %.3f; "
            "staying in fp32 (%.0f ms)",
            what,
            self.spec_key,
            min_cosine,
            MIN_INT8_COSINE,
            check.ms,
        )
        return None, check

    def __repr__(self) -> str:
        # The weights' key: the precision is decided only when first needed, not by a log line.
        return f"OpenClipFastEncoder(spec_key={self.spec_key!r}, dim={self.dim}, device={self.device!r})"


@functools.cache
def probe_pictures(
    count: int = PROBE_PICTURES, size: tuple[int, int] = (256, 192)
) -> tuple[Image.Image, ...]:
    """Fixed pictures that look like photos to a model's statistics: the int8 self-check's input.

    Landscapes, close-ups, a printed page and a night scene, in turn, each textured with noise whose energy
    falls with frequency as a photo's does, then grain. Drawn from `PROBE_SEED` alone, so every process on
    every machine gets the same pixels. Drawn once per process (about 50 ms); do not modify them.
    """
    kinds = (_probe_landscape, _probe_close_up, _probe_page, _probe_night)
    pictures = []
    for index in range(count):
        rng = np.random.default_rng((PROBE_SEED, index))
        pixels = kinds[index % len(kinds)](rng, size)
        pixels = pixels + rng.normal(0, 4, pixels.shape)  # sensor grain
        pictures.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))
    return tuple(pictures)


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Brightness noise with a photo's 1/f amplitude spectrum, (height, width, 1), unit standard deviation."""
    width, height = size
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :])
    frequency[0, 0] = np.inf  # no constant term: the caller sets the mean
    spectrum = rng.normal(size=(2, *frequency.shape)) / frequency
    noise = np.fft.irfft2(spectrum[0] + 1j * spectrum[1], s=(height, width))
    return (noise / noise.std())[..., None]


def _tinted(rng: np.random.Generator, size: tuple[int, int], low: Sequence[float], high: Sequence[float]):
    """A colour drawn between `low` and `high` (RGB), its brightness textured and its hue drifting a little."""
    brightness, hue = _texture(rng, size), _texture(rng, size)
    return rng.uniform(low, high) * (1 + 0.15 * brightness) + 6 * hue * np.array([1.0, 0.0, -1.0])


def _probe_landscape(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    horizon = int(height * rng.uniform(0.4, 0.65))
    rows = np.linspace(0, 1, height)[:, None, None]
    sky = _tinted(rng, size, (60, 110, 170), (160, 190, 250)) * (1 - 0.2 * rows) + 60 * rows
    ground = _tinted(rng, size, (40, 60, 20), (140, 130, 70)) * (1.2 - 0.5 * rows)
    pixels = np.where(rows * height < horizon, sky, ground)
    y, x = np.mgrid[:height, :width]
    for _ in range(int(rng.integers(2, 5))):  # trees, rocks, houses: edges against the ground and the sky
        left, top = rng.uniform(0, width * 0.9), rng.uniform(horizon * 0.7, height * 0.9)
        box = (
            (x >= left)
            & (x < left + rng.uniform(10, width / 4))
            & (y >= top)
            & (y < top + rng.uniform(10, 60))
        )
        pixels = np.where(box[..., None], ground * rng.uniform(0.3, 2.0, 3), pixels)
    sun = np.hypot(x - width * rng.uniform(0.6, 0.9), y - horizon * 0.3)
    return np.where((sun < height / 12)[..., None], np.array([255, 240, 190]), pixels)


def _probe_close_up(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    background = _tinted(rng, size, (30, 30, 30), (200, 200, 200))
    y, x = np.mgrid[:height, :width]
    centre = width * rng.uniform(0.35, 0.65)
    subject = ((x - centre) / (width * 0.22)) ** 2 + ((y - height / 2) / (height * 0.35)) ** 2
    tone = _tinted(rng, size, (150, 90, 60), (230, 180, 150)) * (1.1 - 0.3 * subject[..., None])
    return np.where((subject < 1)[..., None], tone, background)


def _probe_page(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    paper = np.full((height, width, 3), rng.uniform(215, 250)) + 6 * _texture(rng, size)
    for top in range(int(height * 0.1), int(height * 0.9), int(rng.integers(10, 16))):
        left = int(width * 0.1)
        while left < width * 0.85:
            word = int(rng.integers(8, 40))
            paper[top : top + 6, left : left + word] = rng.uniform(10, 60)
            left += word + int(rng.integers(4, 8))
    return paper * np.linspace(1.0, 0.8, width)[None, :, None]  # light falling off across the page


def _probe_night(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    pixels = _tinted(rng, size, (5, 5, 10), (40, 40, 60))
    y, x = np.mgrid[:height, :width]
    for _ in range(int(rng.integers(4, 9))):
        centre, colour = rng.uniform((0, 0), (width, height)), rng.uniform((180, 120, 40), (255, 240, 200))
        glow = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * rng.uniform(3, 15) ** 2))
        pixels = pixels + glow[..., None] * colour
    return pixels


def quantized_tower(
    tower: torch.nn.Module, calibrate: Callable[[torch.nn.Module], object] | None = None
) -> torch.nn.Module | None:
    """A copy of a transformer tower with its linear layers, attention projections included, in dynamic int8.

    torch leaves nn.MultiheadAttention's projections in fp32 (its input projection is a bare parameter), a
    third of a ViT's matrix work; each is rebuilt from two nn.Linear so that quantisation reaches them too.
    With `calibrate` (a function that runs some inputs through the copy, still in fp32), the copy is smoothed
    first (`smooth_outlier_channels`). Every nn.Linear then becomes a `_RowScaledInt8Linear`: int8 weights, each
    token's activations on its own scale, so that no input's result depends on the others in its batch.
    None when this torch has no int8 kernels.
    """
    tower = copy.deepcopy(tower)
    for module in list(tower.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.MultiheadAttention) and _is_plain_self_attention(child):
                setattr(module, child_name, _LinearSelfAttention(child))
    if calibrate is not None:
        smooth_outlier_channels(tower, calibrate)
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


def smooth_outlier_channels(tower: torch.nn.Module, calibrate: Callable[[torch.nn.Module], object]) -> None:
    """Move each transformer block's outlier activation channels into the weights, as SmoothQuant does.

    Real ViTs carry a few channels tens of times larger than the rest after their LayerNorms; a token quantised
    on one scale then keeps only a few levels for all its other channels. Each channel j of a layer's input
    is divided by a factor f_j and the layer's input column j multiplied by it (the product is unchanged),
    with f_j = peak_j^α / weight peak_j^(1-α) over what `calibrate` runs through the tower, and the division
    folded into what feeds the layer, so that int8 runs exactly as much work as before: the LayerNorm's gain
    and bias for the attention's input projection (after ln_1) and the MLP's first layer (after ln_2), the
    value projection's rows for the attention's output projection (attention weights mix values linearly).
    The factors change with any rescaling of a channel between a LayerNorm and its layer, so the smoothed
    tower is the same whatever such a rescaling put there. Blocks of another shape are left as they are.
    """
    blocks = [
        block
        for block in tower.modules()
        if isinstance(block, open_clip.transformer.ResidualAttentionBlock)
        and isinstance(block.attn, _LinearSelfAttention)
        and all(_affine_layer_norm(norm) for norm in (block.ln_1, block.ln_2))
        and isinstance(getattr(block.mlp, "c_fc", None), torch.nn.Linear)
    ]
    layers = [
        layer for block in blocks for layer in (block.attn.in_proj, block.attn.out_proj, block.mlp.c_fc)
    ]
    peaks: dict[torch.nn.Module, torch.Tensor] = {}

    def record(layer: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        peak = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0).float()
        peaks[layer] = torch.maximum(peaks[layer], peak) if layer in peaks else peak

    hooks = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            calibrate(tower)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for block in blocks:
            attention, mlp = block.attn, block.mlp
            if not all(layer in peaks for layer in (attention.in_proj, attention.out_proj, mlp.c_fc)):
                continue  # the calibration never reached this block
            for norm, layer in ((block.ln_1, attention.in_proj), (block.ln_2, mlp.c_fc)):
                factors = _smoothing_factors(peaks[layer], layer.weight)
                norm.weight.div_(factors)
                norm.bias.div_(factors)
                layer.weight.mul_(factors)
            factors = _smoothing_factors(peaks[attention.out_proj], attention.out_proj.weight)
            values = slice(2 * attention.width, 3 * attention.width)
            attention.in_proj.weight[values] /= factors[:, None]
            attention.in_proj.bias[values] /= factors
            attention.out_proj.weight.mul_(factors)


def _smoothing_factors(peaks: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SmoothQuant's per-input-channel factors for a layer: 1 where a channel was never seen or has no weight."""
    weight_peaks = weight.detach().abs().amax(dim=0).float()
    usable = (peaks > 0) & (weight_peaks > 0)
    factors = peaks.clamp_min(1e-12) ** SMOOTHING_ALPHA / weight_peaks.clamp_min(1e-12) ** (
        1 - SMOOTHING_ALPHA
    )
    return torch.where(usable, factors, torch.ones_like(factors)).to(weight.dtype)


def _affine_layer_norm(norm: torch.nn.Module) -> bool:
    return isinstance(norm, torch.nn.LayerNorm) and norm.weight is not None and norm.bias is not None


def _trims_text(model: torch.nn.Module) -> bool:
    """Whether `encode_text_trimmed` runs this model's text tower itself (and so can run its int8 copy)."""
    pool = getattr(model, "text_pool_type", None)
    return isinstance(model, open_clip.CLIP) and pool == "argmax" and model.attn_mask is not None


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


def _linear_of(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.nn.Linear:
    """An nn.Linear holding copies of `weight` and `bias`.

    Built on the meta device, so no random initialisation is drawn (torch's generator is left as it was) or
    written over. Not `torch.nn.utils.skip_init`, whose `to_empty` runs torch's Python reference of `empty_like`,
    which imports sympy (0.8 s) on its first call.
    """
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = torch.nn.Parameter(weight.detach().clone())
    if bias is not None:
        linear.bias = torch.nn.Parameter(bias.detach().clone())
    return linear


class _LinearSelfAttention(torch.nn.Module):
    """nn.MultiheadAttention (batch first, self-attention) with its projections as nn.Linear layers."""

    def __init__(self, attention: torch.nn.MultiheadAttention) -> None:
        super().__init__()
        width = attention.embed_dim
        self.width = width
        self.heads = attention.num_heads
        self.in_proj = _linear_of(attention.in_proj_weight, attention.in_proj_bias)
        self.out_proj = _linear_of(attention.out_proj.weight, attention.out_proj.bias)

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
    if not _trims_text(model):
        if transformer is not None:
            raise ValueError("only CLIP's causal text tower runs with a replaced transformer")
        return model.encode_text(tokens)
    length = int(tokens.ne(0).any(dim=0).nonzero().max()) + 1 if tokens.numel() else 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = (transformer or model.transformer)(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = open_clip.transformer.text_global_pool(x, tokens, model.text_pool_type)
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
