"""Following watched folders (`FolderFollower`): changes, folders that go away and folders that come back."""

from __future__ import annotations

import os
import time

import pytest

from engine import watcher
from engine.watcher import FolderFollower
from tests.factory import make_photo


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(watcher, "QUIET_SECONDS", 0.2)
    monkeypatch.setattr(watcher, "UNREACHABLE_CHECK_SECONDS", 0.2)


def changed_within(follower: FolderFollower, seconds: float = 10.0) -> list[bytes]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = follower.changed()
        if found:
            return found
        time.sleep(0.05)
    return []


def test_a_change_marks_its_folder_once_quiet(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with FolderFollower([os.fsencode(a), os.fsencode(b)]) as follower:
        make_photo(b / "new.jpg")
        assert changed_within(follower) == [os.fsencode(b)]
        assert follower.changed() == []


def test_an_unreachable_folder_is_followed_once_it_comes_back(tmp_path) -> None:
    drive = tmp_path / "drive"
    with FolderFollower([os.fsencode(drive)]) as follower:
        assert follower.unreachable == [os.fsencode(drive)]
        assert follower.changed() == []
        drive.mkdir()  # the drive is plugged in
        assert changed_within(follower) == [os.fsencode(drive)]  # its files come back
        assert follower.unreachable == []
        make_photo(drive / "p.jpg")
        assert changed_within(follower) == [os.fsencode(drive)]  # and it is followed from now on


def test_a_followed_folder_that_goes_away_is_reported_and_looked_for(tmp_path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    with FolderFollower([os.fsencode(drive)]) as follower:
        drive.rename(tmp_path / "elsewhere")  # unplugged
        assert changed_within(follower) == [
            os.fsencode(drive)
        ]  # indexing then keeps its files as unavailable
        deadline = time.monotonic() + 5
        while follower.unreachable != [os.fsencode(drive)]:
            assert time.monotonic() < deadline
            follower.changed()
            time.sleep(0.05)
        (tmp_path / "elsewhere").rename(drive)
        assert changed_within(follower) == [os.fsencode(drive)]
