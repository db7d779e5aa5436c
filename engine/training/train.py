"""Training the Slow captioner and the Fast dual encoder: the data, the budgeted optimiser, the two trainers.

Every trainer is time-budgeted: it runs optimisation steps until `minutes` of wall time have passed (loading
the data and scoring with the teacher are not counted), with a learning rate that warms up (over 5 % of the
budget, at most 100 steps) and then follows a cosine over the budget. Randomness is seeded; since the number
of steps a budget buys depends on the machine, `steps` fixes the count instead, for runs that must repeat
exactly.

The recipe was made to carry to sets nobody tuned it to (docs/evaluation.md): the Fast image tower reads
the trunk's coarse tokens only, no dropout, and a Fast batch holds every caption of its images.

Distillation lives in engine/training/distill.py and builds on these pieces.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from engine.errors import UsageError
from engine.models.caption_scorer import CaptionScorer, SlowConfig
from engine.models.checkpoints import read_checkpoint, save_checkpoint
from engine.models.dual_encoder import DualEncoder, FastConfig
from engine.models.visual_trunk import TrunkConfig, image_pixels, normalise
from engine.models.vocabulary import Vocabulary
from engine.training.datasets import Item, RetrievalSet, load_frames
from engine.training.losses import caption_loss, info_nce
from engine.training.mining import mine_groups, word_vectors

#: The learning rate warms up from zero over this share of the budget, or this many steps if fewer.
WARMUP_SHARE = 0.05
WARMUP_STEPS = 100
#: Names the training recipe in each checkpoint's provenance (1: the first shapes models).
RECIPE = 2


@dataclass(frozen=True)
class TrainOptions:
    """What every trainer shares."""

    minutes: float = 5.0
    #: A fixed number of steps (the schedule then follows steps, not time); None: as many as `minutes` allow.
    steps: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    #: Side of the square the models read. 64 px whatever the set's own size: on a 96 px set the models
    #: learned as much per step at 64 px as at 96, for 1.7× less time a step (docs/evaluation.md).
    image_size: int = 64
    #: A word must occur this often in the training captions to get its own token.
    min_word_count: int = 2
    #: Captions per image in a Fast batch: each image is embedded once for all of them.
    captions_per_image: int = 5
    #: Batches of whole groups of this many images whose captions share their words (a scene and its hardest
    #: neighbours); 1: random batches.
    hard_group: int = 1
    #: Slow only: weight of the term that ranks each caption's own image above its group's others.
    contrast: float = 0.0
    #: Show a progress bar on stderr.
    progress: bool = True


@dataclass(frozen=True)
class TrainReport:
    """What a training run did."""

    out: Path
    role: str
    steps: int
    seconds: float
    #: Mean loss over the first and the last few steps.
    first_loss: float
    last_loss: float
    images: int
    captions: int
    #: Seconds spent before the first step on work that is not optimisation (teacher scoring, mining).
    preparation_seconds: float = 0.0
    #: CPU time of the steps, all threads together: what the run cost on a shared machine.
    cpu_seconds: float = 0.0

    @classmethod
    def of(
        cls, out: Path, role: str, run: Optimised, images: int, captions: int, preparation: float = 0.0
    ) -> TrainReport:
        return cls(
            out,
            role,
            run.steps,
            run.seconds,
            run.first_loss,
            run.last_loss,
            images,
            captions,
            preparation,
            run.cpu_seconds,
        )


@dataclass(frozen=True)
class Optimised:
    """What `optimise` did."""

    steps: int
    #: Mean loss over the first and the last few steps.
    first_loss: float
    last_loss: float
    seconds: float
    cpu_seconds: float


@dataclass
class TrainingData:
    """The training split in memory: uint8 pixels, every caption's token ids, and who captions whom."""

    pixels: torch.Tensor  # (N, 3, S, S) uint8
    tokens: torch.Tensor  # (C, L) int64, right-padded
    image_of_caption: torch.Tensor  # (C,)
    captions_of_image: list[list[int]]
    texts: list[str]
    vocabulary: Vocabulary

    @classmethod
    def from_captions(
        cls, pixels: torch.Tensor, captions: list[list[str]], vocabulary: Vocabulary
    ) -> TrainingData:
        """Images (N, 3, S, S) uint8 and each one's captions (any number, none included)."""
        texts = [text for own in captions for text in own]
        image_of_caption = torch.tensor([i for i, own in enumerate(captions) for _ in own], dtype=torch.long)
        captions_of_image: list[list[int]] = [[] for _ in captions]
        for caption, image in enumerate(image_of_caption.tolist()):
            captions_of_image[image].append(caption)
        return cls(pixels, vocabulary.encode(texts), image_of_caption, captions_of_image, texts, vocabulary)

    @classmethod
    def load(
        cls, dataset: RetrievalSet, vocabulary: Vocabulary | None, options: TrainOptions, image_size: int
    ) -> TrainingData:
        train = dataset.split("train")
        items = [item for item in train.items if item.captions]
        texts = [text for item in items for text in item.captions]
        vocabulary = vocabulary or Vocabulary.build(texts, options.min_word_count)
        pixels = load_pixels(items, image_size, options.progress)
        return cls.from_captions(pixels, [list(item.captions) for item in items], vocabulary)

    def sample_captions(
        self, images: list[int], per_image: int, rng: random.Random
    ) -> tuple[list[int], torch.Tensor]:
        """Up to `per_image` different captions of each image → (captions, the batch row of each one's image)."""
        captions: list[int] = []
        rows: list[int] = []
        for row, image in enumerate(images):
            own = self.captions_of_image[image]
            picked = rng.sample(own, min(per_image, len(own)))
            captions += picked
            rows += [row] * len(picked)
        return captions, torch.tensor(rows)

    def resized(self, size: int) -> torch.Tensor:
        """The pixels at another side (a teacher trained at another size reads them so)."""
        return (
            functional.interpolate(self.pixels.float(), size=(size, size), mode="bilinear", antialias=True)
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
        )

    def batch_tokens(self, captions: list[int] | torch.Tensor) -> torch.Tensor:
        """Token ids of `captions`, cut to the longest among them."""
        rows = self.tokens[captions]
        return rows[:, : int((rows != 0).sum(1).max())]


def load_pixels(items: Sequence[Item], size: int, progress: bool = True) -> torch.Tensor:
    """Each item's first frame as (N, 3, size, size) uint8."""
    return torch.stack(
        [
            image_pixels(load_frames(item)[0], size)
            for item in tqdm(items, desc="loading images", disable=not progress, file=sys.stderr)
        ]
    )


def image_size_for(options: TrainOptions, init: Path | None = None) -> int:
    """The side images train at: `init`'s when the model starts from a checkpoint, else the options'."""
    if init is not None:
        return read_checkpoint(init, "fast").model.config.trunk.image_size
    return options.image_size


def optimise(
    model: torch.nn.Module,
    step: Callable[[], torch.Tensor],
    options: TrainOptions,
    description: str,
    on_progress: Callable[[float], None] | None = None,
) -> Optimised:
    """Run `step` (which returns the batch's loss) until the budget is spent.

    AdamW with a warm-up and a cosine schedule over the budget (time, or `options.steps`), gradients clipped at 1.
    `on_progress` hears the share of the budget spent (0 to 1) before each step.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    # No weight decay on gains, biases and the temperature (the 1-d parameters): shrinking them only hurts.
    decayed = [p for p in parameters if p.ndim >= 2]
    kept = [p for p in parameters if p.ndim < 2]
    optimiser = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": 0.05}, {"params": kept, "weight_decay": 0.0}],
        lr=options.learning_rate,
    )
    budget = options.minutes * 60
    start, cpu_start = time.monotonic(), time.process_time()
    losses: list[float] = []
    bar = tqdm(total=options.steps, desc=description, disable=not options.progress, file=sys.stderr)
    model.train()
    steps = 0
    while True:
        elapsed = time.monotonic() - start
        progress = steps / options.steps if options.steps else elapsed / budget
        if progress >= 1:
            break
        # Warm-up ends after WARMUP_STEPS or WARMUP_SHARE of the budget, whichever comes first: a short
        # budget (few steps a minute on a large image) must not spend a third of itself warming up.
        warm = min(1.0, max((steps + 1) / WARMUP_STEPS, (progress + 1e-9) / WARMUP_SHARE))
        factor = warm * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimiser.param_groups:
            group["lr"] = options.learning_rate * factor
        if on_progress is not None:
            on_progress(progress)
        loss = step()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        losses.append(loss.item())
        steps += 1
        bar.update(1)
        if steps % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    bar.close()
    model.eval()
    if not losses:
        raise UsageError("The training budget ran out before the first step: give more --minutes or --steps.")
    window = max(1, min(20, len(losses) // 4))
    first, last = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
    return Optimised(steps, first, last, time.monotonic() - start, time.process_time() - cpu_start)


def seeded(options: TrainOptions) -> random.Random:
    torch.manual_seed(options.seed)
    return random.Random(options.seed)


def image_batches(
    data: TrainingData, options: TrainOptions, size: int, rng: random.Random
) -> Iterator[list[int]]:
    """Endless batches of `size` images: at random, or whole groups of `options.hard_group` images whose
    captions share their words, each group's images side by side."""
    if options.hard_group <= 1:
        return epochs(len(data.pixels), size, rng)
    if size % options.hard_group:
        raise UsageError(f"A batch of {size} images does not hold whole groups of {options.hard_group}.")
    vectors = word_vectors(data.tokens, data.captions_of_image, len(data.vocabulary))
    groups = mine_groups(vectors, vectors, options.hard_group, rng).tolist()
    return (
        [i for g in batch for i in groups[g]]
        for batch in epochs(len(groups), size // options.hard_group, rng)
    )


def epochs(count: int, batch: int, rng: random.Random) -> Iterator[list[int]]:
    """Endless batches of indices 0..count-1, reshuffled every epoch; the last short batch is dropped."""
    while True:
        order = list(range(count))
        rng.shuffle(order)
        for start in range(0, count - batch + 1, batch):
            yield order[start : start + batch]


def _images(data: TrainingData, indices: list[int] | torch.Tensor, device: str) -> torch.Tensor:
    return normalise(data.pixels[indices]).to(device)


def provenance(source: str, options: TrainOptions, run: Optimised) -> dict[str, object]:
    """What a checkpoint records of the run that wrote it; `source` names what it trained on."""
    return {
        "dataset": source,
        "recipe": RECIPE,
        "seed": options.seed,
        "steps": run.steps,
        "minutes": round(run.seconds / 60, 2),
        "cpu_minutes": round(run.cpu_seconds / 60, 2),
        "first_loss": run.first_loss,
        "last_loss": run.last_loss,
    }


def train_slow(
    dataset: RetrievalSet,
    out: Path,
    options: TrainOptions,
    directions: int = 1,
    architecture: SlowConfig | None = None,
) -> TrainReport:
    """Train the Slow captioner with the captioning loss; a batch holds images with all their captions.

    `directions` 2 adds the right-to-left decoder of the paper's bi-directional model. `architecture` replaces
    the recipe's model shape (for ablations); its vocabulary and caption length become the data's.
    """
    rng = seeded(options)
    size = image_size_for(options)
    data = TrainingData.load(dataset, None, options, size)
    config = architecture or SlowConfig(TrunkConfig(image_size=size), 0, 0, directions=directions)
    config = replace(config, vocab_size=len(data.vocabulary), max_length=data.vocabulary.max_length)
    _check_image_size(config.trunk, size)
    model = CaptionScorer(config).to(options.device)
    # Every caption of an image in one batch: the CNN runs once for five captions' worth of signal.
    batches = image_batches(data, options, max(1, options.batch_size // 2), rng)
    group = options.hard_group

    def step() -> torch.Tensor:
        images = next(batches)
        captions = [c for i in images for c in data.captions_of_image[i]]
        image_of_row = torch.tensor([row for row, i in enumerate(images) for _ in data.captions_of_image[i]])
        tokens = data.batch_tokens(captions).to(options.device)
        negatives = None
        if group > 1 and options.contrast > 0:
            # A row's negatives are the other images of its image's group, which sit beside it in the batch.
            first = image_of_row // group * group
            others = torch.arange(1, group)
            negatives = first.unsqueeze(1) + (image_of_row - first).unsqueeze(1).add(others) % group
        return caption_loss(
            model,
            _images(data, images, options.device),
            tokens,
            image_of_row.to(options.device),
            None if negatives is None else negatives.to(options.device),
            options.contrast,
        )

    run = optimise(model, step, options, "training slow")
    save_checkpoint(out, "slow", model, data.vocabulary, provenance(dataset.name, options, run))
    return TrainReport.of(out, "slow", run, len(data.pixels), len(data.texts))


def fast_model(
    data: TrainingData,
    options: TrainOptions,
    init: Path | None,
    size: int,
    architecture: FastConfig | None = None,
) -> DualEncoder:
    """The Fast model to train: read from `init`, or new in the recipe's shape (or `architecture`'s)."""
    if init is None:
        config = architecture or FastConfig(TrunkConfig(image_size=size), 0, 0)
        config = replace(config, vocab_size=len(data.vocabulary), max_length=data.vocabulary.max_length)
        _check_image_size(config.trunk, size)
        return DualEncoder(config).to(options.device)
    model = read_checkpoint(init, "fast", options.device).model
    assert isinstance(model, DualEncoder)
    return model.requires_grad_(True)


def _check_image_size(trunk: TrunkConfig, size: int) -> None:
    if trunk.image_size != size:
        raise UsageError(
            f"The architecture reads {trunk.image_size} px images, the data is loaded at {size} px."
        )


def init_vocabulary(init: Path | None) -> Vocabulary | None:
    # A model that starts from a checkpoint must keep reading words with that checkpoint's ids.
    return None if init is None else read_checkpoint(init, "fast").vocabulary


def train_fast(
    dataset: RetrievalSet,
    out: Path,
    options: TrainOptions,
    init: Path | None = None,
    architecture: FastConfig | None = None,
) -> TrainReport:
    """Train the Fast dual encoder with symmetric InfoNCE over random batches; `init` starts from a checkpoint.

    A batch holds `batch_size` images with up to `captions_per_image` captions each. `architecture` replaces
    the recipe's model shape (for ablations); its vocabulary and caption length become the data's.
    """
    rng = seeded(options)
    size = image_size_for(options, init)
    data = TrainingData.load(dataset, init_vocabulary(init), options, size)
    model = fast_model(data, options, init, size, architecture)
    batches = image_batches(data, options, options.batch_size, rng)

    def step() -> torch.Tensor:
        images = next(batches)
        captions, image_of_text = data.sample_captions(images, options.captions_per_image, rng)
        tokens = data.batch_tokens(captions).to(options.device)
        image_vectors = model.encode_images(_images(data, images, options.device))
        text_vectors = model.encode_texts(tokens)
        return info_nce(image_vectors, text_vectors, model.scale(), image_of_text.to(options.device))

    run = optimise(model, step, options, "training fast")
    save_checkpoint(out, "fast", model, data.vocabulary, provenance(dataset.name, options, run))
    return TrainReport.of(out, "fast", run, len(data.pixels), len(data.texts))
