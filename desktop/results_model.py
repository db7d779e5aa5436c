"""The results grid's model: a virtualised list of the engine's `SearchResult`s whose thumbnails load on demand.

The view asks `data()` only for the rows on screen; a row without its thumbnail yet shows a placeholder and
asks the loader for it once, so a search with tens of thousands of results costs nothing for the rows not
seen. Thumbnails are kept in a bounded in-memory cache (LRU) on top of the engine's cache on disk. The results
past the engine's relevance cutoff are held back until the person asks for them (`show_all`).
"""

from __future__ import annotations

from collections import OrderedDict

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
from desktop.workers import ThumbnailLoader
from engine.results import SearchResult, SearchResults

ItemRole = Qt.ItemDataRole.UserRole + 1
THUMB_SIDE = 200  # thumbnail height asked of the engine (pixels); the grid shows them at about 160
#: Pixmaps kept in memory; the disk cache behind them holds many more.
MEMORY_THUMBNAILS = 600


class ResultsModel(QAbstractListModel):
    """Search results for a QListView in icon mode."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.results = SearchResults()
        self.items: list[SearchResult] = []
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._rows_waiting: dict[str, list[int]] = {}
        self._failed: set[str] = set()
        loader.loaded.connect(self._thumbnail_loaded)

    # contents -------------------------------------------------------------------------------------------

    def set_items(self, results: SearchResults, *, show_all: bool = False) -> None:
        self.beginResetModel()
        self.loader.clear_queue()
        self._rows_waiting.clear()
        self.results = results
        self.items = results.all if show_all else list(results.shown)
        self.endResetModel()

    @property
    def hidden(self) -> int:
        """Results past the relevance cutoff, not shown yet."""
        return len(self.results.all) - len(self.items)

    def show_all(self) -> None:
        if self.hidden:
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, len(self.results.all) - 1)
            self.items = self.results.all
            self.endInsertRows()

    def item(self, index: QModelIndex) -> SearchResult | None:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        return self.items[index.row()]

    # Qt model -------------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        result = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return result.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            moment = f" at {clock(result.timestamp)}" if result.timestamp is not None else ""
            return f"{result.path}{moment}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(index.row(), result)
        if role == ItemRole:
            return result
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        """Dragging results to another application hands it the files."""
        mime = QMimeData()
        urls = [QUrl.fromLocalFile(str(self.items[i.row()].path)) for i in indexes if i.isValid()]
        mime.setUrls(urls)
        mime.setText("\n".join(u.toLocalFile() for u in urls))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # thumbnails -----------------------------------------------------------------------------------------

    def _thumbnail(self, row: int, result: SearchResult) -> QPixmap | None:
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
        result: SearchResult | None = index.data(ItemRole)
        if result is None:
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
