"""The results grid's model on its own: many results, thumbnails on demand, filters by date, sort by date."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSize

from desktop.main_window import TILE, ResultsView
from desktop.results_model import ResultDelegate, ResultsModel, visible_count
from desktop.workers import ResultItem, SearchRequest, ThumbnailLoader, sort
from engine.results import MediaDetails, SearchResult


class CountingLoader(ThumbnailLoader):
    """A loader that records what it is asked for and makes nothing."""

    def __init__(self) -> None:
        super().__init__(cache=None)
        self.asked: list[Path] = []

    def request(self, path: Path, seconds: float | None, side: int) -> str:
        self.asked.append(path)
        return self.key(path, seconds, side)


def item(rank: int, score: float = 0.5, taken: datetime | None = None, kind: str = "image") -> ResultItem:
    path = Path(f"/photos/{rank:06d}.jpg")
    result = SearchResult(rank, path, kind, score, score, None, 1.0 if kind == "video" else None, rank, rank)
    modified = datetime(2020, 1, 1)
    details = MediaDetails(path, kind, 1000, 10, 10, None, taken, modified, "indexed", None)
    return ResultItem(result, details)


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
    model.set_items(items, show_all=True)
    qtbot.wait(50)
    assert time.perf_counter() - started < 1.0
    assert model.rowCount() == 50_000
    assert 0 < len(set(loader.asked)) < 200  # only the tiles in view asked for their thumbnails
    last = Path("/photos/049999.jpg")
    # The view lays rows out in batches while idle; the last row is reachable once it has.
    qtbot.waitUntil(lambda: (view.scrollToBottom(), last in loader.asked)[1], timeout=20_000)
    assert len(set(loader.asked)) < 400


def test_relevance_cutoff_keeps_results_near_the_best() -> None:
    items = [item(i, score=s) for i, s in enumerate([0.9, 0.85, 0.82] + [0.5] * 20)]
    assert visible_count(items) == 8  # three close to the best, topped up to the minimum shown
    assert visible_count([item(i, score=0.9) for i in range(30)]) == 30
    assert visible_count([]) == 0


def test_newest_first() -> None:
    items = [
        item(1, taken=datetime(2024, 5, 1)),
        item(2, taken=datetime(2023, 1, 1)),
        item(3, taken=None),  # no capture date: its file date (2020) stands in
        item(4, taken=datetime(2024, 12, 31, 23, 0)),
    ]
    assert [i.result.rank for i in sort(items, SearchRequest(text="x"))] == [1, 2, 3, 4]
    assert [i.result.rank for i in sort(items, SearchRequest(text="x", sort="date"))] == [4, 1, 2, 3]
