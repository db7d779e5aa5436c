"""The main window: the search field, filters, the results grid, the detail pane and the indexing status."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QDate, QItemSelectionModel, QModelIndex, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import system
from desktop.detail_pane import DetailPane
from desktop.folders_dialog import FoldersDialog, native_folder_picker
from desktop.format import count
from desktop.indexing import IndexingController, IndexingStatus, describe_report, describe_tuning
from desktop.query_chips import QueryChips
from desktop.results_model import ResultDelegate, ResultsModel
from desktop.settings import AppSettings
from desktop.settings_dialog import SettingsDialog
from desktop.welcome import WelcomeDialog
from desktop.workers import LibraryThread, SearchResponse, ThumbnailLoader
from engine import Library
from engine.paths import log_file, to_bytes
from engine.results import FailedFile, IndexReport, LibraryStatus, QueryPart, SearchResult, SearchResults
from engine.search import SearchRequest

log = logging.getLogger(__name__)

#: While indexing, the library's counts are re-read at most this often (seconds).
STATUS_EVERY_S = 2.0
PLACEHOLDER = "Describe what you are looking for: “a red kite on a beach”"
#: Results asked of the engine per search (the grid is virtualised; the engine's cutoff hides the weak ones).
RESULTS_LIMIT = 200
#: Typing that pauses this long searches without Enter.
DEBOUNCE_MS = 400
TILE = QSize(184, 164)


class ResultsView(QListView):
    """The grid: icon mode, uniform tiles, virtualised; Enter opens, Space previews, Esc goes back to the
    search field."""

    activated_item = Signal(QModelIndex)
    preview_requested = Signal()
    escape_pressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setGridSize(TILE)
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # Always there, so that the columns never re-flow when a search result count crosses a screenful.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setWordWrap(False)

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Stretch the tiles so that the columns fill the width, as photo grids do.
        width = self.viewport().width()
        columns = max(1, width // TILE.width())
        tile = QSize(width // columns - 1, TILE.height())  # a pixel to spare, or the last column wraps
        if tile != self.gridSize():
            self.setGridSize(tile)
            delegate = self.itemDelegate()
            if isinstance(delegate, ResultDelegate):
                delegate.tile = tile
        super().resizeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_item.emit(self.currentIndex())
        elif key == Qt.Key.Key_Space:
            self.preview_requested.emit()
        elif key == Qt.Key.Key_Escape:
            self.escape_pressed.emit()
        else:
            super().keyPressEvent(event)


class SearchField(QLineEdit):
    """The search field: Down moves into the results, Esc clears."""

    down_pressed = Signal()
    escape_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Down:
            self.down_pressed.emit()
        elif event.key() == Qt.Key.Key_Escape:
            self.escape_pressed.emit()
        else:
            super().keyPressEvent(event)


class MainWindow(QMainWindow):
    """Glimpse's window over one library."""

    searched = Signal(object)  # SearchResponse, after it is shown (for tests and scripts)

    def __init__(self, library_dir: Path, settings: AppSettings, *, picker=native_folder_picker) -> None:
        super().__init__()
        self.setWindowTitle("Glimpse")
        self.library_dir = library_dir
        self.settings = settings
        self.picker = picker
        self.status_info: LibraryStatus | None = None
        self.last_request: SearchRequest | None = None
        self._pending_id = 0
        self._keep_selection = False
        self._response: SearchResponse | None = None
        self.photo_preview = None
        self._model_loaded = False
        self._status_asked = 0.0

        self.library = LibraryThread(library_dir, settings.device, self)
        self.library.worker.searched.connect(self._show_results)
        self.library.worker.status_ready.connect(self._show_status)
        self.library.worker.failed.connect(self.show_error)
        self.library.worker.model_ready.connect(self._model_ready)
        self.library.worker.failed_ready.connect(self._show_failed)
        # The folders arrive with the library's status, read by the worker: the GUI thread never reads it.
        self.watched: list[str] = []
        self.excluded: list[str] = []
        cache = Library.thumbnail_cache(library_dir, settings.thumbnail_cache_mb * 1_000_000)
        self.loader = ThumbnailLoader(cache, threads=2, parent=self)
        self.indexing = IndexingController(library_dir, self)

        self._build_search_bar()
        self._fill_folder_filter()
        self._build_body()
        self._build_menus()
        self._connect_indexing()

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self.search)
        self.search_field.textEdited.connect(lambda _: self.debounce.start())
        self.search_field.returnPressed.connect(self.search)

        if settings.geometry is None or not self.restoreGeometry(settings.geometry):
            screen = self.screen().availableGeometry()
            self.resize(min(1400, int(screen.width() * 0.95)), min(900, int(screen.height() * 0.95)))
        self.search_field.setFocus()
        self.library.status()
        self.library.warm_up()

    # building -------------------------------------------------------------------------------------------

    def _build_search_bar(self) -> None:
        self.search_field = SearchField()
        self.search_field.setObjectName("search")
        self.search_field.setPlaceholderText(PLACEHOLDER)
        self.search_field.setClearButtonEnabled(True)
        self.search_field.down_pressed.connect(self._focus_results)
        self.search_field.escape_pressed.connect(self.clear_search)
        font = self.search_field.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.search_field.setFont(font)
        self.search_field.setMinimumHeight(40)

        self.kind_filter = QComboBox()
        self.kind_filter.addItem("Photos and videos", None)
        self.kind_filter.addItem("Photos", "image")
        self.kind_filter.addItem("Videos", "video")
        self.folder_filter = QComboBox()
        self.folder_filter.addItem("All folders", None)
        self.folder_filter.setMinimumContentsLength(14)
        self.dates = QCheckBox("Dates")
        self.date_from = QDateEdit(QDate.currentDate().addYears(-1))
        self.date_to = QDateEdit(QDate.currentDate())
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("d MMM yyyy")
            edit.setEnabled(False)
            edit.dateChanged.connect(self._filters_changed)
        self.dates.toggled.connect(self.date_from.setEnabled)
        self.dates.toggled.connect(self.date_to.setEnabled)
        self.sort = QComboBox()
        self.sort.addItem("Best match first", "relevance")
        self.sort.addItem("Newest first", "newest")
        self.sort.addItem("Oldest first", "oldest")
        for combo in (self.kind_filter, self.folder_filter, self.sort):
            combo.currentIndexChanged.connect(self._filters_changed)
        self.dates.toggled.connect(self._filters_changed)

        bar = QWidget()
        bar.setObjectName("searchBar")
        layout = QVBoxLayout(bar)
        layout.setContentsMargins(12, 10, 12, 6)
        layout.addWidget(self.search_field)
        self.chips = QueryChips()
        self.chips.remove_requested.connect(self._remove_part)
        layout.addWidget(self.chips)
        filters = QHBoxLayout()
        for widget in (
            self.kind_filter,
            self.folder_filter,
            self.dates,
            self.date_from,
            QLabel("to"),
            self.date_to,
        ):
            filters.addWidget(widget)
        filters.addStretch(1)
        filters.addWidget(QLabel("Sort:"))
        filters.addWidget(self.sort)
        layout.addLayout(filters)
        self.search_bar = bar

    def _build_body(self) -> None:
        self.model = ResultsModel(self.loader, self)
        self.grid = ResultsView()
        self.grid.setModel(self.model)
        self.grid.setItemDelegate(ResultDelegate(TILE, self.grid))
        self.grid.selectionModel().currentChanged.connect(self._current_changed)
        self.grid.activated_item.connect(lambda index: self._open(self.model.item(index)))
        self.grid.doubleClicked.connect(lambda index: self._open(self.model.item(index)))
        self.grid.preview_requested.connect(self.preview)
        self.grid.escape_pressed.connect(self.clear_search)

        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.more_button = QPushButton()
        self.more_button.setFlat(True)
        self.more_button.setVisible(False)
        self.more_button.clicked.connect(self.show_more)
        header = QHBoxLayout()
        header.setContentsMargins(12, 0, 12, 0)
        header.addWidget(self.summary, 1)
        header.addWidget(self.more_button)

        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.center = QStackedWidget()
        self.center.addWidget(self.empty)
        self.center.addWidget(self.grid)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(header)
        left_layout.addWidget(self.center, 1)

        self.detail = DetailPane(self.loader)
        self.detail.setObjectName("detail")
        self.detail.open_requested.connect(lambda p: self._open_path(p))
        self.detail.reveal_requested.connect(self.reveal)
        self.detail.copy_requested.connect(self.copy_path)
        self.detail.similar_requested.connect(self.find_similar)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([780, 500])
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.search_bar)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(body)

        self.indexing_status = IndexingStatus(self.indexing)
        self.statusBar().addPermanentWidget(self.indexing_status)
        self._show_empty_state()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Folders…", self.show_folders, "Ctrl+Shift+O")
        self._action(file_menu, "&Index now", self.indexing.index_now)
        self._action(file_menu, "&Restart indexing", self.start_indexing)
        file_menu.addSeparator()
        self._action(file_menu, "&Settings…", self.show_settings, QKeySequence.StandardKey.Preferences)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        self._action(edit, "&Open", lambda: self._open(self._current()), None)
        self._action(edit, "Show in &folder", lambda: self._with_current(self.reveal), "Ctrl+Shift+R")
        self._action(edit, "&Copy path", lambda: self._with_current(self.copy_path), "Ctrl+Shift+C")
        self._action(edit, "Find &similar", lambda: self._with_current(self.find_similar), "Ctrl+Shift+S")
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "Show &log file", self.show_log)
        self._action(help_menu, "Files that could not be &read…", self.show_failed)
        self._action(help_menu, "&About Glimpse", self.about)
        for keys in ("Ctrl+L", "Ctrl+F"):
            QShortcut(QKeySequence(keys), self, activated=self.focus_search)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect_indexing(self) -> None:
        self.indexing.progress.connect(self._indexing_progress)
        self.indexing.report.connect(self._indexed)
        self.indexing.tuned.connect(self._tuned)
        self.indexing.state_changed.connect(self._refresh_empty_state)
        self.indexing.folders_changed.connect(self._folders_changed)
        self.indexing.notice.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.indexing.error.connect(self.show_error)

    # indexing -------------------------------------------------------------------------------------------

    def start_indexing(self) -> None:
        """(Re)start the index service with the current settings; it rescans every watched folder first."""
        self.indexing.start(
            model=self.settings.model,
            device=self.settings.device,
            frame_interval_s=self.settings.frame_interval_s,
            read_text=self.settings.read_text,
        )

    def _indexing_progress(self, _event) -> None:
        # The counts on the empty page follow the indexer, a few times a minute at most.
        now = time.monotonic()
        if now - self._status_asked > STATUS_EVERY_S:
            self._status_asked = now
            self.library.status()

    def _indexed(self, report: IndexReport) -> None:
        self.statusBar().showMessage(describe_report(report), 15_000)
        self.library.status()
        changed = report.images + report.videos + report.removed + report.moved + report.updated
        if changed and self.last_request is not None:
            self._run(self.last_request, keep_selection=True)  # new files appear in the results at once
        if changed and self.status_info is not None and not self.status_info.model:
            self.library.warm_up()

    def _tuned(self, event) -> None:
        self.statusBar().showMessage(describe_tuning(event), 30_000)
        self.settings.model = event.model  # so a restart of the indexer keeps the model the library uses now
        self.library.status()
        if self.last_request is not None:
            self._run(self.last_request, keep_selection=True)  # the results the new model finds

    def _folders_changed(self, watched: list[str], excluded: list[str]) -> None:
        self.watched, self.excluded = watched, excluded
        self._fill_folder_filter()
        self.library.status()

    def _show_status(self, status: LibraryStatus) -> None:
        self.status_info = status
        watched, excluded = [str(f) for f in status.folders], [str(f) for f in status.excluded]
        if (watched, excluded) != (self.watched, self.excluded):
            self.watched, self.excluded = watched, excluded
            self._fill_folder_filter()
        self._refresh_empty_state()

    def _refresh_empty_state(self, *_) -> None:
        # Until a search answers, the page shows the library's counts and whether more are coming.
        if self.last_request is None or self._response is None:
            self._show_empty_state()

    def _model_ready(self, model: str) -> None:
        self._model_loaded = bool(model)
        if model and self.search_field.text().strip() and self.last_request is None:
            self.search()

    def _fill_folder_filter(self) -> None:
        chosen = self.folder_filter.currentData()
        self.folder_filter.blockSignals(True)
        self.folder_filter.clear()
        self.folder_filter.addItem("All folders", None)
        for folder in self.watched:
            self.folder_filter.addItem(Path(folder).name or folder, folder)
            self.folder_filter.setItemData(
                self.folder_filter.count() - 1, folder, Qt.ItemDataRole.ToolTipRole
            )
        index = self.folder_filter.findData(chosen)
        self.folder_filter.setCurrentIndex(max(0, index))
        self.folder_filter.blockSignals(False)

    # searching ------------------------------------------------------------------------------------------

    def _request(self, text: str = "", similar_to: Path | None = None) -> SearchRequest:
        folder = self.folder_filter.currentData()
        return SearchRequest(
            text=text,
            similar_to=to_bytes(similar_to) if similar_to is not None else None,
            limit=RESULTS_LIMIT,
            kind=self.kind_filter.currentData(),
            folder=to_bytes(folder) if folder else None,
            taken_from=self.date_from.date().toPython() if self.dates.isChecked() else None,
            taken_to=self.date_to.date().toPython() if self.dates.isChecked() else None,
            # None: the engine's default depth for the device.
            rerank=self.settings.rerank_k if self.settings.rerank else 0,
            sort=self.sort.currentData(),
        )

    def search(self) -> None:
        """Search for the words in the search field (Enter, or a pause in typing)."""
        self.debounce.stop()
        text = self.search_field.text().strip()
        if not text:
            self.clear_search()
            return
        self._run(self._request(text))

    def find_similar(self, path: Path) -> None:
        """Search by a picture: results that look like `path`."""
        self.search_field.setText("")
        self.search_field.setPlaceholderText(f"Similar to {path.name} — type to search in words again")
        self._run(self._request(similar_to=path))

    def _filters_changed(self) -> None:
        if self.last_request is not None:
            request = self.last_request
            similar = Path(os.fsdecode(request.similar_to)) if request.similar_to is not None else None
            self._run(self._request(request.text, similar))

    def _run(self, request: SearchRequest, *, keep_selection: bool = False) -> None:
        self.last_request = request
        self._keep_selection = keep_selection
        self._pending_id = self.library.search(request)
        if not keep_selection:
            first = "" if self._model_loaded else " (the first search loads the model: a few seconds)"
            self.summary.setText("Searching…" + first)

    def _show_results(self, response: SearchResponse) -> None:
        if response.request_id != self._pending_id:
            return  # an older search answered after a newer one was asked
        if response.error:
            self.show_error(response.error)
            self.summary.setText("")
            self.searched.emit(response)
            return
        previous = self._current()
        self.chips.show_parts(response.results.parts)
        self.model.set_items(response.results)
        self.center.setCurrentWidget(self.grid if response.results.all else self.empty)
        self._response = response
        self._show_summary()
        self._update_more_button()
        row = 0
        if self._keep_selection and previous is not None:
            paths = [r.path for r in self.model.items]
            row = paths.index(previous.path) if previous.path in paths else 0
        if self.model.items:
            index = self.model.index(row)
            self.grid.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
        else:
            self.detail.show_item(None)
        self.searched.emit(response)

    def _show_summary(self) -> None:
        response = self._response
        request = response.request
        what = (
            f"“{request.text}”"
            if request.similar_to is None
            else f"pictures like {os.path.basename(os.fsdecode(request.similar_to))}"
        )
        if not response.results.all:
            self.empty.setText(f"Nothing found for {what}.\nTry other words, or fewer filters.")
            self.summary.setText("")
        else:
            shown = len(self.model.items)
            self.summary.setText(f"{shown} results for {what} · {response.seconds:.2f} s")

    def _update_more_button(self) -> None:
        hidden = self.model.hidden
        self.more_button.setVisible(hidden > 0)
        self.more_button.setText(f"Show {hidden} less relevant results")

    def show_more(self) -> None:
        self.model.show_all()
        self._update_more_button()
        self._show_summary()

    def _remove_part(self, part: QueryPart) -> None:
        """A chip's click: search again without the words it stands for."""
        if self._response is None:
            return
        text = self._response.results.query_without(part)
        self.search_field.setText(text)
        if text:
            self.search()
        else:
            self.clear_search()

    def clear_search(self) -> None:
        self.debounce.stop()
        self.chips.show_parts([])
        self.search_field.clear()
        self.search_field.setPlaceholderText(PLACEHOLDER)
        self.last_request = None
        self._pending_id = -1  # a search still running answers into nothing
        self.model.set_items(SearchResults())
        self.detail.show_item(None)
        self.summary.setText("")
        self.more_button.setVisible(False)
        self._show_empty_state()
        self.search_field.setFocus()

    def _show_empty_state(self) -> None:
        status = self.status_info
        if status is None:
            text = "Type what you remember, and press Enter."
        elif not status.folders:
            text = "Your library is empty.\nChoose File → Folders… to add the folders that hold your photos and videos."
        else:
            done = f"{count(status.images, 'photo')} and {count(status.videos, 'video')} indexed"
            if self.indexing.state in ("indexing", "paused", "starting"):
                done += " so far; more are on their way (see the status bar)"
            text = f"{done}.\nType what you remember: “a red circle left of a blue square”, “the dog on the beach”."
        self.empty.setText(text)
        self.center.setCurrentWidget(self.empty)

    # the chosen result ----------------------------------------------------------------------------------

    def _current(self) -> SearchResult | None:
        return self.model.item(self.grid.currentIndex())

    def _with_current(self, act) -> None:
        result = self._current()
        if result is not None:
            act(result.path)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.detail.show_item(self.model.item(current))

    def _focus_results(self) -> None:
        if self.model.rowCount():
            self.grid.setFocus()
            if not self.grid.currentIndex().isValid():
                self.grid.setCurrentIndex(self.model.index(0))

    def focus_search(self) -> None:
        self.search_field.setFocus()
        self.search_field.selectAll()

    def preview(self) -> None:
        """Space: play a video from its moment in the detail pane; show a photo large."""
        result = self._current()
        if result is None:
            return
        if result.kind == "video":
            self.detail.toggle_play()
        else:
            from desktop.preview import PhotoPreview

            self.photo_preview = PhotoPreview(result.path, self.loader, self)
            self.photo_preview.open()

    def _open(self, result: SearchResult | None) -> None:
        if result is not None:
            self._open_path(result.path)

    def _open_path(self, path: Path) -> None:
        if not system.open_file(path):
            self.show_error(f"No application could open {path.name}.")

    def reveal(self, path: Path) -> None:
        system.reveal_in_file_manager(path)

    def copy_path(self, path: Path) -> None:
        system.copy_path(path)
        self.statusBar().showMessage(f"Copied {path}", 4000)

    # dialogs --------------------------------------------------------------------------------------------

    def show_folders(self) -> FoldersDialog:
        dialog = FoldersDialog(self.indexing, self.watched, self.excluded, self, picker=self.picker)
        dialog.open()
        return dialog

    def show_settings(self) -> None:
        dialog = SettingsDialog(
            self.settings,
            self,
            status=self.status_info,
            on_tune=self.indexing.tune,
            on_undo_tune=self.indexing.undo_tune,
        )
        if not dialog.exec():
            return
        self.loader.cache.max_bytes = self.settings.thumbnail_cache_mb * 1_000_000
        if dialog.changed_indexing and dialog.tuning_started:
            self.statusBar().showMessage(
                "The new indexing settings apply once tuning is done: choose File → Restart indexing then.",
                15_000,
            )
        elif dialog.changed_indexing:
            self.start_indexing()

    def first_run(self) -> WelcomeDialog:
        """The welcome: folders and a model; indexing starts once the person has chosen."""
        dialog = WelcomeDialog(self, picker=self.picker)
        dialog.accepted.connect(lambda: self._welcomed(dialog))
        dialog.open()
        return dialog

    def _welcomed(self, dialog: WelcomeDialog) -> None:
        self.settings.model = dialog.model
        self.settings.welcomed = True
        self.start_indexing()
        for folder in dialog.folders:
            self.indexing.add_folder(folder)

    def show_log(self) -> None:
        path = log_file(self.library_dir)
        if not path.exists() or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            QMessageBox.information(self, "Log file", f"The log file is {path}")

    def show_failed(self) -> None:
        """Help → Files that could not be read…: the worker reads them, `_show_failed` shows them."""
        self.library.failed_files()

    def _show_failed(self, failed: list[FailedFile]) -> None:
        if not failed:
            QMessageBox.information(self, "Files that could not be read", "Every file was read.")
            return
        lines = "\n".join(f"{f.path}: {f.error}" for f in failed)
        box = QMessageBox(
            QMessageBox.Icon.Information, "Files that could not be read", f"{len(failed)} files:", parent=self
        )
        box.setDetailedText(lines)
        box.exec()

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About Glimpse",
            "<b>Glimpse</b><br>Find photos and moments in videos by describing them. "
            "Everything stays on this computer.",
        )

    def show_error(self, message: str) -> None:
        """An error as one sentence in the status bar (never a traceback)."""
        self.statusBar().showMessage(message, 20_000)
        log.warning("shown to the user: %s", message)

    # closing --------------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.geometry = self.saveGeometry()
        self.detail.stop()
        self.indexing.stop()
        self.loader.shutdown()
        self.library.shutdown()
        super().closeEvent(event)
