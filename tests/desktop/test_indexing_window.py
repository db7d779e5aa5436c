"""Indexing in the background, as the window shows it: a separate process, progress, watching, failures,
and an event loop that never stalls."""

from __future__ import annotations

import os
import signal
import time

import pytest
from PySide6.QtCore import QTimer

from tests.desktop.conftest import FakePicker, index_folder, make_media, search
from tests.factory import make_photo

#: The longest the GUI's event loop may go without running, while indexing, in seconds.
MAX_STALL_S = 0.100


class StallMeter:
    """Measures the event loop's longest stall: a 5 ms timer notes how late each of its ticks comes."""

    def __init__(self, interval_ms: int = 5) -> None:
        self.interval = interval_ms / 1000
        self.longest = 0.0
        self.ticks = 0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last - self.interval)
        self._last = now
        self.ticks += 1

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()


@pytest.mark.slow
def test_add_folder_indexes_in_the_background_without_stalling(make_window, tmp_path, qtbot) -> None:
    """Folders dialog → add → progress in the status bar → results; a corrupt file is a count, not a crash."""
    media = tmp_path / "media"
    make_media(media, photos=24, videos=2)
    (media / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no photo")
    window = make_window(tmp_path / "library", picker=FakePicker(str(media)))
    window.show()
    qtbot.waitExposed(window)
    window.start_indexing()
    qtbot.waitUntil(lambda: window.indexing.state == "idle", timeout=60_000)  # empty library: nothing to do

    progress = []
    window.indexing.progress.connect(progress.append)
    meter = StallMeter()
    meter.start()
    dialog = window.show_folders()
    with qtbot.waitSignal(window.indexing.report, timeout=120_000) as finished:
        dialog.add_button.click()
    meter.stop()
    report = finished.args[0]
    dialog.close()

    assert report.images == 24 and report.videos == 2 and report.failed == 1
    counted = [p for p in progress if p.total]
    assert counted and counted[-1].done == counted[-1].total == 27 and counted[-1].failed == 1
    assert any(p.rate > 0 for p in counted)
    assert "could not be read" in window.statusBar().currentMessage()
    assert "1 failed" in window.indexing_status.label.text() or window.indexing.state in (
        "reading",
        "watching",
    )
    qtbot.waitUntil(lambda: dialog.watched.count() == 1)
    assert dialog.watched.item(0).text() == str(media)
    # Newly indexed files are searchable at once, in this same window.
    response = search(qtbot, window, "a landscape")
    assert len(response.results.all) == 26
    print(f"longest event-loop stall while indexing: {meter.longest * 1000:.1f} ms over {meter.ticks} ticks")
    assert meter.ticks > 100
    assert meter.longest < MAX_STALL_S


@pytest.mark.slow
def test_a_deleted_watched_file_leaves_the_results(make_window, tmp_path, qtbot) -> None:
    media = tmp_path / "media"
    files = make_media(media, photos=4, videos=0)
    index_folder(tmp_path / "library", media)
    window = make_window(tmp_path / "library", start=True)
    qtbot.waitUntil(lambda: window.indexing.state == "watching", timeout=60_000)
    assert len(search(qtbot, window, "a landscape").results.all) == 4

    files[0].unlink()
    with qtbot.waitSignal(window.searched, timeout=30_000):  # the watcher's update re-runs the search
        pass
    shown = [i.path for i in window.model.items]
    assert files[0] not in shown and len(shown) == 3

    added = make_photo(media / "new.jpg", size=(160, 120), seed=42)
    qtbot.waitUntil(lambda: added in [i.path for i in window.model.items], timeout=30_000)


@pytest.mark.slow
def test_an_indexer_crash_leaves_the_window_up_with_one_sentence(make_window, tmp_path, qtbot) -> None:
    media = tmp_path / "media"
    make_media(media, photos=2, videos=0)
    window = make_window(tmp_path / "library", start=True)
    window.show()
    qtbot.waitUntil(lambda: window.indexing.state in ("idle", "watching"), timeout=60_000)
    with qtbot.waitSignal(window.indexing.error, timeout=20_000) as crashed:
        os.kill(window.indexing.service.pid, signal.SIGSEGV)
    message = crashed.args[0]
    assert message.startswith("The indexer stopped unexpectedly (SIGSEGV)") and "Traceback" not in message
    assert window.isVisible() and window.indexing.state == "stopped"
    assert "The indexer stopped unexpectedly" in window.statusBar().currentMessage()
    window.start_indexing()  # File → Restart indexing
    qtbot.waitUntil(lambda: window.indexing.state in ("idle", "watching"), timeout=60_000)


@pytest.mark.slow
def test_pause_resume_and_cancel_reach_the_indexer(make_window, tmp_path, qtbot) -> None:
    media = tmp_path / "media"
    make_media(media, photos=30, videos=0)
    # The visual pass alone: the reading pass that would follow it has tests of its own.
    window = make_window(tmp_path / "library", picker=FakePicker(str(media)), start=True, read_text=False)
    window.show()
    qtbot.waitUntil(lambda: window.indexing.state == "idle", timeout=60_000)
    states: list[str] = []
    reports = []
    window.indexing.state_changed.connect(states.append)
    window.indexing.report.connect(reports.append)
    window.indexing.add_folder(str(media))
    qtbot.waitUntil(lambda: window.indexing.state == "indexing", timeout=30_000)
    window.indexing_status.pause_button.click()
    qtbot.waitUntil(lambda: window.indexing.state == "paused", timeout=30_000)
    assert window.indexing_status.pause_button.text() == "Resume"
    assert "paused" in window.indexing_status.label.text()
    qtbot.waitUntil(lambda: "more are on their way" in window.empty.text(), timeout=10_000)
    window.indexing_status.pause_button.click()
    qtbot.waitUntil(lambda: window.indexing.state == "indexing", timeout=30_000)
    # Cancel while paused, so that the run is surely unfinished when the cancel reaches it.
    window.indexing_status.pause_button.click()
    qtbot.waitUntil(lambda: window.indexing.state == "paused", timeout=30_000)
    window.indexing_status.cancel_button.click()
    qtbot.waitUntil(lambda: window.indexing.state == "cancelled", timeout=30_000)
    qtbot.waitUntil(lambda: bool(reports), timeout=10_000)
    assert reports[-1].images < 30  # it stopped before the end
    # The empty page no longer promises more files (it follows the indexer's state, not only the counts).
    qtbot.waitUntil(lambda: "on their way" not in window.empty.text(), timeout=10_000)
    assert "paused" in states and "indexing" in states
    # Resume goes on with what the cancelled run left pending.
    window.indexing.resume()
    qtbot.waitUntil(lambda: window.indexing.state == "watching", timeout=60_000)
    assert reports[-2].images + reports[-1].images == 30


def test_a_library_locked_by_another_process_is_one_clear_sentence(make_window, tmp_path, qtbot) -> None:
    from engine import Library

    with Library.open(tmp_path / "library", writable=True):  # `glimpse watch` in a terminal, say
        window = make_window(tmp_path / "library")
        with qtbot.waitSignal(window.indexing.error, timeout=60_000) as said:
            window.start_indexing()
        qtbot.waitUntil(lambda: window.indexing.state == "stopped", timeout=30_000)
    assert "is being changed by another Glimpse process" in said.args[0]
    assert window.statusBar().currentMessage() == said.args[0]  # not replaced by a vaguer one
