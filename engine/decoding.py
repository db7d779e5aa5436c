"""Decoding untrusted files in worker processes, so a codec that crashes or hangs costs one file, not the run.

Each worker is a separate process fed one file at a time over a pipe; it streams back the file's decoded
frames (uint8 pixels, already reduced to about the size the model needs) and then a summary. The parent
watches each worker: if it dies (a segfault inside a codec) or says nothing for `timeout_s` (a decoder that
hangs), the parent kills it, records the file as failed with one sentence, and starts a fresh worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection

import numpy as np

from engine.errors import MediaError
from engine.media.location import Coordinates

log = logging.getLogger(__name__)

#: A worker that sends nothing for this long is taken to hang (an hour of video still sends a frame a second).
DEFAULT_TIMEOUT_S = 60.0
#: Fault injection for tests: a worker deliberately crashes (a real segfault) on files whose name contains
#: the value of the first variable, and hangs on those whose name contains the value of the second.
CRASH_MARKER_ENV = "GLIMPSE_TEST_CRASH_ON"
HANG_MARKER_ENV = "GLIMPSE_TEST_HANG_ON"


@dataclass(frozen=True)
class DecodeJob:
    path: bytes
    kind: str  # "image" | "video"
    size: int | None = None  # with mtime_ns: what the scan saw; a file that changed since is not trusted
    mtime_ns: int | None = None
    at_ms: int | None = None  # a video's single frame at this moment, instead of sampling the whole video
    #: Shorter side to decode to, instead of the pool's: the Fast encoder needs only its input size, and a
    #: smaller target lets JPEG draft mode skip more of a 12-megapixel photo.
    min_side: int | None = None
    #: Read only where the file was taken (its summary's `location`), no frames.
    location_only: bool = False


@dataclass
class FileSummary:
    """What decoding learnt about a file besides its frames."""

    fingerprint: str | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    taken_at: datetime | None = None
    #: Where it was taken, as its metadata says (EXIF GPS, a video's location tag); None: unknown.
    location: Coordinates | None = None
    frames: int = 0
    error: str | None = None


@dataclass(frozen=True)
class DecodeSettings:
    frame_interval_s: float = 2.0
    min_side: int = 448
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass
class DecodePool:
    """N worker processes; `decode` runs one file on a free worker and reports its frames through callbacks."""

    workers: int
    settings: DecodeSettings = field(default_factory=DecodeSettings)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # no fork: the parent runs threads and torch
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._all: list[_Worker] = []

    def decode(
        self,
        job: DecodeJob,
        on_frame: Callable[[int | None, np.ndarray], bool],
        stop: threading.Event,
    ) -> FileSummary:
        """Decode one file; `on_frame(timestamp_ms, pixels)` gets each frame (return False to abandon it)."""
        worker = self._take()
        try:
            summary = worker.run(job, on_frame, stop, self.settings)
        except _WorkerLost as lost:
            worker.kill()
            worker = None
            return FileSummary(error=str(lost))
        finally:
            if worker is not None:
                self._give_back(worker)
        return summary

    def first_picture(
        self, job: DecodeJob, stop: threading.Event | None = None
    ) -> tuple[np.ndarray | None, str | None]:
        """The first picture a job decodes (a photo, or a video's frame at `job.at_ms`): (pixels, None), or
        (None, why not)."""
        got: list[np.ndarray] = []
        summary = self.decode(
            job, lambda _ts, pixels: got.append(pixels) and False, stop or threading.Event()
        )
        if summary.error or not got:
            return None, summary.error or "no picture could be decoded"
        return got[0], None

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.stop()

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        worker = _Worker(self._context, self.settings)
        with self._lock:
            self._all.append(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._idle.append(worker)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _WorkerLost(Exception):
    """The worker died or hung on a file; the message is the file's recorded error."""


class _Worker:
    def __init__(self, context, settings: DecodeSettings) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, settings), daemon=True, name="glimpse-decode"
        )
        self.process.start()
        child.close()

    def run(
        self,
        job: DecodeJob,
        on_frame: Callable[[int | None, np.ndarray], bool],
        stop: threading.Event,
        settings: DecodeSettings,
    ) -> FileSummary:
        self.connection.send(job)
        wanted = True
        while True:
            message = self._receive(settings.timeout_s, stop)
            kind = message[0]
            if kind == "frame":
                if wanted and not on_frame(message[1], message[2]):
                    wanted = False  # drain the rest: the worker finishes this file either way
            elif kind == "done":
                return message[1]
            else:  # pragma: no cover - the protocol has no other messages
                raise RuntimeError(f"unexpected message from a decode worker: {kind}")

    def _receive(self, timeout_s: float, stop: threading.Event):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.connection.poll(0.25):
                    return self.connection.recv()
            except (EOFError, OSError):
                pass  # the pipe broke: the process died; reported below
            if not self.process.is_alive():
                code = self.process.exitcode
                raise _WorkerLost(f"the decoder crashed on this file (exit code {code}); it was skipped")
            if stop.is_set():
                raise _WorkerLost("indexing was stopped while this file was being decoded")
            if time.monotonic() >= deadline:
                raise _WorkerLost(
                    f"decoding took longer than {timeout_s:.0f} s without progress; it was skipped"
                )

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.process.join(2)
        if self.process.is_alive():
            self.kill()
        else:
            self.connection.close()


def _serve(connection: Connection, settings: DecodeSettings) -> None:
    """A worker process: decode the files it is sent, one at a time, until told to stop."""
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if job is None:
            return
        try:
            connection.send(("done", _decode(job, settings, connection)))
        except (BrokenPipeError, ConnectionResetError):
            return  # the parent is gone (closed or killed): nobody wants this file any more


def _decode(job: DecodeJob, settings: DecodeSettings, connection: Connection) -> FileSummary:
    # Imported here: workers start fast and the parent needs none of the codecs itself.
    from engine.media.images import decode_image
    from engine.media.location import read_location
    from engine.media.scanner import fingerprint
    from engine.media.video import FrameSampler, frame_at

    summary = FileSummary()
    min_side = job.min_side or settings.min_side
    try:
        _inject_faults(job.path)
        if job.size is not None:
            stat = os.stat(job.path)
            if stat.st_size != job.size or stat.st_mtime_ns != job.mtime_ns:
                raise MediaError(
                    "the file changed while it was being indexed; it will be indexed on the next run"
                )
            summary.fingerprint = fingerprint(job.path, job.size)
        if job.location_only:
            summary.location = read_location(job.path, job.kind)
        elif job.at_ms is not None and job.kind == "video":
            picture = frame_at(job.path, job.at_ms / 1000, min_side)
            connection.send(("frame", job.at_ms, np.asarray(picture)))
            summary.frames = 1
        elif job.kind == "image":
            image = decode_image(job.path, min_side)
            summary.width, summary.height, summary.taken_at = image.width, image.height, image.taken_at
            summary.location = image.location
            connection.send(("frame", None, np.asarray(image.image)))
            summary.frames = 1
        else:
            sampler = FrameSampler(interval_s=settings.frame_interval_s, min_side=min_side)
            with sampler.open(job.path) as video:
                info = video.info
                summary.width, summary.height = info.width, info.height
                summary.duration_ms, summary.taken_at = info.duration_ms, info.taken_at
                summary.location = info.location
                for frame in video.frames():
                    connection.send(("frame", frame.timestamp_ms, np.asarray(frame.image)))
                    summary.frames += 1
            if not summary.frames:
                raise MediaError("no frame of this video could be decoded")
    except (BrokenPipeError, ConnectionResetError):
        raise  # a frame could not reach the parent: not the file's fault, see _serve
    except FileNotFoundError:
        summary.error = "the file vanished while it was being indexed"
    except PermissionError:
        summary.error = "permission denied: Glimpse may not read this file"
    except OSError as error:
        summary.error = f"cannot read the file: {error.strerror or error}"
    except MediaError as error:
        summary.error = str(error)
    except Exception as error:  # a decoder bug must cost this file only, never the worker
        log.exception("unexpected error decoding %r", job.path)
        summary.error = f"the decoder failed on this file ({type(error).__name__}: {error})"
    return summary


def _inject_faults(path: bytes) -> None:
    name = os.path.basename(path)
    crash, hang = os.environ.get(CRASH_MARKER_ENV), os.environ.get(HANG_MARKER_ENV)
    if crash and crash.encode() in name:
        ctypes.string_at(0)  # a real segfault, as a broken codec would cause
    if hang and hang.encode() in name:
        threading.Event().wait()  # a decoder stuck forever
