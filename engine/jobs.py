"""Indexing and watching in a separate process, driven by an application: `IndexService`.

The service process is the library's one writer while it runs: it indexes the watched folders, then follows
them (engine/watcher.py `FolderFollower`, as `glimpse watch` does) and indexes what changes, and it carries out
the folder changes the application asks for. A decoder that crashes on a hostile file takes down this process
only; the application sees the service exit, says so, and everything committed before the crash is kept (the
catalogue commits file by file).

The two sides speak JSON lines: `Command`s on the service's stdin, `Event`s on its stdout, each a small
dataclass (`encode` / `decode`). Pause, resume and cancel act at once, even in the middle of a run: they reach
the run's `RunControl`, which the indexer checks between two files. Nothing here imports Qt: an application
polls `IndexService.events()` from its own event loop.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from engine.control import RunControl
from engine.errors import GlimpseError
from engine.paths import display, is_inside, to_bytes
from engine.reading.reading_pass import BackgroundReading
from engine.results import IndexProgress, IndexReport

log = logging.getLogger(__name__)

#: Progress events are sent at most this often (the last one of a run always).
PROGRESS_EVERY_S = 0.1
#: The service's stderr (a crash's trace, from faulthandler), in the library folder.
ERRORS_FILE = "indexer-errors.log"


# ---------------------------------------------------------------------------------------------------------
# What the application asks.


@dataclass(frozen=True)
class AddFolder:
    """Watch a folder and index it."""

    folder: str


@dataclass(frozen=True)
class RemoveFolder:
    """Stop watching a folder; its files leave the library."""

    folder: str


@dataclass(frozen=True)
class ExcludeFolder:
    """Leave a sub-folder of a watched folder out; its files leave the library."""

    folder: str


@dataclass(frozen=True)
class IndexNow:
    """Rescan every watched folder now."""


@dataclass(frozen=True)
class Pause:
    """Pause indexing between two files (and do not start a new run until resumed)."""


@dataclass(frozen=True)
class Resume:
    """Go on after a pause (or after a cancel, with what is still pending)."""


@dataclass(frozen=True)
class Cancel:
    """Stop the current run; what is done is kept, the rest stays pending."""


@dataclass(frozen=True)
class SetFrameInterval:
    """Sample videos every `seconds` from now on."""

    seconds: float


@dataclass(frozen=True)
class Tune:
    """Tune the library's Fast model to its pictures for about `minutes` (engine/tuning.py), then re-embed."""

    minutes: float


@dataclass(frozen=True)
class UndoTune:
    """Go back from a tuned model to the preset's own, re-embedding the library."""


@dataclass(frozen=True)
class Quit:
    """Finish (between two files) and exit."""


Command = (
    AddFolder
    | RemoveFolder
    | ExcludeFolder
    | IndexNow
    | Pause
    | Resume
    | Cancel
    | SetFrameInterval
    | Tune
    | UndoTune
    | Quit
)
COMMANDS: tuple[type, ...] = (
    AddFolder,
    RemoveFolder,
    ExcludeFolder,
    IndexNow,
    Pause,
    Resume,
    Cancel,
    SetFrameInterval,
    Tune,
    UndoTune,
    Quit,
)


# ---------------------------------------------------------------------------------------------------------
# What the service tells.


@dataclass(frozen=True)
class Ready:
    """The library is open for writing; `model` is the one it indexes with ("" before the first index)."""

    model: str = ""


@dataclass(frozen=True)
class Progress:
    """Files done of `total` in this run (`total` 0: still looking for new and changed files)."""

    done: int = 0
    total: int = 0
    failed: int = 0
    rate: float = 0.0  # files per second in this run
    eta_s: float | None = None
    folder: str = ""  # the folder being indexed, for a status line
    #: "visual" (embedding the photos and videos), "reading" (the words in them, in the background after) or
    #: "re-embedding" (the library with a tuned model, or back with the preset's own).
    stage: str = "visual"


@dataclass(frozen=True)
class StateChanged:
    """What the service does now: "indexing", "reading" (the words in the pictures), "tuning" (the Slow model
    writes captions and the Fast model learns from them), "paused", "idle", "cancelled" or "watching"."""

    state: str
    folder: str = ""


@dataclass(frozen=True)
class Finished:
    """A run (or a folder's removal) finished."""

    report: IndexReport
    folder: str = ""


@dataclass(frozen=True)
class TuneFinished:
    """Tuning (or its undo) finished: the model the library searches with now, and, for a tuning, whether the
    tuned one was better (R@1 percent on held-out captions before and after) over `pictures` pictures."""

    model: str
    tuned: bool
    undone: bool = False
    pictures: int = 0
    r1_before: float = 0.0
    r1_after: float = 0.0


@dataclass(frozen=True)
class FoldersChanged:
    """The watched folders and the excluded sub-folders, as they are now."""

    folders: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    """A sentence for the status bar."""

    message: str


@dataclass(frozen=True)
class Error:
    """A sentence: the request failed and the service goes on, or, before `Ready`, the service stops."""

    message: str


@dataclass(frozen=True)
class Exited:
    """The process ended (made by the application's side, never sent): `code`, negative for a signal."""

    code: int


Event = Ready | Progress | StateChanged | Finished | TuneFinished | FoldersChanged | Notice | Error | Exited
EVENTS: tuple[type, ...] = (
    Ready,
    Progress,
    StateChanged,
    Finished,
    TuneFinished,
    FoldersChanged,
    Notice,
    Error,
)

M = TypeVar("M")


def encode(message: Command | Event) -> str:
    """One JSON line for a command or an event: its type's name and its fields."""
    return json.dumps({"type": type(message).__name__, **dataclasses.asdict(message)}, ensure_ascii=True)


def decode(line: str, kinds: Sequence[type[M]]) -> M:
    """The message of one JSON line, which must be one of `kinds`; ValueError for anything else."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    by_name = {kind.__name__: kind for kind in kinds}
    kind = by_name.get(data.pop("type", None))
    if kind is None:
        raise ValueError("unknown message type")
    if kind is Finished and isinstance(data.get("report"), dict):
        data["report"] = IndexReport(**data["report"])
    try:
        return kind(**data)
    except TypeError as error:  # missing or unexpected fields
        raise ValueError(str(error)) from None


# ---------------------------------------------------------------------------------------------------------
# The application's side.


class IndexService:
    """Starts and talks to the service process; `events()` hands over what it said since the last call."""

    def __init__(
        self,
        library: Path,
        *,
        model: str | None = None,
        device: str = "auto",
        watch: bool = True,
        frame_interval_s: float | None = None,
        read_text: bool = True,
    ) -> None:
        self.library = library
        self.model = model
        self.device = device
        self.watch = watch
        self.read_text = read_text
        self.frame_interval_s = frame_interval_s
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self._write_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the service process (it takes the library's write lock, or says who holds it)."""
        if self.running:
            return
        library = os.path.abspath(self.library)
        argv = [sys.executable, "-m", "engine.jobs", "--library", library, "--device", self.device]
        if self.model:
            argv += ["--model", self.model]
        if not self.watch:
            argv.append("--no-watch")
        if not self.read_text:
            argv.append("--no-read-text")
        if self.frame_interval_s is not None:
            argv += ["--frame-interval", repr(self.frame_interval_s)]
        self.library.mkdir(parents=True, exist_ok=True)
        errors = open(self.library / ERRORS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            encoding="utf-8",
            env=env,
        )
        errors.close()
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name="index-events", daemon=True
        )
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                self._events.put(decode(line, EVENTS))
            except ValueError:
                log.warning("unexpected line from the index service: %r", line[:200])
        self._events.put(Exited(process.wait()))

    def events(self) -> list[Event]:
        """What the service said since the last call; never blocks."""
        out: list[Event] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait_event(
        self, kind: type[M], timeout: float, *, where: Callable[[M], bool] = lambda e: True
    ) -> M | None:
        """Block until an event of `kind` arrives (for scripts and tests) → it, or None on timeout; events
        before it are dropped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                return None
            if isinstance(event, kind) and where(event):
                return event
        return None

    def send(self, command: Command) -> None:
        """Send a command; one to a service that is not running is dropped."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return
        with self._write_lock:
            try:
                process.stdin.write(encode(command) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it just died; its Exited event tells

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the service to finish (it stops between two files), killing it if it does not in `timeout`."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self.send(Quit())
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout)  # its last events, Exited included, are in once stop returns


# ---------------------------------------------------------------------------------------------------------
# The service process's side.


class _Emitter:
    """Writes events as JSON lines to the service's real stdout, one whole line at a time."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            try:
                self._out.write(encode(event) + "\n")
                self._out.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the application is gone; the quit that follows ends the service


class _Service:
    """The service's main loop: index, follow the folders, obey commands."""

    def __init__(
        self, library, emit: _Emitter, model: str | None, watch: bool, read_text: bool = True
    ) -> None:
        self.library = library
        self.emit = emit
        self.model = model
        self.watch = watch
        self.reading = (
            BackgroundReading(
                library, progress=self._progress_reporter("", "reading"), on_change=self._on_reading
            )
            if read_text
            else None
        )
        self.commands: queue.Queue[Command] = queue.Queue()
        self.follower = None
        self.quitting = threading.Event()
        self._lock = threading.Lock()
        self._paused = False
        self._run: RunControl | None = None
        self._folder = ""

    # the command reader's thread: pause, resume, cancel and quit act at once ---------------------------

    def read_commands(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                command = decode(line, COMMANDS)
            except ValueError:
                log.warning("unexpected command for the index service: %r", line[:200])
                continue
            if isinstance(command, Quit):
                break
            if isinstance(command, Pause):
                self._pause()
            elif isinstance(command, Resume):
                if self._resume():
                    continue  # it reached a run; queued, it would start another once that one ends
            elif isinstance(command, Cancel):
                with self._lock:  # a cancelled run is not paused any more: Resume or IndexNow go on
                    self._paused, run = False, self._run
                if self.reading is not None:
                    self.reading.resume()
                    self.reading.stop()
                if run is not None:
                    run.stop()
            if not isinstance(command, (Pause, Cancel)):  # those act here and now, never later
                self.commands.put(command)
        # A Quit, or an application that closed our stdin (it is gone): stop.
        self.quitting.set()
        with self._lock:
            run = self._run
        if run is not None:
            run.stop()
        self.commands.put(Quit())

    def _pause(self) -> None:
        with self._lock:
            self._paused, run = True, self._run
        if self.reading is not None:
            self.reading.pause()
        if run is not None:
            run.pause()  # its on_change says "paused" once the run hears it
        else:
            self.emit(StateChanged("paused"))

    def _resume(self) -> bool:
        """→ whether a visual run was there to hear it (else the service goes on with what is pending)."""
        with self._lock:
            self._paused, run = False, self._run
        if self.reading is not None:
            self.reading.resume()
        if run is not None:
            run.resume()
        elif self.reading is not None and self.reading.busy:
            self.emit(StateChanged("reading"))
        return run is not None

    def _on_reading(self, change: str) -> None:
        with self._lock:
            indexing, paused = self._run is not None, self._paused
        if not indexing:  # a visual run's own states say what happens meanwhile
            if change == "reading":
                assert self.reading is not None
                self.reading.progress = self._progress_reporter("", "reading")  # its rate counts from now
                self.emit(StateChanged("paused" if paused else "reading"))
            else:
                self.emit(StateChanged(self._resting_state()))

    def _on_run_change(self, change: str) -> None:
        if change in ("paused", "resumed"):
            self.emit(StateChanged("paused" if change == "paused" else "indexing", folder=self._folder))

    # watching -------------------------------------------------------------------------------------------

    def follow(self) -> None:
        """(Re)start following the watched folders."""
        from engine.watcher import FolderFollower

        self.unfollow()
        if self.watch:
            self.follower = FolderFollower(self.library.catalogue.folders())

    def unfollow(self) -> None:
        if self.follower is not None:
            self.follower.close()
            self.follower = None

    # indexing -------------------------------------------------------------------------------------------

    def run_index(self, folders: Sequence[bytes] = ()) -> None:
        targets = list(folders) or [to_bytes(f) for f in self.library.folders()]
        if not targets:
            return
        folder = display(targets[0]) if len(targets) == 1 else f"{len(targets)} folders"
        run = RunControl(on_change=self._on_run_change)
        with self._lock:
            if self._paused:
                run.pause()
            self._run, self._folder = run, folder
        self.emit(StateChanged("paused" if run.paused else "indexing", folder=folder))
        self.emit(Progress(folder=folder))
        if self.reading is not None:
            self.reading.hold()  # the visual pass goes first
        try:
            report = self.library.index(
                folders,
                model=self.model,
                progress=self._progress_reporter(folder),
                notice=lambda message: self.emit(Notice(message)),
                control=run,
                read_text=False,
            )
        except GlimpseError as error:
            self.emit(Error(str(error)))
            self.emit(StateChanged("idle"))
            return
        finally:
            with self._lock:
                self._run = None
            if self.reading is not None:
                self.reading.release()
        self.model = None  # the library remembers it from now on
        self.emit(Finished(report, folder=folder))
        cancelled = run.stopped and not self.quitting.is_set()
        self.emit(StateChanged("cancelled" if cancelled else self._resting_state()))
        if self.reading is not None and not cancelled:
            self.reading.wake()  # then the words in what it added, in the background

    def run_tune(self, minutes: float | None) -> None:
        """Tune (`minutes`) or, with None, undo tuning; the re-embedding that follows pauses and cancels like
        any run (a cancelled one is finished by the next index run). Training itself runs to its minutes."""
        run = RunControl(on_change=self._on_run_change)
        with self._lock:
            if self._paused:
                run.pause()
            self._run, self._folder = run, "re-embedding"
        self.emit(StateChanged("tuning"))
        if self.reading is not None:
            self.reading.hold()
        notice = lambda message: self.emit(Notice(message))  # noqa: E731
        progress = self._progress_reporter("", "re-embedding")
        try:
            if minutes is None:
                model = self.library.untune(progress=progress, notice=notice, control=run)
                self.emit(TuneFinished(model=model, tuned=False, undone=True))
            else:
                report = self.library.tune(minutes=minutes, progress=progress, notice=notice, control=run)
                self.emit(
                    TuneFinished(
                        model=report.model,
                        tuned=report.tuned,
                        pictures=report.pictures,
                        r1_before=report.r1_before,
                        r1_after=report.r1_after,
                    )
                )
        except GlimpseError as error:
            self.emit(Error(str(error)))
        finally:
            with self._lock:
                self._run = None
            if self.reading is not None:
                self.reading.release()
        self.model = None  # the library remembers the model it uses now
        cancelled = run.stopped and not self.quitting.is_set()
        self.emit(StateChanged("cancelled" if cancelled else self._resting_state()))

    def _progress_reporter(self, folder: str, stage: str = "visual") -> Callable[[IndexProgress], None]:
        # The rate counts from the first file done, not from the start: loading the model is not indexing.
        first: list[tuple[float, int]] = []
        last = [0.0]

        def progress(update: IndexProgress) -> None:
            now = time.monotonic()
            if update.done < update.total and now - last[0] < PROGRESS_EVERY_S:
                return
            last[0] = now
            if not first:
                first.append((now, update.done))
            since, done_then = first[0]
            rate = (update.done - done_then) / (now - since) if now > since else 0.0
            eta = (update.total - update.done) / rate if rate > 0 else None
            self.emit(
                Progress(
                    done=update.done,
                    total=update.total,
                    failed=update.failed,
                    rate=round(rate, 2),
                    eta_s=round(eta, 1) if eta is not None else None,
                    folder=folder or update.current,
                    stage=stage,
                )
            )

        return progress

    def _resting_state(self) -> str:
        return "watching" if self.watch else "idle"

    # commands -------------------------------------------------------------------------------------------

    def handle(self, command: Command) -> bool:
        """Carry out one queued command; False when the service should stop."""
        try:
            match command:
                case Quit():
                    return False
                case AddFolder(folder):
                    self.library.add_folder(folder)
                    self.folders_changed()
                    self.run_index([to_bytes(folder)])
                case ExcludeFolder(folder):
                    self.library.exclude_folder(folder)
                    self.folders_changed()
                    self.run_index(
                        [f for f in self.library.catalogue.folders() if is_inside(to_bytes(folder), f)]
                    )
                case RemoveFolder(folder):
                    removed = self.library.remove_folder(folder)
                    self.folders_changed()
                    self.emit(Finished(IndexReport(removed=removed), folder=display(to_bytes(folder))))
                case SetFrameInterval(seconds):
                    self.library.set_frame_interval(float(seconds))
                case IndexNow():
                    self.run_index()
                case Tune(minutes):
                    self.run_tune(float(minutes))
                case UndoTune():
                    self.run_tune(None)
                case Resume() if self.library.status().pending:
                    self.run_index()
                case Resume() if self.reading is None or not self.reading.busy:
                    self.emit(StateChanged(self._resting_state()))
        except GlimpseError as error:
            self.emit(Error(str(error)))
        return True

    def folders_changed(self) -> None:
        status = self.library.status()
        self.emit(
            FoldersChanged([os.fspath(f) for f in status.folders], [os.fspath(f) for f in status.excluded])
        )
        self.follow()

    def serve(self) -> None:
        self.follow()
        if self.library.folders():
            self.run_index()
        else:
            self.emit(StateChanged("idle"))
        try:
            while not self.quitting.is_set():
                try:
                    command = self.commands.get(timeout=0.25)
                except queue.Empty:
                    command = None
                if command is not None and not self.handle(command):
                    break
                with self._lock:
                    paused = self._paused
                if paused or self.follower is None:
                    continue
                dirty = self.follower.changed()
                if dirty:
                    self.run_index(dirty)
        finally:
            self.unfollow()
            if self.reading is not None:
                self.reading.close()


def serve(
    library_dir: Path,
    *,
    model: str | None,
    device: str,
    watch: bool,
    frame_interval_s: float | None,
    commands: IO[str],
    out: IO[str],
    read_text: bool = True,
) -> int:
    """The service process's main loop: open the library for writing, index, follow, obey commands."""
    from engine.library import Library

    emit = _Emitter(out)
    try:
        library = Library.open(library_dir, writable=True, device=device)
    except GlimpseError as error:
        emit(Error(str(error)))
        return 1
    with library:
        try:
            if frame_interval_s is not None and frame_interval_s != library.frame_interval_s:
                library.set_frame_interval(frame_interval_s)
            emit(Ready(model=model or library.model or ""))
            service = _Service(library, emit, model, watch, read_text)
            threading.Thread(
                target=service.read_commands, args=(commands,), name="commands", daemon=True
            ).start()
            service.serve()
        except GlimpseError as error:
            emit(Error(str(error)))
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--model")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-watch", dest="watch", action="store_false")
    parser.add_argument("--no-read-text", dest="read_text", action="store_false")
    parser.add_argument("--frame-interval", type=float)
    args = parser.parse_args(argv)
    faulthandler.enable()  # a crash in a decoder leaves its traceback in indexer-errors.log
    # Events own the real stdout; anything else a library prints goes to stderr instead of corrupting them.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(
        args.library,
        model=args.model,
        device=args.device,
        watch=args.watch,
        frame_interval_s=args.frame_interval,
        commands=sys.stdin,
        out=out,
        read_text=args.read_text,
    )


if __name__ == "__main__":
    sys.exit(main())
