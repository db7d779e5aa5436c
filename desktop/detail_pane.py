"""The detail pane: a large preview of the chosen result, what is known about its file, and what to do with it.

A photo shows large; a video shows the frame of its matching moment, its matching segments on a timeline,
and plays from that moment in place (QtMultimedia) when the person presses Play or Space.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.format import clock, file_size, when
from desktop.workers import ThumbnailLoader
from engine.results import SearchResult

log = logging.getLogger(__name__)

PREVIEW_SIDE = 720


def multimedia_classes():
    """QtMultimedia's player classes, or None where this Qt lacks them (then videos preview as stills)."""
    try:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        from PySide6.QtMultimediaWidgets import QVideoWidget
    except ImportError as error:
        log.info("no video playback in the preview: %s", error)
        return None
    return QMediaPlayer, QAudioOutput, QVideoWidget


#: How the query's words are marked in a result's text: a highlighter pen's yellow, legible in light and dark.
MARK_STYLE = "background-color: #ffe27a; color: #1a1a1a"


def highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` as rich text, its `spans` (the query's words) marked, its lines kept."""
    parts, position = [], 0
    for start, end in sorted(spans):
        parts.append(html.escape(text[position:start]))
        parts.append(f"<b style='{MARK_STYLE}'>{html.escape(text[start:end])}</b>")
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts).replace("\n", "<br>")


class SegmentBar(QWidget):
    """A video's timeline: matching segments as bands, the best moment as a marker; a click seeks there."""

    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.duration = 0.0
        self.segments: list[tuple[float, float]] = []
        self.moment: float | None = None
        self.setFixedHeight(18)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Matching parts of the video; click to play from there")

    def show_video(self, duration: float, segments: list[tuple[float, float]], moment: float | None) -> None:
        self.duration = max(duration, max((end for _, end in segments), default=0.0), moment or 0.0, 0.001)
        self.segments = segments
        self.moment = moment
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = QRectF(0, 5, self.width(), 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().mid())
        painter.drawRoundedRect(track, 4, 4)
        highlight = self.palette().highlight().color()
        painter.setBrush(highlight)
        for start, end in self.segments:
            left = track.width() * start / self.duration
            width = max(3.0, track.width() * (end - start) / self.duration)
            painter.drawRoundedRect(QRectF(left, track.top(), width, track.height()), 3, 3)
        if self.moment is not None:
            x = track.width() * self.moment / self.duration
            painter.setBrush(QColor("white"))
            painter.setPen(highlight.darker(130))
            painter.drawEllipse(QRectF(x - 6, 3, 12, 12))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.width() > 0:
            self.seek_requested.emit(self.duration * max(0.0, event.position().x()) / self.width())


class Picture(QLabel):
    """A picture scaled to fit, keeping its shape, re-scaled when the pane is resized."""

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(QSize(200, 150))
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._source = QPixmap()

    def set_source(self, pixmap: QPixmap) -> None:
        self._source = pixmap
        self._rescale()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._source.isNull():
            self.clear()
            return
        self.setPixmap(
            self._source.scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )


class DetailPane(QWidget):
    """Shows one search result; its buttons ask the window to act on the file."""

    open_requested = Signal(Path)
    reveal_requested = Signal(Path)
    copy_requested = Signal(Path)
    similar_requested = Signal(Path)

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.item: SearchResult | None = None
        self._wanted_key = ""
        self._player = None
        self._video_widget = None
        self._audio = None
        self._start_ms = 0
        loader.loaded.connect(self._preview_loaded)

        self.stack = QStackedWidget()
        self.picture = Picture()
        self.picture.setObjectName("preview")
        self.stack.addWidget(self.picture)
        self.segments = SegmentBar()
        self.segments.seek_requested.connect(self.play_from)
        self.moment = QLabel()
        self.moment.setObjectName("moment")

        self.title = QLabel()
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form = form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.fields: dict[str, QLabel] = {}
        for name in (
            "Folder",
            "Taken",
            "Place",
            "Text",
            "Size",
            "Dimensions",
            "Duration",
            "Fast score",
            "Slow score",
        ):
            label = QLabel()
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.fields[name] = label
            form.addRow(name, label)
        self.fields["Text"].setTextFormat(Qt.TextFormat.RichText)

        self.play_button = QPushButton("Play from here")
        self.play_button.setToolTip("Play the video from the matching moment (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open with the system's application (Enter)")
        self.reveal_button = QPushButton("Show in folder")
        self.copy_button = QPushButton("Copy path")
        self.similar_button = QPushButton("Find similar")
        for button, signal in (
            (self.open_button, self.open_requested),
            (self.reveal_button, self.reveal_requested),
            (self.copy_button, self.copy_requested),
            (self.similar_button, self.similar_requested),
        ):
            button.clicked.connect(lambda _=False, s=signal: self.item and s.emit(self.item.path))
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        moment_row = QHBoxLayout()
        moment_row.addWidget(self.moment)
        moment_row.addWidget(self.segments, 1)
        moment_row.addWidget(self.play_button)
        layout.addLayout(moment_row)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addLayout(buttons)
        self.empty = QLabel("Choose a result to see it here.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("emptyDetail")
        layout.addWidget(self.empty)
        self.show_item(None)

    def show_item(self, item: SearchResult | None) -> None:
        self.stop()
        self.item = item
        has = item is not None
        for widget in (self.stack, self.title, self.open_button, self.reveal_button, self.copy_button):
            widget.setVisible(has)
        self.similar_button.setVisible(has)
        for row in range(self.form.rowCount()):
            self.form.setRowVisible(row, has)
        self.empty.setVisible(not has)
        is_video = has and item.kind == "video"
        for widget in (self.moment, self.segments, self.play_button):
            widget.setVisible(is_video)
        self.form.setRowVisible(self.fields["Duration"], is_video)  # a photo has none
        self.form.setRowVisible(self.fields["Place"], has and bool(item.place))
        self.form.setRowVisible(
            self.fields["Text"], has and bool(item.text or (item.details and item.details.text))
        )
        if item is None:
            self.picture.set_source(QPixmap())
            return
        result, details = item, item.details
        self.title.setText(f"<b>{result.path.name}</b>")
        self.fields["Folder"].setText(str(result.path.parent))
        self.fields["Taken"].setText(when(details.taken_at) if details else "unknown")
        if details is not None and details.taken_at is None:
            self.fields["Taken"].setText(f"unknown (file changed {when(details.modified)})")
        self.fields["Place"].setText(result.place or "")
        # The lines that matched, the query's words marked; else what was read in it, if anything.
        if result.text:
            self.fields["Text"].setText(highlighted(result.text, result.text_spans))
        else:
            self.fields["Text"].setText(highlighted(details.text or "" if details else "", []))
        self.fields["Size"].setText(file_size(details.size) if details else "unknown")
        dimensions = f"{details.width} × {details.height}" if details and details.width else "unknown"
        self.fields["Dimensions"].setText(dimensions)
        duration = details.duration_s if details else None
        self.fields["Duration"].setText(clock(duration) if duration else "unknown")
        self.fields["Fast score"].setText(f"{result.fast_score:.3f}")
        self.fields["Slow score"].setText(
            f"{result.slow_score:.3f}" if result.slow_score is not None else "not re-ranked"
        )
        if is_video:
            moment = result.timestamp or 0.0
            segments = ", ".join(f"{clock(a)}–{clock(b)}" for a, b in result.segments)
            self.moment.setText(f"Best moment {clock(moment)}")
            self.segments.setToolTip(f"Matching parts: {segments or clock(moment)}; click to play from there")
            self.segments.show_video(duration or 0.0, result.segments, moment)
        self.picture.set_source(QPixmap())
        self.picture.setText("Loading…")
        self.stack.setCurrentWidget(self.picture)
        self._wanted_key = self.loader.request(result.path, result.timestamp, PREVIEW_SIDE)

    def _preview_loaded(self, key: str, image: QImage) -> None:
        if key != self._wanted_key:
            return
        if image.isNull():
            self.picture.set_source(QPixmap())
            self.picture.setText("No preview: the file cannot be read right now.")
        else:
            self.picture.set_source(QPixmap.fromImage(image))

    # video playback -------------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._player is not None and self.stack.currentWidget() is self._video_widget

    def toggle_play(self) -> None:
        if self.playing:
            self.stop()
        elif self.item is not None and self.item.kind == "video":
            self.play_from(self.item.timestamp or 0.0)

    def play_from(self, seconds: float) -> None:
        if self.item is None or self.item.kind != "video":
            return
        classes = multimedia_classes()
        if classes is None:
            self.moment.setText("Video playback is not available here; use Open.")
            return
        player_class, audio_class, video_class = classes
        if self._player is None:
            self._video_widget = video_class()
            self.stack.addWidget(self._video_widget)
            self._audio = audio_class(self)
            self._player = player_class(self)
            self._player.setAudioOutput(self._audio)
            self._player.setVideoOutput(self._video_widget)
            self._player.mediaStatusChanged.connect(self._media_status)
            self._player.errorOccurred.connect(
                lambda *_: self.moment.setText("This video cannot be played here; use Open.")
            )
        from PySide6.QtCore import QUrl

        self._start_ms = int(seconds * 1000)
        self.stack.setCurrentWidget(self._video_widget)
        self._player.setSource(QUrl.fromLocalFile(str(self.item.path)))
        self._player.setPosition(self._start_ms)
        self._player.play()
        self.play_button.setText("Stop")

    def _media_status(self, status) -> None:
        # Some back ends ignore a position set before the media is loaded: set it again once it is.
        if self._player is not None and status.name == "LoadedMedia" and self._start_ms:
            self._player.setPosition(self._start_ms)

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player.setSource("")
        self.stack.setCurrentWidget(self.picture)
        self.play_button.setText("Play from here")
