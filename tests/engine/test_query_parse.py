"""One search field: a query split into its visual description, words to read, places and dates."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.media.location import Place
from engine.search.query import parse

TODAY = dt.date(2026, 12, 1)
LISBON = Place(city="Lisbon", region="Lisbon", country="Portugal", country_code="PT")
TOKYO = Place(city="Tokyo", region="Tokyo", country="Japan", country_code="JP")
REYKJAVIK = Place(city="Reykjavík", region="Capital Region", country="Iceland", country_code="IS")
KNOWN = (LISBON, TOKYO, REYKJAVIK)


def test_a_place_and_a_date_leave_the_visual_description() -> None:
    query = parse("a cat in Tokyo in July 2019", today=TODAY, places=KNOWN)
    assert query.visual == "a cat"
    assert [p.places for p in query.places] == [frozenset({TOKYO})]
    [july] = query.dates
    assert (july.start, july.end) == (dt.date(2019, 7, 1), dt.date(2019, 7, 31))
    assert [(p.kind, p.label) for p in query.parts] == [
        ("visual", "a cat"),
        ("place", "Tokyo, Japan"),
        ("date", "July 2019"),
    ]
    assert query.parts[2].detail == "1–31 July 2019"


@pytest.mark.parametrize("typed", ["in Lisbon", "Lisbon", "photos from lisbon", "pictures taken in LISBON"])
def test_a_query_that_is_only_a_place_has_no_visual_part(typed: str) -> None:
    query = parse(typed, today=TODAY, places=KNOWN)
    assert query.visual == "" and [p.places for p in query.places] == [frozenset({LISBON})]


def test_accents_and_countries_name_places() -> None:
    assert parse("reykjavik", today=TODAY, places=KNOWN).places[0].places == frozenset({REYKJAVIK})
    iceland = parse("from Iceland", today=TODAY, places=KNOWN).places[0]
    assert iceland.places == frozenset({REYKJAVIK}) and iceland.level == "country"


def test_a_place_the_library_does_not_hold_stays_visual() -> None:
    query = parse("a giraffe in Kenya", today=TODAY, places=KNOWN)
    assert query.places == () and query.visual == "a giraffe in Kenya"
    assert "kenya" in query.words  # and it may be written somewhere


def test_quoted_text_is_always_words_to_read() -> None:
    query = parse('sign that says "bakery"', today=TODAY, places=KNOWN)
    assert query.phrases == ("bakery",) and query.visual == "sign that says"
    assert ("words", "“bakery”") in [(p.kind, p.label) for p in query.parts]
    typographic = parse("the “Cafe Luna” receipt", today=TODAY)
    assert typographic.phrases == ("Cafe Luna",) and typographic.visual == "the receipt"
    # A year in quotes is words to read, never a date.
    assert parse('"2019"', today=TODAY).dates == () and parse('"2019"', today=TODAY).phrases == ("2019",)


def test_visual_words_may_be_written_stop_words_are_not_looked_for() -> None:
    query = parse("the receipt from Cafe Luna", today=TODAY)
    assert query.words == ("receipt", "cafe", "luna")
    assert parse("RE16 plate", today=TODAY).words == ("re16", "plate")


def test_spans_point_at_the_typed_words_so_that_a_part_can_be_taken_out() -> None:
    query = parse("a cat  in Tokyo in July 2019", today=TODAY, places=KNOWN)
    assert query.text == "a cat in Tokyo in July 2019"  # spaces tidied; spans refer to this text
    [place] = [p for p in query.parts if p.kind == "place"]
    [(start, end)] = place.spans
    assert query.text[start:end] == "in Tokyo"
    remaining = query.text[:start] + query.text[end:]
    assert parse(remaining, today=TODAY, places=KNOWN).places == ()


def test_dates_keep_their_granularity() -> None:
    year = parse("photos from 2018", today=TODAY).dates[0]
    assert (year.start, year.end) == (dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    summer = parse("last summer", today=TODAY).dates[0]
    assert (summer.start, summer.end) == (dt.date(2026, 6, 1), dt.date(2026, 8, 31))
    assert parse("in December", today=TODAY).dates[0].every_year
    assert parse("yesterday", today=TODAY).dates[0].start == dt.date(2026, 11, 30)


def test_numbers_that_are_no_dates_stay_in_the_description() -> None:
    for typed in ("2 dogs on a beach", "RE16 TGK", "room 101"):
        query = parse(typed, today=TODAY)
        assert query.dates == () and query.visual == typed
