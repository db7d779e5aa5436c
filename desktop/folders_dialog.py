"""The Folders dialog: the watched folders and the sub-folders left out, with add, remove and exclude.

Changes go to the index service (the library's one writer), which applies them, indexes what a new folder
holds and answers with the folders as they now are; the dialog shows that answer, so it never shows a change
the library did not make.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.indexing import IndexingController

#: Asks the person for a folder (title, where to start) → its path, or "" when they cancel.
FolderPicker = Callable[[QWidget, str, str], str]


def native_folder_picker(parent: QWidget, title: str, start: str) -> str:
    return QFileDialog.getExistingDirectory(parent, title, start, QFileDialog.Option.ShowDirsOnly)


class FoldersDialog(QDialog):
    def __init__(
        self,
        controller: IndexingController,
        watched: list[str],
        excluded: list[str],
        parent: QWidget | None = None,
        picker: FolderPicker = native_folder_picker,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Folders — Glimpse")
        self.setMinimumSize(560, 420)
        self.controller = controller
        self.picker = picker

        intro = QLabel(
            "Glimpse indexes the photos and videos in these folders and their sub-folders, and follows "
            "changes while it runs. Your files are never moved or changed."
        )
        intro.setWordWrap(True)
        self.watched = QListWidget()
        self.watched.setObjectName("watchedFolders")
        self.excluded = QListWidget()
        self.excluded.setObjectName("excludedFolders")
        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self.add)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Stop watching this folder; its files leave the library, not the disk")
        self.remove_button.clicked.connect(self.remove)
        self.exclude_button = QPushButton("Leave out a sub-folder…")
        self.exclude_button.clicked.connect(self.exclude)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("foldersStatus")

        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.exclude_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("<b>Watched folders</b>"))
        layout.addWidget(self.watched, 3)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("<b>Left out</b> (sub-folders not indexed)"))
        layout.addWidget(self.excluded, 1)
        layout.addWidget(self.status)
        layout.addWidget(close)

        self.watched.currentRowChanged.connect(self._update_buttons)
        controller.folders_changed.connect(self.show_folders)
        controller.error.connect(self.status.setText)
        self.show_folders(watched, excluded)

    def show_folders(self, watched: list[str], excluded: list[str]) -> None:
        self.watched.clear()
        for folder in watched:
            item = QListWidgetItem(folder)
            item.setData(Qt.ItemDataRole.UserRole, folder)
            self.watched.addItem(item)
        self.excluded.clear()
        self.excluded.addItems(excluded)
        if not watched:
            self.status.setText("No folders yet: add the folders that hold your photos and videos.")
        elif self.status.text().startswith(("No folders", "Adding", "Removing", "Leaving")):
            self.status.setText("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.watched.currentItem() is not None
        self.remove_button.setEnabled(chosen)
        self.exclude_button.setEnabled(self.watched.count() > 0)

    def _selected(self) -> str | None:
        item = self.watched.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def add(self) -> None:
        folder = self.picker(self, "Add a folder to Glimpse", str(Path.home()))
        if folder:
            self.status.setText(f"Adding {folder}; it is indexed in the background.")
            self.controller.add_folder(folder)

    def remove(self) -> None:
        folder = self._selected()
        if folder:
            self.status.setText(f"Removing {folder} from the library…")
            self.controller.remove_folder(folder)

    def exclude(self) -> None:
        start = self._selected() or (
            self.watched.item(0).text() if self.watched.count() else str(Path.home())
        )
        folder = self.picker(self, "Leave a sub-folder out of Glimpse", start)
        if folder:
            self.status.setText(f"Leaving out {folder}…")
            self.controller.exclude_folder(folder)
