"""The window shows what a query was understood to mean (chips), where a photo was taken and the words read in
it, and the reading pass in the status bar."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import Library
from tests.desktop.conftest import search
from tests.factory import LISBON, make_photo


@pytest.fixture(scope="module")
def remembered(tmp_path_factory):
    """A library whose photos have words on them, places and dates; indexed and read with tiny-test."""
    root = tmp_path_factory.mktemp("remembered")
    media = root / "media"
    make_photo(
        media / "bakery.jpg",
        size=(1200, 900),
        seed=1,
        text=["BAKERY"],
        gps=LISBON,
        taken_at=dt.datetime(2019, 7, 16, 8),
    )
    make_photo(
        media / "cafe.jpg",
        size=(1200, 900),
        seed=2,
        text=["CAFÉ LUNA"],
        gps=LISBON,
        taken_at=dt.datetime(2019, 7, 14, 12),
    )
    make_photo(media / "plain.jpg", size=(640, 480), seed=3, taken_at=dt.datetime(2018, 1, 1, 12))
    with Library.open(root / "library", writable=True) as library:
        report = library.index([media], model="tiny-test")
    assert report.read == 3
    return root / "library"


@pytest.mark.slow
def test_chips_show_the_place_the_date_and_the_words_and_a_click_removes_one(make_window, remembered, qtbot):
    window = make_window(remembered)
    response = search(qtbot, window, 'sign that says "bakery" in Lisbon in July 2019')
    assert response.error is None
    chips = {chip.objectName(): chip.text() for chip in window.chips.chips}
    assert chips == {
        "chip-words": "Words: “bakery”  ✕",
        "chip-place": "Place: Lisbon, Portugal  ✕",
        "chip-date": "Date: July 2019  ✕",
    }
    assert not window.chips.isHidden()
    assert [r.path.name for r in response.results.all] == ["bakery.jpg", "cafe.jpg"]  # Lisbon, July 2019

    place = next(chip for chip in window.chips.chips if chip.objectName() == "chip-place")
    with qtbot.waitSignal(window.searched, timeout=30_000) as removed:
        place.click()
    assert window.search_field.text() == 'sign that says "bakery" in July 2019'
    assert [p.kind for p in removed.args[0].results.parts] == ["visual", "words", "date"]

    with qtbot.waitSignal(window.searched, timeout=30_000) as plain:
        window.search_field.setText("a dog")
        window.search()
    assert plain.args[0].results.parts[0].kind == "visual" and window.chips.isHidden()


@pytest.mark.slow
def test_the_detail_pane_shows_the_place_and_the_words_read_with_the_query_marked(
    make_window, remembered, qtbot
):
    window = make_window(remembered)
    response = search(qtbot, window, "cafe")
    first = response.results.all[0]
    assert first.path.name == "cafe.jpg" and window.detail.item == first
    form, fields = window.detail.form, window.detail.fields
    assert form.isRowVisible(fields["Place"]) and fields["Place"].text() == "Lisbon, Portugal"
    assert form.isRowVisible(fields["Text"])
    assert "<b style=" in fields["Text"].text() and "CAFÉ</b>" in fields["Text"].text()
    plain = next(r for r in response.results.all if r.path.name == "plain.jpg")
    window.detail.show_item(plain)
    assert not form.isRowVisible(fields["Place"]) and not form.isRowVisible(fields["Text"])


@pytest.mark.slow
def test_the_status_bar_shows_the_reading_pass(make_window, tmp_path, qtbot):
    media = tmp_path / "media"
    for i in range(3):
        make_photo(media / f"sign-{i}.jpg", size=(1200, 900), seed=i, text=[f"SHOP {i}"])
    window = make_window(tmp_path / "library", start=True)
    qtbot.waitUntil(lambda: window.indexing.state == "idle", timeout=60_000)
    labels: list[str] = []
    states: list[str] = []
    window.indexing.progress.connect(lambda _: labels.append(window.indexing_status.label.text()))
    window.indexing.state_changed.connect(states.append)
    window.indexing.add_folder(str(media))
    qtbot.waitUntil(lambda: "reading" in states and window.indexing.state == "watching", timeout=180_000)
    assert any(label.startswith("Reading the words in photos and videos: 3 of 3") for label in labels)
    response = search(qtbot, window, '"shop 1"')
    assert response.results.all[0].path.name == "sign-1.jpg"
