"""The index service: a separate process that indexes, reports progress, follows changes and obeys commands."""

from __future__ import annotations

import pytest

from engine import Library
from engine.jobs import (
    COMMANDS,
    EVENTS,
    AddFolder,
    Error,
    Exited,
    Finished,
    FoldersChanged,
    IndexService,
    Pause,
    Progress,
    Ready,
    SetFrameInterval,
    StateChanged,
    decode,
    encode,
)
from engine.results import IndexReport
from tests.factory import make_photo


@pytest.mark.parametrize(
    "message",
    [
        Finished(IndexReport(images=3, failed=1), folder="/p"),
        Progress(done=2, total=5, failed=1, rate=1.5, eta_s=2.0, folder="/p"),
        StateChanged("paused", folder="/p"),
        FoldersChanged(["/a", "/b\udcff"], ["/a/x"]),
        Ready("tiny-test"),
    ],
)
def test_events_round_trip_through_json(message) -> None:
    assert decode(encode(message), EVENTS) == message


@pytest.mark.parametrize("message", [AddFolder("/photos"), Pause(), SetFrameInterval(2.5)])
def test_commands_round_trip_through_json(message) -> None:
    assert decode(encode(message), COMMANDS) == message


@pytest.mark.parametrize(
    "line",
    [
        '{"type": "Nonsense"}',
        '{"type": "AddFolder"}',
        '{"type": "Pause", "x": 1}',
        "[1, 2]",
        "{",
        '"AddFolder"',
    ],
)
def test_malformed_lines_are_refused_with_value_error(line) -> None:
    with pytest.raises(ValueError):
        decode(line, COMMANDS)


def test_an_event_is_not_taken_for_a_command() -> None:
    with pytest.raises(ValueError):
        decode(encode(Ready("m")), COMMANDS)


@pytest.mark.slow
def test_service_indexes_reports_progress_and_follows_deletions(tmp_path) -> None:
    photos = tmp_path / "photos"
    for i in range(5):
        make_photo(photos / f"p{i}.jpg", size=(160, 120), seed=i)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    service = IndexService(tmp_path / "library", model="tiny-test")
    service.start()
    try:
        assert service.wait_event(Ready, 60) is not None
        service.send(AddFolder(str(photos)))
        folders = service.wait_event(FoldersChanged, 30)
        assert folders is not None and folders.folders == [str(photos)]
        done = service.wait_event(Finished, 120)
        assert done is not None and done.report.images == 5 and done.report.failed == 1
        with Library.open(tmp_path / "library") as library:  # a reader sees it while the service runs
            assert library.status().images == 5

        (photos / "p0.jpg").unlink()
        update = service.wait_event(Finished, 30)
        assert update is not None and update.report.removed == 1
    finally:
        service.stop()
    assert not service.running
    assert isinstance(service.events()[-1], Exited)


def test_a_second_writer_hears_who_holds_the_library(tmp_path) -> None:
    with Library.open(tmp_path / "library", writable=True):
        service = IndexService(tmp_path / "library", model="tiny-test")
        service.start()
        error = service.wait_event(Error, 60)
        service.stop()
    assert error is not None and "is being changed by another Glimpse process" in error.message
