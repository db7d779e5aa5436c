"""Decoding in worker processes: a codec that crashes or hangs costs one file, never the run."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from engine.decoding import (
    CRASH_MARKER_ENV,
    HANG_MARKER_ENV,
    DecodeJob,
    DecodePool,
    DecodeSettings,
    _Worker,
)
from tests.factory import make_photo, make_video


def job(path, kind="image"):
    stat = path.stat()
    return DecodeJob(bytes(path), kind, stat.st_size, stat.st_mtime_ns)


def decode(pool, path, kind="image"):
    frames = []
    summary = pool.decode(
        job(path, kind), lambda ts, px: frames.append((ts, px.shape)) or True, threading.Event()
    )
    return summary, frames


@pytest.fixture
def pool():
    with DecodePool(workers=1, settings=DecodeSettings(timeout_s=3)) as pool:
        yield pool


def test_photo_and_video_frames_come_back_with_a_summary(pool, tmp_path):
    summary, frames = decode(pool, make_photo(tmp_path / "a.jpg", size=(800, 600)))
    assert summary.error is None and (summary.width, summary.height) == (800, 600)
    assert frames == [(None, (448, 597, 3))] and summary.fingerprint
    summary, frames = decode(pool, make_video(tmp_path / "v.mp4", seconds=10), "video")
    assert summary.error is None and summary.frames == len(frames) >= 5
    assert [ts for ts, _ in frames] == sorted(ts for ts, _ in frames)


def test_a_crashing_decoder_costs_one_file(pool, tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_MARKER_ENV, "boom")
    # The environment is read by the worker: start a fresh one that sees the variable.
    with DecodePool(workers=1) as crashing:
        summary, frames = decode(crashing, make_photo(tmp_path / "boom.jpg"))
        assert "crashed" in summary.error and frames == []
        after, frames = decode(crashing, make_photo(tmp_path / "fine.jpg", seed=1))
        assert after.error is None and len(frames) == 1


def test_a_hanging_decoder_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv(HANG_MARKER_ENV, "stuck")
    with DecodePool(workers=1, settings=DecodeSettings(timeout_s=2)) as pool:
        summary, _ = decode(pool, make_photo(tmp_path / "stuck.jpg"))
        assert "longer than 2 s" in summary.error
        after, _ = decode(pool, make_photo(tmp_path / "fine.jpg"))
        assert after.error is None


def test_a_file_changed_since_the_scan_is_not_trusted(pool, tmp_path):
    photo = make_photo(tmp_path / "a.jpg")
    stale = job(photo)
    make_photo(photo, size=(100, 100), seed=5)
    summary = pool.decode(stale, lambda ts, px: True, threading.Event())
    assert "changed" in summary.error


def test_a_worker_whose_parent_went_away_exits_quietly(tmp_path):
    # When the app is closed or killed mid-file, the worker's next frame meets a broken pipe: it must end, not
    # print a traceback into the user's terminal (an uncaught exception would also exit with code 1).
    worker = _Worker(multiprocessing.get_context("spawn"), DecodeSettings(frame_interval_s=0.5))
    worker.connection.send(job(make_video(tmp_path / "v.mp4", seconds=10), "video"))
    assert worker.connection.recv()[0] == "frame"  # frames exceed the pipe's buffer: the next send waits
    worker.connection.close()
    worker.process.join(30)
    assert worker.process.exitcode == 0
