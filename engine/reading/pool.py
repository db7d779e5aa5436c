"""Reading text in worker processes, so that an OCR crash or hang costs one picture, never the caller.

Each worker is a separate, low-priority process holding one TextReader; it is sent a few pictures at a time
(photo files, which it decodes itself, or pixels a caller decoded, such as video frames) and answers with their
lines of text. The parent watches it: a worker that dies (a segfault inside onnxruntime or OpenCV), that sits
blocked for `timeout_s` or that burns `cpu_limit_s` of CPU on one picture is killed, the picture it held gets
a one-sentence error, and a fresh worker takes the next one. A worker that is merely waiting for a CPU (it runs
at the lowest priority, so the visual pass comes first) is making no progress and is not hung: on Linux the
watch tells the two apart by the worker's scheduler state and CPU time; elsewhere it counts wall-clock time.

Workers are forked from a forkserver that imports onnxruntime before anything else. usearch 2.26's compiled
module carries its own static C++ runtime, and onnxruntime loaded into a process after it crashes at import
(onnxruntime >= 1.23) or computes wrong shapes (1.22). A spawned worker would import the parent's main module
(the `glimpse` command, hence the vector index) before any code of ours runs; the forkserver's processes start
from an interpreter that has loaded only what it was told to preload.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from engine.errors import MediaError, ModelUnavailable
from engine.reading.ocr import ReadSettings, TextLine

log = logging.getLogger(__name__)

#: A worker blocked (neither running nor waiting for a CPU) this long on one batch is taken to hang.
DEFAULT_TIMEOUT_S = 60.0
#: CPU seconds one picture may take (a 12-megapixel photo full of text takes a few).
DEFAULT_CPU_LIMIT_S = 60.0
#: Pictures sent to a worker at once: their lines are recognised in shared batches.
DEFAULT_BATCH = 4
#: Fault injection for tests: a worker crashes (a real segfault), blocks forever or spins forever on a picture
#: whose file name, or label for pixels, contains the value of the matching variable. Read when a worker
#: starts, in the process that starts it (a forked worker has the forkserver's environment, not its parent's).
CRASH_MARKER_ENV = "GLIMPSE_TEST_READ_CRASH_ON"
HANG_MARKER_ENV = "GLIMPSE_TEST_READ_HANG_ON"
SPIN_MARKER_ENV = "GLIMPSE_TEST_READ_SPIN_ON"
_FAULT_ENVS = (CRASH_MARKER_ENV, HANG_MARKER_ENV, SPIN_MARKER_ENV)

#: What the pool reads: a photo file's path, or RGB pixels (H, W, 3) uint8.
Picture = bytes | str | os.PathLike | np.ndarray

_PRELOAD = ["onnxruntime", "rapidocr"]


@dataclass(frozen=True)
class ReadResult:
    """The text read in one picture, or why it could not be read.

    `width` and `height` are the size `lines`' boxes refer to: the photo's full size as a viewer shows it, or
    the pixels' own. `stopped` is True when the caller's stop event or `close` ended the read: that is not the
    picture's fault, and it should be read again later.
    """

    lines: tuple[TextLine, ...] = ()
    width: int | None = None
    height: int | None = None
    error: str | None = None
    stopped: bool = False


@dataclass
class ReadPool:
    """At most `workers` reading processes, started when first needed; `read` may be called from any thread."""

    workers: int = 1
    settings: ReadSettings = field(default_factory=ReadSettings)
    timeout_s: float = DEFAULT_TIMEOUT_S
    cpu_limit_s: float = DEFAULT_CPU_LIMIT_S
    batch: int = DEFAULT_BATCH
    #: How much lower than this process the workers run (os.nice): 19, the lowest, lets the visual pass and the
    #: user's own programs go first; tests on a busy machine may want 0.
    nice: int = 19

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("a ReadPool needs at least one worker")
        self._context = worker_context()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []

    def read(
        self, picture: Picture, *, label: str | None = None, stop: threading.Event | None = None
    ) -> ReadResult:
        """Read one picture; `label` names pixels in the log (e.g. "clip.mp4 at 12.0 s")."""
        return self.read_many([picture], labels=[label], stop=stop)[0]

    def read_many(
        self,
        pictures: Sequence[Picture],
        *,
        labels: Sequence[str | None] | None = None,
        stop: threading.Event | None = None,
    ) -> list[ReadResult]:
        """Read several pictures, a few at a time on one worker (their lines recognised together)."""
        labels = list(labels) if labels is not None else [None] * len(pictures)
        if len(labels) != len(pictures):
            raise ValueError("read_many needs one label per picture")
        items = [_item(picture, label) for picture, label in zip(pictures, labels, strict=True)]
        results: list[ReadResult] = []
        size = max(1, self.batch)
        for start in range(0, len(items), size):
            results.extend(self._read_batch(items[start : start + size], stop))
        return results

    def start(self) -> None:
        """Start every worker now and wait until its models are loaded (otherwise the first reads do it)."""
        taken = []
        try:
            for _ in range(self.workers):
                taken.append(self._take())
        finally:
            for worker in taken:
                self._give_back(worker)

    def cpu_seconds(self) -> float:
        """Processor time the pool's live workers have used so far (0 where the system does not say)."""
        with self._lock:
            pids = [worker.process.pid for worker in self._all]
        return sum(process_cpu_seconds(pid) or 0.0 for pid in pids if pid is not None)

    def close(self) -> None:
        """Stop every worker; a read in progress ends with a `stopped` result. A later read starts new ones."""
        with self._lock:
            workers, idle, self._all, self._idle = self._all, self._idle, [], []
        for worker in workers:
            worker.closed = True
            if worker in idle:
                worker.stop()
            else:
                worker.kill()

    def __enter__(self) -> ReadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_batch(self, items: list[_Item], stop: threading.Event | None) -> list[ReadResult]:
        results: list[ReadResult | None] = [item.failure for item in items]
        pending = [i for i, item in enumerate(items) if item.failure is None]
        if not pending:
            return results  # type: ignore[return-value]
        try:
            answers = self._run([items[i] for i in pending], stop)
        except _WorkerLost as lost:
            if lost.stopped or len(pending) == 1:
                answers = [ReadResult(error=str(lost), stopped=lost.stopped)] * len(pending)
            else:
                # One of these pictures killed the worker: read them one by one, so only that one is lost.
                answers = [self._read_batch([items[i]], stop)[0] for i in pending]
        for i, answer in zip(pending, answers, strict=True):
            results[i] = answer
        return results  # type: ignore[return-value]

    def _run(self, items: list[_Item], stop: threading.Event | None) -> list[ReadResult]:
        worker = self._take()
        try:
            answers = worker.run(items, stop, self.timeout_s, self.cpu_limit_s * len(items))
        except BaseException:  # lost, or interrupted mid-conversation: either way this worker is done
            worker.kill()
            self._forget(worker)
            raise
        self._give_back(worker)
        return answers

    def _take(self) -> _Worker:
        self._slots.acquire()
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            worker = _Worker(self._context, self.settings, self.nice)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._all.append(worker)  # from now on `close` stops it, even while it loads its models
        try:
            worker.wait_ready(self.timeout_s, self.cpu_limit_s)
        except BaseException:
            worker.kill()
            self._forget(worker)
            raise
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            alive = worker in self._all
            if alive:
                self._idle.append(worker)
        if not alive:  # the pool was closed while this worker was busy
            worker.stop()
        self._slots.release()

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        self._slots.release()


@dataclass(frozen=True)
class _Item:
    path: bytes | None = None
    pixels: np.ndarray | None = None
    label: str | None = None
    failure: ReadResult | None = None  # known unreadable before any worker sees it

    @property
    def name(self) -> str:
        if self.path is not None:
            return os.fsdecode(os.path.basename(self.path))
        return self.label or ""


def _item(picture: Picture, label: str | None) -> _Item:
    if isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise TypeError("pixels to read must be a uint8 numpy array of shape (height, width, 3)")
        if picture.shape[0] == 0 or picture.shape[1] == 0:
            return _Item(label=label, failure=ReadResult(error="the picture is empty: it has no pixels"))
        return _Item(pixels=np.ascontiguousarray(picture), label=label)
    if isinstance(picture, (bytes, str, os.PathLike)):
        return _Item(path=os.fsencode(picture), label=label)
    raise TypeError(f"cannot read a {type(picture).__name__}: pass a file path or an RGB numpy array")


class _WorkerLost(Exception):
    """The worker died, hung or was stopped; the message is the pictures' error."""

    def __init__(self, message: str, stopped: bool = False) -> None:
        super().__init__(message)
        self.stopped = stopped


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context to start any process that loads onnxruntime from (see the module docstring)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context(
            "spawn"
        )  # Windows: no forkserver (and no usearch clash seen there)
    context = multiprocessing.get_context("forkserver")
    # Global to the process, and read when the server first starts: nothing else in Glimpse uses a forkserver.
    context.set_forkserver_preload(_PRELOAD)
    return context


class _Worker:
    def __init__(self, context, settings: ReadSettings, nice: int) -> None:
        self.connection, child = context.Pipe()
        faults = tuple(os.environ.get(name) or None for name in _FAULT_ENVS)
        self.process = context.Process(
            target=_serve, args=(child, settings, nice, faults), daemon=True, name="glimpse-read"
        )
        self.process.start()
        child.close()
        self._watch = _Watch(self.process.pid)
        self.closed = False  # set by the pool's close before it kills this worker

    def wait_ready(self, timeout_s: float, cpu_limit_s: float) -> None:
        try:
            message = self._receive(None, timeout_s, cpu_limit_s * 2, starting=True)
        except _WorkerLost as lost:
            self.kill()
            if lost.stopped:
                raise  # the pool was closed while this worker started
            raise ModelUnavailable(f"the text reader could not start: {lost}") from None
        if message[0] != "ready":
            self.stop()
            raise ModelUnavailable(message[1])

    def run(
        self, items: list[_Item], stop: threading.Event | None, timeout_s: float, cpu_limit_s: float
    ) -> list[ReadResult]:
        try:
            self.connection.send([(item.path, item.pixels, item.label) for item in items])
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            raise _WorkerLost("the text reader stopped unexpectedly; the picture was skipped") from None
        message = self._receive(stop, timeout_s, cpu_limit_s)
        return message[1]

    def _receive(self, stop: threading.Event | None, timeout_s: float, cpu_limit_s: float, starting=False):
        self._watch.restart()
        while True:
            try:
                if self.connection.poll(0.25):
                    return self.connection.recv()
            except (EOFError, OSError):
                pass  # the pipe broke: the process died, or the pool was closed; reported below
            if not self.process.is_alive():
                if self.closed:
                    raise _WorkerLost("reading was stopped before this picture was read", stopped=True)
                code = self.process.exitcode
                what = "while loading its models" if starting else "on this picture"
                raise _WorkerLost(f"the text reader crashed {what} (exit code {code}); it was skipped")
            if stop is not None and stop.is_set():
                raise _WorkerLost("reading was stopped before this picture was read", stopped=True)
            blocked_s, cpu_s = self._watch.update()
            if blocked_s >= timeout_s:
                raise _WorkerLost(f"reading stalled for {timeout_s:.0f} s on this picture; it was skipped")
            if cpu_s >= cpu_limit_s:
                raise _WorkerLost(
                    f"reading took more than {cpu_limit_s:.0f} s of processor time; the picture was skipped"
                )

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
        self.process.join(5)
        self.connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.connection.send(None)
        self.process.join(2)
        if self.process.is_alive():
            self.kill()
        else:
            self.connection.close()


class _Watch:
    """How long a worker has been blocked, and how much CPU it used, since `restart`.

    Blocked means: in the last interval it used no CPU time and none of its threads was runnable (Linux's
    /proc says both). A starved worker waiting for a core is runnable, so it is not blocked, however long it
    waits. Without /proc, every interval without an answer counts as blocked (a wall-clock timeout).
    """

    def __init__(self, pid: int | None) -> None:
        self._pid = pid
        self._task_dir = Path(f"/proc/{pid}/task")
        self.restart()

    def restart(self) -> None:
        self._last = time.monotonic()
        self._start_cpu = self._last_cpu = self._cpu()
        self._blocked = 0.0

    def update(self) -> tuple[float, float]:
        now = time.monotonic()
        cpu = self._cpu()
        unknown = cpu is None or self._last_cpu is None
        if unknown or (cpu <= self._last_cpu and not self._runnable()):
            self._blocked += now - self._last
        self._last, self._last_cpu = now, cpu
        used = (cpu - self._start_cpu) if cpu is not None and self._start_cpu is not None else 0.0
        return self._blocked, used

    def _cpu(self) -> float | None:
        return process_cpu_seconds(self._pid) if self._pid is not None else None

    def _runnable(self) -> bool:
        try:
            tasks = list(os.scandir(self._task_dir))
        except OSError:
            return False
        for task in tasks:
            fields = _stat_fields(Path(task.path) / "stat")
            if fields is not None and fields[0] == "R":
                return True
        return False


_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def process_cpu_seconds(pid: int) -> float | None:
    """Processor time process `pid` has used, all its threads together (Linux's /proc); None where unknown."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/.../stat after the command name (which may hold spaces): state, ppid, … (stat(5) field 3 on)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


# The worker process -----------------------------------------------------------------------------------------


def _serve(connection: Connection, settings: ReadSettings, nice: int, faults: tuple[str | None, ...]) -> None:
    """A worker process: low priority, one TextReader, pictures read batch by batch until told to stop."""
    if nice:
        with contextlib.suppress(OSError):
            # Relative to the forkserver, which started at the priority of the process that first used it.
            os.nice(nice)
    if "onnxruntime" not in sys.modules and "usearch.compiled" in sys.modules:
        # Importing onnxruntime now would crash this process (see the module's docstring).
        connection.send(
            ("failed", "the text reader could not start: onnxruntime was not loaded before usearch")
        )
        return
    try:
        from engine.reading.ocr import TextReader

        reader = TextReader(settings)
    except ModelUnavailable as error:
        connection.send(("failed", str(error)))
        return
    connection.send(("ready",))
    while True:
        try:
            batch = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if batch is None:
            return
        try:
            connection.send(("done", _read(reader, settings, batch, faults)))
        except (BrokenPipeError, ConnectionResetError):
            return  # the parent is gone: nobody wants these pictures any more


def _read(reader, settings: ReadSettings, batch: list, faults: tuple[str | None, ...]) -> list[ReadResult]:
    """Decode the batch's photos, then read all its pictures in one go (one bad picture costs only itself)."""
    from engine.media.images import decode_image

    results: list[ReadResult | None] = [None] * len(batch)
    pictures, scales, sizes, where = [], [], [], []
    for index, (path, pixels, label) in enumerate(batch):
        _inject_faults(os.path.basename(path) if path is not None else os.fsencode(label or ""), faults)
        try:
            if path is not None:
                decoded = decode_image(path, settings.photo_side)
                pixels = np.asarray(decoded.image)
                width, height = decoded.width, decoded.height
            else:
                height, width = pixels.shape[:2]
        except MediaError as error:
            results[index] = ReadResult(error=str(error))
            continue
        except Exception as error:  # a decoder bug must cost this picture only, never the worker
            log.exception("unexpected error decoding %r for reading", path)
            results[index] = ReadResult(
                error=f"the decoder failed on this file ({type(error).__name__}: {error})"
            )
            continue
        pictures.append(pixels)
        scales.append((width / pixels.shape[1], height / pixels.shape[0]))
        sizes.append((width, height))
        where.append(index)
    try:
        read = reader.read_scaled(pictures, scales)
    except Exception:
        read = None  # one of them broke the reader: read them one at a time below
    for n, index in enumerate(where):
        width, height = sizes[n]
        if read is None:
            try:
                lines = reader.read_scaled([pictures[n]], [scales[n]])[0]
            except Exception as error:
                log.exception("unexpected error reading %r", batch[index][0] or batch[index][2])
                results[index] = ReadResult(
                    width=width,
                    height=height,
                    error=f"the text reader failed on this picture ({type(error).__name__}: {error})",
                )
                continue
        else:
            lines = read[n]
        results[index] = ReadResult(lines=tuple(lines), width=width, height=height)
    return results  # type: ignore[return-value]


def _inject_faults(name: bytes, faults: tuple[str | None, ...]) -> None:
    crash, hang, spin = faults
    if crash and crash.encode() in name:
        ctypes.string_at(0)  # a real segfault, as a broken native library would cause
    if hang and hang.encode() in name:
        threading.Event().wait()  # stuck forever, waiting on nothing
    if spin and spin.encode() in name:
        while True:  # stuck forever, burning CPU
            pass
