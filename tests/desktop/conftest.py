"""Fixtures of the desktop tests: an offscreen Qt, libraries of generated photos and videos, the window."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt loads: `pytest tests/desktop` works alone

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import Library
from tests.factory import make_photo, make_video

MODEL = "tiny-test"
#: The window reads through each library's resident engine; the tests' engines stop soon after their last
#: request (a window that asks again starts a new one) rather than stay for a quarter of an hour.
ENGINE_IDLE_S = "20"


@pytest.fixture(scope="session", autouse=True)
def engines() -> Iterator[Path]:
    """The desktop tests' engines live in a runtime folder of their own and stop when idle."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: socket paths have a length limit
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(folder))
        patch.setenv("GLIMPSE_ENGINE_IDLE_S", ENGINE_IDLE_S)
        patch.delenv("GLIMPSE_NO_DAEMON", raising=False)
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_media(folder: Path, photos: int = 6, videos: int = 1) -> list[Path]:
    """Photos of different colours and short videos of a few shots, under `folder`."""
    colours = [(200, 40, 40), (40, 160, 40), (40, 60, 210), (220, 200, 40), (150, 50, 180), (40, 190, 200)]
    files = [
        make_photo(folder / f"photo-{i:03d}.jpg", size=(160, 120), seed=i, color=colours[i % len(colours)])
        for i in range(photos)
    ]
    files += [make_video(folder / f"clip-{i}.mp4", seconds=4, scenes=2, seed=i) for i in range(videos)]
    return files


def index_folder(library_dir: Path, folder: Path, model: str = MODEL) -> None:
    with Library.open(library_dir, writable=True) as library:
        library.index([folder], model=model)


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(library, media folder): 6 photos and a video indexed with tiny-test, shared by read-only tests."""
    root = tmp_path_factory.mktemp("indexed")
    make_media(root / "media")
    index_folder(root / "library", root / "media")
    return root / "library", root / "media"


class FakePicker:
    """Stands in for the native folder picker: answers the folders it was given, in turn."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, parent, title: str, start: str) -> str:
        self.asked.append(title)
        return self.answers.pop(0) if self.answers else ""


@pytest.fixture
def make_window(qtbot) -> Iterator[Callable]:
    """Builds MainWindows (not shown unless asked) and closes them, and their index service, after the test."""
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    windows = []

    def build(library_dir: Path, *, model: str | None = MODEL, picker=None, start: bool = False, **settings):
        library_dir.mkdir(parents=True, exist_ok=True)
        app_settings = AppSettings(library_dir)
        if model is not None:
            app_settings.model = model
        for key, value in settings.items():
            setattr(app_settings, key, value)
        window = MainWindow(library_dir, app_settings, picker=picker or FakePicker())
        qtbot.addWidget(window)
        windows.append(window)
        if start:
            window.start_indexing()
        return window

    yield build
    for window in windows:
        window.close()


def search(qtbot, window, text: str, timeout: int = 90_000):
    """Type `text`, press Enter, wait for the results → the SearchResponse shown (the first search of a library
    waits for its engine to start and load the model)."""
    from PySide6.QtCore import Qt

    window.search_field.setFocus()
    window.search_field.clear()
    qtbot.keyClicks(window.search_field, text)
    with qtbot.waitSignal(window.searched, timeout=timeout) as blocker:
        qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    return blocker.args[0]
