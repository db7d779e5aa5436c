"""Follow the watched folders (watchdog) and re-index what changed, until stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from engine.library import Library
from engine.paths import is_inside, to_bytes
from engine.results import IndexReport

log = logging.getLogger(__name__)

#: Wait for this long without new events before re-indexing, so a copy of many files is one update.
QUIET_SECONDS = 1.0


class FolderChanges(FileSystemEventHandler):
    """Collects which watched folders saw any change since the last update."""

    def __init__(self, roots: list[bytes]) -> None:
        self.roots = roots
        self.dirty: set[bytes] = set()
        self.last_event = 0.0
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads change nothing
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        with self.lock:
            for raw in (to_bytes(p) for p in paths if p):
                for root in self.roots:
                    if raw == root or is_inside(raw, root):
                        self.dirty.add(root)
            self.last_event = time.monotonic()

    def take_if_quiet(self) -> list[bytes]:
        with self.lock:
            if not self.dirty or time.monotonic() - self.last_event < QUIET_SECONDS:
                return []
            dirty, self.dirty = sorted(self.dirty), set()
            return dirty


class Watcher:
    """Index once (catching up with what changed while nothing watched), then follow changes."""

    def __init__(
        self,
        library: Library,
        *,
        on_report: Callable[[IndexReport], None] = lambda report: None,
        notice: Callable[[str], None] = lambda message: None,
        stop: threading.Event | None = None,
    ) -> None:
        self.library = library
        self.on_report = on_report
        self.notice = notice
        self.stop = stop or threading.Event()

    def run(self) -> None:
        roots = [to_bytes(f) for f in self.library.folders()]
        self.on_report(self.library.index(notice=self.notice, should_stop=self.stop.is_set))
        changes = FolderChanges(roots)
        observer = Observer()
        for root in roots:
            observer.schedule(changes, root.decode("utf-8", "surrogateescape"), recursive=True)
        observer.start()
        self.notice(f"watching {len(roots)} folders; press Ctrl+C to stop")
        try:
            while not self.stop.wait(0.25):
                dirty = changes.take_if_quiet()
                if dirty:
                    report = self.library.index(dirty, notice=self.notice, should_stop=self.stop.is_set)
                    self.on_report(report)
        finally:
            observer.stop()
            observer.join()
