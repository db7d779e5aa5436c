"""Chips under the search field: what the engine understood the query to ask for, each removable with a click.

A place ("Place: Lisbon, Portugal"), a date ("Date: July 2019") or words to read ("Words: “bakery”") found in
the typed query (engine.results.QueryPart) shows as a chip; clicking it asks for the query without those words
(`SearchResults.query_without`), and the window searches again.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from engine.results import QueryPart

#: How each kind of part is named on its chip (words, not emoji: not every desktop has an emoji font).
NAMES = {"place": "Place", "date": "Date", "words": "Words"}


class QueryChips(QWidget):
    """The row of chips; `remove_requested(part)` asks the window to search without that part of the query."""

    remove_requested = Signal(object)  # QueryPart

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryChips")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 2, 0, 0)
        self._layout.setSpacing(6)
        self._intro = QLabel("Understood as:")
        self._intro.setObjectName("chipsIntro")
        self._layout.addWidget(self._intro)
        self._layout.addStretch(1)
        self.chips: list[QToolButton] = []
        self.setVisible(False)

    def show_parts(self, parts: list[QueryPart]) -> None:
        """Show a chip for each place, date and words-to-read part (the visual description is the field)."""
        for chip in self.chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        for part in parts:
            if part.kind not in NAMES:
                continue
            chip = QToolButton()
            chip.setObjectName(f"chip-{part.kind}")
            chip.setText(f"{NAMES[part.kind]}: {part.label}  ✕")
            chip.setToolTip((f"{part.detail}\n" if part.detail else "") + "Click to search without this")
            chip.setAutoRaise(False)
            chip.setStyleSheet(
                "QToolButton { border: 1px solid palette(mid); border-radius: 11px; padding: 2px 10px;"
                " background: palette(alternate-base); }"
                " QToolButton:hover { background: palette(midlight); }"
            )
            chip.clicked.connect(lambda _=False, part=part: self.remove_requested.emit(part))
            self._layout.insertWidget(self._layout.count() - 1, chip)
            self.chips.append(chip)
        self.setVisible(bool(self.chips))
