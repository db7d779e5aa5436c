"""`glimpse tune`: the library's Fast model adapted to the library's own pictures, taught by its Slow model.

A person's library has no captions, but the Slow model is a captioner: it writes captions for the library's
photos and video frames, scores them against each picture's hardest neighbours, and the Fast model learns from
those scores (engine/training/teacher_captions.py, the paper's distillation without labels). A tenth of the
captions is held out: the tuned model must find their pictures more often than the current one does, or it is
not used, and the report says so. A tuned model is a checkpoint inside the library folder (`tuned/`);
`Library.tune` then re-embeds the library with it, an indexing run like any (resumable: a run stopped midway
is finished by the next `glimpse index`). `untune` names the model to go back to, the preset's own.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.decoding import DecodeJob, DecodePool
from engine.errors import UsageError
from engine.models.presets import CHECKPOINT, parse_model_spec
from engine.paths import display
from engine.training.teacher_captions import CaptionDistillOptions
from engine.training.train import TrainOptions

log = logging.getLogger(__name__)

#: Where tuned checkpoints are kept, inside the library folder.
TUNED_FOLDER = "tuned"
#: The library setting that names the model a tuned one was made from (what `untune` goes back to).
TUNED_FROM_SETTING = "tuned_from"
#: Pictures tuned on at most (a seeded sample of the library's): enough to learn its look, bounded in time.
MAX_PICTURES = 10_000
#: Frames a video lends at most (its sampled moments, evenly spread).
FRAMES_PER_VIDEO = 4
#: Adapting a trained model takes smaller steps than training one (the recipe's 1e-3 undid the shipped `shapes`
#: model's learning in 20 steps: held-out R@1 82 → 75; 1e-4 raised it to 89).
LEARNING_RATE = 1e-4
#: Minutes of training when the person names none.
DEFAULT_MINUTES = 10.0


@dataclass(frozen=True)
class TuneReport:
    """What `glimpse tune` did."""

    #: The model the library searches with now: the tuned one, or the one it kept.
    model: str
    #: Whether the tuned model was better on the held-out captions, and so is used.
    tuned: bool
    pictures: int
    #: Captions the Slow model wrote, and those it kept (the ones it ranks its own picture first for).
    written: int
    kept: int
    held_out: int
    #: R@1 (percent) on the held-out captions over all the pictures, with the current model and the tuned one.
    r1_before: float
    r1_after: float
    minutes: float
    #: The tuned checkpoint (None when it was not kept).
    checkpoint: Path | None

    def to_json(self) -> dict:
        return {**self.__dict__, "checkpoint": str(self.checkpoint) if self.checkpoint else None}


def tunable_pair(spec: str, origin: str | None = None) -> tuple[str, str]:
    """The Fast and Slow specs a library's model `spec` is tuned from (the Slow one paired with `origin`, the
    model a tuned one was made from, if any); UsageError, in one sentence, for a model that cannot be tuned."""
    from engine.models.presets import paired_slow

    slow_spec = paired_slow(origin or spec)
    if slow_spec is None:
        raise UsageError(f"The model {spec} has no Slow model to learn from, so it cannot be tuned.")
    fast, slow = parse_model_spec(spec), parse_model_spec(slow_spec)
    if (fast.preset.architecture == CHECKPOINT) != (slow.preset.architecture == CHECKPOINT):
        raise UsageError(
            f"The model {spec} and its Slow model {slow_spec} are not of one kind: it cannot be tuned."
        )
    return spec, slow_spec


def tune(
    library,
    *,
    minutes: float = DEFAULT_MINUTES,
    device: str = "auto",
    say: Callable[[str], None] = lambda message: None,
    seed: int = 0,
) -> TuneReport:
    """Tune `library`'s (an open, writable `engine.Library`) Fast model on its pictures; the library uses the
    tuned model only if it is better on the held-out captions. `say` hears what is happening, in sentences."""
    from engine.models.loader import resolve_device
    from engine.training.finetune import FINETUNE_LEARNING_RATE
    from engine.training.openclip_tune import tune_open_clip
    from engine.training.teacher_captions import distill_from_teacher_captions

    current = library.current_model()
    if current is None:
        raise UsageError("This library has not been indexed yet; run `glimpse index` first.")
    origin = library.catalogue.get_setting(TUNED_FROM_SETTING)
    student, teacher = tunable_pair(current.spec, origin)
    checkpoint_models = parse_model_spec(student).preset.architecture == CHECKPOINT
    started = time.monotonic()
    pictures = _pictures(library, seed, say)
    if not pictures:
        raise UsageError("This library has no photos or video frames to tune on.")
    # Absolute: the model spec is read from any working directory.
    folder = library.folder.resolve() / TUNED_FOLDER
    out = folder / f"{parse_model_spec(current.spec).preset.name}-{dt.datetime.now():%Y%m%d-%H%M%S}.pt"
    say(f"The Slow model writes captions for {len(pictures)} pictures, then the Fast model learns from them "
        f"for {minutes:g} minutes.")  # fmt: skip
    options = TrainOptions(
        minutes=minutes,
        device=resolve_device(device),
        seed=seed,
        batch_size=_batch_size(len(pictures)),
        learning_rate=LEARNING_RATE if checkpoint_models else FINETUNE_LEARNING_RATE,
    )
    if checkpoint_models:
        student_path, teacher_path = parse_model_spec(student).path, parse_model_spec(teacher).path
        assert student_path is not None and teacher_path is not None
        report = distill_from_teacher_captions(
            pictures, teacher_path, student_path, out, options, source=str(library.folder)
        )
    else:
        report = tune_open_clip(pictures, student, teacher, out, options)
    tuned = report.improved
    model = current.spec
    if tuned:
        model = f"{parse_model_spec(current.spec).preset.name}@{out}"
        library.catalogue.set_setting(TUNED_FROM_SETTING, origin or current.spec)
        say(
            f"The tuned model finds the held-out captions' pictures more often (R@1 {report.held_out_r1_before:.1f} "
            f"→ {report.held_out_r1_after:.1f}): the library's files are re-embedded with it."
        )
    else:
        out.unlink(missing_ok=True)
        say(
            f"The tuned model was not better on the held-out captions (R@1 {report.held_out_r1_before:.1f} → "
            f"{report.held_out_r1_after:.1f}), so it is not used: the library keeps {current.spec}."
        )
    return TuneReport(
        model=model,
        tuned=tuned,
        pictures=report.images,
        written=report.written,
        kept=report.kept,
        held_out=report.held_out_captions,
        r1_before=report.held_out_r1_before,
        r1_after=report.held_out_r1_after,
        minutes=round((time.monotonic() - started) / 60, 2),
        checkpoint=out if tuned else None,
    )


def _batch_size(pictures: int) -> int:
    """A batch of whole mined groups that a small library still fills (the recipe's 64 where it can)."""
    group = CaptionDistillOptions().distill.group
    if pictures < 2 * group:
        raise UsageError(f"This library has {pictures} pictures; tuning needs at least {2 * group}.")
    return min(TrainOptions().batch_size, pictures // group * group)


def untune(library) -> str:
    """The model the library's tuned one was made from, to index with again; UsageError when not tuned."""
    origin = library.catalogue.get_setting(TUNED_FROM_SETTING)
    if origin is None:
        raise UsageError("This library's model is not a tuned one: there is nothing to undo.")
    library.catalogue.delete_setting(TUNED_FROM_SETTING)
    return origin


def _pictures(library, seed: int, say: Callable[[str], None]) -> list[Image.Image]:
    """A seeded sample of the library's photos and video frames, decoded in the crash-contained decode pool."""
    rows = library.catalogue.indexed_media()
    random.Random(seed).shuffle(rows)
    decoders: DecodePool = library.decoders()
    stop = threading.Event()
    pictures: list[Image.Image] = []
    for media in rows:
        if len(pictures) >= MAX_PICTURES:
            break
        moments: list[int | None] = [None]
        if media.kind == "video":
            frames = [t or 0 for _, t in library.catalogue.frames_of_media(media.id)]
            step = max(1, len(frames) // FRAMES_PER_VIDEO)
            moments = frames[::step][:FRAMES_PER_VIDEO]
        for moment in moments:
            pixels, error = decoders.first_picture(
                DecodeJob(media.path, media.kind, at_ms=moment, min_side=224), stop
            )
            if pixels is not None:
                pictures.append(Image.fromarray(pixels))
            else:
                log.info("not tuning on %s: %s", display(media.path), error)
    say(f"{len(pictures)} pictures from {len(rows)} files")
    return pictures
