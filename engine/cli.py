"""The `glimpse` command: a thin click layer over `engine.Library` (exit codes and JSON: engine.commandline)."""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path

import click

from engine.commandline import emit, handles_errors
from engine.paths import LIBRARY_ENV, display, to_bytes
from engine.results import SearchResults
from engine.search import SORT_ORDERS, SearchRequest

#: Commands whose modules load packages a search does not need, imported only when one of them runs or
#: `--help` lists them: a search that the resident engine answers loads none of them.
LAZY_COMMANDS = {
    "bench": "engine.bench:bench",
    "dataset": "engine.training.commands:dataset",
    "train": "engine.training.commands:train",
    "eval": "engine.training.commands:evaluate_command",
}


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


def _daemon_option(command: Callable) -> Callable:
    return click.option(
        "--no-daemon",
        is_flag=True,
        help="Read the library in this process, not through its resident engine (also GLIMPSE_NO_DAEMON=1).",
    )(command)


def _folder(library_dir: Path | None) -> Path | None:
    """The library folder given to the subcommand, or before it."""
    return library_dir or (click.get_current_context().obj or {}).get("library_dir")


def _open(library_dir: Path | None, *, writable: bool = False, device: str = "auto"):
    from engine.library import Library

    return Library.open(_folder(library_dir), writable=writable, device=device)


def _reader(library_dir: Path | None, *, no_daemon: bool, device: str = "auto"):
    """The library to read: through its resident engine (started if none runs), else in this process."""
    from engine.serve.readers import open_reader

    return open_reader(_folder(library_dir), device=device, use_engine=not no_daemon, say=_notice)


class _Commands(MutableMapping[str, click.Command]):
    """A group's commands by name, those in `lazy` ("module:attribute") imported when first looked up."""

    def __init__(self, commands: dict[str, click.Command], lazy: dict[str, str]) -> None:
        self._commands = dict(commands)
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> click.Command:
        if name in self._lazy:
            module, _, attribute = self._lazy.pop(name).partition(":")
            self._commands[name] = getattr(importlib.import_module(module), attribute)
        return self._commands[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._lazy.pop(name, None)
        self._commands[name] = command

    def __delitem__(self, name: str) -> None:
        if self._lazy.pop(name, None) is None:
            del self._commands[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._commands, *self._lazy])

    def __len__(self) -> int:
        return len(self._commands) + len(self._lazy)


class _Glimpse(click.Group):
    """The `glimpse` group: its `commands` hold every command, some imported only when they are looked up
    (click's lazy-loading pattern, kept in the mapping so that `main.commands` still names them all)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands, LAZY_COMMANDS)


@click.group(
    cls=_Glimpse, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
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
@click.option(
    "--no-read-text",
    is_flag=True,
    help="Skip reading the words written in photos and videos (OCR) this time.",
)
@_library_option
@_json_option
@handles_errors
def index(
    folders: tuple[str, ...],
    model: str | None,
    device: str,
    no_read_text: bool,
    library_dir: Path | None,
    as_json: bool,
) -> None:
    """Index the watched folders (or FOLDERS, which become watched): embed what is new or changed, then read
    the words written in them."""
    with _open(library_dir, writable=True, device=device) as library:
        report = library.index(
            folders, model=model, progress=_progress_bar(), notice=_notice, read_text=not no_read_text
        )
    if as_json:
        emit(report.to_json())
    else:
        click.echo(
            f"{report.images} photos and {report.videos} videos embedded ({report.frames} frames), "
            f"{report.skipped} unchanged, {report.moved} moved, {report.removed} removed, "
            f"{report.failed} failed, text read in {report.read} in {report.seconds:.1f} s",
            err=True,
        )


@main.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--no-read-text", is_flag=True, help="Do not read the words written in photos and videos (OCR)."
)
@_library_option
@handles_errors
def watch(device: str, no_read_text: bool, library_dir: Path | None) -> None:
    """Index, then keep following changes in the watched folders until interrupted (the words in the pictures
    are read in the background meanwhile)."""
    from engine.watcher import Watcher

    with _open(library_dir, writable=True, device=device) as library:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            Watcher(library, on_report=_watch_report, notice=_notice, read_text=not no_read_text).run()
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
@click.option("--explain", is_flag=True, help="Say on stderr what the query was understood to mean.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_daemon_option
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
    explain: bool,
    device: str,
    no_daemon: bool,
    library_dir: Path | None,
    as_json: bool,
) -> None:
    """Find photos and video moments matching TEXT."""
    if no_rerank and rerank:
        raise click.UsageError("--rerank and --no-rerank contradict each other")
    request = SearchRequest(
        text=text,
        limit=limit,
        kind=kind,
        folder=to_bytes(folder) if folder is not None else None,
        rerank=0 if no_rerank else rerank,
        sort=sort,
    )
    request.check()  # before an engine is started for a question that cannot be answered
    with _reader(library_dir, no_daemon=no_daemon, device=device) as reader:
        results = reader.run(request, notice=_notice)
    if explain:
        click.echo(results.explain() or "looking for: everything, newest first", err=True)
    _print_results(results, as_json, show_all)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--type", "kind", type=click.Choice(["image", "video"]), help="Only photos or only videos.")
@click.option("--folder", type=click.Path(file_okay=False), help="Only files inside this folder.")
@_all_option
@_sort_option
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_daemon_option
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
    no_daemon: bool,
    library_dir: Path | None,
    as_json: bool,
) -> None:
    """Find photos and videos that look like FILE."""
    request = SearchRequest(
        similar_to=to_bytes(file),
        limit=limit,
        kind=kind,
        folder=to_bytes(folder) if folder is not None else None,
        sort=sort,
    )
    with _reader(library_dir, no_daemon=no_daemon, device=device) as reader:
        results = reader.similar(request)
    _print_results(results, as_json, show_all)


@main.command()
@_daemon_option
@_library_option
@_json_option
@handles_errors
def status(no_daemon: bool, library_dir: Path | None, as_json: bool) -> None:
    """Show what the library holds."""
    with _reader(library_dir, no_daemon=no_daemon) as reader:
        report = reader.status()
    if as_json:
        emit({k: v for k, v in report.to_json().items() if k not in ("folders", "excluded")})
        return
    click.echo(f"library   {display(report.library)}")
    click.echo(f"model     {report.model or '(not indexed yet)'}")
    if report.precision:
        click.echo(f"vectors   {report.precision}")
    click.echo(f"files     {report.media} ({report.images} photos, {report.videos} videos indexed)")
    click.echo(f"frames    {report.frames}")
    click.echo(f"failed    {report.failed}")
    click.echo(f"pending   {report.pending}")
    click.echo(f"read      {report.read} (files whose text has been read)")
    if report.unavailable:
        click.echo(f"offline   {report.unavailable} (their folder is not reachable)")


@main.command()
@click.option("--repair", is_flag=True, help="Rebuild the index and re-queue broken entries.")
@_daemon_option
@_library_option
@_json_option
@handles_errors
def check(repair: bool, no_daemon: bool, library_dir: Path | None, as_json: bool) -> None:
    """Check that the catalogue and the vector index agree (exit 1 when they do not)."""
    if repair:  # repairing writes: the library's one writer does it, never the engine
        with _open(library_dir, writable=True) as library:
            report = library.check(repair=True)
    else:
        with _reader(library_dir, no_daemon=no_daemon) as reader:
            report = reader.check()
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
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Minutes of training (default: 10); writing the captions comes before.",
)
@click.option("--undo", is_flag=True, help="Go back to the preset's own model (re-embedding the library).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_library_option
@_json_option
@handles_errors
def tune(minutes: float | None, undo: bool, device: str, library_dir: Path | None, as_json: bool) -> None:
    """Adapt the library's Fast model to its own photos and videos, taught by its Slow model (no captions
    needed); it is used only if it finds held-out captions' pictures better."""
    with _open(library_dir, writable=True, device=device) as library:
        if undo:
            origin = library.untune(progress=_progress_bar(), notice=_notice)
            if as_json:
                emit({"model": origin, "tuned": False})
            else:
                click.echo(f"the library is back to {origin}", err=True)
            return
        report = library.tune(minutes=minutes, progress=_progress_bar(), notice=_notice)
    if as_json:
        emit(report.to_json())


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


@main.command()
@click.option("--stop", is_flag=True, help="Stop the library's engine instead.")
@_library_option
@handles_errors
def serve(stop: bool, library_dir: Path | None) -> None:
    """Keep the library and its models loaded, so that searches answer at once (until idle or stopped).

    `search`, `similar`, `status` and `check` start it themselves when it is not running."""
    from engine.serve.client import stop_engine
    from engine.serve.readers import library_folder

    folder = library_folder(_folder(library_dir))
    if stop:
        pid = stop_engine(folder)
        click.echo(
            f"stopped the engine of {display(folder)} (pid {pid})" if pid else "no engine was running",
            err=True,
        )
        return
    from engine.serve.server import idle_seconds, run_engine

    minutes = idle_seconds() / 60
    run_engine(
        folder,
        listening=lambda: click.echo(
            f"serving {display(folder)}; stops after {minutes:g} minutes without a request, "
            "or on Ctrl-C or `glimpse serve --stop`",
            err=True,
        ),
    )


def _print_results(found: SearchResults, as_json: bool, show_all: bool) -> None:
    results = found.all if show_all else found.shown
    if as_json:
        emit([r.to_json() for r in results])
        return
    if not results:
        click.echo("no results", err=True)
    for r in results:
        moment = f" @ {_clock(r.timestamp)}" if r.timestamp is not None else ""
        said = " / ".join(r.text.splitlines()) if r.text else ""
        extras = "".join(f"  · {extra}" for extra in (f"“{said}”" if said else "", r.place or "") if extra)
        click.echo(f"{r.rank:>3}. {r.score:6.3f}  {display(r.path)}{moment}{extras}")
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
            what = "reading text" if progress.stage == "reading" else "indexing"
            bar["bar"] = tqdm(
                total=progress.total, desc=what, unit="file", file=sys.stderr, disable=None, leave=False
            )
        bar["bar"].total = progress.total
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
