"""The resident engine: one process per library that keeps the library open and its models loaded, and answers
its user's searches, status and checks over the library's socket (engine/serve/sockets.py, protocol.py).

Threads. socketserver accepts; a thread per connection reads and validates the requests and writes the
replies, so a slow or hostile client holds only its own thread (a request must arrive whole within
`REQUEST_TIMEOUT_S`, and at most `MAX_CONNECTIONS` are served at once). Library work runs on two lanes, each a
single thread that alone uses its own read-only `Library` (neither the facade's database sessions nor the models
are known to be thread-safe, so nothing is shared between threads): searches and the models' warm-up on one, the
catalogue's quick answers (status, failed files, the model's name, check) on the other, so a status never waits
behind a re-ranking search. A request waits for its turn in its lane; a client that hangs up before its turn
costs nothing, one that hangs up mid-search costs that search.

Each lane reopens its library when the catalogue file was replaced (a library deleted and indexed anew); a
library re-indexed or upgraded in place is seen at the next request, as `Library.run` catches up with the
catalogue and resolves the model every time.

The engine stops after `idle_seconds()` without a request, on a `stop` request, on SIGTERM or SIGINT, and when
its library folder disappears; it stops listening first, then finishes what it was answering.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from engine.errors import GlimpseError, UsageError, explain
from engine.serve.client import running_engine
from engine.serve.protocol import (
    MAX_REQUEST_BYTES,
    PROTOCOL,
    Check,
    EngineError,
    EngineInfo,
    EngineStopping,
    FailedFiles,
    Hello,
    Model,
    ProtocolError,
    Request,
    Search,
    Similar,
    Status,
    Stop,
    WarmUp,
    decode_request,
    encode_answer,
    encode_failure,
    encode_notice,
    environment_digest,
    read_line,
)
from engine.serve.readers import LocalReader
from engine.serve.sockets import EnginePlace, peer_uid

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds without a request after which the engine stops (default: a quarter of an hour).
IDLE_ENV = "GLIMPSE_ENGINE_IDLE_S"
DEFAULT_IDLE_S = 15 * 60
#: A request must arrive whole within this many seconds of the connection or of the previous reply.
REQUEST_TIMEOUT_S = 10.0
#: Connections served at once; more are closed at once.
MAX_CONNECTIONS = 32
#: How long a new engine waits for the previous engine of its library to finish stopping.
PREDECESSOR_WAIT_S = 60.0
#: How often the engine checks whether it has been idle, and whether its library is still there.
CHECK_EVERY_S = 0.5


class EngineRunning(EngineError):
    """Another engine serves this library."""


def idle_seconds() -> float:
    """How long the engine waits for a request before it stops: GLIMPSE_ENGINE_IDLE_S, else 15 minutes."""
    text = os.environ.get(IDLE_ENV)
    if not text:
        return DEFAULT_IDLE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{IDLE_ENV} must be a number of seconds above 0, not {text!r}")
    return seconds


class _Lane:
    """One thread doing one kind of library work, one request at a time, on readers only it uses."""

    def __init__(self, name: str, library: Path) -> None:
        self.library = library
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{name}")
        self._readers: dict[str, tuple[LocalReader, tuple[int, int] | None]] = {}
        self._opened = False

    def submit(self, work: Callable[[LocalReader], T], device: str = "auto") -> Future[T]:
        """Run `work` on this lane with the library opened for `device`; RuntimeError once the lane is closed."""
        return self._executor.submit(lambda: work(self._reader(device)))

    def _reader(self, device: str) -> LocalReader:
        identity = _catalogue_identity(self.library)
        if device in self._readers:
            reader, opened = self._readers[device]
            if identity is not None and identity == opened:
                return reader
            reader.close()  # the catalogue file was replaced, or is gone: open the library anew
            del self._readers[device]
        if self._opened and not self.library.is_dir():
            # Opening would make an empty library where one was deleted; the engine stops instead.
            raise EngineStopping("the library folder is gone; a new engine answers")
        self._opened = True
        reader = LocalReader(self.library, device=device)
        self._readers[device] = (reader, _catalogue_identity(self.library))
        return reader

    def close(self) -> None:
        """Finish the work under way, drop what waits, close the library (on the lane's own thread)."""
        with contextlib.suppress(RuntimeError):
            self._executor.submit(self._close_readers)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _close_readers(self) -> None:
        for reader, _ in self._readers.values():
            reader.close()
        self._readers.clear()


def _catalogue_identity(library: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(library / "catalogue.sqlite")
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Engine:
    """Answers the requests of one library's clients (see the module docstring); `serve` runs it."""

    def __init__(self, library: Path, *, idle_s: float) -> None:
        self.library = library
        self.idle_s = idle_s
        self._started = time.time()
        self._environment = environment_digest()
        self.searches = _Lane("search", library)
        self.catalogue = _Lane("catalogue", library)
        self.stopping = threading.Event()
        self._busy = 0
        self._last = time.monotonic()
        self._activity = threading.Condition()
        self._seen_library = library.is_dir()

    def answer(self, request: Request, notice: Callable[[str], None]) -> Any:
        """The value that answers `request` (JSON-ready), or a Future of it for work done on a lane."""
        match request:
            case Hello():
                return self.info().to_json()
            case Stop():
                self.stop("asked to")
                return {}
        if self.stopping.is_set():
            raise EngineStopping("the engine was stopping; a new one answers")
        try:
            return self._on_lane(request, notice)
        except RuntimeError:  # the lane closed in between
            raise EngineStopping("the engine was stopping; a new one answers") from None

    def info(self) -> EngineInfo:
        return EngineInfo(
            pid=os.getpid(),
            protocol=PROTOCOL,
            current=not _code_changed_since(self._started),
            environment=self._environment,
            library=os.fspath(self.library),
        )

    def _on_lane(self, request: Request, notice: Callable[[str], None]) -> Future:
        match request:
            case Search(search, device):
                return self.searches.submit(lambda r: r.run(search, notice=notice).to_wire(), device)
            case Similar(search, device):
                return self.searches.submit(lambda r: r.similar(search).to_wire(), device)
            case WarmUp(device):
                return self.searches.submit(lambda r: r.warm_up(), device)
            case Status():
                return self.catalogue.submit(lambda r: r.status().to_json())
            case Check():
                return self.catalogue.submit(lambda r: r.check().to_json())
            case FailedFiles(limit):
                return self.catalogue.submit(lambda r: [f.to_json() for f in r.failed_files(limit)])
            case Model():
                return self.catalogue.submit(lambda r: r.model())
        raise ProtocolError(f"the engine does not answer {type(request).__name__} requests")

    def warm_up(self) -> None:
        """Load the models in the background: the Fast one first; the Slow one after whatever searches came in
        meanwhile (a first `--no-rerank` search does not wait for a re-ranker it does not use)."""

        def fast(reader: LocalReader) -> None:
            reader.warm_fast()
            with contextlib.suppress(RuntimeError):
                self.searches.submit(_logged(LocalReader.warm_slow))

        with contextlib.suppress(RuntimeError):
            self.searches.submit(_logged(fast))

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Around each request: the engine is not idle while one is being answered."""
        with self._activity:
            self._busy += 1
        try:
            yield
        finally:
            with self._activity:
                self._busy -= 1
                self._last = time.monotonic()
                self._activity.notify_all()

    def stop(self, why: str) -> None:
        if not self.stopping.is_set():
            log.info("engine of %s stopping (%s)", self.library, why)
            self.stopping.set()

    def watch(self) -> None:
        """Stop the engine once it has been idle long enough, or its library folder is gone (a thread)."""
        while not self.stopping.wait(CHECK_EVERY_S):
            exists = self.library.is_dir()
            self._seen_library = self._seen_library or exists
            if self._seen_library and not exists:
                self.stop("its library folder is gone")
            with self._activity:
                idle = self._busy == 0 and time.monotonic() - self._last >= self.idle_s
            if idle:
                self.stop(f"no request for {self.idle_s:g} s")

    def drain(self, timeout: float) -> None:
        """Finish the lanes' work and wait (up to `timeout`) for the replies under way to be sent."""
        self.searches.close()
        self.catalogue.close()
        deadline = time.monotonic() + timeout
        with self._activity:
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._activity.wait(left)


def _code_changed_since(started: float) -> bool:
    """Whether a file of the engine's own code that this process has loaded changed on disk after `started`
    (the frozen program: whether the program itself did)."""
    if getattr(sys, "frozen", False):
        files = [sys.executable]
    else:
        modules = [
            m for name, m in list(sys.modules.items()) if name == "engine" or name.startswith("engine.")
        ]
        files = [f for f in (getattr(m, "__file__", None) for m in modules) if f]
    for file in files:
        try:
            if os.stat(file).st_mtime > started:
                return True
        except OSError:
            return True  # removed: upgraded away
    return False


def _logged(work: Callable[[LocalReader], None]) -> Callable[[LocalReader], None]:
    """Warm-up work whose failure is logged, not raised: the next search reports it to whoever asks."""

    def run(reader: LocalReader) -> None:
        try:
            work(reader)
        except Exception:
            log.warning("warming up the models failed", exc_info=True)

    return run


class _Connection(socketserver.BaseRequestHandler):
    """One client's connection: requests in, notices and replies out, until it closes or misbehaves."""

    server: _Server

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(REQUEST_TIMEOUT_S)
        self._send_lock = threading.Lock()
        with connection.makefile("rb") as stream:
            while True:
                try:
                    line = read_line(stream, MAX_REQUEST_BYTES)
                except ProtocolError as error:  # too long: the rest of the line cannot be told from a request
                    log.warning("closed a connection: %s", error)
                    self._send(encode_failure(error))
                    return
                except (EOFError, OSError):  # cut short, silent for too long, or gone: nobody to answer
                    return
                if line is None:
                    return
                try:
                    request = decode_request(line)
                except ProtocolError as error:
                    log.warning("refused a request: %s", error)
                    if not self._send(encode_failure(error)):
                        return
                    continue
                if not self._serve(request):
                    return

    def _serve(self, request: Request) -> bool:
        """Answer one request → whether the client is still there to ask another."""
        engine = self.server.engine
        with engine.busy():
            try:
                value = engine.answer(request, self._notice)
                if isinstance(value, Future):
                    value = self._result(value)
                    if value is _HUNG_UP:
                        return False
                reply = encode_answer(value)
            except CancelledError:
                reply = encode_failure(EngineStopping("the engine was stopping; a new one answers"))
            except GlimpseError as error:
                reply = encode_failure(error)
            except Exception as error:
                log.error("unexpected failure answering %s", type(request).__name__, exc_info=True)
                reply = encode_failure(explain(error))
            return self._send(reply)

    def _result(self, future: Future) -> Any:
        """Wait for a lane's answer, giving it up if the client hangs up meanwhile."""
        connection: socket.socket = self.request
        while True:
            try:
                return future.result(timeout=0.25)
            except TimeoutError:
                if _hung_up(connection):
                    future.cancel()  # still waiting for its turn: it never runs
                    return _HUNG_UP

    def _notice(self, text: str) -> None:
        self._send(encode_notice(text))  # from the lane's thread, as the search goes

    def _send(self, line: bytes) -> bool:
        with self._send_lock:
            try:
                self.request.sendall(line)
                return True
            except OSError:  # gone, or not reading for REQUEST_TIMEOUT_S
                return False


_HUNG_UP = object()


def _hung_up(connection: socket.socket) -> bool:
    """Whether the client closed its end (a client sends nothing while it waits: readable means closed)."""
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Listens on the library's socket: made private before it listens, put in place once it listens."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, engine: Engine, place: EnginePlace) -> None:
        self.engine = engine
        self.place = place
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._binding = place.socket.with_name(f"{place.socket.name}.{os.getpid()}")
        self._inode: int | None = None
        super().__init__(os.fspath(place.socket), _Connection, bind_and_activate=False)

    def server_bind(self) -> None:
        self._binding.unlink(missing_ok=True)
        self.socket.bind(os.fspath(self._binding))
        os.chmod(self._binding, 0o600)

    def server_activate(self) -> None:
        super().server_activate()
        # Renamed into place only once it listens: a client never finds a socket that refuses while it starts,
        # so one that refuses is a dead engine's. This replaces a dead engine's socket too.
        os.replace(self._binding, self.place.socket)
        self._inode = os.lstat(self.place.socket).st_ino

    def verify_request(self, request: Any, client_address: Any) -> bool:
        uid = peer_uid(request)
        if uid is not None and uid != os.geteuid():
            log.warning("refused a connection from user id %d", uid)
            return False
        if not self._slots.acquire(blocking=False):
            log.warning("refused a connection: %d are being served already", MAX_CONNECTIONS)
            return False
        return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("a connection's thread failed", exc_info=True)

    def remove_socket(self) -> None:
        """Take the socket's name away (new clients then start a new engine), if it is still ours."""
        with contextlib.suppress(OSError):
            if self._inode is not None and os.lstat(self.place.socket).st_ino == self._inode:
                os.unlink(self.place.socket)
        self._binding.unlink(missing_ok=True)


def run_engine(library: Path, *, listening: Callable[[], None] = lambda: None) -> None:
    """Serve the library in folder `library` until the engine stops (see the module docstring); `listening` is
    called once clients can connect.

    Raises EngineRunning when another engine serves it; EngineError when its socket's folder is not private."""
    place = EnginePlace.of(library)
    idle_s = idle_seconds()
    lock = _engine_lock(place)
    try:
        engine = Engine(place.library, idle_s=idle_s)
        server = _Server(engine, place)
        try:
            server.server_bind()
            server.server_activate()
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, lambda *_: engine.stop("signalled"))
            log.info("engine of %s serving on %s (pid %d)", place.library, place.socket, os.getpid())
            listening()
            engine.warm_up()
            threading.Thread(target=engine.watch, name="engine-watch", daemon=True).start()
            threading.Thread(target=_stop_listening, args=(engine, server), daemon=True).start()
            server.serve_forever(poll_interval=CHECK_EVERY_S)
        finally:
            server.remove_socket()
            server.server_close()
            engine.stop("done")
            engine.drain(timeout=PREDECESSOR_WAIT_S)
    finally:
        lock.release()


def _stop_listening(engine: Engine, server: _Server) -> None:
    """Once the engine stops: no new client finds its socket, and the accepting loop ends."""
    engine.stopping.wait()
    server.remove_socket()
    server.shutdown()


def _engine_lock(place: EnginePlace) -> FileLock:
    """The library's engine lock, once a predecessor that is stopping has let it go; EngineRunning if the engine
    that holds it still answers."""
    lock = FileLock(place.engine_lock)
    deadline = time.monotonic() + PREDECESSOR_WAIT_S
    while True:
        try:
            lock.acquire(timeout=0)
            return lock
        except Timeout:
            pass
        pid = _running_pid(place)
        if pid is not None:
            raise EngineRunning(
                f"an engine already serves the library {place.library} (pid {pid}); "
                "`glimpse serve --stop` stops it"
            )
        if time.monotonic() > deadline:
            raise EngineError(
                f"the previous engine of {place.library} holds its lock but does not answer; "
                f"stop it (see {place.log}) and try again"
            )
        time.sleep(0.1)


def _running_pid(place: EnginePlace) -> int | None:
    """The pid of the engine answering at `place`, or None when none answers there."""
    info = running_engine(place)
    return info.pid if info is not None else None


def main(argv: list[str]) -> int:
    """`python -m engine.serve LIBRARY` (how clients start an engine) → the exit code."""
    if len(argv) != 1:
        print("usage: python -m engine.serve LIBRARY", file=sys.stderr)
        return 2
    try:
        run_engine(Path(argv[0]))
    except GlimpseError as error:
        print(f"glimpse: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    return 0
