"""The resident engine, run in this process (a thread) over a real socket: what it answers, what it refuses, and
that no client, however broken, stops it (engine/serve/server.py, client.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings

from engine import Library
from engine.errors import UsageError
from engine.search.query import SearchRequest
from engine.serve import server
from engine.serve.client import EngineClient, running_engine, stop_engine
from engine.serve.protocol import MAX_REQUEST_BYTES, Hello, Search, encode_request
from engine.serve.readers import LocalReader, open_reader
from engine.serve.server import EngineRunning, run_engine
from engine.serve.sockets import EnginePlace
from tests.e2e.conftest import wait_for
from tests.engine.test_serve_protocol import LINES
from tests.factory import make_photo

MODEL = "tiny-test"
#: How long a test waits for something that takes a fraction of a second on a quiet machine.
PATIENCE_S = 60


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for seed in range(6):
        make_photo(folder / f"photo-{seed}.jpg", size=(160, 120), seed=seed)
    return folder


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, media: Path) -> Path:
    folder = tmp_path_factory.mktemp("indexed") / "library"
    with Library.open(folder, writable=True) as writer:
        writer.index([media], model=MODEL, read_text=False)
    return folder


@pytest.fixture
def library(tmp_path: Path, indexed: Path) -> Path:
    """A library of the six photos of `media`, this test's own."""
    return Path(shutil.copytree(indexed, tmp_path / "library"))


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder of this test's own, short enough for socket paths."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture
def engine(library: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EnginePlace]:
    """The library's engine, serving from a thread of this process (so that tests can slow its searches)."""
    # Others may edit the checkout while this runs; the engine in this process runs the code it loaded.
    monkeypatch.setattr(server, "_code_changed_since", lambda started: False)
    thread = threading.Thread(target=run_engine, args=(library,), name="test-engine", daemon=True)
    thread.start()
    place = EnginePlace.of(library)
    assert wait_for(lambda: running_engine(place) is not None, PATIENCE_S, 0.05)
    yield place
    stop_engine(library)
    thread.join(PATIENCE_S)
    assert not thread.is_alive()


class HeldSearches:
    """Makes the engine's searches wait until `release()`; counts the searches that ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Semaphore(0)
        self._go = threading.Event()
        self.ran: list[str] = []
        real = LocalReader.run

        def held(reader, request, *, notice=lambda message: None):
            self.ran.append(request.text)
            self.started.release()
            assert self._go.wait(PATIENCE_S)
            return real(reader, request, notice=notice)

        monkeypatch.setattr(LocalReader, "run", held)

    def release(self) -> None:
        self._go.set()


def ask(place: EnginePlace, *lines: bytes, shut: bool = True, timeout: float = PATIENCE_S) -> list[dict]:
    """Send raw lines to the engine, then read what it says until it closes the connection."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(timeout)
        connection.connect(str(place.socket))
        for line in lines:
            connection.sendall(line)
        if shut:
            connection.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def answers_hello(place: EnginePlace) -> bool:
    [reply] = ask(place, encode_request(Hello()))
    return reply["ok"] and reply["value"]["pid"] == os.getpid()


def in_process(library: Path, request: SearchRequest):
    with Library.open(library) as reader:
        return reader.run(request)


def test_the_engine_answers_as_the_library_does(engine: EnginePlace, library: Path, media: Path) -> None:
    client = EngineClient(library)
    for request in (
        SearchRequest(text="a photo"),
        SearchRequest(text="a photo", rerank=0, limit=3),
        SearchRequest(text="a photo", rerank=2, sort="newest"),
        SearchRequest(similar_to=os.fsencode(media / "photo-2.jpg")),
    ):
        assert client.run(request) == in_process(library, request)  # details and query parts included
    with Library.open(library) as reader:
        assert client.status() == reader.status()
        assert client.check() == reader.check()
        assert client.model() == reader.model == MODEL
        assert client.failed_files(10) == reader.failed_files(10) == []
    assert client.warm_up() == MODEL
    with pytest.raises(UsageError) as raised:
        client.similar(SearchRequest(similar_to=os.fsencode(media)))
    assert str(raised.value) == f"{media} is not a file"


def test_a_status_is_answered_while_a_search_holds_its_lane(
    engine: EnginePlace, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSearches(monkeypatch)
    client = EngineClient(library)
    found = []
    searching = threading.Thread(target=lambda: found.append(client.run(SearchRequest(text="a photo"))))
    searching.start()
    assert held.started.acquire(timeout=PATIENCE_S)
    assert client.status().media == 6  # the catalogue's lane answers while the search lane is busy
    assert searching.is_alive() and not found
    held.release()
    searching.join(PATIENCE_S)
    assert found == [in_process(library, SearchRequest(text="a photo"))]


def test_two_clients_at_once_are_both_answered(engine: EnginePlace, library: Path) -> None:
    request = SearchRequest(text="a photo", rerank=2)
    expected = in_process(library, request)
    found: list = []
    clients = [
        threading.Thread(target=lambda: found.append(EngineClient(library).run(request))) for _ in range(2)
    ]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(PATIENCE_S)
    assert found == [expected, expected]


def test_a_client_that_hangs_up_before_its_turn_costs_nothing(
    engine: EnginePlace, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSearches(monkeypatch)
    first = threading.Thread(target=lambda: EngineClient(library).run(SearchRequest(text="first")))
    first.start()
    assert held.started.acquire(timeout=PATIENCE_S)
    with socket.socket(socket.AF_UNIX) as quitter:
        quitter.connect(str(engine.socket))
        quitter.sendall(encode_request(Search(SearchRequest(text="never run"))))
    time.sleep(1.0)  # the engine looks for hung-up clients four times a second
    held.release()
    first.join(PATIENCE_S)
    assert EngineClient(library).run(SearchRequest(text="after")).all
    assert held.ran == ["first", "after"]


def test_a_client_killed_mid_request_costs_nothing(
    engine: EnginePlace, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSearches(monkeypatch)
    line = encode_request(Search(SearchRequest(text="killed")))
    script = (
        "import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        f"s.sendall({line!r}); time.sleep(600)"
    )
    client = subprocess.Popen([sys.executable, "-c", script, str(engine.socket)])
    assert held.started.acquire(timeout=PATIENCE_S)
    client.send_signal(signal.SIGKILL)
    client.wait(PATIENCE_S)
    held.release()
    assert EngineClient(library).run(SearchRequest(text="next")).all
    assert answers_hello(engine)


def test_notices_reach_the_client_as_the_search_goes(
    engine: EnginePlace, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LocalReader.run

    def noisy(reader, request, *, notice=lambda message: None):
        notice("searching without re-ranking: the weights are away")
        return real(reader, request, notice=notice)

    monkeypatch.setattr(LocalReader, "run", noisy)
    heard: list[str] = []
    assert EngineClient(library).run(SearchRequest(text="a photo"), notice=heard.append).all
    assert heard == ["searching without re-ranking: the weights are away"]


def test_malformed_messages_get_a_sentence_and_the_connection_goes_on(engine: EnginePlace) -> None:
    replies = ask(engine, b"{not json\n", b'{"kind": "reboot"}\n', encode_request(Hello()))
    assert [r["ok"] for r in replies] == [False, False, True]
    assert replies[0]["error"] == {
        "class": "ProtocolError",
        "message": "a message must be one JSON object on one line, in UTF-8",
    }
    assert replies[1]["error"]["message"].startswith("unknown request kind 'reboot'")


def test_an_oversized_message_is_refused_and_its_connection_closed(engine: EnginePlace) -> None:
    replies = ask(engine, b'{"kind": "status", "x": "' + b"y" * MAX_REQUEST_BYTES + b'"}\n', shut=False)
    assert replies == [
        {"ok": False, "error": {"class": "ProtocolError", "message": "a message is at most 65536 bytes long"}}
    ]
    assert answers_hello(engine)


def test_half_a_message_is_dropped_whether_its_client_waits_or_dies(
    engine: EnginePlace, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ask(engine, b'{"kind": "sta') == []  # the client left mid-message
    monkeypatch.setattr(server, "REQUEST_TIMEOUT_S", 0.5)
    assert ask(engine, b'{"kind": "sta', shut=False) == []  # it waits: the engine does not, for long
    assert answers_hello(engine)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=LINES)
def test_fuzzed_requests_never_stop_the_engine(engine: EnginePlace, line: bytes) -> None:
    assume(b'"stop"' not in line)  # the one request that is meant to stop it
    for reply in ask(engine, line + b"\n"):
        assert set(reply) == {"ok", "value"} or set(reply) == {"ok", "error"}
    assert answers_hello(engine)


def test_the_engine_sees_what_a_writer_adds(engine: EnginePlace, library: Path, tmp_path: Path) -> None:
    client = EngineClient(library)
    before = client.status().media
    more = tmp_path / "more"
    make_photo(more / "new.jpg", size=(160, 120), seed=40)
    with Library.open(library, writable=True) as writer:
        writer.index([more], model=MODEL, read_text=False)
    assert client.status().media == before + 1
    paths = [r.path for r in client.run(SearchRequest(text="a photo", limit=50, rerank=0)).all]
    assert more / "new.jpg" in paths


def test_a_library_made_anew_is_opened_anew(engine: EnginePlace, library: Path, tmp_path: Path) -> None:
    client = EngineClient(library)
    assert client.status().media == 6
    for stale in [*library.glob("catalogue.sqlite*"), *library.glob("vectors-*")]:
        stale.unlink()
    other = tmp_path / "other"
    make_photo(other / "only.jpg", size=(160, 120), seed=50)
    with Library.open(library, writable=True) as writer:
        writer.index([other], model=MODEL, read_text=False)
    assert client.status().media == 1
    assert [r.path for r in client.run(SearchRequest(text="a photo", rerank=0)).all] == [other / "only.jpg"]


def test_a_second_engine_for_the_library_says_so(engine: EnginePlace, library: Path) -> None:
    with pytest.raises(EngineRunning) as raised:
        run_engine(library)
    assert str(raised.value) == (
        f"an engine already serves the library {engine.library} (pid {os.getpid()}); "
        "`glimpse serve --stop` stops it"
    )
    assert answers_hello(engine)


def test_an_idle_engine_stops_and_takes_its_socket_away(
    library: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(server.IDLE_ENV, "1")
    thread = threading.Thread(target=run_engine, args=(library,), daemon=True)
    thread.start()
    place = EnginePlace.of(library)
    assert wait_for(lambda: running_engine(place) is not None, PATIENCE_S, 0.05)
    thread.join(PATIENCE_S)
    assert not thread.is_alive() and not place.socket.exists()


def test_an_engine_whose_library_folder_is_deleted_stops(library: Path, runtime: Path) -> None:
    thread = threading.Thread(target=run_engine, args=(library,), daemon=True)
    thread.start()
    place = EnginePlace.of(library)
    assert wait_for(lambda: running_engine(place) is not None, PATIENCE_S, 0.05)
    assert EngineClient(library).model() == MODEL  # the engine has seen its folder
    subprocess.run(["rm", "-rf", str(library)], check=True)
    thread.join(PATIENCE_S)
    assert not thread.is_alive()


def test_the_idle_setting_must_be_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(server.IDLE_ENV, raising=False)
    assert server.idle_seconds() == 15 * 60
    monkeypatch.setenv(server.IDLE_ENV, "2.5")
    assert server.idle_seconds() == 2.5
    for wrong in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv(server.IDLE_ENV, wrong)
        with pytest.raises(UsageError, match=f"must be a number of seconds above 0, not '{wrong}'"):
            server.idle_seconds()


def test_an_engine_knows_when_its_code_changed_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "fake.py"
    code.write_text("")
    monkeypatch.setitem(sys.modules, "engine._fake_for_test", types.SimpleNamespace(__file__=str(code)))
    started = time.time()
    os.utime(code, (started - 10, started - 10))
    assert not server._code_changed_since(started)
    os.utime(code, (started + 10, started + 10))
    assert server._code_changed_since(started)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_a_connection_from_another_user_is_refused(engine: EnginePlace) -> None:
    # Open the folders and the socket to everyone, as a careless chmod would: the peer's uid still keeps them out.
    opened = [engine.folder.parent, engine.folder]
    for folder in opened:
        folder.chmod(0o711)
    engine.socket.chmod(0o666)
    heard_r, heard_w = os.pipe()
    child = os.fork()
    if child == 0:  # the other user: a forked child that gives up root, then knocks
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as knock:
                knock.settimeout(PATIENCE_S)
                knock.connect(str(engine.socket))
                try:
                    knock.sendall(encode_request(Hello()))
                    knock.shutdown(socket.SHUT_WR)
                    said = knock.recv(65536)
                except (BrokenPipeError, ConnectionResetError):  # closed before, or with the hello unread
                    said = b""
                os.write(heard_w, b"heard:" + said)
        except BaseException as error:
            os.write(heard_w, f"failed: {error!r}".encode())
        finally:
            os._exit(0)
    os.close(heard_w)
    try:
        os.waitpid(child, 0)
        with os.fdopen(heard_r, "rb") as heard:
            said = heard.read()
    finally:
        for folder in opened:
            folder.chmod(0o700)
        engine.socket.chmod(0o600)
    assert said == b"heard:"  # it connected, and the engine closed the connection without a word
    assert answers_hello(engine)


def test_no_daemon_reads_in_this_process(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_reader(library, use_engine=False), LocalReader)
    monkeypatch.setenv("GLIMPSE_NO_DAEMON", "1")
    with open_reader(library) as reader:
        assert isinstance(reader, LocalReader) and reader.model() == MODEL
