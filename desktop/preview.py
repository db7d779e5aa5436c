"""Space on a photo: the photo as large as the window allows; Space, Esc or a click closes it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage, QKeyEvent, QMouseEvent, QPixmap
from PySide6.QtWidgets import QDialog, QVBoxLayout, QWidget

from desktop.detail_pane import Picture
from desktop.workers import ThumbnailLoader

PREVIEW_SIDE = 1400


class PhotoPreview(QDialog):
    def __init__(self, path: Path, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{path.name} — Glimpse")
        self.picture = Picture()
        self.picture.setText("Loading…")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture)
        if parent is not None:
            self.resize(parent.size() * 0.9)
        loader.loaded.connect(self._loaded)
        self._key = loader.request(path, None, PREVIEW_SIDE)

    def _loaded(self, key: str, image: QImage) -> None:
        if key == self._key:
            if image.isNull():
                self.picture.setText("This photo cannot be read right now.")
            else:
                self.picture.set_source(QPixmap.fromImage(image))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        from PySide6.QtCore import Qt

        if event.key() == Qt.Key.Key_Space:
            self.accept()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.accept()
