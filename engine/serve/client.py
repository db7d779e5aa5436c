"""`EngineClient`: reading a library through its resident engine, starting the engine when none runs.

Each question is one short connection: connect, `hello` (is this engine ours, current, and of our environment?),
the question, its notices and reply. When no engine answers, the client takes the library's start lock (two
clients at once start one engine, not two), looks again, and starts one detached from itself (it outlives the
command), then waits until it listens. A socket that refuses connections is a dead engine's: the client says so
in one line and starts a new one. An engine whose code changed on disk since it started (Glimpse was upgraded,
or edited) is stopped and replaced; one started with another environment is left alone (`OtherEnvironment`).

This module stays light: a search that a running engine answers imports neither torch nor numpy nor SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.paths import display
from engine.results import CheckReport, FailedFile, LibraryStatus, SearchResults
from engine.search.query import SearchRequest
from engine.serve.protocol import (
    MAX_REPLY_BYTES,
    PROTOCOL,
    Answer,
    Check,
    EngineError,
    EngineInfo,
    EngineStopping,
    FailedFiles,
    Hello,
    Model,
    Notice,
    OtherEnvironment,
    Request,
    Search,
    Similar,
    Status,
    Stop,
    WarmUp,
    decode_reply,
    encode_request,
    environment_digest,
    read_line,
)
from engine.serve.sockets import EnginePlace, check_private, peer_uid

__all__ = ["EngineClient", "OtherEnvironment", "running_engine", "stop_engine"]

#: How long a client waits for an engine to start listening (it imports the engine first, not the models).
START_TIMEOUT_S = 120.0
#: How long an engine may take to say hello (it answers on its own thread, whatever it is busy with).
HELLO_TIMEOUT_S = 30.0
#: How long a stopping engine may take to finish what it was doing and go.
STOP_TIMEOUT_S = 60.0
#: The engine's stderr file is started afresh past this size.
LOG_MAX_BYTES = 1_000_000
REPLACED_DEAD = "the engine of this library had stopped unexpectedly; starting a new one"


def _quiet(message: str) -> None:
    """The default for a notice nobody asked to see."""


class _Refused(Exception):
    """Nothing listens on the socket any more: its engine died."""


class _Absent(Exception):
    """No socket: no engine runs."""


class _Outdated(Exception):
    """The engine runs code that has changed on disk since, or another protocol."""


class EngineClient:
    """Reads the library in `library` through its engine (a `LibraryReader`); see the module docstring."""

    def __init__(self, library: Path, *, device: str = "auto", say: Callable[[str], None] = _quiet) -> None:
        """`library`: the folder as the command named it (the status reports it so); `say` hears what the
        client itself has to report (a dead engine replaced)."""
        self.library = library
        self.device = device
        self._say = say
        self._place: EnginePlace | None = None
        self._environment = environment_digest()
        self._cancelled = threading.Event()
        self._connection: socket.socket | None = None  # the question in flight

    @property
    def place(self) -> EnginePlace:
        if self._place is None:
            self._place = EnginePlace.of(self.library)
        return self._place

    # LibraryReader ------------------------------------------------------------------------------------

    def run(self, request: SearchRequest, *, notice: Callable[[str], None] = _quiet) -> SearchResults:
        request.check()  # a request that cannot be answered needs no engine to say so
        return SearchResults.from_wire(self._ask(Search(request, self.device), notice))

    def similar(self, request: SearchRequest) -> SearchResults:
        request.check()
        return SearchResults.from_wire(self._ask(Similar(request, self.device)))

    def status(self) -> LibraryStatus:
        status = LibraryStatus.from_json(self._ask(Status()))
        # The engine knows its library by its real path; the command reports it as it was named.
        return dataclasses.replace(status, library=self.library)

    def check(self) -> CheckReport:
        return CheckReport.from_json(self._ask(Check()))

    def failed_files(self, limit: int) -> list[FailedFile]:
        return [FailedFile.from_json(f) for f in self._ask(FailedFiles(limit))]

    def model(self) -> str | None:
        return self._ask(Model())

    def warm_up(self) -> str:
        return self._ask(WarmUp(self.device))

    def cancel(self) -> None:
        """Give up waiting, from any thread (a window that closes): the call under way, and any later one, raises
        EngineError at once; the engine drops the question unanswered."""
        self._cancelled.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading the reply

    def close(self) -> None:
        """Nothing to close: each question has its own connection, and the engine outlives the client."""

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        self.close()

    # connecting ---------------------------------------------------------------------------------------

    def connect(self) -> socket.socket:
        """A connection to this library's engine, which said hello and is current and of our environment; the
        engine is started if none runs (or replaced, when it died or its code changed)."""
        try:
            return self._dial()
        except _Absent:
            dead = False
        except _Refused:
            dead = True
        except _Outdated:
            return self._start(dead=False)
        return self._start(dead=dead)

    def _ask(self, request: Request, notice: Callable[[str], None] = _quiet) -> Any:
        # An engine that was stopping when the question came (idle, or replaced) leaves it to a new one, once.
        for attempt in range(2):
            self._check_cancelled()
            connection = self.connect()
            self._connection = connection
            try:
                with connection:
                    self._check_cancelled()
                    return _exchange(connection, request, notice, self.place)
            except EngineStopping:
                if attempt:
                    raise
                _wait_gone(self.place)
            finally:
                self._connection = None
        raise AssertionError("unreachable")

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise EngineError("the question to the engine was given up")

    def _dial(self) -> socket.socket:
        """Connect and say hello; _Absent, _Refused or _Outdated when that engine will not do, OtherEnvironment
        when it serves another environment."""
        connection = _open(self.place)
        try:
            info = _hello(connection, self.place)
        except BaseException:
            connection.close()
            raise
        if info.protocol != PROTOCOL or not info.current:
            _stop(connection)
            raise _Outdated
        if info.environment != self._environment:
            connection.close()
            raise OtherEnvironment(
                f"the engine of {display(self.library)} (pid {info.pid}) was started with other GLIMPSE_* or "
                "HF_* environment variables; stop it with `glimpse serve --stop`, or use --no-daemon"
            )
        if info.library != os.fspath(self.place.library):
            connection.close()
            raise EngineError(f"the engine at {self.place.socket} serves another library, {info.library}")
        return connection

    def _start(self, *, dead: bool) -> socket.socket:
        from filelock import FileLock, Timeout  # only a client that starts an engine pays for it

        place = self.place
        lock = FileLock(place.start_lock)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # in short turns, so that a cancelled client stops waiting
            self._check_cancelled()
            try:
                lock.acquire(timeout=0.2)
                break
            except Timeout:
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"another Glimpse has been starting the engine of {display(self.library)} for "
                        f"{START_TIMEOUT_S:.0f} s; try again, or use --no-daemon"
                    ) from None
        try:
            try:
                return self._dial()  # another client may have started it while we waited
            except _Absent:
                pass
            except _Refused:
                dead = True
            except _Outdated:
                _wait_gone(place)
            if dead:
                self._say(REPLACED_DEAD)
            return self._spawn_and_wait()
        finally:
            lock.release()

    def _spawn_and_wait(self) -> socket.socket:
        place = self.place
        process = _spawn(place)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return self._dial()
            except (_Absent, _Refused, _Outdated):
                pass
            if process.poll() is not None:
                # It may have found another engine starting up: that one answers, or nobody does.
                try:
                    return self._dial()
                except (_Absent, _Refused, _Outdated):
                    pass
                raise EngineError(
                    f"the engine of {display(self.library)} did not start: {_last_line(place.log)} "
                    f"(its log: {place.log}); use --no-daemon"
                )
            if time.monotonic() > deadline:
                raise EngineError(
                    f"the engine of {display(self.library)} did not start within {START_TIMEOUT_S:.0f} s "
                    f"(its log: {place.log}); use --no-daemon"
                )
            self._check_cancelled()
            time.sleep(0.02)


def stop_engine(library: Path) -> int | None:
    """Stop the engine of the library in `library`, whatever build or environment it runs, and wait until it
    is gone → its pid, or None when none was running."""
    place = EnginePlace.of(library)
    greeted = _greet(place)
    if greeted is None:
        return None
    connection, info = greeted
    _stop(connection)
    _wait_gone(place)
    return info.pid


def running_engine(place: EnginePlace) -> EngineInfo | None:
    """What the engine answering at `place` says it is, or None when none answers there."""
    greeted = _greet(place)
    if greeted is None:
        return None
    connection, info = greeted
    connection.close()
    return info


def _greet(place: EnginePlace) -> tuple[socket.socket, EngineInfo] | None:
    """A connection to the engine at `place` and what it said in answer to hello; None when none answers."""
    try:
        connection = _open(place)
    except (_Absent, _Refused):
        return None
    try:
        return connection, _hello(connection, place)
    except _Absent:
        connection.close()
        return None  # it was stopping
    except BaseException:
        connection.close()
        raise


def _open(place: EnginePlace) -> socket.socket:
    """A connection to the socket at `place`, after checking that it and its peer are the user's alone."""
    try:
        check_private(place.socket, "socket")
    except FileNotFoundError:
        raise _Absent from None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(HELLO_TIMEOUT_S)
    try:
        connection.connect(os.fspath(place.socket))
    except FileNotFoundError:
        connection.close()
        raise _Absent from None
    except ConnectionRefusedError:
        connection.close()
        raise _Refused from None
    except TimeoutError:
        connection.close()
        raise _silent(place) from None
    except BaseException:
        connection.close()
        raise
    uid = peer_uid(connection)
    if uid is not None and uid != os.geteuid():
        connection.close()
        raise EngineError(f"the engine socket {place.socket} is held by another user (uid {uid})")
    return connection


def _hello(connection: socket.socket, place: EnginePlace) -> EngineInfo:
    try:
        connection.sendall(encode_request(Hello()))
        reply = _reply(connection, _quiet)
    except (ConnectionError, EOFError, EngineStopping):
        raise _Absent from None  # it closed on us: it is stopping, and a new one will answer
    except TimeoutError:
        raise _silent(place) from None
    return EngineInfo.from_json(reply)


def _silent(place: EnginePlace) -> EngineError:
    return EngineError(
        f"the engine of this library did not answer within {HELLO_TIMEOUT_S:.0f} s (its log: {place.log}); "
        "stop it with `glimpse serve --stop`, or use --no-daemon"
    )


def _exchange(
    connection: socket.socket, request: Request, notice: Callable[[str], None], place: EnginePlace
) -> Any:
    """Ask, then relay the notices until the reply comes; a search may take its time (no timeout)."""
    connection.settimeout(None)
    try:
        connection.sendall(encode_request(request))
        return _reply(connection, notice)
    except (ConnectionError, EOFError):
        raise EngineError(
            f"the engine of this library stopped while answering (its log: {place.log}); run the command "
            "again, or use --no-daemon"
        ) from None


def _reply(connection: socket.socket, notice: Callable[[str], None]) -> Any:
    """Read up to the reply, handing each notice before it to `notice` → the reply's value."""
    with connection.makefile("rb") as stream:
        while True:
            line = read_line(stream, MAX_REPLY_BYTES)
            if line is None:
                raise EOFError("the engine closed the connection")
            message = decode_reply(line)
            if isinstance(message, Answer):
                return message.value
            assert isinstance(message, Notice)
            notice(message.text)


def _stop(connection: socket.socket) -> None:
    """Ask the engine on `connection` to stop (and close the connection)."""
    with connection:
        try:
            connection.sendall(encode_request(Stop()))
            _reply(connection, _quiet)
        except (ConnectionError, EOFError, EngineStopping):
            pass  # it is going anyway


def _wait_gone(place: EnginePlace) -> None:
    """Wait until the engine at `place` has stopped listening (its socket is gone or refuses)."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            _open(place).close()
        except (_Absent, _Refused):
            return
        time.sleep(0.05)
    raise EngineError(f"the engine at {place.socket} did not stop within {STOP_TIMEOUT_S:.0f} s")


def _spawn(place: EnginePlace) -> subprocess.Popen:
    """Start the engine detached from this process: its own session, no terminal, stderr into its log."""
    try:
        if place.log.stat().st_size > LOG_MAX_BYTES:
            place.log.unlink()
    except FileNotFoundError:
        pass
    log = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.serve", os.fspath(place.library)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",  # an engine must not keep the folder a command ran in busy
            start_new_session=True,
        )
    finally:
        os.close(log)
    # A long-lived client (the window) reaps the engine when it ends; a command's exit hands it to init.
    threading.Thread(target=process.wait, name="engine-reaper", daemon=True).start()
    return process


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "it left no message"
    return lines[-1] if lines else "it left no message"
