"""Following the watched folders: `FolderFollower` notices what changed, `Watcher` re-indexes it until stopped.

`glimpse watch` runs a `Watcher`; the desktop's index service (engine/jobs.py) uses the same `FolderFollower`,
so both treat a folder the same way. A folder that is not reachable (an unplugged drive, an unmounted share)
is not followed: watchdog cannot watch a path that is not there. It is looked for every
`UNREACHABLE_CHECK_SECONDS`, and when it comes back it is followed again and reported as changed, so that its
files come back into the search. A followed folder that disappears is reported as changed once (indexing then
keeps its files as unavailable) and looked for in the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from engine.control import RunControl
from engine.library import Library
from engine.paths import display, is_inside, to_bytes
from engine.reading.reading_pass import BackgroundReading
from engine.results import IndexReport

log = logging.getLogger(__name__)

#: Wait for this long without new events before re-indexing, so a copy of many files is one update.
QUIET_SECONDS = 1.0
#: How often folders that are not reachable are looked for.
UNREACHABLE_CHECK_SECONDS = 5.0


class _Changes(FileSystemEventHandler):
    """Collects which followed folders saw any change since they were last taken."""

    def __init__(self, roots: Sequence[bytes]) -> None:
        self.roots = list(roots)
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

    def mark(self, root: bytes) -> None:
        with self.lock:
            self.dirty.add(root)

    def take_if_quiet(self) -> list[bytes]:
        with self.lock:
            if not self.dirty or time.monotonic() - self.last_event < QUIET_SECONDS:
                return []
            dirty, self.dirty = sorted(self.dirty), set()
            return dirty


class FolderFollower:
    """Follows a set of folders with watchdog; `changed()` says which need indexing now."""

    def __init__(self, roots: Sequence[bytes]) -> None:
        self.roots = [to_bytes(root) for root in roots]
        self._changes = _Changes(self.roots)
        self._observer = Observer()
        self._watches: dict[bytes, ObservedWatch] = {}
        self._unreachable: set[bytes] = set()
        self._last_check = time.monotonic()
        self._observer.start()  # first: a started observer says at once when a folder cannot be followed
        for root in self.roots:
            self._follow(root)

    @property
    def unreachable(self) -> list[bytes]:
        """The folders not followed right now, because they are not there."""
        return sorted(self._unreachable)

    def changed(self) -> list[bytes]:
        """The folders that changed and have been quiet since, or came back, or went away; empty when none."""
        now = time.monotonic()
        if now - self._last_check >= UNREACHABLE_CHECK_SECONDS:
            self._last_check = now
            self._check_reachable()
        return self._changes.take_if_quiet()

    def _check_reachable(self) -> None:
        for root in list(self._unreachable):
            if os.path.isdir(root) and self._follow(root):
                log.info("folder %s is reachable again", display(root))
                self._changes.mark(root)
        for root, watch in list(self._watches.items()):
            if not os.path.isdir(root):
                log.info("folder %s is not reachable any more", display(root))
                self._unfollow(root, watch)
                self._unreachable.add(root)
                self._changes.mark(root)

    def _follow(self, root: bytes) -> bool:
        if not os.path.isdir(root):
            self._unreachable.add(root)
            return False
        try:
            self._watches[root] = self._observer.schedule(self._changes, os.fsdecode(root), recursive=True)
        except OSError as error:  # gone between the check and the call, or not readable
            log.warning("cannot follow %s: %s", display(root), error)
            self._unreachable.add(root)
            return False
        self._unreachable.discard(root)
        return True

    def _unfollow(self, root: bytes, watch: ObservedWatch) -> None:
        del self._watches[root]
        with contextlib.suppress(KeyError, OSError):  # its emitter may have ended with the folder
            self._observer.unschedule(watch)

    def close(self) -> None:
        self._observer.stop()
        self._observer.join()

    def __enter__(self) -> FolderFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Watcher:
    """Index once (catching up with what changed while nothing watched), then follow changes until stopped."""

    def __init__(
        self,
        library: Library,
        *,
        on_report: Callable[[IndexReport], None] = lambda report: None,
        notice: Callable[[str], None] = lambda message: None,
        control: RunControl | None = None,
        read_text: bool = True,
    ) -> None:
        self.library = library
        self.on_report = on_report
        self.notice = notice
        self.control = control or RunControl()
        self.read_text = read_text

    def run(self) -> None:
        """Index, then follow; the words in the pictures are read in the background meanwhile, unless
        `read_text` is off."""
        reading = BackgroundReading(self.library) if self.read_text else None
        try:
            self._index((), reading)
            with FolderFollower(self.library.catalogue.folders()) as follower:
                folders = len(follower.roots)
                self.notice(f"watching {folders} folder{'s' if folders != 1 else ''}; press Ctrl+C to stop")
                for root in follower.unreachable:
                    self.notice(f"{display(root)} is not reachable; it will be followed when it comes back")
                while not self.control.stopped:
                    time.sleep(0.25)
                    dirty = follower.changed()
                    if dirty:
                        self._index(dirty, reading)
        finally:
            if reading is not None:
                reading.close()

    def _index(self, folders: Sequence[bytes], reading: BackgroundReading | None) -> None:
        """A visual run (the reading pass held meanwhile), then reading what it added."""
        if reading is not None:
            reading.hold()
        try:
            report = self.library.index(folders, notice=self.notice, control=self.control, read_text=False)
        finally:
            if reading is not None:
                reading.release()
                reading.wake()
        self.on_report(report)
