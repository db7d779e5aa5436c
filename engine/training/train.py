"""Training the Slow captioner, the Fast dual encoder, and the Fast student distilled from the Slow teacher.

Every trainer is time-budgeted: it runs optimisation steps until `minutes` of wall time have passed (loading
the data and scoring with the teacher are not counted), with a learning rate that warms up and then follows a
cosine over the budget. Randomness is seeded; since the number of steps a budget buys depends on the machine,
`steps` fixes the count instead, for runs that must repeat exactly.

Distillation (`train_distill`) follows the paper's recipe with Fast-mined hard candidates. A *miner* (a trained
Fast model) groups the training images into groups of `GROUP` images it finds hard to tell apart (an image and
the images its captions' nearest neighbours point at, usually its twin); a batch is made of whole groups. The
student minimises InfoNCE over the batch plus `weight` × KL(teacher ‖ student) over each caption's own group,
where the teacher's distribution is softmax(log p(text | image) / `temperature`) over the group's images (at
temperature 1 that is the Slow model's posterior p(image | text) under a uniform prior) and the student's is
softmax of its scaled cosine similarities. The teacher scores every (caption, group image) pair once, before
training starts, so a distillation step costs what a plain Fast step costs.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from engine.errors import UsageError
from engine.models.caption_scorer import CaptionScorer, SlowConfig
from engine.models.checkpoints import load_checkpoint_fast, read_checkpoint, save_checkpoint
from engine.models.dual_encoder import DualEncoder, FastConfig
from engine.models.visual_trunk import TrunkConfig, image_pixels, normalise
from engine.models.vocabulary import Vocabulary
from engine.training.datasets import RetrievalSet, load_frames
from engine.training.losses import caption_loss, info_nce

#: Images per distillation group: the image itself and the hard candidates mined for it.
GROUP = 4
#: Steps over which the learning rate warms up from zero.
WARMUP_STEPS = 100


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
    image_size: int = 64
    #: A word must occur this often in the training captions to get its own token.
    min_word_count: int = 2
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


@dataclass
class _TrainingData:
    """The training split in memory: uint8 pixels, every caption's token ids, and who captions whom."""

    pixels: torch.Tensor  # (N, 3, S, S) uint8
    tokens: torch.Tensor  # (C, L) int64, right-padded
    image_of_caption: torch.Tensor  # (C,)
    captions_of_image: list[list[int]]
    texts: list[str]
    vocabulary: Vocabulary

    @classmethod
    def load(
        cls, dataset: RetrievalSet, vocabulary: Vocabulary | None, options: TrainOptions
    ) -> _TrainingData:
        train = dataset.split("train")
        items = [item for item in train.items if item.captions]
        texts = [text for item in items for text in item.captions]
        vocabulary = vocabulary or Vocabulary.build(texts, options.min_word_count)
        pixels = torch.stack(
            [
                image_pixels(load_frames(item)[0], options.image_size)
                for item in tqdm(items, desc="loading images", disable=not options.progress, file=sys.stderr)
            ]
        )
        image_of_caption = torch.tensor([i for i, item in enumerate(items) for _ in item.captions])
        captions_of_image: list[list[int]] = [[] for _ in items]
        for caption, image in enumerate(image_of_caption.tolist()):
            captions_of_image[image].append(caption)
        return cls(pixels, vocabulary.encode(texts), image_of_caption, captions_of_image, texts, vocabulary)

    def pick_captions(self, images: list[int], rng: random.Random) -> list[int]:
        """One caption at random for each image."""
        return [rng.choice(self.captions_of_image[i]) for i in images]

    def batch_tokens(self, captions: list[int] | torch.Tensor) -> torch.Tensor:
        """Token ids of `captions`, cut to the longest among them."""
        rows = self.tokens[captions]
        return rows[:, : int((rows != 0).sum(1).max())]


def _trunk_config(options: TrainOptions) -> TrunkConfig:
    return TrunkConfig(image_size=options.image_size)


def optimise(
    model: torch.nn.Module, step: Callable[[], torch.Tensor], options: TrainOptions, description: str
) -> tuple[int, float, float, float]:
    """Run `step` (which returns the batch's loss) until the budget is spent → (steps, first loss, last loss, seconds).

    AdamW with a warm-up and a cosine schedule over the budget (time, or `options.steps`), gradients clipped at 1.
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
    # A short fixed run (a test, a smoke run) would otherwise spend all its steps warming up.
    warmup = min(WARMUP_STEPS, max(1, options.steps // 10)) if options.steps else WARMUP_STEPS
    start = time.monotonic()
    losses: list[float] = []
    bar = tqdm(total=options.steps, desc=description, disable=not options.progress, file=sys.stderr)
    model.train()
    steps = 0
    while True:
        elapsed = time.monotonic() - start
        progress = steps / options.steps if options.steps else elapsed / budget
        if progress >= 1:
            break
        factor = min(1.0, (steps + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimiser.param_groups:
            group["lr"] = options.learning_rate * factor
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
    return steps, float(np.mean(losses[:window])), float(np.mean(losses[-window:])), time.monotonic() - start


def _seed(options: TrainOptions) -> random.Random:
    torch.manual_seed(options.seed)
    return random.Random(options.seed)


def _epochs(count: int, batch: int, rng: random.Random):
    """Endless batches of indices 0..count-1, reshuffled every epoch; the last short batch is dropped."""
    while True:
        order = list(range(count))
        rng.shuffle(order)
        for start in range(0, count - batch + 1, batch):
            yield order[start : start + batch]


def _images(data: _TrainingData, indices: list[int] | torch.Tensor, device: str) -> torch.Tensor:
    return normalise(data.pixels[indices]).to(device)


def _provenance(
    dataset: RetrievalSet, options: TrainOptions, steps: int, seconds: float, first: float, last: float
):
    return {
        "dataset": dataset.name,
        "seed": options.seed,
        "steps": steps,
        "minutes": round(seconds / 60, 2),
        "first_loss": first,
        "last_loss": last,
    }


def train_slow(dataset: RetrievalSet, out: Path, options: TrainOptions) -> TrainReport:
    """Train the Slow captioner with the captioning loss; a batch holds images with all their captions."""
    rng = _seed(options)
    data = _TrainingData.load(dataset, None, options)
    config = SlowConfig(_trunk_config(options), len(data.vocabulary), data.vocabulary.max_length)
    model = CaptionScorer(config).to(options.device)
    # Every caption of an image in one batch: the CNN runs once for five captions' worth of signal.
    batches = _epochs(len(data.pixels), max(1, options.batch_size // 2), rng)

    def step() -> torch.Tensor:
        images = next(batches)
        captions = [c for i in images for c in data.captions_of_image[i]]
        image_of_row = torch.tensor([row for row, i in enumerate(images) for _ in data.captions_of_image[i]])
        tokens = data.batch_tokens(captions).to(options.device)
        return caption_loss(
            model, _images(data, images, options.device), tokens, image_of_row.to(options.device)
        )

    steps, first, last, seconds = optimise(model, step, options, "training slow")
    save_checkpoint(
        out, "slow", model, data.vocabulary, _provenance(dataset, options, steps, seconds, first, last)
    )
    return TrainReport(out, "slow", steps, seconds, first, last, len(data.pixels), len(data.texts))


def _fast_model(data: _TrainingData, options: TrainOptions, init: Path | None) -> DualEncoder:
    if init is None:
        config = FastConfig(_trunk_config(options), len(data.vocabulary), data.vocabulary.max_length)
        return DualEncoder(config).to(options.device)
    model = read_checkpoint(init, "fast", options.device).model
    assert isinstance(model, DualEncoder)
    return model.requires_grad_(True)


def _init_vocabulary(init: Path | None) -> Vocabulary | None:
    # A model that starts from a checkpoint must keep reading words with that checkpoint's ids.
    return None if init is None else read_checkpoint(init, "fast").vocabulary


def train_fast(
    dataset: RetrievalSet, out: Path, options: TrainOptions, init: Path | None = None
) -> TrainReport:
    """Train the Fast dual encoder with symmetric InfoNCE over random batches; `init` starts from a checkpoint."""
    rng = _seed(options)
    data = _TrainingData.load(dataset, _init_vocabulary(init), options)
    model = _fast_model(data, options, init)
    batches = _epochs(len(data.pixels), options.batch_size, rng)

    def step() -> torch.Tensor:
        images = next(batches)
        tokens = data.batch_tokens(data.pick_captions(images, rng)).to(options.device)
        image_vectors = model.encode_images(_images(data, images, options.device))
        return info_nce(image_vectors, model.encode_texts(tokens), model.scale())

    steps, first, last, seconds = optimise(model, step, options, "training fast")
    save_checkpoint(
        out, "fast", model, data.vocabulary, _provenance(dataset, options, steps, seconds, first, last)
    )
    return TrainReport(out, "fast", steps, seconds, first, last, len(data.pixels), len(data.texts))


def mine_groups(
    data: _TrainingData, miner: Path | None, options: TrainOptions, rng: random.Random
) -> torch.Tensor:
    """Partition the training images into groups of GROUP that the miner confuses → (N // GROUP, GROUP).

    Greedy: visit images in random order; an unassigned image takes the GROUP-1 unassigned images its
    captions' mean embedding ranks highest. With no miner the groups are random.
    """
    count = len(data.pixels) - len(data.pixels) % GROUP
    order = list(range(len(data.pixels)))
    rng.shuffle(order)
    if miner is None:
        return torch.tensor(order[:count]).view(-1, GROUP)
    fast = load_checkpoint_fast(miner, options.device)
    image_vectors = np.concatenate(
        [
            fast.embed_prepared(normalise(data.pixels[start : start + 256]))
            for start in range(0, len(data.pixels), 256)
        ]
    )
    text_vectors = np.concatenate(
        [fast.embed_texts(data.texts[start : start + 512]) for start in range(0, len(data.texts), 512)]
    )
    queries = np.stack([text_vectors[c].mean(0) for c in data.captions_of_image])
    free = np.ones(len(data.pixels), dtype=bool)
    groups: list[list[int]] = []
    for image in order:
        if not free[image] or free.sum() < GROUP:
            continue
        free[image] = False
        similarity = np.where(free, image_vectors @ queries[image], -np.inf)
        partners = np.argpartition(-similarity, GROUP - 2)[: GROUP - 1].tolist()
        free[partners] = False
        groups.append([image, *partners])
    return torch.tensor(groups)


def teacher_scores(
    teacher: Path, data: _TrainingData, groups: torch.Tensor, options: TrainOptions
) -> torch.Tensor:
    """The teacher's log p(caption | image) for every caption against every image of its image's group.

    → (C, GROUP) float32, in the group's order; captions of the images left out of every group score NaN.
    """
    checkpoint = read_checkpoint(teacher, "slow", options.device)
    model = checkpoint.model
    assert isinstance(model, CaptionScorer)
    teacher_tokens = checkpoint.vocabulary.encode(data.texts)
    group_of_image = torch.full((len(data.pixels),), -1, dtype=torch.long)
    group_of_image[groups.flatten()] = torch.arange(len(groups)).repeat_interleave(GROUP)
    scores = torch.full((len(data.texts), GROUP), float("nan"))
    chunk = 16
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(groups), chunk),
            desc="teacher scoring",
            disable=not options.progress,
            file=sys.stderr,
        ):
            block = groups[start : start + chunk]
            visual = model.encode_images(_images(data, block.flatten(), options.device))
            visual = visual.view(len(block), GROUP, *visual.shape[1:])
            captions = [c for g in block.tolist() for i in g for c in data.captions_of_image[i]]
            caption_group = group_of_image[data.image_of_caption[captions]] - start
            rows = teacher_tokens[captions]
            rows = rows[:, : int((rows != 0).sum(1).max())].to(options.device)
            pairs = visual[caption_group].flatten(0, 1)
            tokens = rows.repeat_interleave(GROUP, dim=0)
            scores[captions] = model.log_likelihood(pairs, tokens).view(-1, GROUP).float().cpu()
    return scores


def train_distill(
    dataset: RetrievalSet,
    out: Path,
    teacher: Path,
    options: TrainOptions,
    miner: Path | None = None,
    init: Path | None = None,
    temperature: float = 1.0,
    weight: float = 1.0,
) -> TrainReport:
    """Train a Fast student with InfoNCE plus KL to the Slow teacher over Fast-mined hard groups."""
    if options.batch_size % GROUP:
        raise UsageError(
            f"Distillation batches are whole groups of {GROUP}: use a batch size divisible by {GROUP}."
        )
    rng = _seed(options)
    preparation = time.monotonic()
    data = _TrainingData.load(dataset, _init_vocabulary(init), options)
    groups = mine_groups(data, miner, options, rng)
    scores = teacher_scores(teacher, data, groups, options)
    preparation = time.monotonic() - preparation
    model = _fast_model(data, options, init)
    batches = _epochs(len(groups), options.batch_size // GROUP, rng)

    def step() -> torch.Tensor:
        images = groups[next(batches)].flatten()  # (B,): GROUP consecutive images per group
        captions = data.pick_captions(images.tolist(), rng)
        tokens = data.batch_tokens(captions).to(options.device)
        image_vectors = model.encode_images(_images(data, images, options.device))
        text_vectors = model.encode_texts(tokens)
        scale = model.scale()
        contrastive = info_nce(image_vectors, text_vectors, scale)
        # Row r's candidates are the GROUP images of its own group, which sit together in the batch.
        logits = scale * text_vectors @ image_vectors.T
        own_group = torch.arange(len(images), device=logits.device) // GROUP * GROUP
        columns = own_group.unsqueeze(1) + torch.arange(GROUP, device=logits.device)
        student = functional.log_softmax(logits.gather(1, columns), dim=1)
        target = functional.softmax(scores[captions].to(options.device) / temperature, dim=1)
        return contrastive + weight * functional.kl_div(student, target, reduction="batchmean")

    steps, first, last, seconds = optimise(model, step, options, "distilling fast")
    training = _provenance(dataset, options, steps, seconds, first, last)
    training |= {"teacher": teacher.name, "temperature": temperature, "weight": weight}
    save_checkpoint(out, "fast", model, data.vocabulary, training)
    return TrainReport(
        out, "fast", steps, seconds, first, last, len(data.pixels), len(data.texts), preparation
    )
