"""The results grid's model on its own: many results, thumbnails on demand, what the engine's cutoff hides."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSize

from desktop.main_window import TILE, ResultsView
from desktop.results_model import ResultDelegate, ResultsModel
from desktop.workers import ThumbnailLoader
from engine.results import MediaDetails, SearchResult, SearchResults


class CountingLoader(ThumbnailLoader):
    """A loader that records what it is asked for and makes nothing."""

    def __init__(self) -> None:
        super().__init__(cache=None)
        self.asked: list[Path] = []

    def request(self, path: Path, seconds: float | None, side: int) -> str:
        self.asked.append(path)
        return self.key(path, seconds, side)


def item(rank: int, score: float = 0.5, taken: datetime | None = None, kind: str = "image") -> SearchResult:
    path = Path(f"/photos/{rank:06d}.jpg")
    modified = datetime(2020, 1, 1)
    details = MediaDetails(
        path, kind, 1000, 10, 10, None, taken, modified, taken or modified, "indexed", None
    )
    timestamp = 1.0 if kind == "video" else None
    return SearchResult(rank, path, kind, score, score, None, timestamp, rank, rank, details=details)


def test_tens_of_thousands_of_results_cost_only_the_rows_on_screen(qtbot) -> None:
    loader = CountingLoader()
    model = ResultsModel(loader)
    view = ResultsView()
    view.setModel(model)
    view.setItemDelegate(ResultDelegate(TILE, view))
    view.resize(QSize(800, 600))
    view.show()
    qtbot.waitExposed(view)
    items = [item(i, score=0.9) for i in range(50_000)]
    started = time.perf_counter()
    model.set_items(SearchResults(shown=items), show_all=True)
    qtbot.wait(50)
    assert time.perf_counter() - started < 1.0
    assert model.rowCount() == 50_000
    assert 0 < len(set(loader.asked)) < 200  # only the tiles in view asked for their thumbnails
    last = Path("/photos/049999.jpg")
    # The view lays rows out in batches while idle; the last row is reachable once it has.
    qtbot.waitUntil(lambda: (view.scrollToBottom(), last in loader.asked)[1], timeout=20_000)
    assert len(set(loader.asked)) < 400


def test_results_past_the_cutoff_wait_until_asked_for(qtbot) -> None:
    model = ResultsModel(CountingLoader())
    results = SearchResults(shown=[item(1), item(2)], hidden=[item(3), item(4), item(5)])
    model.set_items(results)
    assert model.rowCount() == 2 and model.hidden == 3
    model.show_all()
    assert model.rowCount() == 5 and model.hidden == 0
    assert [model.item(model.index(row)).rank for row in range(5)] == [1, 2, 3, 4, 5]
    model.set_items(results, show_all=True)
    assert model.rowCount() == 5
