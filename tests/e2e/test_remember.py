"""What people remember beyond the pixels, through the real `glimpse` command: the words written in photos and
video frames, where they were taken and when (tiny-test model: its visual scores mean nothing, so every file
found first here is found by its words, its place or its date)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GLIMPSE, glimpse, wait_for
from tests.factory import (
    LISBON,
    make_bad_metadata_files,
    make_hostile_files,
    make_photo,
    make_video,
)

TOKYO = (35.6762, 139.6503)
NAIROBI = (-1.2921, 36.8219)
YESTERDAY = dt.datetime.combine(dt.date.today() - dt.timedelta(days=1), dt.time(15, 30))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remember")
    photos = root / "photos"
    size = (1600, 1200)
    make_photo(
        photos / "cafe-sign.jpg",
        size=size,
        seed=1,
        text=["CAFÉ LUNA"],
        gps=LISBON,
        taken_at=dt.datetime(2019, 7, 14, 12),
    )
    make_photo(
        photos / "receipt.jpg",
        size=(900, 1400),
        seed=2,
        text=["Cafe Luna", "RECEIPT", "2 x espresso 3.00", "TOTAL 6.00"],
        taken_at=dt.datetime(2019, 7, 15, 9),
    )
    make_photo(photos / "router.jpg", size=size, seed=3, text=["WIFI PASSWORD", "sunflower42"])
    make_photo(photos / "plate.jpg", size=size, seed=4, text=["RE16 TGK"])
    make_photo(photos / "street.jpg", size=size, seed=5, text=["RUA AUGUSTA"], gps=LISBON)
    make_photo(
        photos / "tokyo-cat.jpg", size=(640, 480), seed=6, gps=TOKYO, taken_at=dt.datetime(2020, 3, 1, 12)
    )
    make_photo(
        photos / "nairobi.jpg", size=(640, 480), seed=7, gps=NAIROBI, taken_at=dt.datetime(2020, 8, 2, 8)
    )
    make_photo(photos / "christmas.jpg", size=(640, 480), seed=8, taken_at=dt.datetime(2021, 12, 25, 18))
    make_photo(photos / "yesterday.jpg", size=(640, 480), seed=9, taken_at=YESTERDAY)
    make_photo(photos / "plain.jpg", size=(640, 480), seed=10, taken_at=dt.datetime(2018, 6, 1, 12))
    make_video(
        root / "videos" / "airport.mp4",
        seconds=10,
        size=(640, 480),
        seed=11,
        caption=("GATE B52", 4, 7),
        metadata={"location": "+64.1355-021.8954/"},
    )
    make_bad_metadata_files(root / "bad-metadata")
    make_hostile_files(root / "hostile")
    return root


@pytest.fixture(scope="module")
def library(tmp_path_factory, media) -> Path:
    library = tmp_path_factory.mktemp("lib") / "library"
    run = glimpse("index", media, "--model", "tiny-test", "--json", library=library)
    assert run.code == 0, run.stderr
    assert run.json()["read"] >= 11
    return library


def search(library: Path, text: str, *more: str) -> list[dict]:
    run = glimpse("search", text, "--json", *more, library=library)
    assert run.code == 0, run.stderr
    return run.json()


def names(results: list[dict]) -> list[str]:
    return [Path(r["path"]).name for r in results]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("the receipt from Cafe Luna", "receipt.jpg"),  # three of its words written on it
        ("the wifi password on the router sticker", "router.jpg"),
        ("RE16", "plate.jpg"),  # part of a plate
        ('sign that says "augusta"', "street.jpg"),
        ("the moment the gate number was on screen B52", "airport.mp4"),
    ],
)
def test_words_written_in_a_picture_rank_it_first(library, query, first) -> None:
    results = search(library, query)
    assert names(results)[0] == first
    assert "text" in results[0]["matched"] and results[0]["text"]


@pytest.mark.slow
def test_a_video_found_by_its_words_opens_where_they_are_on_screen(library) -> None:
    [video] = [r for r in search(library, '"gate b52"') if r["kind"] == "video"]
    assert 4 <= video["timestamp"] < 7 and video["text"] == "GATE B52"


@pytest.mark.slow
def test_cafe_finds_the_accented_sign_and_the_receipt(library) -> None:
    results = search(library, "cafe")
    assert set(names(results)[:2]) == {"cafe-sign.jpg", "receipt.jpg"}
    sign = next(r for r in results if names([r]) == ["cafe-sign.jpg"])
    assert (
        sign["text"] == "CAFÉ LUNA"
        and sign["place"] == "Lisbon, Portugal"
        and sign["taken"].startswith("2019-07-14")
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("the cat in Tokyo", ["tokyo-cat.jpg"]),
        ("Kenya", ["nairobi.jpg"]),
        ("from Iceland", ["airport.mp4"]),
        ("photos from July 2019", None),  # checked below
        ("in 2020", ["nairobi.jpg", "tokyo-cat.jpg"]),
        ("Christmas 2021", ["christmas.jpg"]),
        ("yesterday", ["yesterday.jpg"]),
        ("in Lisbon", None),  # checked below: the Lisbon photos, the broken-metadata ones never
    ],
)
def test_a_place_or_a_date_narrows_the_results(library, query, expected) -> None:
    results = search(library, query, "--limit", "100")
    if expected is not None:
        assert names(results) == expected
    elif "July" in query:
        # Newest first: the receipt (the 15th), the sign (the 14th at noon), then the photos whose GPS is broken
        # but whose date is right (the 14th at 10:30).
        assert names(results)[:2] == ["receipt.jpg", "cafe-sign.jpg"]
        assert all(r["taken"].startswith("2019-07") for r in results)
        assert [r["taken"] for r in results] == sorted((r["taken"] for r in results), reverse=True)
    else:
        assert set(names(results)) >= {"cafe-sign.jpg", "street.jpg"}
        assert all(r["place"] == "Lisbon, Portugal" for r in results)
    assert all(("place" in r["matched"]) or ("date" in r["matched"]) for r in results)


@pytest.mark.slow
def test_bad_metadata_is_unknown_never_a_place_or_a_date(library) -> None:
    lisbon = set(names(search(library, "Lisbon", "--limit", "100")))
    assert not any(name.startswith(("gps_", "video_location_")) for name in lisbon)
    july = set(names(search(library, "July 2019", "--limit", "100")))
    assert not any(name.startswith(("date_", "video_date_")) for name in july)
    assert search(library, "2999") == [] or all("date" not in r["matched"] for r in search(library, "2999"))


@pytest.mark.slow
def test_explain_says_what_the_query_was_understood_to_mean(library) -> None:
    run = glimpse("search", "a cat in Tokyo in July 2019", "--explain", "--json", library=library)
    assert run.code == 0
    assert "looking for: a cat · place: Tokyo, Japan · date: July 2019" in run.stderr.splitlines()
    assert isinstance(run.json(), list)  # stdout stays one JSON document


@pytest.mark.slow
def test_status_counts_what_was_read_and_check_stays_consistent(library, media) -> None:
    status = glimpse("status", "--json", library=library).json()
    assert status["read"] == status["images"] + status["videos"] and status["pending"] == 0
    assert glimpse("check", library=library).code == 0


@pytest.mark.slow
def test_no_read_text_indexes_the_looks_only(tmp_path) -> None:
    photos = tmp_path / "photos"
    make_photo(photos / "sign.jpg", size=(1200, 900), text=["BAKERY"], gps=LISBON)
    library = tmp_path / "library"
    report = glimpse(
        "index", photos, "--model", "tiny-test", "--no-read-text", "--json", library=library
    ).json()
    assert report["images"] == 1 and report["read"] == 0
    assert glimpse("status", "--json", library=library).json()["read"] == 0
    assert names(search(library, "Lisbon")) == ["sign.jpg"]  # places come with the visual pass
    assert all("text" not in r["matched"] for r in search(library, "bakery"))
    report = glimpse("index", "--json", library=library).json()  # the next run reads it
    assert report["read"] == 1 and "text" in search(library, "bakery")[0]["matched"]


@pytest.mark.slow
def test_a_kill_during_the_reading_pass_loses_nothing_already_read(tmp_path) -> None:
    photos = tmp_path / "photos"
    for i in range(12):
        make_photo(photos / f"sign-{i:02d}.jpg", size=(1200, 900), seed=i, text=[f"SHOP {i:02d}"])
    library = tmp_path / "library"
    assert glimpse("index", photos, "--model", "tiny-test", "--no-read-text", library=library).code == 0
    catalogue = library / "catalogue.sqlite"

    def read_so_far() -> int:
        with sqlite3.connect(catalogue) as db:
            return db.execute("SELECT count(*) FROM media WHERE read_at IS NOT NULL").fetchone()[0]

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    indexing = subprocess.Popen([GLIMPSE, "index", "--library", library], env=env, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: read_so_far() >= 2, seconds=180, every=0.1)
    indexing.send_signal(signal.SIGKILL)
    indexing.wait()
    kept = read_so_far()
    assert kept < 12
    time.sleep(0.5)
    assert glimpse("index", library=library).code == 0
    with sqlite3.connect(catalogue) as db:
        assert db.execute("SELECT count(*) FROM media WHERE read_at IS NOT NULL").fetchone()[0] == 12
        # one reading per sign, none twice
        assert db.execute("SELECT count(*), count(DISTINCT media_id) FROM readings").fetchone() == (12, 12)
    for i in (0, 11):
        assert names(search(library, f'"shop {i:02d}"'))[0] == f"sign-{i:02d}.jpg"
    assert glimpse("check", library=library).code == 0
