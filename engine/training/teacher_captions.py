"""Distilling without captions: the Slow model writes them, scores them, and the Fast model learns from that.

For images that come with no captions (a person's library, or a split whose captions are held out):

1. The teacher (a Slow captioner) writes several captions per image with its decoder (`Generation`: sampling
   or beams); repeats are dropped.
2. The student (the Fast model to adapt) mines groups of images it confuses, each image with the images its
   written captions point at.
3. The teacher scores every written caption against every image of its image's group: log p(caption | image).
4. Captions the teacher itself would not pick its own image for are the teacher's mistakes; they are
   dropped (`keep="first"`: kept only where the teacher ranks the caption's own image first in its group),
   weighed by the teacher's confidence in the own image (`keep="weighted"`), or all kept (`keep="all"`).
5. The student trains on the kept captions exactly as labelled distillation does (engine/training/distill.py):
   InfoNCE over batches of whole groups plus the teacher's soft term over each caption's group.

A tenth of the kept captions (`held_out`) is set aside before training; the report gives the student's R@1
on them before and after, over all the images, so a caller (`glimpse tune`) can refuse a model that did not
improve. `distill_from_teacher_captions` takes the images as decoded pictures, so it serves a data set's split
and a library's photos alike.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from engine.errors import UsageError
from engine.models.caption_scorer import CaptionScorer, Generation
from engine.models.checkpoints import Checkpoint, CheckpointFastEncoder, read_checkpoint
from engine.models.visual_trunk import image_pixels, normalise
from engine.training.distill import DistillOptions, Prepared, score_groups, train_prepared
from engine.training.mining import mine_groups
from engine.training.train import TrainingData, TrainOptions, TrainReport

#: Images the teacher writes captions for per decoder pass.
WRITING_CHUNK = 64


@dataclass(frozen=True)
class CaptionDistillOptions:
    """How the teacher's captions are written, filtered and learned from; defaults as measured best."""

    generation: Generation = field(default_factory=lambda: Generation("sample", count=8, temperature=0.7))
    keep: Literal["first", "weighted", "all"] = "first"
    distill: DistillOptions = field(default_factory=lambda: DistillOptions(group=8))
    #: Share of the kept captions set aside to check the adapted model on.
    held_out: float = 0.1


@dataclass(frozen=True)
class CaptionDistillReport:
    """What distillation from the teacher's own captions did."""

    images: int
    #: Distinct captions the teacher wrote, and how many it kept (its own image first, or all).
    written: int
    kept: int
    #: The student's R@1 (percent) on the held-out captions over all the images, before and after.
    held_out_captions: int
    held_out_r1_before: float
    held_out_r1_after: float
    train: TrainReport
    #: Seconds spent writing captions, mining and scoring, before the first step.
    preparation_seconds: float

    @property
    def improved(self) -> bool:
        """Whether the adapted student finds the held-out captions' images more often than it did."""
        return self.held_out_r1_after > self.held_out_r1_before


def write_captions(
    teacher: Checkpoint, pixels: torch.Tensor, generation: Generation, device: str, progress: bool = True
) -> list[list[str]]:
    """The teacher's distinct captions of each image (N, 3, S, S) uint8 at its size, likeliest first."""
    model = teacher.model
    assert isinstance(model, CaptionScorer)
    vocabulary = teacher.vocabulary
    banned = (vocabulary.pad_id, vocabulary.bos_id, vocabulary.unk_id)
    captions: list[list[str]] = []
    chunks = pixels.split(WRITING_CHUNK)
    for index, chunk in enumerate(
        tqdm(chunks, desc="writing captions", disable=not progress, file=sys.stderr)
    ):
        visual = model.encode_images(normalise(chunk).to(device))
        # A seed per chunk: the captions of an image do not depend on how many images come before it.
        options = Generation(**{**asdict(generation), "seed": generation.seed + index})
        for written in model.generate(visual, vocabulary.bos_id, vocabulary.eos_id, banned, options):
            texts = [vocabulary.decode(w.ids) for w in written]
            captions.append([t for i, t in enumerate(texts) if t and t not in texts[:i]])
    return captions


def distill_from_teacher_captions(
    images: Iterable[Image.Image],
    teacher: Path,
    student: Path,
    out: Path,
    options: TrainOptions,
    captioning: CaptionDistillOptions | None = None,
    source: str = "images",
) -> CaptionDistillReport:
    """Adapt the Fast checkpoint `student` to `images` (no captions needed), taught by the Slow `teacher`.

    Writes the adapted student to `out` and reports how it does on held-out written captions (`improved`).
    `source` names the images in the checkpoint's provenance.
    """
    captioning = captioning or CaptionDistillOptions()
    distill = captioning.distill
    started = time.monotonic()
    slow = read_checkpoint(teacher, "slow", options.device)
    fast = read_checkpoint(student, "fast", options.device)
    student_size = fast.model.config.trunk.image_size
    teacher_size = slow.model.config.trunk.image_size
    pictures = [(image_pixels(i, student_size), image_pixels(i, teacher_size)) for i in images]
    if len(pictures) < max(distill.group, options.batch_size // distill.group):
        raise UsageError(f"{len(pictures)} images are too few to tune on: it takes a few batches' worth.")
    student_pixels = torch.stack([p for p, _ in pictures])
    teacher_pixels = student_pixels if teacher_size == student_size else torch.stack([t for _, t in pictures])
    del pictures

    captions = write_captions(slow, teacher_pixels, captioning.generation, options.device, options.progress)
    written = sum(len(c) for c in captions)
    encoder = CheckpointFastEncoder(fast, options.device)
    data = TrainingData.from_captions(student_pixels, captions, fast.vocabulary)
    rng = random.Random(options.seed)
    groups = mine_groups(_image_vectors(encoder, student_pixels), _queries(encoder, data), distill.group, rng)
    scores = score_groups(
        slow.model,  # type: ignore[arg-type]
        teacher_pixels,
        groups,
        slow.vocabulary.encode(data.texts),
        data.image_of_caption,
        options.device,
        options.progress,
    )
    own_column = _own_columns(groups, data.image_of_caption, len(student_pixels))
    confidence = _own_image_posterior(scores, own_column, distill.temperature)
    kept = _kept(scores, own_column, captioning.keep)
    held_out = _held_out(kept, captioning.held_out, rng)
    training = [c for c in kept if c not in held_out]
    weights = confidence if captioning.keep == "weighted" else None
    train_data, train_scores, train_weights = _subset(data, scores, weights, training)
    preparation = time.monotonic() - started

    before = _recall_at_1(encoder, student_pixels, data, sorted(held_out))
    prepared = Prepared(train_data, student_size, groups, train_scores, preparation, train_weights)
    report = train_prepared(prepared, source, out, options, distill, student, teacher.name)
    adapted = CheckpointFastEncoder(read_checkpoint(out, "fast", options.device), options.device)
    after = _recall_at_1(adapted, student_pixels, data, sorted(held_out))
    return CaptionDistillReport(
        len(student_pixels), written, len(kept), len(held_out), before, after, report, preparation
    )


def _image_vectors(encoder: CheckpointFastEncoder, pixels: torch.Tensor) -> np.ndarray:
    return np.concatenate([encoder.embed_prepared(normalise(chunk)) for chunk in pixels.split(256)])


def _text_vectors(encoder: CheckpointFastEncoder, texts: list[str]) -> np.ndarray:
    return np.concatenate(
        [encoder.embed_texts(texts[start : start + 512]) for start in range(0, len(texts), 512)]
    )


def _queries(encoder: CheckpointFastEncoder, data: TrainingData) -> np.ndarray:
    """Each image's query for mining: the mean embedding of its written captions (its own vector if none)."""
    texts = _text_vectors(encoder, data.texts)
    images = _image_vectors(encoder, data.pixels)
    return np.stack(
        [texts[own].mean(0) if own else images[i] for i, own in enumerate(data.captions_of_image)]
    )


def _own_columns(groups: torch.Tensor, image_of_caption: torch.Tensor, images: int) -> torch.Tensor:
    """Each caption's own image's column in its group, -1 where the image is in no group."""
    column = torch.full((images,), -1, dtype=torch.long)
    column[groups.flatten()] = torch.arange(groups.shape[1]).repeat(len(groups))
    return column[image_of_caption]


def _own_image_posterior(scores: torch.Tensor, own_column: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's probability of each caption's own image among its group's (0 where it has no group)."""
    posterior = torch.softmax(scores.nan_to_num(float("-inf")) / temperature, dim=1)
    picked = posterior.gather(1, own_column.clamp(min=0).unsqueeze(1)).squeeze(1)
    return picked.nan_to_num(0.0).masked_fill(own_column < 0, 0.0)


def _kept(scores: torch.Tensor, own_column: torch.Tensor, keep: str) -> list[int]:
    """The captions learned from: all grouped ones, or those whose own image the teacher ranks first."""
    kept = own_column >= 0
    if keep == "first":
        kept &= scores.nan_to_num(float("-inf")).argmax(dim=1) == own_column
    return torch.nonzero(kept).squeeze(1).tolist()


def _held_out(kept: list[int], share: float, rng: random.Random) -> set[int]:
    return set(rng.sample(kept, round(len(kept) * share))) if share > 0 else set()


def _subset(
    data: TrainingData, scores: torch.Tensor, weights: torch.Tensor | None, captions: list[int]
) -> tuple[TrainingData, torch.Tensor, torch.Tensor | None]:
    """The data restricted to `captions` (every image stays: the others are negatives), with their scores."""
    picked = set(captions)
    own = [[data.texts[c] for c in cs if c in picked] for cs in data.captions_of_image]
    order = [c for cs in data.captions_of_image for c in cs if c in picked]
    subset = TrainingData.from_captions(data.pixels, own, data.vocabulary)
    return subset, scores[order], None if weights is None else weights[order]


def _recall_at_1(
    encoder: CheckpointFastEncoder, pixels: torch.Tensor, data: TrainingData, captions: list[int]
) -> float:
    """R@1 (percent) of `captions` as queries over all the images."""
    if not captions:
        return 0.0
    images = _image_vectors(encoder, pixels)
    texts = _text_vectors(encoder, [data.texts[c] for c in captions])
    similarity = texts @ images.T
    own = data.image_of_caption[captions].numpy()
    return round(100 * float(np.mean(similarity.argmax(1) == own)), 2)
