"""Starting the app as a person does, `glimpse` with no command, in screenshot mode: the window saved to a PNG.

The real command in its own process: an app that quits ends its QApplication's event loops, which the other
desktop tests share.
"""

from __future__ import annotations

from PySide6.QtGui import QImage

from desktop.app import SCREENSHOT_ENV
from tests.e2e.conftest import glimpse


def test_screenshot_mode_saves_the_window_and_quits(qapp, tmp_path, indexed):
    library, _ = indexed
    shot = tmp_path / "window.png"
    opened = glimpse(library=library, env={SCREENSHOT_ENV: str(shot), "QT_QPA_PLATFORM": "offscreen"})
    assert opened.code == 0, opened.stderr
    image = QImage(str(shot))
    assert image.width() > 600 and image.height() > 400
    sampled = {image.pixel(x, y) for x in range(0, image.width(), 20) for y in range(0, image.height(), 20)}
    assert len(sampled) > 5  # a window's worth of pixels, not a blank image


def test_a_screenshot_that_cannot_be_saved_says_so(tmp_path):
    missing = tmp_path / "missing" / "window.png"
    env = {SCREENSHOT_ENV: str(missing), "QT_QPA_PLATFORM": "offscreen"}
    opened = glimpse(
        library=tmp_path / "library", env=env
    )  # a first start: the welcome opens over the window
    assert opened.code == 1
    assert f"Glimpse could not save the screenshot to {missing}." in opened.stderr
