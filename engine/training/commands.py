"""The `glimpse dataset`, `glimpse train` and `glimpse eval` commands: a thin click layer over engine.training.

Register them on the `glimpse` group with `main.add_command(dataset)`, `main.add_command(train)` and
`main.add_command(evaluate_command)`. Heavy modules (torch, the models) are imported inside the commands so
`glimpse --help` stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine.commandline import handles_errors
from engine.errors import UsageError

_DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run.",
)
_MEDIA = click.option(
    "--images",
    "media_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder holding the set's images (or videos), when not next to its JSON.",
)


@click.group()
def dataset() -> None:
    """Make data sets for training and evaluation."""


@dataset.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--images", "count", type=click.IntRange(2), default=12_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--style",
    type=click.Choice(["shapes", "stickers", "night"]),
    default="shapes",
    show_default=True,
    help="How the scenes look and read: shapes (64 px), stickers (96 px) or night (80 px).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@handles_errors
def synth(out: Path, count: int, seed: int, style: str, as_json: bool) -> None:
    """Write a synthetic compositional set to OUT (Karpathy format: OUT/dataset.json, OUT/images/)."""
    from engine.training.synth import write_synthetic_set

    report = write_synthetic_set(out, count, seed, style)
    if as_json:
        click.echo(json.dumps({"root": str(report.root), "images": report.images, "splits": report.splits}))
    else:
        splits = ", ".join(f"{n} {split}" for split, n in report.splits.items())
        click.echo(f"Wrote {report.images} images ({splits}) to {report.root}.", err=True)


def _training_options(command: Callable) -> Callable:
    options = [
        click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True, path_type=Path)),
        click.option(
            "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Checkpoint."
        ),
        click.option(
            "--minutes", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True
        ),
        click.option(
            "--steps", type=click.IntRange(1), default=None, help="A fixed step count instead of time."
        ),
        click.option("--batch-size", type=click.IntRange(2), default=64, show_default=True),
        click.option(
            "--lr",
            "learning_rate",
            type=float,
            default=None,
            help="Peak learning rate [1e-3; 1e-5 fine-tuning a preset].",
        ),
        click.option("--image-size", type=click.IntRange(16), default=64, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        _DEVICE,
        _MEDIA,
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _prepare(dataset_path: Path, media_dir: Path | None, device: str, finetune: bool = False, **options: Any):
    """The data set and the options of a training command."""
    from engine.models.loader import resolve_device
    from engine.training.datasets import load_dataset
    from engine.training.finetune import FINETUNE_LEARNING_RATE
    from engine.training.train import TrainOptions

    if options["learning_rate"] is None:
        options["learning_rate"] = FINETUNE_LEARNING_RATE if finetune else TrainOptions.learning_rate
    # An option left out takes the recipe's value.
    given = {name: value for name, value in options.items() if value is not None}
    return load_dataset(dataset_path, media_dir), TrainOptions(device=resolve_device(device), **given)


def _is_preset(init: str | None) -> bool:
    """`--init` names a checkpoint file to start from, or else an open_clip preset to fine-tune."""
    return init is not None and not Path(init).is_file()


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "out": str(report.out),
        "role": report.role,
        "steps": report.steps,
        "seconds": round(report.seconds, 1),
        "first_loss": report.first_loss,
        "last_loss": report.last_loss,
        "images": report.images,
        "captions": report.captions,
        "preparation_seconds": round(report.preparation_seconds, 1),
        "cpu_seconds": round(report.cpu_seconds, 1),
    }


def _emit_report(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_report_json(report)))
    else:
        click.echo(
            f"Trained {report.role} for {report.steps} steps ({report.seconds / 60:.1f} min); loss "
            f"{report.first_loss:.3f} → {report.last_loss:.3f}; wrote {report.out}.",
            err=True,
        )


@click.group()
def train() -> None:
    """Train the Slow captioner, the Fast dual encoder, or a Fast student distilled from a Slow teacher."""


_HARD_GROUP = click.option(
    "--hard-group",
    type=click.IntRange(1),
    default=None,
    help="Batches of whole groups of this many images whose captions share their words (1: random).",
)


@train.command("slow")
@_training_options
@click.option(
    "--init", default=None, help="Fine-tune an open_clip CoCa preset (NAME, NAME@random, NAME@FILE)."
)
@_HARD_GROUP
@click.option(
    "--contrast",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the term ranking each caption's image above the others of its --hard-group.",
)
@click.option(
    "--bidirectional", is_flag=True, help="Add a right-to-left decoder (twice the cost per candidate)."
)
@handles_errors
def train_slow_command(
    dataset_path: Path,
    out: Path,
    media_dir: Path | None,
    device: str,
    as_json: bool,
    init: str | None,
    bidirectional: bool,
    **options: Any,
) -> None:
    """Train the Slow model (captioning decoder over multi-scale visual tokens) on DATASET's train split."""
    from engine.training.train import train_slow

    data, train_options = _prepare(dataset_path, media_dir, device, init is not None, **options)
    if init is not None:
        from engine.training.finetune import finetune_open_clip

        _emit_report(finetune_open_clip(data, out, init, "slow", train_options), as_json)
        return
    _emit_report(train_slow(data, out, train_options, 2 if bidirectional else 1), as_json)


@train.command("fast")
@_training_options
@click.option(
    "--init",
    default=None,
    help="Start from a Fast checkpoint (a file) or fine-tune an open_clip preset (NAME, NAME@random, NAME@FILE).",
)
@_HARD_GROUP
@click.option(
    "--captions-per-image",
    type=click.IntRange(1),
    default=None,
    help="Captions of each image in a batch (the image is embedded once for all of them).",
)
@handles_errors
def train_fast_command(
    dataset_path: Path,
    out: Path,
    media_dir: Path | None,
    device: str,
    as_json: bool,
    init: str | None,
    **options: Any,
) -> None:
    """Train the Fast dual encoder with InfoNCE on DATASET's train split."""
    from engine.training.train import train_fast

    data, train_options = _prepare(dataset_path, media_dir, device, _is_preset(init), **options)
    if _is_preset(init):
        from engine.training.finetune import finetune_open_clip

        _emit_report(finetune_open_clip(data, out, init, "fast", train_options), as_json)
        return
    _emit_report(train_fast(data, out, train_options, Path(init) if init else None), as_json)


_DISTILL_FIELDS = ("weight", "temperature", "student_temperature", "group", "scope", "schedule")


@train.command("distill")
@_training_options
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--miner",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Fast checkpoint that mines hard candidate groups [default: --init, else random groups].",
)
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start the student from this Fast checkpoint (default: from scratch).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Temperature of the teacher's posterior.",
)
@click.option(
    "--student-temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The student's logits are divided by this in the soft term (which is scaled by its square).",
)
@click.option(
    "--weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the teacher's soft term (0: mined batches, hard labels only).",
)
@click.option(
    "--group",
    type=click.IntRange(2),
    default=None,
    help="Images per mined group.",
)
@click.option(
    "--scope",
    type=click.Choice(["group", "batch"]),
    default=None,
    help="The student's distribution in the soft term: over the caption's group or the whole batch.",
)
@click.option(
    "--schedule",
    type=click.Choice(["constant", "ramp"]),
    default=None,
    help="The soft term's weight: constant, or rising from 0 over the run.",
)
@click.option(
    "--captions",
    type=click.Choice(["dataset", "teacher"]),
    default="dataset",
    show_default=True,
    help="Learn from the set's own captions, or from captions the teacher writes (the split's are never read).",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default="train",
    show_default=True,
    help="With --captions teacher: the images to adapt to.",
)
@click.option(
    "--keep",
    type=click.Choice(["first", "weighted", "all"]),
    default=None,
    help="With --captions teacher: keep the captions whose image the teacher ranks first, weigh each by "
    "the teacher's confidence, or keep all.",
)
@click.option(
    "--write",
    "strategy",
    type=click.Choice(["sample", "beam", "greedy"]),
    default=None,
    help="With --captions teacher: how the teacher writes its captions.",
)
@handles_errors
def train_distill_command(
    dataset_path: Path,
    out: Path,
    media_dir: Path | None,
    device: str,
    as_json: bool,
    teacher: Path,
    miner: Path | None,
    init: Path | None,
    captions: str,
    split: str,
    keep: str | None,
    strategy: str | None,
    **options: Any,
) -> None:
    """Train a Fast student on DATASET with InfoNCE + the Slow TEACHER's soft scores over mined candidates.

    With `--captions teacher`, adapt the Fast model `--init` to the images of `--split` without reading their
    captions: the teacher writes and scores captions of its own. The options left out take the recipe's
    values (engine/training/distill.py and teacher_captions.py).
    """
    from dataclasses import replace

    from engine.training.distill import DistillOptions, train_distill

    given = {name: options.pop(name) for name in _DISTILL_FIELDS}
    given = {name: value for name, value in given.items() if value is not None}
    data, train_options = _prepare(dataset_path, media_dir, device, **options)
    if captions == "dataset":
        if keep is not None or strategy is not None or split != "train":
            raise UsageError("--split, --keep and --write go with --captions teacher.")
        report = train_distill(
            data, out, teacher, train_options, miner or init, init, DistillOptions(**given)
        )
        _emit_report(report, as_json)
        return
    from engine.training.datasets import load_frames
    from engine.training.teacher_captions import CaptionDistillOptions, distill_from_teacher_captions

    if init is None:
        raise UsageError("--captions teacher adapts a trained Fast model: name it with --init.")
    if miner is not None:
        raise UsageError("With --captions teacher the model being adapted (--init) mines its own groups.")
    recipe = CaptionDistillOptions()
    captioning = replace(
        recipe,
        distill=replace(recipe.distill, **given),
        keep=keep or recipe.keep,
        generation=replace(recipe.generation, strategy=strategy or recipe.generation.strategy),
    )
    images = (load_frames(item)[0] for item in data.split(split).items)  # type: ignore[arg-type]
    adapted = distill_from_teacher_captions(
        images, teacher, init, out, train_options, captioning, f"{data.name}:{split}"
    )
    if as_json:
        document = _report_json(adapted.train)
        document |= {
            "written": adapted.written,
            "kept": adapted.kept,
            "held_out_captions": adapted.held_out_captions,
            "held_out_r1_before": adapted.held_out_r1_before,
            "held_out_r1_after": adapted.held_out_r1_after,
            "preparation_seconds": round(adapted.preparation_seconds, 1),
        }
        click.echo(json.dumps(document))
        return
    click.echo(
        f"The teacher wrote {adapted.written} captions of {adapted.images} images and kept {adapted.kept}; "
        f"R@1 on {adapted.held_out_captions} held-out ones {adapted.held_out_r1_before:.1f} → "
        f"{adapted.held_out_r1_after:.1f}.",
        err=True,
    )
    _emit_report(adapted.train, False)


@click.command("eval")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True, path_type=Path))
@click.option("--split", type=click.Choice(["test", "val", "all"]), default="test", show_default=True)
@click.option("--model", "model_spec", default=None, help="A Fast preset, evaluated with its Slow pair.")
@click.option("--fast", "fast_name", default=None, help="A Fast checkpoint file, or a Fast preset spec.")
@click.option("--slow", "slow_name", default=None, help="A Slow checkpoint file, or a Slow preset spec.")
@click.option(
    "--rerank", default="1,5,10,20,50", show_default=True, help="Shortlist sizes K, comma-separated."
)
@click.option(
    "--queries", type=click.IntRange(1), default=None, help="Queries for Slow and re-ranking (seeded)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--calibrate-fusion",
    is_flag=True,
    help="Measure R@1 of the fused order over a range of weights (K = the largest --rerank) and keep the best "
    "for --model PRESET on this computer.",
)
@_DEVICE
@_MEDIA
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@handles_errors
def evaluate_command(
    dataset_path: Path,
    split: str,
    model_spec: str | None,
    fast_name: str | None,
    slow_name: str | None,
    rerank: str,
    queries: int | None,
    seed: int,
    calibrate_fusion: bool,
    device: str,
    media_dir: Path | None,
    as_json: bool,
) -> None:
    """Text-to-visual recall (R@1/5/10) and time per query of Fast, Slow and Fast+Slow on DATASET, or (with
    --calibrate-fusion) the fusion weight of a preset's Fast and Slow pair."""
    try:
        shortlists = sorted({int(k) for k in rerank.split(",") if k.strip()})
    except ValueError as error:
        raise UsageError(f"--rerank takes comma-separated whole numbers, not {rerank!r}.") from error
    if model_spec is None and fast_name is None:
        raise UsageError("Name the models to evaluate: --model PRESET, or --fast CKPT (with --slow CKPT).")
    if calibrate_fusion and model_spec is None:
        raise UsageError("--calibrate-fusion calibrates a preset's pair: name it with --model PRESET.")
    from engine.models.checkpoints import load_checkpoint_fast, load_checkpoint_slow
    from engine.models.loader import load_fast, load_slow, resolve_device
    from engine.models.presets import paired_slow
    from engine.training.datasets import load_dataset
    from engine.training.evaluate import evaluate

    resolved = resolve_device(device)
    data = load_dataset(dataset_path, media_dir).split(split)  # type: ignore[arg-type]
    fast_name = fast_name or model_spec
    if slow_name is None and model_spec is not None:
        slow_name = paired_slow(model_spec)
    # A name that is a file is a Glimpse checkpoint; anything else is a preset spec (NAME, NAME@random, NAME@FILE).
    fast = (
        load_checkpoint_fast(fast_name, resolved)
        if Path(fast_name).is_file()
        else load_fast(fast_name, resolved)
    )
    slow = None
    if slow_name is not None:
        is_file = Path(slow_name).is_file()
        slow = load_checkpoint_slow(slow_name, resolved) if is_file else load_slow(slow_name, resolved)
    if calibrate_fusion:
        _calibrate(data, fast, slow, model_spec, dataset_path, split, max(shortlists), queries, seed, as_json)
        return
    report = evaluate(data, fast, slow, shortlists if slow else (), queries, seed)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    rows = [("fast", report.fast)]
    rows += [("slow", report.slow)] if report.slow else []
    rows += [(f"fast+slow K={k}", recall) for k, recall in report.rerank.items()]
    click.echo(f"{report.images} {data.kind}s, {report.queries} queries ({split})")
    for name, recall in rows:
        click.echo(
            f"{name:>16}  R@1 {recall.r1:6.2f}  R@5 {recall.r5:6.2f}  R@10 {recall.r10:6.2f}  "
            f"{recall.ms_per_query:9.2f} ms/query  ({recall.queries} queries)"
        )


def _calibrate(data, fast, slow, model_spec, dataset_path, split, k, queries, seed, as_json) -> None:
    """`glimpse eval --calibrate-fusion`: the best fusion weight of a preset's pair, kept in fusion.json."""
    from engine.models.presets import parse_model_spec
    from engine.search.fusion import calibrate, save_calibration
    from engine.training.evaluate import fusion_shortlists

    if slow is None:
        raise UsageError(f"The model {model_spec} has no Slow pair to fuse with.")
    calibration = calibrate(fusion_shortlists(data, fast, slow, k, queries, seed))
    preset = parse_model_spec(model_spec).preset.name
    saved = save_calibration(preset, calibration, f"{dataset_path} ({split}, K = {k})")
    if as_json:
        click.echo(
            json.dumps({"preset": preset, "k": k, "file": str(saved), **calibration.to_json()}, indent=2)
        )
        return
    for weight, recall in calibration.recall_by_weight.items():
        label = "Slow alone" if weight == float("inf") else "Fast alone" if weight == 0 else f"w = {weight}"
        click.echo(f"{label:>12}  R@1 {recall:6.2f}")
    click.echo(
        f"{preset}: fusion weight {calibration.best_weight} over {calibration.queries} queries, kept in {saved}.",
        err=True,
    )
