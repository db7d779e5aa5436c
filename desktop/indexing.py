"""Background indexing and watching as the window sees it: the engine's `IndexService` (a separate process)
polled from the event loop, its events turned into Qt signals, and a status-bar widget that shows them."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from desktop.format import count, time_left
from engine.jobs import (
    AddFolder,
    Cancel,
    Command,
    Error,
    Event,
    ExcludeFolder,
    Exited,
    Finished,
    FoldersChanged,
    IndexNow,
    IndexService,
    Notice,
    Pause,
    Progress,
    Ready,
    RemoveFolder,
    Resume,
    SetFrameInterval,
    StateChanged,
    Tune,
    TuneFinished,
    UndoTune,
)
from engine.results import IndexReport

log = logging.getLogger(__name__)

#: How often the service's events are collected; each poll only drains a queue, it never waits.
POLL_MS = 50


class IndexingController(QObject):
    """Runs the index service for one library and relays what it says."""

    progress = Signal(object)  # engine.jobs.Progress
    #: "off", "starting", "indexing", "reading", "paused", "watching", "idle", "cancelled" or "stopped"
    state_changed = Signal(str)
    report = Signal(object)  # IndexReport of a finished run
    tuned = Signal(object)  # engine.jobs.TuneFinished
    folders_changed = Signal(list, list)  # watched, excluded (str paths)
    notice = Signal(str)  # a sentence for the status bar
    error = Signal(str)  # a sentence: something failed
    ready = Signal()

    def __init__(self, library: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.service: IndexService | None = None
        self.state = "off"  # never started
        self._stopping = False
        self._said_why = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.running

    def start(
        self, *, model: str | None, device: str, frame_interval_s: float | None = None, read_text: bool = True
    ) -> None:
        """Start (or restart with new settings) the service: it rescans every watched folder first."""
        self.stop()
        self._stopping = False
        self._said_why = False
        self.service = IndexService(
            self.library, model=model, device=device, frame_interval_s=frame_interval_s, read_text=read_text
        )
        self.service.start()
        self._set_state("starting")
        self._timer.start()

    def stop(self) -> None:
        if self.service is not None:
            self._stopping = True
            self.service.stop(timeout=5.0)
            self._poll()
            self.service = None
        self._timer.stop()
        self._set_state("stopped")

    def add_folder(self, folder: str) -> None:
        self.send(AddFolder(folder))

    def remove_folder(self, folder: str) -> None:
        self.send(RemoveFolder(folder))

    def exclude_folder(self, folder: str) -> None:
        self.send(ExcludeFolder(folder))

    def set_frame_interval(self, seconds: float) -> None:
        self.send(SetFrameInterval(seconds))

    def index_now(self) -> None:
        self.send(IndexNow())

    def pause(self) -> None:
        self.send(Pause())

    def resume(self) -> None:
        self.send(Resume())

    def cancel(self) -> None:
        self.send(Cancel())

    def tune(self, minutes: float) -> None:
        self.send(Tune(minutes))

    def undo_tune(self) -> None:
        self.send(UndoTune())

    def send(self, command: Command) -> None:
        if not self.running:
            self.error.emit("The indexer is not running: choose File → Restart indexing.")
            return
        assert self.service is not None
        self.service.send(command)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _poll(self) -> None:
        if self.service is None:
            return
        for event in self.service.events():
            self._relay(event)

    def _relay(self, event: Event) -> None:
        match event:
            case Progress():
                self.progress.emit(event)
            case StateChanged(state):
                self._set_state(state)
            case Finished(report):
                self.report.emit(report)
            case TuneFinished():
                self.tuned.emit(event)
            case FoldersChanged(folders, excluded):
                self.folders_changed.emit(folders, excluded)
            case Notice(message):
                self.notice.emit(message)
            case Error(message):
                self._said_why = True
                self.error.emit(message)
            case Ready():
                self.ready.emit()
            case Exited(code):
                self._timer.stop()
                # A service that said why it stops (the library is locked, say) needs no second sentence.
                if not self._stopping and code and not (code > 0 and self._said_why):
                    self.error.emit(_exit_sentence(code))
                self._set_state("stopped")


def _exit_sentence(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (
            f"The indexer stopped unexpectedly ({name}); what it indexed is kept. "
            "Choose File → Restart indexing to go on; Help → Show log file says more."
        )
    return "The indexer stopped; Help → Show log file says why. Choose File → Restart indexing to go on."


def describe_tuning(event: TuneFinished) -> str:
    """One sentence about a finished tuning or undo."""
    if event.undone:
        return f"Tuning undone: the library searches with {event.model} again."
    if event.tuned:
        return (
            f"Tuned to your library: finding the right picture first went from {event.r1_before:.0f}% "
            f"to {event.r1_after:.0f}%."
        )
    return (
        f"The tuned model was not better ({event.r1_after:.0f}% against {event.r1_before:.0f}%), "
        "so the current model is kept."
    )


def describe_report(report: IndexReport) -> str:
    """One sentence for the status bar about a finished run."""
    parts = []
    added = report.images + report.videos
    if added:
        parts.append(f"{count(added, 'file')} indexed")
    if report.moved:
        parts.append(f"{report.moved} moved")
    if report.removed:
        parts.append(f"{report.removed} removed")
    if report.failed:
        parts.append(f"{report.failed} could not be read")
    if not parts:
        return "Library up to date."
    return "Indexing finished: " + ", ".join(parts) + "."


class IndexingStatus(QWidget):
    """The status-bar widget: what the indexer does, a progress bar, pause/resume and cancel."""

    def __init__(self, controller: IndexingController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.failed = 0
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        self.label = QLabel()
        self.label.setObjectName("indexingLabel")
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.pause_button = QToolButton()
        self.pause_button.setText("Pause")
        self.pause_button.setToolTip("Pause indexing")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop this indexing run; what is done is kept")
        self.cancel_button.clicked.connect(controller.cancel)
        for widget in (self.label, self.bar, self.pause_button, self.cancel_button):
            layout.addWidget(widget)
        controller.progress.connect(self.show_progress)
        controller.state_changed.connect(self.show_state)
        self.show_state(controller.state)

    def _toggle_pause(self) -> None:
        if self.controller.state == "paused":
            self.controller.resume()
        else:
            self.controller.pause()

    def show_progress(self, event: Progress) -> None:
        self.failed = event.failed
        folder = Path(event.folder).name or event.folder
        if not event.total:
            self.bar.setRange(0, 0)  # scanning: busy
            self.label.setText(f"Looking for new photos and videos in {folder}…")
            return
        self.bar.setRange(0, event.total)
        self.bar.setValue(event.done)
        if event.stage == "re-embedding":
            self.pause_button.setVisible(True)  # training is over: this part pauses and cancels
            self.cancel_button.setVisible(True)
            text = f"Re-embedding the library: {event.done:,} of {event.total:,} files"
        elif event.stage == "reading":
            text = f"Reading the words in photos and videos: {event.done:,} of {event.total:,} files"
        else:
            text = f"Indexing {folder}: {event.done:,} of {event.total:,} files"
        if event.rate:
            text += f" · {event.rate:.1f}/s"
        if event.eta_s is not None and event.done < event.total:
            text += f" · about {time_left(event.eta_s)} left"
        if event.failed:
            text += f" · {event.failed} failed"
        self.label.setText(text)

    def show_state(self, state: str) -> None:
        busy = state in ("indexing", "reading", "paused")
        self.bar.setVisible(busy or state == "tuning")
        # Training runs to its minutes; the re-embedding after it pauses and cancels (state "indexing").
        self.pause_button.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        if state == "paused":
            self.label.setText(self.label.text().split(" · ")[0] + " · paused")
        elif state == "tuning":
            self.bar.setRange(0, 0)
            self.label.setText("Tuning to your library: writing captions, then training…")
        elif state == "starting":
            self.label.setText("Starting the indexer…")
        elif state == "reading":
            self.bar.setRange(0, 0)  # busy until the first file is read
            self.label.setText("Reading the words in photos and videos…")
        elif state == "watching":
            self.label.setText("Watching your folders")
        elif state == "cancelled":
            self.label.setText("Indexing cancelled; what was done is kept (File → Index now goes on)")
        elif state == "stopped":
            self.label.setText("Indexer stopped")
        elif state == "off":
            self.label.setText("")
        elif state == "idle":
            self.label.setText("Add a folder to start (File → Folders…)")
