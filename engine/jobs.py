"""Indexing and watching in a separate process, driven by an application: `IndexService`.

The service process is the library's one writer while it runs: it indexes the watched folders, then follows
them (watchdog) and indexes what changes, and it carries out the folder changes the application asks for. A
decoder that crashes on a hostile file takes down this process only; the application sees the service exit,
says so, and everything committed before the crash is kept (the catalogue commits file by file).

The two sides speak JSON lines: commands on the service's stdin, `JobEvent`s on its stdout. Progress events
carry files done/total, the rate, the estimated time left and the folder being indexed. Pause blocks the
indexing loop between two files; cancel stops the current run (what is done is kept, the rest stays pending).
Nothing here imports Qt: an application polls `IndexService.events()` from its own event loop.
"""

from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.errors import GlimpseError
from engine.paths import display, is_inside, to_bytes
from engine.results import IndexProgress, IndexReport

log = logging.getLogger(__name__)

#: Progress events are sent at most this often (the last one of a run always).
PROGRESS_EVERY_S = 0.1


@dataclass
class JobEvent:
    """One thing the service tells the application.

    kind: "ready" (library open, model named), "progress", "folders" (the watched folders changed), "report" (a run finished: `report`), "state"
    (`state` is "indexing", "paused", "idle", "cancelled" or "watching"), "notice" (a sentence for the
    status bar), "error" (a sentence: the request failed, the service goes on, or, before "ready", it
    stops), "exited" (the process ended: `code`, negative for a signal).
    """

    kind: str
    done: int = 0
    total: int = 0
    failed: int = 0
    rate: float = 0.0  # files per second in this run
    eta_s: float | None = None
    folder: str = ""  # the folder being indexed, for a status line
    state: str = ""
    message: str = ""
    code: int | None = None
    report: IndexReport | None = None
    folders: list[str] = field(default_factory=list)  # "folders": the watched folders now
    excluded: list[str] = field(default_factory=list)  # "folders": the excluded sub-folders now

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True)

    @classmethod
    def from_line(cls, line: str) -> JobEvent:
        data = json.loads(line)
        report = data.pop("report", None)
        return cls(**data, report=IndexReport(**report) if report else None)


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
    ) -> None:
        self.library = library
        self.model = model
        self.device = device
        self.watch = watch
        self.frame_interval_s = frame_interval_s
        self._process: subprocess.Popen[str] | None = None
        self._events: queue.Queue[JobEvent] = queue.Queue()
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
        if self.frame_interval_s is not None:
            argv += ["--frame-interval", repr(self.frame_interval_s)]
        self.library.mkdir(parents=True, exist_ok=True)
        errors = open(self.library / "indexer-errors.log", "a", encoding="utf-8")  # noqa: SIM115
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
        threading.Thread(target=self._read, args=(self._process,), name="index-events", daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                self._events.put(JobEvent.from_line(line))
            except (ValueError, TypeError):
                log.warning("unexpected line from the index service: %r", line[:200])
        self._events.put(JobEvent("exited", code=process.wait()))

    def events(self) -> list[JobEvent]:
        """What the service said since the last call; never blocks."""
        out: list[JobEvent] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait_event(self, kind: str, timeout: float, *, where: Callable[[JobEvent], bool] = lambda e: True):
        """Block until an event of `kind` arrives (for scripts and tests) → it, or None on timeout; events
        before it are dropped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                return None
            if event.kind == kind and where(event):
                return event
        return None

    def send(self, command: str, **arguments: Any) -> None:
        """Send a command: add/remove/exclude (folder=...), index, pause, resume, cancel, interval (seconds=...),
        quit. A command to a service that is not running is dropped."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return
        with self._write_lock:
            try:
                process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it just died; its "exited" event tells

    def add_folder(self, folder: str | os.PathLike) -> None:
        self.send("add", folder=os.fsdecode(os.fspath(folder)))

    def remove_folder(self, folder: str | os.PathLike) -> None:
        self.send("remove", folder=os.fsdecode(os.fspath(folder)))

    def exclude_folder(self, folder: str | os.PathLike) -> None:
        self.send("exclude", folder=os.fsdecode(os.fspath(folder)))

    def pause(self) -> None:
        self.send("pause")

    def resume(self) -> None:
        self.send("resume")

    def cancel(self) -> None:
        self.send("cancel")

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the service to finish (it stops between two files), killing it if it does not in `timeout`."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self.send("quit")
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


# ---------------------------------------------------------------------------------------------------------
# The service process's side.


class _Emitter:
    """Writes events as JSON lines to the service's real stdout, one whole line at a time."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, event: JobEvent) -> None:
        with self._lock:
            try:
                self._out.write(event.to_line() + "\n")
                self._out.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the application is gone; the quit that follows ends the service


class _Control:
    """Flags the command reader sets and the indexing loop reads."""

    def __init__(self) -> None:
        self.commands: queue.Queue[dict] = queue.Queue()
        self.paused = threading.Event()
        self.cancel = threading.Event()
        self.quit = threading.Event()

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            name = command.get("command")
            # Pause, resume, cancel and quit act at once, even in the middle of a run.
            if name == "pause":
                self.paused.set()
            elif name == "resume":
                self.paused.clear()
            elif name == "cancel":
                self.cancel.set()
            elif name == "quit":
                break
            self.commands.put(command)
        self.quit.set()  # an application that closed our stdin is gone: stop
        self.commands.put({"command": "quit"})


class _Service:
    def __init__(self, library, emit: _Emitter, control: _Control, model: str | None, watch: bool) -> None:
        self.library = library
        self.emit = emit
        self.control = control
        self.model = model
        self.watch = watch
        self.changes = None
        self.observer = None

    # watching -------------------------------------------------------------------------------------------

    def follow(self) -> None:
        """(Re)start following the watched folders (the same change collector as `glimpse watch`)."""
        from watchdog.observers import Observer

        from engine.watcher import FolderChanges

        self.unfollow()
        if not self.watch:
            return
        roots = [to_bytes(f) for f in self.library.folders()]
        self.changes = FolderChanges(roots)
        observer = Observer()
        for root in roots:
            if os.path.isdir(root):
                observer.schedule(self.changes, os.fsdecode(root), recursive=True)
        observer.start()
        self.observer = observer

    def unfollow(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join()
            self.observer = None

    def take_dirty(self) -> list[bytes]:
        return self.changes.take_if_quiet() if self.changes is not None else []

    # indexing -------------------------------------------------------------------------------------------

    def run_index(self, folders: Sequence[bytes] = ()) -> None:
        targets = list(folders) or [to_bytes(f) for f in self.library.folders()]
        if not targets:
            return
        folder = display(targets[0]) if len(targets) == 1 else f"{len(targets)} folders"
        control = self.control
        control.cancel.clear()
        # The rate counts from the first file done, not from the start: loading the model is not indexing.
        first: list[tuple[float, int]] = []
        last = [0.0]
        self.emit(JobEvent("state", state="indexing", folder=folder))
        self.emit(JobEvent("progress", folder=folder, message="looking for new and changed files"))

        def progress(update: IndexProgress) -> None:
            now = time.monotonic()
            final = update.done >= update.total
            if final or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                if not first:
                    first.append((now, update.done))
                since, done_then = first[0]
                rate = (update.done - done_then) / (now - since) if now > since else 0.0
                eta = (update.total - update.done) / rate if rate > 0 else None
                self.emit(
                    JobEvent(
                        "progress",
                        done=update.done,
                        total=update.total,
                        failed=update.failed,
                        rate=round(rate, 2),
                        eta_s=round(eta, 1) if eta is not None else None,
                        folder=folder,
                    )
                )
            if control.paused.is_set():
                self.emit(JobEvent("state", state="paused", folder=folder))
                while control.paused.is_set() and not (control.cancel.is_set() or control.quit.is_set()):
                    time.sleep(0.05)
                if not (control.cancel.is_set() or control.quit.is_set()):
                    self.emit(JobEvent("state", state="indexing", folder=folder))

        try:
            report = self.library.index(
                folders,
                model=self.model,
                progress=progress,
                notice=lambda message: self.emit(JobEvent("notice", message=message)),
                should_stop=lambda: control.cancel.is_set() or control.quit.is_set(),
            )
        except GlimpseError as error:
            self.emit(JobEvent("error", message=str(error)))
            self.emit(JobEvent("state", state="idle"))
            return
        self.model = None  # the library remembers it from now on
        self.emit(JobEvent("report", report=report, folder=folder))
        cancelled = control.cancel.is_set()
        control.cancel.clear()
        self.emit(JobEvent("state", state="cancelled" if cancelled else "watching" if self.watch else "idle"))

    # commands -------------------------------------------------------------------------------------------

    def handle(self, command: dict) -> bool:
        """Carry out one command; False when the service should stop."""
        name = command.get("command")
        folder = command.get("folder")
        try:
            if name == "quit":
                return False
            if name == "add" and folder:
                self.library.add_folder(folder)
                self.folders_changed()
                self.run_index([to_bytes(folder)])
            elif name == "exclude" and folder:
                self.library.exclude_folder(folder)
                self.folders_changed()
                parents = [
                    to_bytes(f) for f in self.library.folders() if is_inside(to_bytes(folder), to_bytes(f))
                ]
                self.run_index(parents)
            elif name == "remove" and folder:
                removed = self.library.remove_folder(folder)
                self.folders_changed()
                self.emit(
                    JobEvent("report", report=IndexReport(removed=removed), folder=display(to_bytes(folder)))
                )
            elif name == "interval":
                self.library.set_frame_interval(float(command["seconds"]))
            elif name == "index" or (name == "resume" and self.pending()):
                self.run_index()
            elif name == "resume":
                self.emit(JobEvent("state", state="watching" if self.watch else "idle"))
            elif name == "pause":
                self.emit(JobEvent("state", state="paused"))
        except GlimpseError as error:
            self.emit(JobEvent("error", message=str(error)))
        return True

    def pending(self) -> bool:
        return self.library.status().pending > 0

    def folders_changed(self) -> None:
        self.emit(
            JobEvent(
                "folders",
                folders=[os.fspath(f) for f in self.library.folders()],
                excluded=[os.fspath(f) for f in self.library.excluded_folders()],
            )
        )
        self.follow()

    def serve(self) -> None:
        self.follow()
        if self.library.folders():
            self.run_index()
        else:
            self.emit(JobEvent("state", state="idle"))
        control = self.control
        while not control.quit.is_set():
            try:
                command = control.commands.get(timeout=0.25)
            except queue.Empty:
                command = None
            if command is not None and not self.handle(command):
                break
            if control.paused.is_set():
                continue
            dirty = self.take_dirty()
            if dirty:
                self.run_index(dirty)
        self.unfollow()


def serve(
    library_dir: Path,
    *,
    model: str | None,
    device: str,
    watch: bool,
    frame_interval_s: float | None,
    commands: IO[str],
    out: IO[str],
) -> int:
    """The service process's main loop: open the library for writing, index, follow, obey commands."""
    from engine.library import Library

    emit = _Emitter(out)
    control = _Control()
    threading.Thread(target=control.read, args=(commands,), name="commands", daemon=True).start()
    try:
        library = Library.open(library_dir, writable=True, device=device)
    except GlimpseError as error:
        emit(JobEvent("error", message=str(error)))
        return 1
    with library:
        try:
            if frame_interval_s is not None and frame_interval_s != library.frame_interval_s:
                library.set_frame_interval(frame_interval_s)
            emit(JobEvent("ready", message=model or library.model or ""))
            _Service(library, emit, control, model, watch).serve()
        except GlimpseError as error:
            emit(JobEvent("error", message=str(error)))
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--model")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-watch", dest="watch", action="store_false")
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
    )


if __name__ == "__main__":
    sys.exit(main())
