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
    Tune,
    TuneFinished,
    UndoTune,
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


@pytest.mark.parametrize(
    "message",
    [
        Tune(0.5),
        UndoTune(),
        TuneFinished(model="shapes@/l/tuned/x.pt", tuned=True, pictures=40, r1_before=82.0, r1_after=89.0),
    ],
)
def test_tuning_messages_round_trip_through_json(message) -> None:
    kinds = EVENTS if isinstance(message, TuneFinished) else COMMANDS
    assert decode(encode(message), kinds) == message


def test_a_library_that_cannot_be_tuned_hears_one_sentence_and_the_service_goes_on(tmp_path) -> None:
    photos = tmp_path / "photos"
    for i in range(3):
        make_photo(photos / f"p{i}.jpg", size=(160, 120), seed=i)
    service = IndexService(tmp_path / "library", model="tiny-test", read_text=False, watch=False)
    service.start()
    try:
        assert service.wait_event(Ready, 60) is not None
        service.send(AddFolder(str(photos)))
        assert service.wait_event(Finished, 120) is not None
        service.send(Tune(0.1))
        error = service.wait_event(Error, 60)
        # tiny-test has no Slow model and 3 pictures are too few: either way one sentence, and no crash.
        assert error is not None and "tun" in error.message and error.message.count(". ") == 0
        assert service.wait_event(StateChanged, 10, where=lambda e: e.state == "idle") is not None
        assert service.running
    finally:
        service.stop()
