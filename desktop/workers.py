"""Work that must not run on the GUI thread: searching (the model encodes the query) and thumbnails.

One `LibraryWorker` in its own QThread reads the library through its resident engine (engine/serve: the models
load, and stay, in that process, which the command line shares; the worker starts it when none runs) and
answers requests one at a time, each with a signal; with GLIMPSE_NO_DAEMON it reads the library itself, in that
one thread. Thumbnails come from a small thread pool: the
engine's `ThumbnailCache` makes or reuses a file on disk (decoding in its own worker processes, so a file that
crashes a codec cannot take the window down) and the worker reads it into a QImage (QImage, unlike QPixmap,
may be built off the GUI thread).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from engine.errors import GlimpseError
from engine.results import SearchResults
from engine.search import SearchRequest
from engine.serve.readers import LibraryReader, open_reader

log = logging.getLogger(__name__)

#: Files listed by Help → Files that could not be read….
FAILED_SHOWN = 200


@dataclass
class SearchResponse:
    """A search's answer as the window receives it: the engine's results, or the sentence saying why not."""

    request_id: int
    request: SearchRequest
    results: SearchResults = field(default_factory=SearchResults)
    error: str | None = None
    seconds: float = 0.0


class LibraryWorker(QObject):
    """Reads the library (through its engine) from its own thread; every slot answers with a signal."""

    searched = Signal(object)  # SearchResponse
    status_ready = Signal(object)  # LibraryStatus
    failed_ready = Signal(object)  # list[FailedFile]
    model_ready = Signal(str)  # the model is loaded (queries will be quick), or "" when none yet
    failed = Signal(str)

    def __init__(self, library_dir: Path, device: str) -> None:
        super().__init__()
        self.library_dir = library_dir
        self.device = device
        self._reader: LibraryReader | None = None
        self._cancelled = False

    def _open(self) -> LibraryReader:
        if self._reader is None:
            self._reader = open_reader(self.library_dir, device=self.device, say=log.warning)
        return self._reader

    def cancel(self) -> None:
        """From the GUI thread, as the window closes: give up the question the worker waits on (the engine may
        still be starting, or loading the models), and say nothing more."""
        self._cancelled = True
        reader = self._reader
        if reader is not None:
            reader.cancel()

    @Slot(int, object)
    def search(self, request_id: int, request: SearchRequest) -> None:
        started = time.monotonic()
        response = SearchResponse(request_id, request)
        try:
            reader = self._open()
            if reader.model() is None:
                response.error = "Nothing is indexed yet: add a folder with File → Folders…"
            else:
                response.results = reader.run(request)
        except GlimpseError as error:
            response.error = str(error)
        except Exception as error:  # a model failing on this machine must not kill the worker thread
            log.exception("search failed")
            response.error = f"The search failed: {error}"
        response.seconds = time.monotonic() - started
        if not self._cancelled:
            self.searched.emit(response)

    @Slot()
    def warm_up(self) -> None:
        """Have the models loaded now (by the engine), so that the first query answers quickly."""
        try:
            self.model_ready.emit(self._open().warm_up())
        except GlimpseError as error:
            self._fail(str(error))
        except Exception as error:
            log.exception("loading the model failed")
            self._fail(f"The model could not be loaded: {error}")

    @Slot()
    def status(self) -> None:
        try:
            self.status_ready.emit(self._open().status())
        except GlimpseError as error:
            self._fail(str(error))

    @Slot()
    def failed_files(self) -> None:
        try:
            self.failed_ready.emit(self._open().failed_files(limit=FAILED_SHOWN))
        except GlimpseError as error:
            self._fail(str(error))

    def _fail(self, message: str) -> None:
        if not self._cancelled:  # a window that is closing has nowhere to show it
            self.failed.emit(message)

    @Slot()
    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class LibraryThread(QObject):
    """Starts a LibraryWorker in a QThread and forwards requests to it through queued signals."""

    _search = Signal(int, object)
    _status = Signal()
    _failed_files = Signal()
    _warm_up = Signal()
    _close = Signal()

    def __init__(self, library_dir: Path, device: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("library")
        self.worker = LibraryWorker(library_dir, device)
        self.worker.moveToThread(self.thread)
        self._search.connect(self.worker.search)
        self._status.connect(self.worker.status)
        self._failed_files.connect(self.worker.failed_files)
        self._warm_up.connect(self.worker.warm_up)
        self._close.connect(self.worker.close)
        self.thread.start()
        self._next_id = 0

    def search(self, request: SearchRequest) -> int:
        self._next_id += 1
        self._search.emit(self._next_id, request)
        return self._next_id

    def status(self) -> None:
        self._status.emit()

    def failed_files(self) -> None:
        """Ask for the files that could not be read; `worker.failed_ready` answers."""
        self._failed_files.emit()

    def warm_up(self) -> None:
        self._warm_up.emit()

    def shutdown(self) -> None:
        self.worker.cancel()  # a worker waiting on the engine returns now, so that its thread can end
        self._close.emit()
        self.thread.quit()
        self.thread.wait(10_000)


class _ThumbnailSignals(QObject):
    done = Signal(str, QImage)  # key, image (null when the file could not be read)


class _ThumbnailJob(QRunnable):
    def __init__(self, cache, key: str, path: Path, seconds: float | None, side: int, signals) -> None:
        super().__init__()
        self.cache, self.key, self.path, self.seconds, self.side = cache, key, path, seconds, side
        self.signals = signals

    def run(self) -> None:
        image = QImage()
        try:
            file = self.cache.get(self.path, seconds=self.seconds, side=self.side)
            image = QImage(str(file))
        except GlimpseError as error:
            log.info("no thumbnail for %s: %s", self.path, error)
        except Exception:  # a thumbnail is never worth a crash; the grid shows a placeholder
            log.exception("thumbnail of %s failed", self.path)
        self.signals.done.emit(self.key, image)


class ThumbnailLoader(QObject):
    """Asks for thumbnails off the GUI thread; `loaded(key, image)` when one is ready."""

    loaded = Signal(str, QImage)

    def __init__(self, cache, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._signals = _ThumbnailSignals()
        self._signals.done.connect(self._done)
        self._waiting: set[str] = set()

    @staticmethod
    def key(path: Path, seconds: float | None, side: int) -> str:
        return f"{path}\0{seconds}\0{side}"

    def request(self, path: Path, seconds: float | None, side: int) -> str:
        key = self.key(path, seconds, side)
        if key not in self._waiting:
            self._waiting.add(key)
            self.pool.start(_ThumbnailJob(self.cache, key, path, seconds, side, self._signals))
        return key

    def clear_queue(self) -> None:
        """Forget thumbnails not started yet (a new search made them moot)."""
        self.pool.clear()
        self._waiting.clear()

    def _done(self, key: str, image: QImage) -> None:
        self._waiting.discard(key)
        self.loaded.emit(key, image)

    def shutdown(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(5000)
        self.cache.close()
