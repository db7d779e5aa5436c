"""Settings → Tune to my library…: what tuning does and costs, the minutes to spend, Start."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UsageError
from engine.results import LibraryStatus


def why_not_tunable(status: LibraryStatus | None) -> str | None:
    """One sentence saying why this library cannot be tuned, or None when it can."""
    if status is None or not status.model or not status.media:
        return "Index some photos first: tuning learns from the pictures in the library."
    if status.tuned:
        return None  # tuned again from the model it was made from (the engine knows which)
    from engine.tuning import tunable_pair  # imports torch: not at the window's start

    try:
        tunable_pair(status.model)
    except UsageError as error:
        return str(error)
    return None


class TuneDialog(QDialog):
    """Explains tuning and asks for the minutes; `minutes` once accepted."""

    def __init__(self, status: LibraryStatus, parent: QWidget | None = None) -> None:
        from engine.tuning import DEFAULT_MINUTES

        super().__init__(parent)
        self.setWindowTitle("Tune to my library — Glimpse")
        pictures = status.images + status.videos
        what = QLabel(
            "The Slow model writes captions for your photos and the search model learns from them; the "
            "tuned model is used only if it finds your pictures better. Nothing leaves this computer."
        )
        what.setWordWrap(True)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 600)
        self.minutes.setDecimals(1)
        self.minutes.setSuffix(" minutes")
        self.minutes.setValue(DEFAULT_MINUTES)
        self.cost = QLabel(
            f"It learns from {pictures:,} photos and videos for the minutes below, then re-embeds "
            "the library (an indexing run), and search stays usable meanwhile."
        )
        self.cost.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Train for", self.minutes)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start = buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(what)
        layout.addWidget(self.cost)
        layout.addLayout(form)
        layout.addWidget(buttons)
