"""The full-text index of what was read: folded words, parts of codes, one misread letter, phrases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.catalogue import Catalogue, NewFrame, NewReading
from engine.search.text import TextRetriever
from engine.search.words import deletions, fold, within_one_edit, words


def read(catalogue: Catalogue, path: bytes, texts: dict[int | None, str]) -> int:
    """An indexed file with these texts read at these moments (None: a photo), written as the reading pass does."""
    kind = "image" if list(texts) == [None] else "video"
    model = catalogue.model_id("m", 4)
    media_id = catalogue.upsert_pending(path, kind, 1, 1)
    moments = [t for t in texts if t is not None] or [None]
    catalogue.record_indexed(
        media_id,
        model_id=model,
        fingerprint=None,
        width=1,
        height=1,
        duration_ms=None,
        taken_at=None,
        frames=[NewFrame(t, np.ones(4) / 2) for t in moments],
    )
    readings, terms = [], set()
    for moment, text in texts.items():
        lines = [
            {"text": line, "box": [[0, 0], [1, 0], [1, 1], [0, 1]], "confidence": 0.9}
            for line in text.split("\n")
        ]
        readings.append(NewReading(moment, text, fold(text), json.dumps(lines)))
        for word in words(text):
            terms |= {(v, word) for v in deletions(word)} | ({(word, word)} if deletions(word) else set())
    catalogue.record_reading(media_id, readings, terms)
    return media_id


@pytest.fixture
def catalogue(tmp_path):
    catalogue = Catalogue(tmp_path / "catalogue.sqlite")
    yield catalogue
    catalogue.close()


def test_words_are_found_case_and_accent_folded(catalogue) -> None:
    cafe = read(catalogue, b"/cafe.jpg", {None: "CAFÉ LUNA\nRua Augusta 12"})
    read(catalogue, b"/other.jpg", {None: "EXIT"})
    found = TextRetriever(catalogue).find(["cafe"])
    assert set(found) == {cafe} and found[cafe].lines == ("CAFÉ LUNA",) and found[cafe].share == 1.0
    assert set(TextRetriever(catalogue).find(["Straße"])) == set()
    straße = read(catalogue, b"/street.jpg", {None: "Hauptstraße"})
    assert set(TextRetriever(catalogue).find(["hauptstrasse"])) == {straße}


def test_part_of_a_code_or_a_plate_finds_it(catalogue) -> None:
    spaced = read(catalogue, b"/spaced.jpg", {None: "RE16 TGK"})
    joined = read(catalogue, b"/joined.jpg", {None: "RE16TGK"})
    retriever = TextRetriever(catalogue)
    assert set(retriever.find(["RE16"])) == {spaced, joined}
    assert set(retriever.find(["16TG"])) == {joined}
    assert set(retriever.find(["TGK"])) == {spaced}  # a plain word: whole words only


def test_one_misread_letter_does_not_lose_a_long_word(catalogue) -> None:
    misread = read(catalogue, b"/sign.jpg", {None: "BAKFRY"})  # E read as F
    short = read(catalogue, b"/short.jpg", {None: "CAR"})
    retriever = TextRetriever(catalogue)
    assert set(retriever.find(["bakery"])) == {misread}
    assert set(retriever.find(["bakry"])) == {misread}  # a letter the person left out
    assert set(retriever.find(["cat"])) == set()  # short words must match exactly
    assert set(retriever.find(["car"])) == {short}
    assert set(retriever.find(["banker"])) == set()  # two letters away


def test_a_phrase_must_be_in_order_and_the_share_counts_words(catalogue) -> None:
    both = read(catalogue, b"/both.jpg", {None: "Cafe Luna"})
    reversed_ = read(catalogue, b"/reversed.jpg", {None: "Luna Cafe"})
    retriever = TextRetriever(catalogue)
    assert set(retriever.find(["cafe luna"])) == {both}
    shares = {m: match.share for m, match in retriever.find(["receipt", "cafe", "luna"]).items()}
    assert shares == {both: 2 / 3, reversed_: 2 / 3}


def test_a_video_is_found_at_the_moment_its_words_are_on_screen(catalogue) -> None:
    clip = read(catalogue, b"/clip.mp4", {0: "", 4000: "GATE B52", 8000: "WELCOME"})
    [match] = TextRetriever(catalogue).find(["gate", "b52"]).values()
    assert match.media_id == clip and match.timestamp_ms == 4000 and match.found == ("gate", "b52")


def test_only_the_allowed_files_are_found(catalogue) -> None:
    first = read(catalogue, b"/a.jpg", {None: "EXIT"})
    read(catalogue, b"/b.jpg", {None: "EXIT"})
    assert set(TextRetriever(catalogue).find(["exit"], allowed={first})) == {first}


def test_what_was_read_goes_with_its_file_and_changes_with_it(catalogue) -> None:
    media = read(catalogue, b"/a.jpg", {None: "EXIT"})
    catalogue.upsert_pending(b"/a.jpg", "image", 2, 2)  # the file changed: read again
    assert TextRetriever(catalogue).find(["exit"]) == {}
    assert catalogue.unread() == [] and catalogue.media_by_path(b"/a.jpg").read_at is None
    read(catalogue, b"/b.jpg", {None: "EXIT"})
    catalogue.delete_media([catalogue.media_by_path(b"/b.jpg").id])
    assert TextRetriever(catalogue).find(["exit"]) == {}
    assert media  # its row stays, pending


def test_hostile_query_words_are_only_words(catalogue) -> None:
    read(catalogue, b"/a.jpg", {None: 'he said "NEAR" OR * ^'})
    for wanted in ['" OR "', "NEAR(", "*", "a:b", "'", "--", "()"]:
        TextRetriever(catalogue).find([wanted])  # no FTS5 syntax error reaches the user


def test_one_edit() -> None:
    assert within_one_edit("bakery", "bakfry") and within_one_edit("bakery", "bakry")
    assert within_one_edit("bakery", "bakerys") and not within_one_edit("bakery", "bkaery")
