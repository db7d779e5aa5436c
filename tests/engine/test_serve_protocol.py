"""The engine's messages: what a client sends comes out the same, what the wire carries is whole, and anything
else is refused in one sentence (engine/serve/protocol.py), and the private folder the sockets live in."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UsageError
from engine.results import (
    CheckReport,
    FailedFile,
    LibraryStatus,
    MediaDetails,
    QueryPart,
    SearchResult,
    SearchResults,
)
from engine.search.query import SearchRequest
from engine.serve import protocol
from engine.serve.protocol import (
    MAX_REQUEST_BYTES,
    Answer,
    EngineError,
    EngineInfo,
    FailedFiles,
    Hello,
    Notice,
    ProtocolError,
    Search,
    Similar,
    Status,
    WarmUp,
    decode_reply,
    decode_request,
    encode_answer,
    encode_failure,
    encode_notice,
    encode_request,
    environment_digest,
    read_line,
)
from engine.serve.sockets import EnginePlace, check_private, private_folder

NOT_UTF8 = b"/photos/caf\xe9/\xff.jpg"  # a name the OS allows that is not UTF-8


def test_every_request_comes_out_as_it_went_in() -> None:
    request = SearchRequest(
        text="two kids flying a red kite",
        similar_to=NOT_UTF8,
        limit=7,
        kind="video",
        folder=b"/photos/caf\xe9",
        taken_from=dt.date(2019, 7, 1),
        taken_to=dt.date(2019, 7, 31),
        rerank=4,
        sort="newest",
    )
    for message in (
        Hello(),
        Search(request, "cpu"),
        Similar(request, "auto"),
        Status(),
        FailedFiles(200),
        WarmUp("cuda"),
    ):
        line = encode_request(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
        assert decode_request(line) == message


def test_results_cross_the_wire_whole_details_included() -> None:
    details = MediaDetails(
        path=Path(os.fsdecode(NOT_UTF8)),
        kind="video",
        size=123_456,
        width=1920,
        height=1080,
        duration_s=61.5,
        taken_at=dt.datetime(2019, 7, 14, 10, 30, 1, 250),
        modified=dt.datetime(2020, 1, 2, 3, 4, 5),
        when=dt.datetime(2019, 7, 14, 10, 30, 1, 250),
        status="indexed",
        error=None,
    )
    result = SearchResult(
        rank=1,
        path=details.path,
        kind="video",
        score=0.1 + 0.2,  # a float that only an exact round trip keeps
        fast_score=-0.123456789012345,
        slow_score=None,
        timestamp=12.5,
        media_id=3,
        frame_id=44,
        segments=[(10.0, 14.0), (30.0, 30.0)],
        place="Lisbon, Portugal",
        text="KITE FESTIVAL",
        matched=["visual", "place", "text"],
        text_spans=[(0, 4)],
        details=details,
    )
    found = SearchResults(
        shown=[result],
        hidden=[SearchResult(2, Path("/p.jpg"), "image", 0.01, 0.01, -3.5, None, 4, 45)],
        query="kite in Lisbon",
        parts=[QueryPart("visual", "kite"), QueryPart("place", "Lisbon, Portugal", spans=((8, 14),))],
    )
    wire = json.loads(encode_answer(found.to_wire()))["value"]
    assert SearchResults.from_wire(wire) == found
    # What `--json` prints is what the in-process command prints: no details, no highlighting spans.
    assert SearchResults.from_wire(wire).shown[0].to_json() == result.to_json()
    assert "details" not in result.to_json() and "text_spans" not in result.to_json()


def test_status_check_and_failed_files_cross_the_wire() -> None:
    status = LibraryStatus(
        library=Path("/lib"),
        model="tiny-test",
        media=3,
        images=2,
        videos=1,
        frames=9,
        failed=1,
        pending=0,
        unavailable=0,
        read=2,
        folders=[Path(os.fsdecode(NOT_UTF8))],
        excluded=[Path("/photos/private")],
    )
    assert LibraryStatus.from_json(json.loads(json.dumps(status.to_json()))) == status
    report = CheckReport(consistent=False, problems=["2 frames without vectors"], repaired=[])
    assert CheckReport.from_json(report.to_json()) == report
    failed = FailedFile(Path("/p/broken.jpg"), "file is truncated")
    assert FailedFile.from_json(failed.to_json()) == failed


def test_failures_come_back_as_the_error_the_engine_raised() -> None:
    with pytest.raises(UsageError, match=r"^the date range ends before it starts$"):
        decode_reply(encode_failure(UsageError("the date range ends before it starts")))

    class Unheard(EngineError):
        """A class the other side has never heard of travels as its nearest known base."""

    with pytest.raises(EngineError) as raised:
        decode_reply(encode_failure(Unheard("no such luck")))
    assert type(raised.value) is EngineError and str(raised.value) == "no such luck"
    assert decode_reply(encode_notice("searching without re-ranking: x")) == Notice(
        "searching without re-ranking: x"
    )
    assert decode_reply(encode_answer({"a": [1]})) == Answer({"a": [1]})


@pytest.mark.parametrize(
    ("line", "sentence"),
    [
        (b"not json\n", "one JSON object"),
        (b"\xff\xfe{}\n", "in UTF-8"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"kind": "format-disk"}\n', "unknown request kind 'format-disk'"),
        (b'{"kind": 7}\n', "unknown request kind 7"),
        (b'{"kind": "status", "extra": 1}\n', "has no field 'extra'"),
        (b'{"kind": "failed", "limit": true}\n', "limit must be a whole number"),
        (b'{"kind": "failed", "limit": 0}\n', "between 1 and"),
        (b'{"kind": "failed", "limit": 1e309}\n', "whole number"),
        (b'{"kind": "warm", "device": "tpu"}\n', "the device must be"),
        (b"[" * 100_000 + b"\n", "one JSON object"),
    ],
)
def test_malformed_requests_are_refused_in_one_sentence(line: bytes, sentence: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_request(line)
    message = str(raised.value)
    assert sentence in message and "\n" not in message and len(message) < 200


def _search(**fields) -> bytes:
    request = {**protocol.search_request_to_wire(SearchRequest(text="a dog")), **fields}
    return json.dumps({"kind": "search", "request": request, "device": "auto"}).encode() + b"\n"


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        ({"limit": -1}, "limit must be between"),
        ({"limit": "20"}, "limit must be a whole number"),
        ({"kind": "audio"}, "the type must be image or video"),
        ({"sort": "random"}, "sort by relevance"),
        ({"folder": "relative/folder"}, "folder must be an absolute path"),
        ({"similar_to": "/a\u0000b.jpg"}, "similar_to must be an absolute path"),
        ({"similar_to": "/\ud800.jpg"}, "similar_to is not a path"),
        ({"taken_from": "14/07/2019"}, "taken_from must be a date"),
        ({"rerank": 10**6}, "rerank must be between"),
        ({"text": None}, "text must be a string"),
        ({"colour": "red"}, "has no field 'colour'"),
    ],
)
def test_search_requests_are_checked_field_by_field(fields: dict, sentence: str) -> None:
    with pytest.raises(ProtocolError, match=sentence):
        decode_request(_search(**fields))


def test_a_similar_request_names_its_file() -> None:
    line = encode_request(Similar(SearchRequest(similar_to=b"/x.jpg"))).replace(b'"/x.jpg"', b"null")
    with pytest.raises(ProtocolError, match="needs the file"):
        decode_request(line)


#: Any JSON value, small: objects with keys a request might have and values of every type.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kind", "request", "device", "limit", "text", "x"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)
LINES = st.binary(max_size=300) | JSON_VALUES.map(lambda value: json.dumps(value).encode())


@settings(max_examples=400, deadline=None)
@given(LINES)
def test_any_line_is_a_request_or_a_protocol_error(line: bytes) -> None:
    try:
        decode_request(line + b"\n")
    except ProtocolError as error:
        assert str(error) and "\n" not in str(error)


def test_lines_have_a_length_limit_and_a_cut_line_is_no_message() -> None:
    assert read_line(io.BytesIO(b'{"kind": "hello"}\n{"kind"'), MAX_REQUEST_BYTES) == b'{"kind": "hello"}\n'
    assert read_line(io.BytesIO(b""), MAX_REQUEST_BYTES) is None
    with pytest.raises(EOFError):
        read_line(io.BytesIO(b'{"kind": "sta'), MAX_REQUEST_BYTES)
    with pytest.raises(ProtocolError, match="at most 65536 bytes"):
        read_line(io.BytesIO(b"x" * (MAX_REQUEST_BYTES + 10) + b"\n"), MAX_REQUEST_BYTES)


def test_an_engine_of_another_protocol_reads_as_one_to_replace() -> None:
    assert EngineInfo.from_json({"pid": 12, "protocol": 0, "build": "abc"}).protocol == -1
    assert EngineInfo.from_json({"pid": 12, "protocol": 0, "build": "abc"}).pid == 12
    assert EngineInfo.from_json("hello").protocol == -1
    info = EngineInfo(pid=3, protocol=protocol.PROTOCOL, current=True, environment="e", library="/lib")
    assert EngineInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_the_environment_that_changes_answers_is_the_one_compared() -> None:
    base = {"HOME": "/root", "HF_HUB_OFFLINE": "1", "GLIMPSE_FAST_PRECISION": "int8"}
    assert environment_digest(base) == environment_digest({**base, "HOME": "/elsewhere", "TERM": "xterm"})
    for tuning in ("GLIMPSE_ENGINE_IDLE_S", "GLIMPSE_NO_DAEMON", "GLIMPSE_LIBRARY", "GLIMPSE_DESKTOP_SHOW"):
        assert environment_digest(base) == environment_digest({**base, tuning: "5"})
    assert environment_digest(base) != environment_digest({**base, "GLIMPSE_FAST_PRECISION": "fp32"})
    assert environment_digest(base) != environment_digest({**base, "HF_HOME": "/models"})
    assert environment_digest(base) != environment_digest({**base, "CUDA_VISIBLE_DEVICES": "1"})


@pytest.fixture
def runtime(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = Path(os.path.realpath(tmp_path_factory.mktemp("rt")))
    folder.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    return folder


def test_one_library_one_place_whatever_path_spells_it(runtime: Path, tmp_path: Path) -> None:
    library = tmp_path / "a" / "library"
    library.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    place = EnginePlace.of(library)
    assert EnginePlace.of(tmp_path / "link" / "library") == place
    assert EnginePlace.of(tmp_path / "a" / "." / "library") == place
    assert place.folder == runtime / "glimpse" and place.socket.parent == place.folder
    assert len(os.fsencode(place.socket)) < 104
    assert EnginePlace.of(tmp_path / ("x" * 200) / ("y" * 200)).socket.name.endswith(".sock")
    assert (runtime / "glimpse").stat().st_mode & 0o777 == 0o700


def test_an_engine_folder_others_can_open_is_refused(runtime: Path) -> None:
    folder = private_folder()
    folder.chmod(0o755)
    with pytest.raises(EngineError) as raised:
        private_folder()
    assert str(raised.value) == (
        f"the engine folder {folder} can be opened by other users (mode 755); make it private "
        f"(chmod 700 {folder}), or use --no-daemon"
    )
    folder.chmod(0o700)
    assert private_folder() == folder


def test_a_planted_file_or_an_open_socket_is_refused(runtime: Path) -> None:
    import socket

    folder = private_folder()
    planted = folder / "planted.sock"
    planted.write_text("not a socket")
    with pytest.raises(EngineError, match="is not a socket"):
        check_private(planted, "socket")
    opened = folder / "open.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(opened))
        opened.chmod(0o666)
        with pytest.raises(EngineError, match=r"can be opened by other users \(mode 666\)"):
            check_private(opened, "socket")
        opened.chmod(0o600)
        check_private(opened, "socket")


def test_without_a_runtime_folder_a_private_one_in_the_temporary_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # it reads TMPDIR once
    assert private_folder() == tmp_path / f"glimpse-{os.geteuid()}"
    assert (tmp_path / f"glimpse-{os.geteuid()}").stat().st_mode & 0o777 == 0o700
