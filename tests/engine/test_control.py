"""Pausing and stopping a run between two files (`RunControl`), as the indexer and the index service do."""

from __future__ import annotations

import threading
import time

from engine import Library
from engine.control import RunControl
from tests.factory import make_photo


def test_pause_holds_the_run_until_resumed_and_stop_wakes_it() -> None:
    changes: list[str] = []
    control = RunControl(on_change=changes.append)
    assert control.proceed() and not control.paused
    control.pause()
    control.pause()  # twice is once
    assert control.paused
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(control.proceed()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # held by the pause
    control.resume()
    waiter.join(5)
    assert waited == [True]
    control.pause()
    waiter = threading.Thread(target=lambda: waited.append(control.proceed()))
    waiter.start()
    control.stop()  # a paused run stops too
    waiter.join(5)
    assert waited == [True, False] and control.stopped and not control.paused
    control.resume()  # a stopped run stays stopped
    assert not control.proceed()
    assert changes == ["paused", "resumed", "paused", "stopped"]


def test_indexing_pauses_between_files_and_goes_on_when_resumed(tmp_path) -> None:
    media = tmp_path / "media"
    for seed in range(12):
        make_photo(media / f"p{seed:02d}.jpg", size=(160, 120), seed=seed)
    done: list[int] = []
    control = RunControl()

    def progress(update) -> None:
        done.append(update.done)
        if update.done == 3:
            control.pause()  # the indexer waits after this file, before the next one

    with Library.open(tmp_path / "library", writable=True) as library:
        reports = []
        run = threading.Thread(
            target=lambda: reports.append(
                library.index([media], model="tiny-test", progress=progress, control=control, read_text=False)
            )
        )
        run.start()
        deadline = time.monotonic() + 60
        while not done or done[-1] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        assert done[-1] == 3  # nothing more while paused
        with Library.open(tmp_path / "library") as reader:
            assert reader.status().images == 3  # and what was done is committed
        control.resume()
        run.join(120)
    assert reports and reports[0].images == 12 and done[-1] == 12


def test_a_stopped_run_keeps_what_it_did_and_the_next_run_finishes(tmp_path) -> None:
    media = tmp_path / "media"
    for seed in range(8):
        make_photo(media / f"p{seed}.jpg", size=(160, 120), seed=seed)
    control = RunControl()

    def progress(update) -> None:
        if update.done == 2:
            control.stop()

    with Library.open(tmp_path / "library", writable=True) as library:
        first = library.index([media], model="tiny-test", progress=progress, control=control)
        assert first.images == 2  # it stopped right after the file that asked it to
        assert library.status().pending == 8 - first.images
        second = library.index()
        assert first.images + second.images == 8 and library.status().pending == 0
