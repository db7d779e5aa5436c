"""The reading pool: a crash, a hang or a hostile file costs one picture, never the caller or the pool."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine.bench.read import font_path
from engine.reading import ReadPool
from engine.reading.pool import CRASH_MARKER_ENV, HANG_MARKER_ENV, SPIN_MARKER_ENV, _Watch
from tests.factory import make_hostile_files


def word_picture(path: Path, word: str) -> Path:
    """A small picture with one word on it: quick to read."""
    picture = Image.new("RGB", (480, 200), (240, 240, 235))
    font = ImageFont.truetype(str(font_path(bold=True)), 64)
    ImageDraw.Draw(picture).text((40, 60), word, font=font, fill=(20, 20, 20))
    picture.save(path)
    return path


def texts(result) -> list[str]:
    return [line.text for line in result.lines]


@pytest.mark.slow  # several workers start, each loading the models
def test_a_crashing_worker_costs_one_picture_of_its_batch(tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_MARKER_ENV, "boom")  # read by the pool when it starts a worker
    pictures = [
        word_picture(tmp_path / f"{name}.png", word) for name, word in (("a", "NORTH"), ("boom", "EAST"))
    ]
    pictures.append(word_picture(tmp_path / "c.png", "SOUTH"))
    with ReadPool(workers=1, nice=0) as pool:
        first, crashed, last = pool.read_many(pictures)
        assert texts(first) == ["NORTH"] and texts(last) == ["SOUTH"]
        assert "crashed" in crashed.error and crashed.lines == () and not crashed.stopped
        assert texts(pool.read(word_picture(tmp_path / "d.png", "WEST"))) == ["WEST"]


@pytest.mark.slow  # several workers start, each loading the models
def test_a_hanging_worker_is_stopped_and_the_next_picture_read(tmp_path, monkeypatch):
    monkeypatch.setenv(HANG_MARKER_ENV, "stuck")
    with ReadPool(workers=1, nice=0, timeout_s=2) as pool:
        hung = pool.read(word_picture(tmp_path / "stuck.png", "EXIT"))
        assert "stalled for 2 s" in hung.error
        assert texts(pool.read(word_picture(tmp_path / "fine.png", "OPEN"))) == ["OPEN"]


@pytest.mark.slow  # several workers start, each loading the models
def test_a_spinning_worker_is_stopped_by_its_processor_time(tmp_path, monkeypatch):
    monkeypatch.setenv(SPIN_MARKER_ENV, "spin")
    frame = np.full((120, 160, 3), 200, np.uint8)
    with ReadPool(workers=1, nice=0, cpu_limit_s=1) as pool:
        spun = pool.read(frame, label="spin.mp4 at 1.0 s")
        assert "processor time" in spun.error
        assert pool.read(frame, label="calm.mp4 at 1.0 s").error is None


def test_hostile_files_give_an_error_each_and_the_pool_goes_on(tmp_path):
    files = make_hostile_files(tmp_path / "hostile")
    failing = ["truncated_jpeg", "random_jpeg", "random_png", "empty_jpg", "text_jpg", "bomb_png"]
    paths = [files[name] for name in failing] + [tmp_path / "missing.jpg", tmp_path / "hostile"]
    odd_pixels = [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((6, 30_000, 3), np.uint8),
    ]
    with ReadPool(workers=1, nice=0) as pool:
        results = pool.read_many(paths + odd_pixels)
        for path, result in zip(paths, results[: len(paths)], strict=True):
            assert result.error and result.lines == (), path
        assert "too large" in results[failing.index("bomb_png")].error
        empty, one_pixel, sliver = results[len(paths) :]
        assert "empty" in empty.error
        assert one_pixel.error is None and sliver.error is None
        if "non_utf8_name" in files:  # a valid photo whose name is not UTF-8
            assert pool.read(os.fsencode(files["non_utf8_name"])).error is None
    with pytest.raises(TypeError, match="uint8"):
        ReadPool().read(np.zeros((10, 10), np.float32))


@pytest.mark.slow  # several workers start, each loading the models
def test_close_and_stop_end_a_read_as_stopped_not_failed(tmp_path, monkeypatch):
    monkeypatch.setenv(HANG_MARKER_ENV, "stuck")
    stuck = word_picture(tmp_path / "stuck.png", "EXIT")
    with ReadPool(workers=1, nice=0, timeout_s=60) as pool:
        stop = threading.Event()
        threading.Timer(2, stop.set).start()
        result = pool.read(stuck, stop=stop)
        assert result.stopped and "stopped" in result.error
        answers = []
        reading = threading.Thread(target=lambda: answers.append(pool.read(stuck)))
        reading.start()
        time.sleep(3)
        pool.close()
        reading.join(10)
        assert answers and answers[0].stopped
        assert texts(pool.read(word_picture(tmp_path / "after.png", "OPEN"))) == ["OPEN"]  # a fresh worker


def test_workers_run_at_the_lowest_priority(tmp_path):
    with ReadPool(workers=1) as pool:
        pool.start()
        pid = pool._all[0].process.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[16]) - os.nice(0) == 19  # stat(5) field 19, nice, relative to ours


def test_the_watch_tells_a_blocked_process_from_a_busy_one():
    if not Path("/proc/self/task").is_dir():
        pytest.skip("the watch reads Linux's /proc")
    sleeping = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spinning = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # both started
        watches = {
            name: _Watch(process.pid) for name, process in (("sleeping", sleeping), ("spinning", spinning))
        }
        for _ in range(8):
            time.sleep(0.25)
            state = {name: watch.update() for name, watch in watches.items()}
        blocked, cpu = state["sleeping"]
        assert blocked > 1.5 and cpu < 0.1
        blocked, cpu = state["spinning"]
        assert blocked < 0.5 and cpu > 0.2
    finally:
        sleeping.kill()
        spinning.kill()
        sleeping.wait()
        spinning.wait()
