"""The window's search: the expected top result, filters, find-similar, keyboard, drag, relevance cutoff."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop import system
from desktop.detail_pane import multimedia_classes
from desktop.main_window import MainWindow
from engine import Library
from engine.models.presets import PRESETS
from engine.results import SearchResults
from tests.desktop.conftest import index_folder, search


def test_window_opens_with_the_search_field_focused(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)
    assert window.windowTitle() == "Glimpse"
    assert window.focusWidget() is window.search_field


def test_search_shows_the_engines_top_result_first(make_window, indexed, qtbot) -> None:
    library_dir, _ = indexed
    with Library.open(library_dir) as library:
        expected = library.search("a red landscape", limit=200).shown  # the engine's default re-ranking
    window = make_window(library_dir)
    response = search(qtbot, window, "a red landscape")
    assert response.error is None
    shown = [window.model.items[row].path for row in range(window.model.rowCount())]
    assert shown[0] == expected[0].path
    assert window.detail.item is not None and window.detail.item.path == expected[0].path
    duration_shown = window.detail.form.isRowVisible(window.detail.fields["Duration"])
    assert duration_shown == (expected[0].kind == "video")
    assert "results for “a red landscape”" in window.summary.text()


@pytest.mark.skipif("shapes" not in PRESETS, reason="the trained `shapes` preset is not registered yet")
def test_shapes_model_finds_the_scene_described(make_window, tmp_path, qtbot) -> None:
    """With the trained shapes model, the scene a sentence describes comes first among hard negatives.

    Its twin with the colours bound the other way round is among them; the relation-swapped twin is not: the
    shipped pair tells those apart about 3 times in 4 (docs/evaluation.md), too seldom for one fixed case.
    """
    from engine.training.synth import Group, Scene, render

    rng = random.Random(3)
    wanted = Scene(Group(1, "large", "red", "circle"), Group(1, "large", "blue", "square"), "left of")
    others = [
        Scene(Group(1, "large", "red", "square"), Group(1, "large", "blue", "circle"), "left of"),
        Scene(Group(1, "large", "red", "circle"), Group(1, "large", "blue", "square"), "below"),
        Scene(Group(2, "small", "green", "triangle"), Group(1, "large", "yellow", "cross"), "above"),
    ]
    folder = tmp_path / "scenes"
    folder.mkdir()
    render(wanted, rng).save(folder / "wanted.png")
    for i, scene in enumerate(others):
        render(scene, rng).save(folder / f"other-{i}.png")
    index_folder(tmp_path / "library", folder, model="shapes")
    window = make_window(tmp_path / "library", model="shapes")
    search(qtbot, window, "a large red circle left of a large blue square")
    assert window.model.items[0].path.name == "wanted.png"


def test_kind_filter_shows_only_videos_with_their_moment(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    window.kind_filter.setCurrentIndex(window.kind_filter.findData("video"))
    response = search(qtbot, window, "a ball crossing a green screen")
    assert response.results.all and all(i.kind == "video" for i in response.results.all)
    window.grid.setCurrentIndex(window.model.index(0))
    assert window.detail.moment.text().startswith("Best moment ")
    assert window.detail.segments.moment == response.results.all[0].timestamp
    assert window.detail.form.isRowVisible(window.detail.fields["Duration"])


def test_find_similar_searches_by_the_chosen_picture(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    search(qtbot, window, "a landscape")
    chosen = window.model.items[0].path
    with qtbot.waitSignal(window.searched, timeout=30_000) as blocker:
        window.detail.similar_button.click()
    response = blocker.args[0]
    assert response.error is None and response.request.similar_to == os.fsencode(chosen)
    paths = [i.path for i in response.results.all]
    assert paths and chosen not in paths
    assert f"pictures like {chosen.name}" in window.summary.text()


def test_keyboard_moves_opens_previews_and_clears(make_window, indexed, qtbot, monkeypatch) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(system, "open_file", lambda path: opened.append(path) or True)
    window = make_window(indexed[0])
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)
    search(qtbot, window, "a landscape")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Down)
    assert window.focusWidget() is window.grid and window.grid.currentIndex().row() == 0
    qtbot.keyClick(window.grid, Qt.Key.Key_Right)
    assert window.grid.currentIndex().row() == 1
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)
    assert opened == [window.model.items[1].path]
    qtbot.keyClick(window.grid, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.focusWidget() is window.search_field
    qtbot.keyClick(window.search_field, Qt.Key.Key_Escape)
    assert window.search_field.text() == "" and window.model.rowCount() == 0
    search(qtbot, window, "a landscape")
    photo_row = next(r for r, i in enumerate(window.model.items) if i.kind == "image")
    window.grid.setCurrentIndex(window.model.index(photo_row))
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)
    preview = window.photo_preview
    assert preview is not None and preview.isVisible()
    qtbot.waitUntil(lambda: preview.picture.pixmap() is not None and not preview.picture.pixmap().isNull())
    qtbot.keyClick(preview, Qt.Key.Key_Space)
    assert not preview.isVisible()


def test_typing_pauses_search_without_enter(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    with qtbot.waitSignal(window.searched, timeout=30_000):
        qtbot.keyClicks(window.search_field, "sunny")
    assert window.model.rowCount() > 0


def test_results_drag_out_as_files(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    search(qtbot, window, "a landscape")
    mime = window.model.mimeData([window.model.index(0), window.model.index(1)])
    paths = [Path(url.toLocalFile()) for url in mime.urls()]
    assert paths == [window.model.items[0].path, window.model.items[1].path]
    assert all(p.exists() for p in paths)


def test_less_relevant_results_are_hidden_until_asked(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0], rerank=True, rerank_k=2)
    response = search(qtbot, window, "a landscape")
    assert len(response.results.all) == 7
    # Re-ranked: the Slow model's shortlist shows, at least MIN_SHOWN (8) results, so all 7 here.
    assert window.model.rowCount() == 7 and window.more_button.isHidden()
    # The window shows what the engine's cutoff keeps, and the rest on request.
    everything = response.results.all
    window._show_results(
        dataclasses.replace(response, results=SearchResults(shown=everything[:2], hidden=everything[2:]))
    )
    assert window.model.rowCount() == 2 and not window.more_button.isHidden()
    assert window.more_button.text() == "Show 5 less relevant results"
    window.more_button.click()
    assert window.model.rowCount() == 7 and window.more_button.isHidden()


def test_thumbnails_load_off_the_gui_thread_into_the_grid(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    search(qtbot, window, "a landscape")
    index = window.model.index(0)
    window.model.data(index, Qt.ItemDataRole.DecorationRole)  # asks for it
    qtbot.waitUntil(
        lambda: window.model.data(index, Qt.ItemDataRole.DecorationRole) is not None, timeout=10_000
    )
    assert list((indexed[0] / "thumbnails").glob("*/*.jpg"))


def test_a_new_window_reads_the_same_library(make_window, indexed) -> None:
    assert isinstance(make_window(indexed[0]), MainWindow)


@pytest.mark.skipif(
    multimedia_classes() is None,
    reason="QtMultimedia cannot load here (PySide6-Addons, or libpulse on Linux, missing)",
)
def test_space_plays_a_video_from_its_moment(make_window, indexed, qtbot) -> None:
    window = make_window(indexed[0])
    window.kind_filter.setCurrentIndex(window.kind_filter.findData("video"))
    response = search(qtbot, window, "a ball")
    moment = response.results.all[0].timestamp
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)
    assert window.detail.playing and window.detail.play_button.text() == "Stop"
    player = window.detail._player
    assert player.source().toLocalFile() == str(response.results.all[0].path)
    qtbot.waitUntil(lambda: player.position() >= moment * 1000 - 50, timeout=10_000)
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)
    assert not window.detail.playing


def test_the_gui_thread_never_reads_the_library(make_window, indexed, qtbot, monkeypatch) -> None:
    import threading

    from PySide6.QtWidgets import QMessageBox

    from engine.serve.client import EngineClient

    asked_on: list[str] = []
    real_open, real_ask = Library.open.__func__, EngineClient._ask

    def recording_open(cls, *args, **kwargs):
        asked_on.append(threading.current_thread().name)
        return real_open(cls, *args, **kwargs)

    def recording_ask(client, *args, **kwargs):
        asked_on.append(threading.current_thread().name)
        return real_ask(client, *args, **kwargs)

    monkeypatch.setattr(Library, "open", classmethod(recording_open))
    monkeypatch.setattr(EngineClient, "_ask", recording_ask)
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    monkeypatch.setattr(QMessageBox, "information", lambda *args: shown.append(args[2]))
    window = make_window(indexed[0])
    qtbot.waitUntil(lambda: window.status_info is not None, timeout=60_000)
    assert window.watched == [str(indexed[1])]  # the folders arrive with the worker's status
    search(qtbot, window, "a landscape")
    window.show_failed()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown == ["Every file was read."]
    assert asked_on and threading.main_thread().name not in asked_on
