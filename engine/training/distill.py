"""Distilling the Slow teacher into the Fast student over hard candidates the Fast model mines.

A *miner* (a trained Fast model) partitions the images into groups of `DistillOptions.group` images it finds
hard to tell apart (an image and the images its captions' nearest neighbours point at, usually its twin); a
batch is made of whole groups. The teacher scores every caption against every image of its image's group once,
before training starts, so a distillation step costs what a plain Fast step costs.

The student minimises InfoNCE over the batch (the hard label) plus `weight` × a soft term: the cross-entropy
from the teacher's distribution over the caption's group, softmax(log p(text | image) / `temperature`) (at
temperature 1, the Slow model's posterior p(image | text) under a uniform prior), to the student's,
softmax(scale · cos / `student_temperature`), taken over the caption's group (`scope="group"`) or over the whole
batch (`scope="batch"`, where the teacher puts no mass outside the group; it says the other groups' images are
easy negatives, which is what mining made them). The soft term is multiplied by student_temperature² so that
its gradients keep their size when the student's distribution is softened (Hinton et al.'s T² scaling). Its
weight may ramp up from zero over the run (`schedule="ramp"`) so the student first learns from the labels.

The same pieces serve distillation without captions (engine/training/teacher_captions.py): there the texts
are the ones the teacher wrote.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from engine.errors import UsageError
from engine.models.caption_scorer import CaptionScorer
from engine.models.checkpoints import load_checkpoint_fast, read_checkpoint, save_checkpoint
from engine.models.visual_trunk import normalise
from engine.training.datasets import RetrievalSet
from engine.training.losses import info_nce
from engine.training.mining import mine_groups
from engine.training.train import (
    TrainingData,
    TrainOptions,
    TrainReport,
    epochs,
    fast_model,
    image_size_for,
    init_vocabulary,
    optimise,
    provenance,
    seeded,
)

#: Pairs the teacher scores per forward pass.
SCORING_CHUNK = 512


@dataclass(frozen=True)
class DistillOptions:
    """How the teacher teaches; the defaults are the recipe measured best (docs/evaluation.md)."""

    #: Weight of the soft term; 0 trains on the mined batches with the hard label alone (the control).
    weight: float = 1.0
    #: Temperature of the teacher's posterior over a caption's group.
    temperature: float = 1.0
    #: The student's similarity logits (its own learned scale) are divided by this in the soft term.
    student_temperature: float = 1.0
    #: Images per mined group: an image and its hardest candidates.
    group: int = 4
    scope: Literal["group", "batch"] = "group"
    #: "constant" weight, or "ramp": rising linearly from 0 to `weight` over the run.
    schedule: Literal["constant", "ramp"] = "constant"


@dataclass
class Prepared:
    """What distillation needs before its first step: the data, the mined groups, the teacher's scores."""

    data: TrainingData
    image_size: int
    groups: torch.Tensor  # (G, group) image indices
    #: (C, group) float32: log p(caption | image) for every caption against its image's group; None at weight 0.
    scores: torch.Tensor | None
    seconds: float
    #: (C,) how much each caption counts (the teacher's confidence in it); None: all alike.
    weights: torch.Tensor | None = None


def _mined(
    data: TrainingData, miner: Path | None, group: int, device: str, rng: random.Random
) -> torch.Tensor:
    if miner is None:
        order = list(range(len(data.pixels)))
        rng.shuffle(order)
        return torch.tensor(order[: len(order) - len(order) % group]).view(-1, group)
    fast = load_checkpoint_fast(miner, device)
    image_vectors = np.concatenate(
        [fast.embed_prepared(normalise(chunk)) for chunk in data.pixels.split(256)]
    )
    text_vectors = np.concatenate(
        [fast.embed_texts(data.texts[start : start + 512]) for start in range(0, len(data.texts), 512)]
    )
    queries = np.stack([text_vectors[c].mean(0) for c in data.captions_of_image])
    return mine_groups(image_vectors, queries, group, rng)


def score_groups(
    model: CaptionScorer,
    pixels: torch.Tensor,
    groups: torch.Tensor,
    tokens: torch.Tensor,
    image_of_caption: torch.Tensor,
    device: str,
    progress: bool = True,
) -> torch.Tensor:
    """The teacher's log p(caption | image) for every caption against every image of its image's group.

    `pixels` (N, 3, S, S) uint8 at the teacher's size; `tokens` (C, L) in the teacher's vocabulary.
    → (C, group) float32, in the group's order; captions of images in no group score NaN.
    """
    size = groups.shape[1]
    group_of_image = torch.full((len(pixels),), -1, dtype=torch.long)
    group_of_image[groups.flatten()] = torch.arange(len(groups)).repeat_interleave(size)
    scores = torch.full((len(tokens), size), float("nan"))
    grouped = torch.nonzero(group_of_image[image_of_caption] >= 0).squeeze(1)
    # Captions in the order of their groups, so a chunk of captions needs the visual tokens of few groups.
    grouped = grouped[torch.argsort(group_of_image[image_of_caption[grouped]], stable=True)]
    per_chunk = max(1, SCORING_CHUNK // size)
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(grouped), per_chunk), desc="teacher scoring", disable=not progress, file=sys.stderr
        ):
            captions = grouped[start : start + per_chunk]
            caption_groups = group_of_image[image_of_caption[captions]]
            needed, slot = torch.unique(caption_groups, return_inverse=True)
            visual = model.encode_images(normalise(pixels[groups[needed].flatten()]).to(device))
            visual = visual.view(len(needed), size, *visual.shape[1:])
            rows = tokens[captions]
            rows = rows[:, : int((rows != 0).sum(1).max())].to(device)
            pairs = visual[slot.to(device)].flatten(0, 1)
            scores[captions] = (
                model.log_likelihood(pairs, rows.repeat_interleave(size, dim=0)).view(-1, size).cpu()
            )
    return scores


def soft_loss(
    logits: torch.Tensor,
    teacher: torch.Tensor,
    columns: torch.Tensor,
    options: DistillOptions,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The soft term for texts whose similarity logits over the batch's images are `logits` (T, B).

    `teacher` (T, group) holds each text's teacher log-likelihoods over the batch columns `columns` (T, group);
    `weights` (T,) weigh the texts (default: alike).
    """
    target = functional.softmax(teacher / options.temperature, dim=1)
    student = logits / options.student_temperature
    if options.scope == "group":
        log_student = functional.log_softmax(student.gather(1, columns), dim=1)
    else:
        log_student = functional.log_softmax(student, dim=1).gather(1, columns)
    # KL(teacher ‖ student) per text: the teacher's entropy subtracted, so a perfect student scores 0.
    divergence = (target * (target.clamp(min=1e-12).log() - log_student)).sum(1)
    if weights is None:
        weights = torch.ones_like(divergence)
    return (divergence * weights).sum() / weights.sum().clamp(min=1e-6) * options.student_temperature**2


def prepare(
    dataset: RetrievalSet,
    teacher: Path,
    options: TrainOptions,
    distill: DistillOptions,
    miner: Path | None = None,
    init: Path | None = None,
) -> Prepared:
    """Load the training split, mine its groups and have the teacher score them (not at weight 0)."""
    if options.batch_size % distill.group:
        raise UsageError(
            f"Distillation batches are whole groups of {distill.group}: use a batch size divisible by it."
        )
    started = time.monotonic()
    rng = random.Random(options.seed)
    size = image_size_for(options, init)
    data = TrainingData.load(dataset, init_vocabulary(init), options, size)
    groups = _mined(data, miner, distill.group, options.device, rng)
    scores = None
    if distill.weight > 0:
        checkpoint = read_checkpoint(teacher, "slow", options.device)
        model = checkpoint.model
        assert isinstance(model, CaptionScorer)
        pixels = data.pixels
        if model.config.trunk.image_size != size:
            pixels = data.resized(model.config.trunk.image_size)
        tokens = checkpoint.vocabulary.encode(data.texts)
        scores = score_groups(
            model, pixels, groups, tokens, data.image_of_caption, options.device, options.progress
        )
    return Prepared(data, size, groups, scores, time.monotonic() - started)


def train_prepared(
    prepared: Prepared,
    source: str,
    out: Path,
    options: TrainOptions,
    distill: DistillOptions,
    init: Path | None = None,
    teacher_name: str = "",
) -> TrainReport:
    """Train the student on prepared groups and scores; `prepare` once, then train several variants on it.

    `source` names the training images in the checkpoint's provenance.
    """
    rng = seeded(options)
    data, groups, group = prepared.data, prepared.groups, distill.group
    model = fast_model(data, options, init, prepared.image_size)
    if len(groups) < options.batch_size // group:
        raise UsageError(f"Only {len(groups)} groups were mined: lower --batch-size or use more images.")
    batches = epochs(len(groups), options.batch_size // group, rng)
    progress = {"value": 0.0}

    def step() -> torch.Tensor:
        images = groups[next(batches)].flatten()  # whole groups, each one's images side by side
        captions, image_of_text = data.sample_captions(images.tolist(), options.captions_per_image, rng)
        tokens = data.batch_tokens(captions).to(options.device)
        image_vectors = model.encode_images(normalise(data.pixels[images]).to(options.device))
        text_vectors = model.encode_texts(tokens)
        scale = model.scale()
        image_of_text = image_of_text.to(options.device)
        weights = None if prepared.weights is None else prepared.weights[captions].to(options.device)
        loss = info_nce(image_vectors, text_vectors, scale, image_of_text, weights)
        weight = distill.weight * (progress["value"] if distill.schedule == "ramp" else 1.0)
        if prepared.scores is not None and weight > 0:
            # A text's candidates are the `group` images of its own group, which sit together in the batch.
            first = image_of_text // group * group
            columns = first.unsqueeze(1) + torch.arange(group, device=first.device)
            logits = scale * text_vectors @ image_vectors.T
            teacher = prepared.scores[captions].to(options.device)
            loss = loss + weight * soft_loss(logits, teacher, columns, distill, weights)
        return loss

    def on_progress(value: float) -> None:
        progress["value"] = value

    run = optimise(model, step, options, "distilling fast", on_progress)
    training = provenance(source, options, run) | {"teacher": teacher_name, "distill": asdict(distill)}
    save_checkpoint(out, "fast", model, data.vocabulary, training)
    return TrainReport.of(out, "fast", run, len(data.pixels), len(data.texts), prepared.seconds)


def train_distill(
    dataset: RetrievalSet,
    out: Path,
    teacher: Path,
    options: TrainOptions,
    miner: Path | None = None,
    init: Path | None = None,
    distill: DistillOptions | None = None,
) -> TrainReport:
    """Train a Fast student with InfoNCE plus the teacher's soft term over Fast-mined hard groups."""
    distill = distill or DistillOptions()
    prepared = prepare(dataset, teacher, options, distill, miner, init)
    return train_prepared(prepared, dataset.name, out, options, distill, init, teacher.name)
