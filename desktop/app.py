"""Starting the desktop app: `glimpse` with no command, `make run`, or `python -m desktop`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from engine import GlimpseError, Library

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
#: Opens one dialog at start (for screenshots and manual checks): "folders", "settings" or "welcome".
SHOW_ENV = "GLIMPSE_DESKTOP_SHOW"
#: Saves the window to this PNG once it has settled, then quits: docs screenshots without a display, and the
#: packaged app's smoke test.
SCREENSHOT_ENV = "GLIMPSE_DESKTOP_SCREENSHOT"
SCREENSHOT_AFTER_MS = 1500


def icon() -> QIcon:
    for name in ("glimpse.svg", "glimpse.png"):
        path = RESOURCES / "icons" / name
        if path.exists():
            return QIcon(str(path))
    return QIcon()


def create_window(library_dir: Path | None = None):
    """The main window over a library (the default one unless given), indexing started, not yet shown."""
    from desktop.main_window import MainWindow
    from desktop.settings import AppSettings

    with Library.open(library_dir) as library:  # creates the folder; says clearly if it cannot
        folder, has_folders = library.folder, bool(library.folders())
    settings = AppSettings(folder)
    window = MainWindow(folder, settings)
    window.setWindowIcon(icon())
    if settings.model or has_folders:
        window.start_indexing()
    return window, settings, has_folders


def main(library_dir: Path | None = None) -> int:
    """Run the app until its window closes; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Glimpse")
    app.setOrganizationName("Glimpse")
    app.setDesktopFileName("glimpse")
    app.setWindowIcon(icon())
    try:
        window, settings, has_folders = create_window(library_dir)
    except GlimpseError as error:
        QMessageBox.critical(None, "Glimpse cannot start", str(error))
        return 1
    window.show()
    show = os.environ.get(SHOW_ENV, "")
    if show == "welcome" or (not show and not settings.welcomed and not has_folders and not settings.model):
        QTimer.singleShot(0, window.first_run)
    elif show == "folders":
        QTimer.singleShot(0, window.show_folders)
    elif show == "settings":
        QTimer.singleShot(0, window.show_settings)
    if screenshot := os.environ.get(SCREENSHOT_ENV):
        QTimer.singleShot(SCREENSHOT_AFTER_MS, lambda: _screenshot_and_quit(window, Path(screenshot)))
    return app.exec()


def _screenshot_and_quit(window, path: Path) -> None:
    saved = window.grab().save(str(path))
    if not saved:
        print(f"Glimpse could not save the screenshot to {path}.", file=sys.stderr)
    window.close()
    QApplication.exit(0 if saved else 1)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
