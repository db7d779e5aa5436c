"""`RunControl`: how whoever started a long run (indexing, reading) pauses, resumes or stops it.

The run checks it between two files (`proceed`), so a pause or a stop never cuts a file's work in half: what
was committed stays, and the file in flight is redone by the next run. Any thread may call pause, resume and
stop; `on_change` hears every change of state, from the thread that made it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class RunControl:
    """Pause, resume and stop for one long-running job, checked by the job between two units of work."""

    def __init__(self, on_change: Callable[[str], None] = lambda state: None) -> None:
        """`on_change(state)` hears "paused", "resumed" and "stopped"."""
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._on_change = on_change

    @property
    def paused(self) -> bool:
        return not self._running.is_set() and not self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        with self._lock:
            if self._stop.is_set() or not self._running.is_set():
                return
            self._running.clear()
        self._on_change("paused")

    def resume(self) -> None:
        with self._lock:
            if self._running.is_set():
                return
            self._running.set()
        if not self._stop.is_set():
            self._on_change("resumed")

    def stop(self) -> None:
        """Stop the run at its next check (a paused run stops too); it cannot be resumed."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            self._running.set()  # wake a paused run so that it can stop
        self._on_change("stopped")

    def proceed(self) -> bool:
        """Between two units of work: wait while paused; False when the run must stop now."""
        self._running.wait()
        return not self._stop.is_set()
