"""The index service: a separate process that indexes, reports progress, follows changes and obeys commands."""

from __future__ import annotations

import pytest

from engine import Library
from engine.jobs import IndexService, JobEvent
from engine.results import IndexReport
from tests.factory import make_photo


def test_events_round_trip_through_json() -> None:
    event = JobEvent("report", folder="/p", report=IndexReport(images=3, failed=1))
    assert JobEvent.from_line(event.to_line()) == event


@pytest.mark.slow
def test_service_indexes_reports_progress_and_follows_deletions(tmp_path) -> None:
    photos = tmp_path / "photos"
    for i in range(5):
        make_photo(photos / f"p{i}.jpg", size=(160, 120), seed=i)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    service = IndexService(tmp_path / "library", model="tiny-test")
    service.start()
    try:
        assert service.wait_event("ready", 60) is not None
        service.add_folder(photos)
        folders = service.wait_event("folders", 30)
        assert folders is not None and folders.folders == [str(photos)]
        done = service.wait_event("report", 120)
        assert done is not None and done.report.images == 5 and done.report.failed == 1
        with Library.open(tmp_path / "library") as library:  # a reader sees it while the service runs
            assert library.status().images == 5

        (photos / "p0.jpg").unlink()
        update = service.wait_event("report", 30)
        assert update is not None and update.report.removed == 1
    finally:
        service.stop()
    assert not service.running
    assert service.events()[-1].kind == "exited"


def test_a_second_writer_hears_who_holds_the_library(tmp_path) -> None:
    with Library.open(tmp_path / "library", writable=True):
        service = IndexService(tmp_path / "library", model="tiny-test")
        service.start()
        error = service.wait_event("error", 60)
        service.stop()
    assert error is not None and "is being changed by another Glimpse process" in error.message
