"""Starting the app as `glimpse` does: the window over a library, saved to a PNG in screenshot mode."""

from __future__ import annotations

from PySide6.QtGui import QImage

from desktop import app


def test_screenshot_mode_saves_the_window_and_quits(tmp_path, monkeypatch, indexed):
    library, _ = indexed
    shot = tmp_path / "window.png"
    monkeypatch.setenv(app.SCREENSHOT_ENV, str(shot))
    assert app.main(library) == 0
    image = QImage(str(shot))
    assert image.width() > 600 and image.height() > 400
    assert (
        len({image.pixel(x, y) for x in range(0, image.width(), 20) for y in range(0, image.height(), 20)})
        > 5
    )


def test_a_screenshot_that_cannot_be_saved_says_so(tmp_path, monkeypatch, capsys):
    library = tmp_path / "library"  # a first start: the welcome opens over the window
    monkeypatch.setenv(app.SCREENSHOT_ENV, str(tmp_path / "missing" / "window.png"))
    assert app.main(library) == 1
    assert "could not save the screenshot" in capsys.readouterr().err
