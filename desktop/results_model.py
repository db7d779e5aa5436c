"""The results grid's model: a virtualised list of `ResultItem`s whose thumbnails load on demand.

The view asks `data()` only for the rows on screen; a row without its thumbnail yet shows a placeholder and
asks the loader for it once, so a search with tens of thousands of results costs nothing for the rows not
seen. Thumbnails are kept in a bounded in-memory cache (LRU) on top of the engine's cache on disk.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QUrl,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop.format import clock
from desktop.workers import ResultItem, ThumbnailLoader

ItemRole = Qt.ItemDataRole.UserRole + 1
THUMB_SIDE = 200  # thumbnail height asked of the engine (pixels); the grid shows them at about 160
#: Pixmaps kept in memory; the disk cache behind them holds many more.
MEMORY_THUMBNAILS = 600
#: A result whose Fast score is this far below the best one is hidden until the person asks for more.
RELEVANCE_GAP = 0.1
#: The fewest results shown before the relevance cutoff applies.
MIN_SHOWN = 8


def visible_count(items: list[ResultItem]) -> int:
    """How many of the best-first `items` clear the relevance cutoff.

    Re-ranked results keep the Slow model's shortlist (those with a slow score); otherwise a result must score
    within RELEVANCE_GAP of the best Fast score.
    """
    if not items:
        return 0
    if any(i.result.slow_score is not None for i in items):
        shown = sum(1 for i in items if i.result.slow_score is not None)
    else:
        best = max(i.result.fast_score for i in items)
        shown = sum(1 for i in items if i.result.fast_score >= best - RELEVANCE_GAP)
    return min(len(items), max(shown, MIN_SHOWN))


class ResultsModel(QAbstractListModel):
    """Search results for a QListView in icon mode."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.all_items: list[ResultItem] = []
        self.items: list[ResultItem] = []
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._rows_waiting: dict[str, list[int]] = {}
        self._failed: set[str] = set()
        loader.loaded.connect(self._thumbnail_loaded)

    # contents -------------------------------------------------------------------------------------------

    def set_items(self, items: list[ResultItem], *, show_all: bool = False) -> None:
        self.beginResetModel()
        self.loader.clear_queue()
        self._rows_waiting.clear()
        self.all_items = items
        self.items = items if show_all else items[: visible_count(items)]
        self.endResetModel()

    @property
    def hidden(self) -> int:
        """Results under the relevance cutoff, not shown."""
        return len(self.all_items) - len(self.items)

    def show_all(self) -> None:
        if self.hidden:
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, len(self.all_items) - 1)
            self.items = list(self.all_items)
            self.endInsertRows()

    def remove_path(self, path: Path) -> None:
        """Drop a file that left the library (deleted on disk, its folder removed)."""
        for row in [r for r, item in enumerate(self.items) if item.result.path == path][::-1]:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.items[row]
            self.endRemoveRows()
        self.all_items = [i for i in self.all_items if i.result.path != path]

    def item(self, index: QModelIndex) -> ResultItem | None:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        return self.items[index.row()]

    # Qt model -------------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        result = item.result
        if role == Qt.ItemDataRole.DisplayRole:
            return result.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            moment = f" at {clock(result.timestamp)}" if result.timestamp is not None else ""
            return f"{result.path}{moment}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(index.row(), item)
        if role == ItemRole:
            return item
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        """Dragging results to another application hands it the files."""
        mime = QMimeData()
        urls = [QUrl.fromLocalFile(str(self.items[i.row()].result.path)) for i in indexes if i.isValid()]
        mime.setUrls(urls)
        mime.setText("\n".join(u.toLocalFile() for u in urls))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # thumbnails -----------------------------------------------------------------------------------------

    def _thumbnail(self, row: int, item: ResultItem) -> QPixmap | None:
        result = item.result
        key = ThumbnailLoader.key(result.path, result.timestamp, THUMB_SIDE)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
            return pixmap
        if key not in self._failed:
            self._rows_waiting.setdefault(key, []).append(row)
            self.loader.request(result.path, result.timestamp, THUMB_SIDE)
        return None

    def _thumbnail_loaded(self, key: str, image: QImage) -> None:
        if image.isNull():
            self._failed.add(key)
        else:
            self._pixmaps[key] = QPixmap.fromImage(image)
            while len(self._pixmaps) > MEMORY_THUMBNAILS:
                self._pixmaps.popitem(last=False)
        for row in set(self._rows_waiting.pop(key, [])):
            if row < len(self.items):
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ResultDelegate(QStyledItemDelegate):
    """Paints a result as a photo app does: the picture filling a rounded tile, the moment on a video."""

    def __init__(self, tile: QSize, parent=None) -> None:
        super().__init__(parent)
        self.tile = tile

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return self.tile

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        item: ResultItem | None = index.data(ItemRole)
        if item is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        area = QRect(option.rect).adjusted(4, 4, -4, -4)
        picture_area = QRect(area.left(), area.top(), area.width(), area.height() - 22)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        clip = QPainterPath()
        clip.addRoundedRect(picture_area, 6, 6)
        painter.fillPath(clip, palette.alternateBase())
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            # Cover the tile (cropping the overflow), as photo grids do.
            scaled = pixmap.scaled(
                picture_area.size(),
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            source = QRect(
                (scaled.width() - picture_area.width()) // 2,
                (scaled.height() - picture_area.height()) // 2,
                picture_area.width(),
                picture_area.height(),
            )
            painter.setClipPath(clip)
            painter.drawPixmap(picture_area, scaled, source)
            painter.setClipping(False)
        result = item.result
        if result.kind == "video":
            label = f"▶ {clock(result.timestamp or 0)}"
            font = QFont(option.font)
            font.setBold(True)
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            painter.setFont(font)
            width = painter.fontMetrics().horizontalAdvance(label) + 12
            badge = QRect(picture_area.right() - width - 5, picture_area.bottom() - 24, width, 19)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 170))
            painter.drawRoundedRect(badge, 9, 9)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
        if selected:
            pen = painter.pen()
            pen.setColor(palette.highlight().color())
            pen.setWidth(3)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(picture_area.adjusted(1, 1, -1, -1), 6, 6)
        painter.setFont(option.font)
        painter.setPen(palette.text().color())
        text_area = QRect(area.left() + 2, picture_area.bottom() + 3, area.width() - 4, 18)
        name = painter.fontMetrics().elidedText(
            result.path.name, Qt.TextElideMode.ElideMiddle, text_area.width()
        )
        painter.drawText(text_area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.restore()
