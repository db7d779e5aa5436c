import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.dates import DateRange, Granularity, find_dates

TODAY = date(2027, 3, 15)  # a Monday
D, W, M, S, Y = Granularity.DAY, Granularity.WEEK, Granularity.MONTH, Granularity.SEASON, Granularity.YEAR
H, SPAN, DECADE = Granularity.HOLIDAY, Granularity.SPAN, Granularity.DECADE


def one(query: str, today: date = TODAY) -> DateRange:
    match = find_dates(query, today)
    assert len(match.ranges) == 1, f"{query!r} gave {match.ranges}"
    return match.ranges[0]


@pytest.mark.parametrize(
    ("query", "start", "end", "granularity"),
    [
        ("July 2019", date(2019, 7, 1), date(2019, 7, 31), M),
        ("in 2020", date(2020, 1, 1), date(2020, 12, 31), Y),
        ("photos from 2018", date(2018, 1, 1), date(2018, 12, 31), Y),
        ("last summer", date(2026, 6, 1), date(2026, 8, 31), S),
        ("Christmas 2021", date(2021, 12, 24), date(2021, 12, 26), H),
        ("yesterday", date(2027, 3, 14), date(2027, 3, 14), D),
        ("last week", date(2027, 3, 8), date(2027, 3, 14), W),
        ("2019-07-14", date(2019, 7, 14), date(2019, 7, 14), D),
        ("14 July 2019", date(2019, 7, 14), date(2019, 7, 14), D),
        ("summer 2018", date(2018, 6, 1), date(2018, 8, 31), S),
        ("last year", date(2026, 1, 1), date(2026, 12, 31), Y),
        ("this month", date(2027, 3, 1), date(2027, 3, 31), M),
        ("Jul 2019", date(2019, 7, 1), date(2019, 7, 31), M),
        ("2019-07", date(2019, 7, 1), date(2019, 7, 31), M),
        ("July 14th, 2019", date(2019, 7, 14), date(2019, 7, 14), D),
        ("the 5th of May 2019", date(2019, 5, 5), date(2019, 5, 5), D),
        ("14 Jul", date(2026, 7, 14), date(2026, 7, 14), D),  # the most recent 14 July
        ("march 3rd", date(2027, 3, 3), date(2027, 3, 3), D),
        ("14/07/2019", date(2019, 7, 14), date(2019, 7, 14), D),
        ("14.07.19", date(2019, 7, 14), date(2019, 7, 14), D),
        ("today", TODAY, TODAY, D),
        ("the day before yesterday", date(2027, 3, 13), date(2027, 3, 13), D),
        ("this week", date(2027, 3, 15), date(2027, 3, 21), W),
        ("last weekend", date(2027, 3, 13), date(2027, 3, 14), W),
        ("last month", date(2027, 2, 1), date(2027, 2, 28), M),
        ("this year", date(2027, 1, 1), date(2027, 12, 31), Y),
        ("3 days ago", date(2027, 3, 12), date(2027, 3, 12), D),
        ("two weeks ago", date(2027, 3, 1), date(2027, 3, 7), W),
        ("a year ago", date(2026, 1, 1), date(2026, 12, 31), Y),
        ("past 3 days", date(2027, 3, 13), TODAY, SPAN),
        ("last Monday", date(2027, 3, 8), date(2027, 3, 8), D),  # not today, though today is a Monday
        ("on Sunday", date(2027, 3, 14), date(2027, 3, 14), D),
        ("last December", date(2026, 12, 1), date(2026, 12, 31), M),
        ("last Christmas", date(2026, 12, 24), date(2026, 12, 26), H),
        ("last winter", date(2026, 12, 1), date(2027, 2, 28), S),
        ("this summer", date(2027, 6, 1), date(2027, 8, 31), S),
        ("winter 2018", date(2017, 12, 1), date(2018, 2, 28), S),  # named by its January, as forecasters do
        ("winter 2018/19", date(2018, 12, 1), date(2019, 2, 28), S),
        ("in the summer of 2019", date(2019, 6, 1), date(2019, 8, 31), S),
        ("summer of '69", date(1969, 6, 1), date(1969, 8, 31), S),
        ("Christmas Eve 2020", date(2020, 12, 24), date(2020, 12, 24), H),
        ("New Year's Eve 2019", date(2019, 12, 31), date(2020, 1, 1), H),
        ("New Year 2020", date(2019, 12, 31), date(2020, 1, 1), H),
        ("Easter 2019", date(2019, 4, 19), date(2019, 4, 22), H),
        ("Thanksgiving 2023", date(2023, 11, 23), date(2023, 11, 23), H),
        ("the 90s", date(1990, 1, 1), date(1999, 12, 31), DECADE),
        ("the nineties", date(1990, 1, 1), date(1999, 12, 31), DECADE),
        ("1980s", date(1980, 1, 1), date(1989, 12, 31), DECADE),
        ("between 2018 and 2020", date(2018, 1, 1), date(2020, 12, 31), SPAN),
        ("2018-2020", date(2018, 1, 1), date(2020, 12, 31), SPAN),
        ("2018 – 2020", date(2018, 1, 1), date(2020, 12, 31), SPAN),
        ("from June to August 2019", date(2019, 6, 1), date(2019, 8, 31), SPAN),
        ("since May 2019", date(2019, 5, 1), TODAY, SPAN),
        ("before 2000", date(1826, 1, 1), date(1999, 12, 31), SPAN),
    ],
)
def test_each_phrase_names_the_days_a_person_means(
    query: str, start: date, end: date, granularity: Granularity
) -> None:
    found = one(query)

    assert (found.start, found.end, found.granularity) == (start, end, granularity)
    assert not found.every_year


@pytest.mark.parametrize(
    ("query", "start", "end", "granularity"),
    [
        ("in December", date(2026, 12, 1), date(2026, 12, 31), M),
        ("in May", date(2026, 5, 1), date(2026, 5, 31), M),
        ("photos from March", date(2027, 3, 1), date(2027, 3, 31), M),  # this March has begun
        ("summer", date(2026, 6, 1), date(2026, 8, 31), S),
        ("in the fall", date(2026, 9, 1), date(2026, 11, 30), S),
        ("at Christmas", date(2026, 12, 24), date(2026, 12, 26), H),
        ("Easter", date(2026, 4, 3), date(2026, 4, 6), H),
    ],
)
def test_a_month_season_or_holiday_without_a_year_means_every_year(
    query: str, start: date, end: date, granularity: Granularity
) -> None:
    # Its most recent occurrence that has begun comes first; the same time of every other year matches too.
    found = one(query)

    assert (found.start, found.end, found.granularity, found.every_year) == (start, end, granularity, True)


def test_every_december_is_december() -> None:
    december = one("in December")

    assert december.contains(date(2026, 12, 25)) and december.contains(date(2003, 12, 1))
    assert not december.contains(date(2026, 11, 30)) and not december.contains(date(2027, 1, 1))
    assert [(r.start, r.end) for r in december.occurrences(2024, 2026)] == [
        (date(2024, 12, 1), date(2024, 12, 31)),
        (date(2025, 12, 1), date(2025, 12, 31)),
        (date(2026, 12, 1), date(2026, 12, 31)),
    ]
    assert not any(r.every_year for r in december.occurrences(2024, 2026))


def test_recurring_winters_and_moving_holidays_land_on_their_own_days() -> None:
    winter = one("in winter")
    easter = one("at Easter")

    assert winter.contains(date(2020, 2, 29)) and winter.contains(date(2019, 12, 1))
    assert not winter.contains(date(2020, 3, 1))
    assert easter.contains(date(2019, 4, 21)) and easter.contains(date(2024, 3, 31))
    assert not easter.contains(date(2019, 3, 31))
    assert [(r.start, r.end) for r in easter.occurrences(2024, 2024)] == [
        (date(2024, 3, 29), date(2024, 4, 1))
    ]


def test_one_range_is_its_own_only_occurrence() -> None:
    found = one("July 2019")

    assert found.occurrences(2000, 2030) == [found]
    assert found.contains(date(2019, 7, 31)) and not found.contains(date(2019, 8, 1))


@pytest.mark.parametrize(
    "query",
    [
        "2 dogs",
        "a 5 euro note",
        "room 101",
        "RE16 TGK",
        "2000 steps",
        "1000 lanterns over a river",
        "a dog that may bite",
        "kids march in the street",
        "a dog about to fall",
        "a spring in the forest",
        "a woman in her 20s",
        "christmas tree",  # a thing to see: every photo of one is not taken on the 24th-26th
        "summer dress",
        "autumn leaves",
        "a new year's resolution",
        'sign that says "2019"',  # quoted: words to read in the picture
        "in 3000",  # not a plausible year
        "year 1200",
        "2019-02-30",
        "a cat",
        "",
    ],
)
def test_numbers_and_words_that_are_no_date_stay_in_the_query(query: str) -> None:
    match = find_dates(query, TODAY)

    assert match.ranges == []
    assert match.remainder == " ".join(query.split())


@pytest.mark.parametrize(
    ("query", "remainder", "phrase"),
    [
        ("a cat in Tokyo in July 2019", "a cat in Tokyo", "in July 2019"),
        ("photos from 2018", "photos", "from 2018"),
        ("beach 2019", "beach", "2019"),
        ("dog on the beach last summer, happy", "dog on the beach, happy", "last summer"),
        ("kids at Christmas with grandma", "kids with grandma", "at Christmas"),
        ("1990s fashion", "fashion", "1990s"),
        ("a dog in the fall", "a dog", "in the fall"),
    ],
)
def test_the_date_words_are_removed_with_their_preposition(query: str, remainder: str, phrase: str) -> None:
    match = find_dates(query, TODAY)

    assert match.remainder == remainder
    assert [query[a:b] for a, b in match.spans] == [phrase]


def test_two_dates_in_one_query() -> None:
    match = find_dates("the beach in July 2019 and August 2020", TODAY)

    assert [(r.start, r.end) for r in match.ranges] == [
        (date(2019, 7, 1), date(2019, 7, 31)),
        (date(2020, 8, 1), date(2020, 8, 31)),
    ]
    assert match.remainder == "the beach"


def test_ambiguous_month_names_need_a_word_that_makes_them_months() -> None:
    assert find_dates("in march", TODAY).ranges
    assert find_dates("Paris May", TODAY).ranges  # written as a name, not the first word
    assert not find_dates("May I see the dog", TODAY).ranges
    assert find_dates("May 2019", TODAY).ranges


def test_years_count_from_the_first_photograph_to_next_year() -> None:
    assert one("in 1826").start == date(1826, 1, 1)
    assert one("in 2028").start == date(2028, 1, 1)
    assert not find_dates("in 1825", TODAY).ranges
    assert not find_dates("in 2029", TODAY).ranges


def test_seasons_in_the_southern_hemisphere() -> None:
    summer = find_dates("summer 2019", TODAY, southern_hemisphere=True).ranges[0]
    winter = find_dates("last winter", TODAY, southern_hemisphere=True).ranges[0]

    assert (summer.start, summer.end) == (date(2018, 12, 1), date(2019, 2, 28))
    assert (winter.start, winter.end) == (date(2026, 6, 1), date(2026, 8, 31))


def test_relative_dates_follow_today() -> None:
    assert one("yesterday", date(2024, 3, 1)).start == date(2024, 2, 29)
    assert one("last month", date(2024, 1, 10)).start == date(2023, 12, 1)
    assert one("in December", date(2026, 12, 10)).start == date(2026, 12, 1)  # this December has begun
    assert one("last summer", date(2027, 9, 5)).start == date(2027, 6, 1)  # just ended
    assert one("last summer", date(2027, 7, 5)).start == date(2026, 6, 1)  # this one is not over


_QUERY_WORDS = [
    "in",
    "July",
    "2019",
    "last",
    "summer",
    "christmas",
    "the",
    "90s",
    "a",
    "dog",
    "14",
    "of",
    ",",
    "-",
    "between",
    "and",
    "since",
    "2018-2020",
    "'19",
    "may",
    "week",
    "ago",
    "3",
    "14/07/2019",
    "2019-13-40",
    "winter",
    "2018/19",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_QUERY_WORDS) | st.text(max_size=8), max_size=8))
def test_any_query_gives_ranges_inside_it_or_none(words: list[str]) -> None:
    query = " ".join(words)
    match = find_dates(query, TODAY)

    assert len(match.ranges) == len(match.spans)
    for found, (start, end) in zip(match.ranges, match.spans, strict=True):
        assert 0 <= start < end <= len(query)
        assert found.start <= found.end


def test_queries_without_a_numeric_date_never_load_dateparser() -> None:
    # dateparser costs about half a second to import and warm: a query typed without a numeric date must not wait.
    script = (
        "import sys; from datetime import date; from engine.search.dates import find_dates; "
        "[find_dates(q, date(2027, 3, 15)) for q in ('a cat in July 2019', 'last summer', '14 July 2019', 'dog')]; "
        "assert 'dateparser' not in sys.modules, 'dateparser was imported'; "
        "find_dates('14/07/2019', date(2027, 3, 15)); assert 'dateparser' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
