"""The first-run welcome: which folders to index and which model to use.

A pretrained model shows its download size and downloads with a progress bar; with no network the person
reads why in one sentence and the offline model is chosen for them, so they can go on at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop.folders_dialog import FolderPicker, native_folder_picker
from engine import GlimpseError, Library

log = logging.getLogger(__name__)

#: The model that works with no network and no download, meaningful on Glimpse's synthetic shape scenes.
OFFLINE_PRESET = "shapes"
#: Its stand-in while `shapes` is not shipped: random weights, for trying the plumbing only.
FALLBACK_PRESET = "tiny-test"


def offline_preset() -> str:
    names = {p.name for p in Library.fast_presets()}
    return OFFLINE_PRESET if OFFLINE_PRESET in names else FALLBACK_PRESET


def model_choices() -> list[tuple[str, str]]:
    """(preset, label) for every model a person may choose, pretrained ones with their download size."""
    choices = []
    offline = offline_preset()
    # Pretrained models first (the real choice), then the offline one.
    for preset in sorted(Library.fast_presets(), key=lambda p: p.offline):
        if preset.offline and preset.name != offline:
            continue
        if preset.offline:
            label = f"{preset.name}: offline, no download. {preset.description}"
        elif Library.model_available(preset.name):
            label = f"{preset.name}: downloaded. {preset.description}"
        else:
            label = f"{preset.name}: {preset.download_mb} MB download. {preset.description}"
        choices.append((preset.name, label))
    return choices


class _Download(QObject):
    finished = Signal(str)  # "" on success, else the sentence saying why not

    def __init__(self, preset: str) -> None:
        super().__init__()
        self.preset = preset

    def run(self) -> None:
        try:
            Library.download_model(self.preset)
        except GlimpseError as error:
            self.finished.emit(str(error))
            return
        except Exception as error:  # the hub client can fail in ways of its own
            log.exception("download of %s failed", self.preset)
            self.finished.emit(f"The download of {self.preset} failed: {error}")
            return
        self.finished.emit("")


def _downloaded_bytes(preset: str) -> int:
    """Bytes of the preset's weights downloaded so far (the hub client's partial file in its cache)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return 0
    repo = next((p.hf_repo for p in Library.fast_presets() if p.name == preset), None)
    if not repo:
        return 0
    blobs = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "blobs"
    return sum(f.stat().st_size for f in blobs.glob("*.incomplete")) if blobs.is_dir() else 0


class WelcomeDialog(QDialog):
    """Collects `folders` and a `model`; accepted once the model is ready to use."""

    def __init__(self, parent: QWidget | None = None, picker: FolderPicker = native_folder_picker) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Glimpse")
        self.setMinimumWidth(620)
        self.picker = picker
        self.folders: list[str] = []
        self._thread: QThread | None = None
        self._worker: _Download | None = None

        heading = QLabel("<h2>Welcome to Glimpse</h2>")
        intro = QLabel(
            "Glimpse finds photos and moments in videos when you describe them in words. It looks at them on "
            "this computer: nothing leaves it. Choose the folders that hold your pictures, and a model."
        )
        intro.setWordWrap(True)
        self.folder_list = QListWidget()
        self.folder_list.setMaximumHeight(90)
        add = QPushButton("Add folder…")
        add.clicked.connect(self.add_folder)

        self.models = QButtonGroup(self)
        model_box = QVBoxLayout()
        self.buttons_by_preset: dict[str, QRadioButton] = {}
        self.available: dict[str, bool] = {}
        for preset, label in model_choices():
            button = QRadioButton(label)
            button.setProperty("preset", preset)
            button.setToolTip(label)
            self.models.addButton(button)
            self.buttons_by_preset[preset] = button
            self.available[preset] = Library.model_available(preset)
            model_box.addWidget(button)
        default = next((p for p in self.buttons_by_preset if not p.startswith(("tiny", "shapes"))), None)
        (self.buttons_by_preset.get(default or "") or next(iter(self.buttons_by_preset.values()))).setChecked(
            True
        )
        self.models.buttonToggled.connect(self._update)

        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("welcomeMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._poll = QTimer(self)
        self._poll.setInterval(250)
        self._poll.timeout.connect(self._show_download_progress)

        self.button_box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.start_button = self.button_box.button(QDialogButtonBox.StandardButton.Ok)
        self.start_button.setText("Start")
        self.button_box.accepted.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addWidget(QLabel("<b>1. Folders to index</b>"))
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_list, 1)
        folder_row.addWidget(add, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(folder_row)
        layout.addWidget(QLabel("<b>2. Model</b>"))
        layout.addLayout(model_box)
        download_row = QHBoxLayout()
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.progress, 1)
        layout.addLayout(download_row)
        layout.addWidget(self.message)
        layout.addWidget(self.button_box)
        self._update()

    @property
    def model(self) -> str:
        button = self.models.checkedButton()
        return str(button.property("preset")) if button is not None else offline_preset()

    def add_folder(self) -> None:
        folder = self.picker(self, "Choose a folder of photos and videos", str(Path.home()))
        if folder and folder not in self.folders:
            self.folders.append(folder)
            self.folder_list.addItem(folder)

    def _update(self, *_: object) -> None:
        ready = self.available.get(self.model, False)
        busy = self._thread is not None
        self.download_button.setVisible(not ready)
        self.download_button.setEnabled(not busy)
        self.start_button.setEnabled(ready and not busy)
        if not ready and not busy:
            preset = next((p for p in Library.fast_presets() if p.name == self.model), None)
            size = f" ({preset.download_mb} MB)" if preset else ""
            self.download_button.setText(f"Download {self.model}{size}")

    def download(self) -> None:
        preset = self.model
        self.message.setText(f"Downloading {preset}…")
        self.progress.setVisible(True)
        total = next((p.download_mb for p in Library.fast_presets() if p.name == preset), 0)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(0)
        self._thread = QThread(self)
        self._worker = _Download(preset)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.finished.connect(self._downloaded)
        self._thread.start()
        self._poll.start()
        self._update()

    def _show_download_progress(self) -> None:
        if self._worker is not None:
            self.progress.setValue(_downloaded_bytes(self._worker.preset) // 1_000_000)

    def _downloaded(self, error: str) -> None:
        preset = self._worker.preset if self._worker else self.model
        self._poll.stop()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        self._thread = None
        self._worker = None
        self.progress.setVisible(False)
        if error:
            offline = offline_preset()
            self.message.setText(
                f"{error}\n\nYou can start now with the offline model {offline} instead (chosen for you), "
                "and switch in Settings once the download works."
            )
            self.buttons_by_preset[offline].setChecked(True)
        else:
            self.available[preset] = True
            self.message.setText(f"{preset} is ready.")
        self._update()

    def reject(self) -> None:
        if self._thread is None:  # a download in flight cannot be interrupted safely: wait for it
            super().reject()
