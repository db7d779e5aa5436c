"""Handing a file to the rest of the desktop: open it, show it in the file manager, copy its path."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

log = logging.getLogger(__name__)


def open_file(path: Path) -> bool:
    """Open with the application the system uses for this kind of file."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def reveal_in_file_manager(path: Path) -> bool:
    """Show the file selected in its folder where the platform allows it, else open the folder."""
    try:
        if sys.platform == "darwin":
            return subprocess.run(["open", "-R", str(path)], timeout=10).returncode == 0
        if sys.platform == "win32":
            subprocess.Popen(["explorer", f"/select,{path}"])
            return True
        if shutil.which("dbus-send"):
            # The freedesktop.org file-manager interface (Nautilus, Dolphin, Nemo, Thunar…) selects the file.
            done = subprocess.run(
                [
                    "dbus-send",
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.FileManager1",
                    "--type=method_call",
                    "/org/freedesktop/FileManager1",
                    "org.freedesktop.FileManager1.ShowItems",
                    f"array:string:{QUrl.fromLocalFile(str(path)).toString()}",
                    "string:",
                ],
                capture_output=True,
                timeout=5,
            )
            if done.returncode == 0:
                return True
    except (OSError, subprocess.SubprocessError) as error:
        log.info("revealing %s in the file manager failed: %s", path, error)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def copy_path(path: Path) -> None:
    QGuiApplication.clipboard().setText(str(path))
