"""Model presets as data, and the `--model` spec strings that name one.

The default Fast encoder is OpenCLIP's ViT-B-32 trained on LAION-2B (`laion2b_s34b_b79k`) rather than on
DataComp-XL (`datacomp_xl_s13b_b90k`). Glimpse's task is text→image retrieval, and the results tables in
OpenCLIP's repository (docs/openclip_retrieval_results.csv) rank LAION-2B ahead there: Flickr30k image retrieval
R@1 0.6678 against 0.6108, MSCOCO image retrieval R@1 0.3934 against 0.3714; DataComp-XL wins ImageNet zero-shot
classification (0.6917 against 0.6656, docs/openclip_results.csv), which is not what a search box needs. Both
cost the same (151.28 M parameters, 14.78 GFLOPs per image), and ViT-B-32 is the cheapest of the three real
architectures, so a first index of a photo library finishes on a laptop CPU; `vit-b-16` and `vit-l-14` trade
time for accuracy (the same tables rank their LAION-2B weights ahead of DataComp-XL on Flickr30k retrieval too).

A Fast preset names the Slow preset that re-ranks its shortlist by default (`Preset.slow`), so `--model vit-b-32`
means the pair vit-b-32 + coca-vit-b-32. The Slow model is OpenCLIP's CoCa fine-tuned on MSCOCO captions
(`mscoco_finetuned_laion2b_s13b_b90k`): Glimpse scores log p(query | image) with its captioning decoder, and the
MSCOCO fine-tuning is what makes that decoder a likelihood of short, literal descriptions, the kind of sentence
typed into a search box (the LAION-only CoCa weights model alt-text instead). The ViT-B-32 CoCa pairs with both
base-size Fast encoders: its re-ranking pass fits a CPU's interactive budget (docs/benchmarks.md, "Re-ranking").
The ViT-L-14 CoCa's decoder is 1.5x wider (about twice the scoring work per candidate) and its image tower does
about 18x the work of ViT-B-32's (24 layers of width 1024 over 256 patches, against 12 of width 768 over 49), so it
is paired with vit-l-14 only, which wants a GPU anyway. A Slow preset can also be named alone (`coca-vit-b-32@random`), as the benchmarks do.

This module imports neither torch nor open_clip: the command line reads it for `glimpse models` and `--help`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import UsageError

#: Where a model's weights come from: its preset's published weights, seeded random ones, or a local file.
Source = Literal["pretrained", "random", "file"]
#: What a preset is: a Fast dual encoder (`FastEncoder`) or a Slow cross-attention scorer (`SlowScorer`).
Kind = Literal["fast", "slow"]


@dataclass(frozen=True)
class Preset:
    """A named model: an open_clip architecture and where its weights come from."""

    name: str
    description: str
    #: open_clip model name (`open_clip.list_models()`), or one of `ARCHITECTURES` below.
    architecture: str
    #: open_clip pretrained tag; None when the preset has no published weights (random, seeded).
    pretrained: str | None
    #: Hugging Face hub repository the weights are fetched from (as open_clip's registry names it).
    hf_repo: str | None
    #: File name of the weights: inside `hf_repo` as open_clip's registry names it (its default,
    #: `open_clip_pytorch_model.bin`, for every hub preset; like open_clip, the download prefers the
    #: repository's `open_clip_model.safetensors` where it has one, see `hub.weights_files`), or in
    #: resources/models/ for a shipped checkpoint.
    weights_file: str | None
    #: Width of the embeddings.
    dim: int
    #: Approximate size of the weights download.
    download_mb: int
    #: True when the preset needs no download at all.
    offline: bool
    kind: Kind = "fast"
    #: For a Fast preset, the Slow preset that re-ranks its shortlist by default; None: no re-ranking.
    slow: str | None = None
    #: For a Fast preset, how the Slow pair's verdict weighs against its own: cosine units per nat per token of
    #: log-likelihood (engine/search/fusion.py); None: the default. A calibration on this computer wins.
    fusion_weight: float | None = None


#: The fusion weight of the pretrained pairs (CLIP + CoCa), in cosine units per nat per token: not measured here
#: (no weights can be downloaded where Glimpse is built), but chosen from the two models' ranges. CLIP's cosines
#: of a right and a near-miss photo differ by about 0.01 to 0.05; CoCa's caption log-likelihoods of a right and
#: a wrong photo by about half a nat to two nats per token. At 0.1, a CoCa that is sure (a nat per token) moves
#: a photo by 0.1, more than any Fast near-miss, and one that is unsure (0.1 nat) by 0.01, less than the Fast
#: order's own gaps. `glimpse eval DATASET --model vit-b-32 --calibrate-fusion` measures it on a labelled set
#: (docs/models.md, "Fusion").
PRETRAINED_FUSION_WEIGHT = 0.1

#: The architecture of presets whose weights are a checkpoint of `glimpse train` (engine/training): the file
#: says what it holds. Their default weights ship in resources/models/; `NAME@/path/to/checkpoint.pt` names
#: another checkpoint of the same kind, e.g. one trained with `glimpse train`.
CHECKPOINT = "glimpse-checkpoint"
SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"

#: Glimpse's own architectures, in open_clip's config format (what its model_configs/*.json hold).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "glimpse-tiny": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 64, "layers": 2, "head_width": 32},
        # The standard BPE vocabulary (it ships inside open_clip), so real text tokenises as usual.
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    # open_clip's coca_ViT-B-32 config scaled down: the same towers, 16 visual tokens instead of 255.
    "glimpse-tiny-coca": {
        # CoCa's decoder cross-attends to the image tokens at its own width, so embed_dim must equal it.
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 64,
            "patch_size": 16,
            "width": 64,
            "layers": 2,
            "head_width": 32,
            "attentional_pool": True,
            "attn_pooler_queries": 17,
            "attn_pooler_heads": 2,
            "output_tokens": True,
        },
        "text_cfg": {
            "context_length": 76,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
            "embed_cls": True,
            "output_tokens": True,
        },
        "multimodal_cfg": {
            "context_length": 76,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
            "attn_pooler_heads": 2,
        },
        "custom_text": True,
    },
}

#: Every preset by name. Tests may add a preset of their own to it (monkeypatch.setitem).
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="shapes",
            description="Glimpse's own small Fast model, trained on synthetic shape scenes and shipped; offline.",
            architecture=CHECKPOINT,
            pretrained=None,
            hf_repo=None,
            weights_file="shapes-fast.pt",
            dim=128,
            download_mb=0,
            offline=True,
            slow="shapes-slow",
            # Calibrated on the shapes validation split, K = 10, 400 captions: R@1 78.25 against 77.25 for the
            # Slow order alone and 43.75 for Fast alone (benchmarks/results/fusion-shapes-val.json).
            fusion_weight=1.0,
        ),
        Preset(
            name="shapes-slow",
            description="Glimpse's own small Slow re-ranker for the shapes preset, shipped; offline.",
            architecture=CHECKPOINT,
            pretrained=None,
            hf_repo=None,
            weights_file="shapes-slow.pt",
            dim=0,
            download_mb=0,
            offline=True,
            kind="slow",
        ),
        Preset(
            name="tiny-test",
            description="Tiny random-weight CLIP for tests of the plumbing; offline, its results mean nothing.",
            architecture="glimpse-tiny",
            pretrained=None,
            hf_repo=None,
            weights_file=None,
            dim=32,
            download_mb=0,
            offline=True,
            slow="tiny-test-slow",
        ),
        Preset(
            name="tiny-test-slow",
            description="Tiny random-weight CoCa for tests of the re-ranking plumbing; offline, meaningless.",
            architecture="glimpse-tiny-coca",
            pretrained=None,
            hf_repo=None,
            weights_file=None,
            dim=64,
            download_mb=0,
            offline=True,
            kind="slow",
        ),
        Preset(
            name="vit-b-32",
            description="OpenCLIP ViT-B/32 trained on LAION-2B: the default, quick enough for a CPU.",
            architecture="ViT-B-32",
            pretrained="laion2b_s34b_b79k",
            hf_repo="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            weights_file="open_clip_pytorch_model.bin",
            dim=512,
            download_mb=605,
            offline=False,
            slow="coca-vit-b-32",
            fusion_weight=PRETRAINED_FUSION_WEIGHT,
        ),
        Preset(
            name="vit-b-16",
            description="OpenCLIP ViT-B/16 trained on LAION-2B: more accurate, about 3x the compute of vit-b-32.",
            architecture="ViT-B-16",
            pretrained="laion2b_s34b_b88k",
            hf_repo="laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
            weights_file="open_clip_pytorch_model.bin",
            dim=512,
            download_mb=599,
            offline=False,
            slow="coca-vit-b-32",
            fusion_weight=PRETRAINED_FUSION_WEIGHT,
        ),
        Preset(
            name="vit-l-14",
            description="OpenCLIP ViT-L/14 trained on LAION-2B: the most accurate, about 12x the compute; "
            "wants a GPU.",
            architecture="ViT-L-14",
            pretrained="laion2b_s32b_b82k",
            hf_repo="laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
            weights_file="open_clip_pytorch_model.bin",
            dim=768,
            download_mb=1711,
            offline=False,
            slow="coca-vit-l-14",
            fusion_weight=PRETRAINED_FUSION_WEIGHT,
        ),
        Preset(
            name="coca-vit-b-32",
            description="OpenCLIP CoCa ViT-B/32 fine-tuned on MSCOCO captions: the Slow re-ranker of the base "
            "presets.",
            architecture="coca_ViT-B-32",
            pretrained="mscoco_finetuned_laion2b_s13b_b90k",
            hf_repo="laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k",
            weights_file="open_clip_pytorch_model.bin",
            dim=512,
            download_mb=1014,
            offline=False,
            kind="slow",
        ),
        Preset(
            name="coca-vit-l-14",
            description="OpenCLIP CoCa ViT-L/14 fine-tuned on MSCOCO captions: the Slow re-ranker of vit-l-14; "
            "wants a GPU.",
            architecture="coca_ViT-L-14",
            pretrained="mscoco_finetuned_laion2b_s13b_b90k",
            hf_repo="laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k",
            weights_file="open_clip_pytorch_model.bin",
            dim=768,
            download_mb=2554,
            offline=False,
            kind="slow",
        ),
    )
}

DEFAULT_PRESET = "vit-b-32"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `--model` string: a preset and the weights to put in it."""

    preset: Preset
    source: Source
    #: The weights file when `source` is "file".
    path: Path | None = None

    @property
    def key(self) -> str:
        """Identity of the vector space these weights produce; safe to use in a file name."""
        if self.source == "file":
            assert self.path is not None
            return f"{self.preset.name}@file-{_file_digest(self.path)[:12]}"
        if self.source == _default_source(self.preset):
            return self.preset.name
        return f"{self.preset.name}@{self.source}"


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse `NAME`, `NAME@random` or `NAME@/path/to/weights` (.bin, .pt, .pth or .safetensors)."""
    name, at, weights = spec.strip().partition("@")
    preset = PRESETS.get(name.lower())
    if preset is None:
        raise UsageError(f"Unknown model {name!r}: the known presets are {_known_presets()}.")
    if not at:
        if preset.architecture == CHECKPOINT:
            assert preset.weights_file is not None
            return ModelSpec(preset, "file", SHIPPED_MODELS / preset.weights_file)
        return ModelSpec(preset, _default_source(preset))
    if not weights:
        raise UsageError(
            f"Model {spec!r} names no weights after '@': use {name}@random or {name}@/path/to/file."
        )
    if weights == "random":
        return ModelSpec(preset, "random")
    path = Path(weights).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"The weights file {path} given for model {preset.name} does not exist.")
    return ModelSpec(preset, "file", path)


def paired_slow(spec: str) -> str | None:
    """The Slow spec re-ranking a Fast spec's shortlist by default, or None when its preset names no pair.

    Random weights pair with random weights, so an offline benchmark of `vit-b-32@random` stays offline; a Fast
    encoder's local weights file says nothing about the Slow model's, which keeps its preset's own weights.
    """
    fast = parse_model_spec(spec)
    if fast.preset.kind != "fast":
        raise UsageError(f"Model {fast.preset.name} is a Slow scorer, not a Fast encoder: it has no pair.")
    slow = PRESETS.get(fast.preset.slow) if fast.preset.slow else None
    if slow is None:
        return None
    return f"{slow.name}@random" if fast.source == "random" and slow.pretrained else slow.name


def _default_source(preset: Preset) -> Source:
    return "random" if preset.pretrained is None else "pretrained"


def _known_presets() -> str:
    names = list(PRESETS)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# Hashing a 600 MB file takes a second or two; remember it while the file is unchanged.
_digests: dict[tuple[Path, int, int], str] = {}


def _file_digest(path: Path) -> str:
    stat = path.stat()
    memo = (path, stat.st_size, stat.st_mtime_ns)
    if memo not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        _digests[memo] = digest.hexdigest()
    return _digests[memo]


__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT",
    "DEFAULT_PRESET",
    "PRESETS",
    "Kind",
    "ModelSpec",
    "Preset",
    "Source",
    "paired_slow",
    "parse_model_spec",
]
