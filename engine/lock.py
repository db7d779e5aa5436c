"""One writer per library: a lock file, and a note beside it naming the holder for the second writer's error."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from engine.errors import LibraryLocked


class WriterLock:
    """Held by the one process that may change a library; readers never take it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = FileLock(folder / "write.lock")
        self._note = folder / "write.lock.json"

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LibraryLocked(
                f"The library {self.folder} is being changed by {self.holder()}; "
                "wait for it to finish or stop it, then try again."
            ) from None
        command = " ".join(["glimpse", *sys.argv[1:]]) if sys.argv else "glimpse"
        note = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": time.time()}
        self._note.write_text(json.dumps(note))

    def release(self) -> None:
        if self._lock.is_locked:
            self._note.unlink(missing_ok=True)
            self._lock.release()

    def holder(self) -> str:
        """Who holds the lock, in words."""
        try:
            note = json.loads(self._note.read_text())
            since = time.strftime("%H:%M", time.localtime(note["since"]))
            return f"another Glimpse process (pid {note['pid']} on {note['host']}, `{note['command']}`, since {since})"
        except (OSError, ValueError, KeyError):
            return "another Glimpse process"

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
