"""The `glimpse` command: a thin click layer over `engine.Library` (exit codes and JSON: engine.commandline)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click

from engine.bench import bench
from engine.commandline import emit, handles_errors
from engine.paths import LIBRARY_ENV, display
from engine.results import SearchResults
from engine.search import SORT_ORDERS
from engine.training.commands import dataset, evaluate_command, train


def _library_option(command: Callable) -> Callable:
    """`--library DIR` on every subcommand (also accepted before the subcommand)."""
    return click.option(
        "--library",
        "library_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Library folder (default: ${LIBRARY_ENV} or the user data folder).",
    )(command)


def _json_option(command: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(command)


def _all_option(command: Callable) -> Callable:
    return click.option(
        "--all", "show_all", is_flag=True, help="Also the less relevant results, past the relevance cutoff."
    )(command)


def _sort_option(command: Callable) -> Callable:
    return click.option(
        "--sort",
        type=click.Choice(SORT_ORDERS),
        default="relevance",
        show_default=True,
        help="Order: best match first, or by the date taken (else last changed).",
    )(command)


def _open(library_dir: Path | None, *, writable: bool = False, device: str = "auto"):
    from engine.library import Library

    ctx = click.get_current_context()
    folder = library_dir or (ctx.obj or {}).get("library_dir")
    return Library.open(folder, writable=writable, device=device)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--library",
    "library_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Library folder (default: ${LIBRARY_ENV} or the user data folder).",
)
@click.version_option(package_name="glimpse")
@click.pass_context
def main(ctx: click.Context, library_dir: Path | None) -> None:
    """Find photos and moments in videos on your own disks by describing them.

    With no command, opens the desktop app.
    """
    ctx.obj = {"library_dir": library_dir}
    if ctx.invoked_subcommand is None:
        from desktop.app import main as run_desktop  # Qt loads only for the desktop app

        sys.exit(run_desktop(library_dir))


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--exclude", is_flag=True, help="Leave these sub-folders of watched folders out instead.")
@_library_option
@handles_errors
def add(folders: tuple[str, ...], exclude: bool, library_dir: Path | None) -> None:
    """Watch FOLDERS (indexed by the next `glimpse index`)."""
    with _open(library_dir, writable=True) as library:
        for folder in folders:
            changed = library.exclude_folder(folder) if exclude else library.add_folder(folder)
            verb = "excluding" if exclude else "watching"
            click.echo(
                f"{verb} {display(Path(folder).resolve())}" + ("" if changed else " (already)"), err=True
            )


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@_library_option
@handles_errors
def remove(folders: tuple[str, ...], library_dir: Path | None) -> None:
    """Stop watching FOLDERS; their files leave the library (the files themselves are not touched)."""
    with _open(library_dir, writable=True) as library:
        for folder in folders:
            removed = library.remove_folder(folder)
            click.echo(
                f"removed {display(Path(folder).absolute())} ({removed} files left the library)", err=True
            )


@main.command()
@_library_option
@_json_option
@handles_errors
def folders(library_dir: Path | None, as_json: bool) -> None:
    """List the watched folders."""
    with _open(library_dir) as library:
        watched, excluded = library.folders(), library.excluded_folders()
    if as_json:
        emit({"folders": [str(f) for f in watched], "excluded": [str(f) for f in excluded]})
        return
    for folder in watched:
        click.echo(display(folder))
    for folder in excluded:
        click.echo(f"{display(folder)} (excluded)")


@main.command()
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--model", help="Model preset (e.g. vit-b-32, tiny-test, NAME@random, NAME@/path/weights.bin).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_library_option
@_json_option
@handles_errors
def index(
    folders: tuple[str, ...], model: str | None, device: str, library_dir: Path | None, as_json: bool
) -> None:
    """Index the watched folders (or FOLDERS, which become watched): embed what is new or changed."""
    with _open(library_dir, writable=True, device=device) as library:
        report = library.index(folders, model=model, progress=_progress_bar(), notice=_notice)
    if as_json:
        emit(report.to_json())
    else:
        click.echo(
            f"{report.images} photos and {report.videos} videos embedded ({report.frames} frames), "
            f"{report.skipped} unchanged, {report.moved} moved, {report.removed} removed, "
            f"{report.failed} failed in {report.seconds:.1f} s",
            err=True,
        )


@main.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_library_option
@handles_errors
def watch(device: str, library_dir: Path | None) -> None:
    """Index, then keep following changes in the watched folders until interrupted."""
    from engine.watcher import Watcher

    with _open(library_dir, writable=True, device=device) as library:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            Watcher(library, on_report=_watch_report, notice=_notice).run()
        except KeyboardInterrupt:
            click.echo("stopped watching; everything indexed so far is kept.", err=True)


@main.command()
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--type", "kind", type=click.Choice(["image", "video"]), help="Only photos or only videos.")
@click.option("--folder", type=click.Path(file_okay=False), help="Only files inside this folder.")
@click.option(
    "--rerank",
    type=click.IntRange(0, 1000),
    default=None,
    metavar="K",
    help="Re-score the best K with the Slow model (default: on, K by device).",
)
@click.option("--no-rerank", is_flag=True, help="Fast results only.")
@_all_option
@_sort_option
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_library_option
@_json_option
@handles_errors
def search(
    text: str,
    limit: int,
    kind: str | None,
    folder: str | None,
    rerank: int | None,
    no_rerank: bool,
    show_all: bool,
    sort: str,
    device: str,
    library_dir: Path | None,
    as_json: bool,
) -> None:
    """Find photos and video moments matching TEXT."""
    if no_rerank and rerank:
        raise click.UsageError("--rerank and --no-rerank contradict each other")
    with _open(library_dir, device=device) as library:
        results = library.search(
            text,
            limit=limit,
            kind=kind,
            folder=folder,
            rerank=0 if no_rerank else rerank,
            sort=sort,
            notice=_notice,
        )
    _print_results(results, as_json, show_all)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--type", "kind", type=click.Choice(["image", "video"]), help="Only photos or only videos.")
@click.option("--folder", type=click.Path(file_okay=False), help="Only files inside this folder.")
@_all_option
@_sort_option
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_library_option
@_json_option
@handles_errors
def similar(
    file: str,
    limit: int,
    kind: str | None,
    folder: str | None,
    show_all: bool,
    sort: str,
    device: str,
    library_dir: Path | None,
    as_json: bool,
) -> None:
    """Find photos and videos that look like FILE."""
    with _open(library_dir, device=device) as library:
        results = library.similar(file, limit=limit, kind=kind, folder=folder, sort=sort)
    _print_results(results, as_json, show_all)


@main.command()
@_library_option
@_json_option
@handles_errors
def status(library_dir: Path | None, as_json: bool) -> None:
    """Show what the library holds."""
    with _open(library_dir) as library:
        report = library.status()
    if as_json:
        emit({k: v for k, v in report.to_json().items() if k not in ("folders", "excluded")})
        return
    click.echo(f"library   {display(report.library)}")
    click.echo(f"model     {report.model or '(not indexed yet)'}")
    click.echo(f"files     {report.media} ({report.images} photos, {report.videos} videos indexed)")
    click.echo(f"frames    {report.frames}")
    click.echo(f"failed    {report.failed}")
    click.echo(f"pending   {report.pending}")
    if report.unavailable:
        click.echo(f"offline   {report.unavailable} (their folder is not reachable)")


@main.command()
@click.option("--repair", is_flag=True, help="Rebuild the index and re-queue broken entries.")
@_library_option
@_json_option
@handles_errors
def check(repair: bool, library_dir: Path | None, as_json: bool) -> None:
    """Check that the catalogue and the vector index agree (exit 1 when they do not)."""
    with _open(library_dir, writable=repair) as library:
        report = library.check(repair=repair)
    if as_json:
        emit(report.to_json())
    else:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        for fix in report.repaired:
            click.echo(f"repaired: {fix}", err=True)
        click.echo("consistent" if report.consistent else "inconsistent")
    if not report.consistent and not report.repaired:
        sys.exit(1)


@main.command()
@click.option("--download", "download_name", metavar="PRESET", help="Download a preset's weights now.")
@_json_option
@handles_errors
def models(download_name: str | None, as_json: bool) -> None:
    """List the model presets and whether their weights are on this computer."""
    from engine.library import Library

    if download_name:
        path = Library.download_model(download_name)
        click.echo(f"{download_name}: weights at {path}", err=True)
    rows = [
        {
            "name": preset.name,
            "description": preset.description,
            "available": Library.model_available(preset.name),
            "download_mb": preset.download_mb,
            "default": preset.name == Library.default_model(),
        }
        for preset in Library.presets()
    ]
    if as_json:
        emit(rows)
        return
    for row in rows:
        state = "ready" if row["available"] else f"download {row['download_mb']} MB on first use"
        mark = "*" if row["default"] else " "
        click.echo(f"{mark} {row['name']:<14} {state:<30} {row['description']}")


def _print_results(found: SearchResults, as_json: bool, show_all: bool) -> None:
    results = found.all if show_all else found.shown
    if as_json:
        emit([r.to_json() for r in results])
        return
    if not results:
        click.echo("no results", err=True)
    for r in results:
        moment = f" @ {_clock(r.timestamp)}" if r.timestamp is not None else ""
        click.echo(f"{r.rank:>3}. {r.score:6.3f}  {display(r.path)}{moment}")
    if found.hidden and not show_all:
        click.echo(f"{len(found.hidden)} less relevant results not shown (--all shows them)", err=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _notice(message: str) -> None:
    click.echo(message, err=True)


def _progress_bar():
    """A tqdm bar on stderr, shown on a terminal only; returns the engine's progress callback."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(progress) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=progress.total, unit="file", file=sys.stderr, disable=None, leave=False)
        bar["bar"].n = progress.done
        bar["bar"].refresh()
        if progress.done >= progress.total:
            bar.pop("bar").close()

    return update


def _watch_report(report) -> None:
    click.echo(
        f"updated: {report.new} new, {report.updated} changed, {report.moved} moved, "
        f"{report.removed} removed, {report.failed} failed",
        err=True,
    )


for _command in (dataset, train, evaluate_command, bench):
    main.add_command(_command)
