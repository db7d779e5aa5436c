"""The Settings dialog: model, device, re-ranking, reading text, video frame interval, thumbnail cache size."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.settings import AppSettings
from desktop.tune_dialog import TuneDialog, why_not_tunable
from desktop.welcome import model_choices
from engine import Library
from engine.library import default_rerank
from engine.results import LibraryStatus


class SettingsDialog(QDialog):
    """Edits `AppSettings`; `changed_indexing` tells whether indexing must restart to take the change."""

    def __init__(
        self,
        settings: AppSettings,
        parent: QWidget | None = None,
        detected: str | None = None,
        *,
        status: LibraryStatus | None = None,
        on_tune: Callable[[float], None] = lambda minutes: None,
        on_undo_tune: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — Glimpse")
        self.settings = settings
        self.changed_indexing = False
        #: Whether a tuning (or its undo) was started from here: the indexer must not restart under it.
        self.tuning_started = False

        self.model = QComboBox()
        for preset, label in model_choices():
            self.model.addItem(label, preset)
        current = settings.model
        if current is not None and self.model.findData(current) < 0:
            self.model.addItem(current, current)
        if current is not None:
            self.model.setCurrentIndex(self.model.findData(current))
        self.device = QComboBox()
        for value, label in (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)")):
            self.device.addItem(label, value)
        self.device.setCurrentIndex(self.device.findData(settings.device))
        self.detected = QLabel(f"Detected: {detected or Library.detected_device()}")
        self.rerank = QCheckBox("Re-rank the best results with the Slow model (more accurate, slower)")
        self.rerank.setChecked(settings.rerank)
        self.rerank_k = QSpinBox()
        self.rerank_k.setRange(1, 500)
        self._default_k = default_rerank(settings.device)
        self.rerank_k.setValue(settings.rerank_k or self._default_k)
        self.rerank_k.setSuffix(" results")
        self.rerank.toggled.connect(self.rerank_k.setEnabled)
        self.rerank_k.setEnabled(settings.rerank)
        self.read_text = QCheckBox("Read the words written in photos and videos (signs, receipts, screens)")
        self.read_text.setToolTip("Searches then find what is written in them: “the receipt from Cafe Luna”.")
        self.read_text.setChecked(settings.read_text)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0.1, 600)
        self.interval.setDecimals(1)
        self.interval.setSuffix(" s")
        self.interval.setValue(settings.frame_interval_s)
        self.cache = QSpinBox()
        self.cache.setRange(16, 100_000)
        self.cache.setSingleStep(128)
        self.cache.setSuffix(" MB")
        self.cache.setValue(settings.thumbnail_cache_mb)

        self.status, self._on_tune, self._on_undo_tune = status, on_tune, on_undo_tune
        self.tune = QPushButton("Tune to my library…")
        why = why_not_tunable(status)
        self.tune.setEnabled(why is None)
        self.tune.setToolTip(why or "Adapt the search model to your own photos (takes minutes).")
        self.tune.clicked.connect(self.open_tune)
        self.undo_tune = QPushButton("Undo tuning")
        self.undo_tune.setToolTip("Go back to the preset's own model and re-embed the library.")
        self.undo_tune.setVisible(bool(status and status.tuned))
        self.undo_tune.clicked.connect(self._undo)

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Device", self.device)
        form.addRow("", self.detected)
        form.addRow("", self.rerank)
        form.addRow("Re-rank the top", self.rerank_k)
        form.addRow("", self.read_text)
        form.addRow("Video: one frame every", self.interval)
        form.addRow("Thumbnail cache", self.cache)
        form.addRow("", self.tune)
        form.addRow("", self.undo_tune)
        note = QLabel("Changing the model re-indexes every file with it; the old index is kept until then.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def open_tune(self) -> TuneDialog:
        assert self.status is not None
        dialog = TuneDialog(self.status, self)
        dialog.accepted.connect(lambda: self._start_tune(dialog.minutes.value()))
        dialog.open()
        return dialog

    def _start_tune(self, minutes: float) -> None:
        self._on_tune(minutes)
        self.tuning_started = True
        self.tune.setEnabled(False)
        self.tune.setToolTip("Tuning has started: the status bar shows how far it is.")

    def _undo(self) -> None:
        self._on_undo_tune()
        self.tuning_started = True
        self.undo_tune.setEnabled(False)

    def accept(self) -> None:
        settings = self.settings
        model, device, interval = self.model.currentData(), self.device.currentData(), self.interval.value()
        read_text = self.read_text.isChecked()
        self.changed_indexing = (
            model != settings.model
            or device != settings.device
            or interval != settings.frame_interval_s
            or read_text != settings.read_text
        )
        settings.read_text = read_text
        if model:
            settings.model = model
        settings.device = device
        settings.frame_interval_s = interval
        settings.rerank = self.rerank.isChecked()
        k = self.rerank_k.value()
        # Left at the engine's default, it follows the engine's default (which depends on the device).
        settings.rerank_k = None if settings.rerank_k is None and k == self._default_k else k
        settings.thumbnail_cache_mb = self.cache.value()
        super().accept()
