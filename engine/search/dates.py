"""Times named in a typed query ("July 2019", "last summer", "Christmas 2021", "yesterday"), as date ranges.

A date in a query names a stretch of days, not a moment: "July 2019" is the whole month, "in 2020" the whole
year, and the range says which (`Granularity`). A small grammar over the query's words finds the phrases and
their granularity; dateparser reads the day-level ones ("14 July 2019", "July 14th, 2019", "14.07.2019") in all
their spellings. dateparser alone cannot serve: it fills the parts a phrase leaves out from today ("in 2020" is
1 December 2020), knows no seasons or holidays, and its `search_dates` takes "a 5" for 5 January and "the sun"
for Sunday.

Decisions a person would notice:

- A month, season or holiday without a year ("in December", "summer", "at Christmas") means that time of
  every year, as Google Photos reads it: the photos of last December come first in a newest-first list, and
  older Decembers are not lost. With "last", "this" or a year it is one ("last December", "summer 2018").
- "last summer", "last December", "last Christmas": the most recent one that has ended. "this …": the one of
  this year. "last week", "last month", "last year": the calendar week (Monday to Sunday), month or year
  before this one; "past 3 days": the rolling days up to today.
- Seasons are the meteorological ones of the northern hemisphere (summer is June to August) unless the
  caller says the southern; "winter 2018" is the winter months of 2018 (January, February, December),
  "winter 2018/19" the winter from December 2018.
- "Christmas" is 24 to 26 December (the eve, the day, Boxing Day: when the photos are taken), "Christmas Eve"
  and "Christmas Day" one day each; "New Year('s Eve)" 31 December to 1 January (the party crosses midnight);
  "Easter" Good Friday to Easter Monday.
- A bare number is a year only where a person would mean one: 1826 (the first photograph) to next year, and
  after a preposition ("in 2020", "from 2018"), at the end of the query ("beach 2019") or next to another
  date word; "2000 steps", "2 dogs", "a 5 euro note", "room 101" and "RE16 TGK" hold no date.
- Words in quotes are words to read in the picture, never a date.
"""

from __future__ import annotations

import calendar
import enum
import functools
import locale
import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from dateutil.easter import easter

if TYPE_CHECKING:
    from collections.abc import Callable

#: No photograph is older (Niépce, 1826); a year beyond next year is no capture date either.
FIRST_YEAR = 1826


class Granularity(enum.StrEnum):
    """How much time a date phrase names."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    SEASON = "season"
    YEAR = "year"
    DECADE = "decade"
    HOLIDAY = "holiday"
    #: An explicit stretch: "between 2018 and 2020", "since May 2019", "past 3 days".
    SPAN = "span"


@dataclass(frozen=True)
class DateRange:
    """The days `start` to `end`, both included; with `every_year`, those days in every year.

    For a range that recurs, `start`…`end` is its most recent occurrence that has begun (last December, in
    March), and `occurrences` gives the others.
    """

    start: date
    end: date
    granularity: Granularity
    every_year: bool = False
    #: For a recurring holiday whose days move (Easter): how to find it in a given year.
    holiday: str | None = None

    def contains(self, day: date) -> bool:
        """Whether `day` is in this range (in any year's occurrence of it, for one that recurs)."""
        if not self.every_year:
            return self.start <= day <= self.end
        return any(o.start <= day <= o.end for o in (self.in_year(day.year), self.in_year(day.year - 1)) if o)

    def in_year(self, year: int) -> DateRange | None:
        """The occurrence that starts in `year`, as a range of its own (None outside what dates can say)."""
        if not 1 < year < 9999:
            return None
        if self.holiday is not None:
            start, end = _HOLIDAYS[self.holiday](year)
        else:
            start = _same_day_in(self.start, year)
            end = _same_day_in(self.end, year + self.end.year - self.start.year)
        return DateRange(start, end, self.granularity)

    def occurrences(self, first_year: int, last_year: int) -> list[DateRange]:
        """The ranges, none recurring, that this one names in the years `first_year`…`last_year`.

        For a filter in SQL: with the years the library's photos span, a recurring "December" becomes one
        range per year; a range that does not recur is itself.
        """
        if not self.every_year:
            return [replace(self, holiday=None)]
        found = (self.in_year(year) for year in range(first_year, last_year + 1))
        return [o for o in found if o is not None]


@dataclass(frozen=True)
class DateMatch:
    """The dates a query names, and what is left of it.

    `ranges[i]` was read from `query[spans[i][0]:spans[i][1]]`, which includes a preposition right before
    it ("in 2020"); `remainder` is the query without those spans, its spaces tidied.
    """

    ranges: list[DateRange]
    spans: list[tuple[int, int]]
    remainder: str


def find_dates(query: str, today: date, *, southern_hemisphere: bool = False) -> DateMatch:
    """The date ranges named in `query`, read as a person typing it on `today` means them."""
    tokens = _tokens(query)
    if not any(t.kind not in (_WORD, _OTHER) or t.norm in _DATE_WORDS for t in tokens):
        return DateMatch([], [], _tidy(query))  # the common case, decided without any parsing
    parser = _Parser(query, tokens, today, southern_hemisphere)
    found = parser.run()
    spans = [span for span, _ in found]
    return DateMatch([r for _, r in found], spans, without_spans(query, spans))


def preload() -> None:
    """Import and warm dateparser now (about half a second), so that the first typed query does not wait."""
    _parse_day("14/07/2019", date(2020, 1, 1), month_first=False)


# --- words ---------------------------------------------------------------------------------------------------

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
}
_MONTH_ABBREVIATIONS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
# Month names that are also verbs or first names: alone, they are a month only after a word that says so.
_AMBIGUOUS_MONTHS = {"may", "march", "april", "june", "august"}
# Northern hemisphere, meteorological: (first month, last month).
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11), "winter": (12, 2)}
_AMBIGUOUS_SEASONS = {"fall", "spring"}  # "a dog about to fall", "a spring in the forest"
_WEEKDAYS = {name: i for i, name in enumerate(calendar.day_name[i].lower() for i in range(7))}
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month"}
_UNITS |= {"year": "year", "years": "year"}
# Words before a date that belong to it and go with it: "photos from 2018" leaves "photos".
_PREPOSITIONS = {"in", "on", "at", "from", "during", "of", "around", "for"}
_RELATIVE = {"last", "this", "past", "previous"}
_DATE_WORDS = (
    set(_MONTHS)
    | set(_MONTH_ABBREVIATIONS)
    | set(_SEASONS)
    | set(_WEEKDAYS)
    | {"today", "yesterday", "tonight", "week", "weekend", "month", "year", "ago", "christmas", "xmas"}
    | {"easter", "halloween", "valentine's", "valentines", "thanksgiving", "new", "boxing"}
    | {"fifties", "sixties", "seventies", "eighties", "nineties"}
)


def _christmas(year: int) -> tuple[date, date]:
    return date(year, 12, 24), date(year, 12, 26)


def _thanksgiving(year: int) -> tuple[date, date]:
    first = date(year, 11, 1)
    thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 21)  # the fourth Thursday of November
    return thursday, thursday


def _easter(year: int) -> tuple[date, date]:
    sunday = easter(year)
    return sunday - timedelta(days=2), sunday + timedelta(days=1)


def _one_day(month: int, day: int) -> Callable[[int], tuple[date, date]]:
    return lambda year: (date(year, month, day), date(year, month, day))


# Each holiday's days in a given year. New Year belongs to the year that begins.
_HOLIDAYS: dict[str, Callable[[int], tuple[date, date]]] = {
    "christmas": _christmas,
    "christmas eve": _one_day(12, 24),
    "christmas day": _one_day(12, 25),
    "boxing day": _one_day(12, 26),
    "new year's eve": lambda year: (date(year, 12, 31), date(year + 1, 1, 1)),
    "new year": lambda year: (date(year - 1, 12, 31), date(year, 1, 1)),
    "new year's day": _one_day(1, 1),
    "easter": _easter,
    "halloween": _one_day(10, 31),
    "valentine's day": _one_day(2, 14),
    "thanksgiving": _thanksgiving,
}
# The ways to write them, as word sequences, longest first.
_HOLIDAY_NAMES = sorted(
    [
        (("christmas", "eve"), "christmas eve"),
        (("xmas", "eve"), "christmas eve"),
        (("christmas", "day"), "christmas day"),
        (("christmas",), "christmas"),
        (("xmas",), "christmas"),
        (("boxing", "day"), "boxing day"),
        (("new", "year's", "eve"), "new year's eve"),
        (("new", "years", "eve"), "new year's eve"),
        (("new", "year's", "day"), "new year's day"),
        (("new", "years", "day"), "new year's day"),
        (("new", "year"), "new year"),
        (("new", "year's"), "new year"),
        (("new", "years"), "new year"),
        (("easter",), "easter"),
        (("halloween",), "halloween"),
        (("valentine's", "day"), "valentine's day"),
        (("valentines", "day"), "valentine's day"),
        (("valentine's",), "valentine's day"),
        (("thanksgiving",), "thanksgiving"),
    ],
    key=lambda entry: -len(entry[0]),
)


# --- tokens --------------------------------------------------------------------------------------------------

_WORD, _NUMBER, _ORDINAL, _NUMERIC_DATE, _YEAR_SPAN, _DECADE, _SHORT_YEAR, _PUNCT, _OTHER = range(9)
# A token: letters and digits, joined by apostrophes, dots, slashes or hyphens ("2019-07-14", "new year's",
# "'90s", "RE16"); or a comma or dash standing between words.
_TOKEN = re.compile(r"['’]?\w(?:[\w'’./-]*\w)?['’]?s?|[,–—]|(?<!\S)-(?!\S)")
_CLASSIFY = [
    (
        _NUMERIC_DATE,
        re.compile(r"\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"),
    ),
    (_YEAR_SPAN, re.compile(r"\d{4}[-/]\d{2}(?:\d{2})?")),
    (_DECADE, re.compile(r"'?(?:\d{2}|\d{3}0)'?s")),
    (_SHORT_YEAR, re.compile(r"'\d{2}")),
    (_ORDINAL, re.compile(r"\d{1,2}(?:st|nd|rd|th)")),
    (_NUMBER, re.compile(r"\d+")),
    (_WORD, re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*'?")),
    (_PUNCT, re.compile(r"[,–—-]")),
]
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|«[^»]*»")
_DECADE_WORDS = {"fifties": 1950, "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}


@dataclass(frozen=True)
class _Token:
    kind: int
    text: str  # as typed
    norm: str  # lower case, accents and curly apostrophes folded
    start: int
    end: int


def _tokens(query: str) -> list[_Token]:
    quoted = [m.span() for m in _QUOTED.finditer(query)]
    tokens = []
    for match in _TOKEN.finditer(query):
        text, (start, end) = match.group(), match.span()
        norm = _fold(text)
        kind = _OTHER
        if not any(a <= start < b for a, b in quoted):  # quoted words are words to read, never a date
            kind = next((k for k, pattern in _CLASSIFY if pattern.fullmatch(norm)), _OTHER)
        tokens.append(_Token(kind, text, norm, start, end))
    return tokens


def _fold(text: str) -> str:
    text = text.replace("’", "'").casefold()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _two_years(text: str) -> tuple[int, int]:
    """ "2018-2020" → (2018, 2020); "2018/19" → (2018, 2019)."""
    first, second = re.split(r"[-/]", text, maxsplit=1)
    start = int(first)
    return start, int(second) if len(second) == 4 else start // 100 * 100 + int(second)


# --- the grammar ---------------------------------------------------------------------------------------------

_Found = tuple[DateRange, int]  # a range and the index of the token after its phrase
# Words before a bare year that make it one: "in 2020", "since 2018", "between 2018 and 2020".
_YEAR_CONTEXT = _PREPOSITIONS | {
    "since",
    "until",
    "till",
    "before",
    "after",
    "between",
    "and",
    "to",
    "-",
    "–",
    "—",
}
# Words before an ambiguous month or season name that make it one: "in May", "every spring", "late March".
_NAME_CONTEXT = _PREPOSITIONS | {"every", "early", "late", "mid", "since", "until", "till", "before", "after"}
# Words after a season or holiday that leave it a time: "christmas with the family", "summer in Lisbon".
_NOT_NOUNS = _PREPOSITIONS | {"with", "near", "by", "the", "a", "an", "when", "while"}
# Words after a bare year that make it one: "2018 and 2019", "2018 – 2020".
_JOINERS = {"and", "or", "to", "until", "till", "through", "-", "–", "—"}


class _Parser:
    def __init__(self, query: str, tokens: list[_Token], today: date, southern: bool) -> None:
        self.query = query
        self.tokens = tokens
        self.today = today
        self.southern = southern
        self.month_first = _month_first()

    def run(self) -> list[tuple[tuple[int, int], DateRange]]:
        found: list[tuple[tuple[int, int], DateRange]] = []
        i, last_after = 0, -1
        while i < len(self.tokens):
            phrase = self._stretch_at(i) or self._date(i)
            if phrase is None:
                i += 1
                continue
            first = i
            if self._word(first - 1) == "the":  # "in the summer of 2019"
                first -= 1
            if self._word(first - 1) in _PREPOSITIONS:
                first -= 1
            # "July 2019 and August 2020": the word joining two dates goes with them.
            if self._word(first - 1) in ("and", "or", ",") and first - 1 == last_after:
                first -= 1
            found.append(((self.tokens[first].start, self.tokens[phrase[1] - 1].end), phrase[0]))
            i = last_after = phrase[1]
        return found

    # Reading tokens.

    def _word(self, i: int) -> str | None:
        """The folded word or punctuation at `i`; None for a number, or past either end."""
        if 0 <= i < len(self.tokens) and self.tokens[i].kind in (_WORD, _PUNCT):
            return self.tokens[i].norm
        return None

    def _kind(self, i: int) -> int | None:
        return self.tokens[i].kind if 0 <= i < len(self.tokens) else None

    def _plausible(self, year: int) -> bool:
        return FIRST_YEAR <= year <= self.today.year + 1

    def _year_at(self, i: int) -> int | None:
        """A plausible capture year written at `i`: "2019" or "'19"."""
        kind = self._kind(i)
        if kind == _NUMBER and len(self.tokens[i].norm) == 4:
            year = int(self.tokens[i].norm)
        elif kind == _SHORT_YEAR:
            year = _century_year(int(self.tokens[i].norm[1:]), self.today)
        else:
            return None
        return year if self._plausible(year) else None

    def _day_number_at(self, i: int) -> int | None:
        kind = self._kind(i)
        if kind not in (_NUMBER, _ORDINAL):
            return None
        digits = self.tokens[i].norm.rstrip("stndrh")
        return int(digits) if len(digits) <= 2 and 1 <= int(digits) <= 31 else None

    def _month_at(self, i: int, *, abbreviations: bool) -> int | None:
        word = self._word(i)
        if word is None:
            return None
        return _MONTHS.get(word) or (_MONTH_ABBREVIATIONS.get(word) if abbreviations else None)

    def _after(self, i: int, words: set[str]) -> bool:
        """Whether one of `words` comes right before `i`, or before a "the" there ("in the fall")."""
        before = self._word(i - 1)
        return (self._word(i - 2) if before == "the" else before) in words

    def _describes_next_word(self, i: int) -> bool:
        """Whether a season or holiday name ending before `i` describes the word there: "christmas tree",
        "summer dress", "autumn leaves" are things to see, not times."""
        return self._kind(i) == _WORD and self.tokens[i].norm not in _DATE_WORDS | _JOINERS | _NOT_NOUNS

    def _skip_comma(self, i: int) -> int:
        return i + 1 if self._word(i) == "," else i

    def _count_at(self, i: int) -> int | None:
        """ "3", "two", "a": how many days or weeks."""
        word = self._word(i)
        if word is not None:
            return _NUMBER_WORDS.get(word)
        if self._kind(i) == _NUMBER and len(self.tokens[i].norm) <= 3:
            return int(self.tokens[i].norm) or None
        return None

    # Stretches between dates, or from or up to one.

    def _stretch_at(self, i: int) -> _Found | None:
        word = self._word(i)
        if word == "between":
            first = self._date(i + 1)
            if first and self._word(first[1]) == "and" and (second := self._date(first[1] + 1)):
                return self._stretch(first[0], second[0]), second[1]
            return None
        if word in ("since", "after", "before", "until", "till"):
            found = self._date(i + 1)
            if found is None:
                return None
            anchor = found[0]  # a recurring one ("since May") counts from its most recent occurrence
            start, end = {
                "since": (anchor.start, self.today),
                "after": (anchor.end + timedelta(days=1), self.today),
                "before": (date(FIRST_YEAR, 1, 1), anchor.start - timedelta(days=1)),
            }.get(word, (date(FIRST_YEAR, 1, 1), anchor.end))
            return DateRange(min(start, end), max(start, end), Granularity.SPAN), found[1]
        first = self._date(i + (word == "from"))
        if first is not None and self._word(first[1]) in ("to", "until", "till", "through", "-", "–", "—"):
            second = self._date(first[1] + 1)
            if second is not None:
                return self._stretch(first[0], second[0]), second[1]
        return None

    def _stretch(self, first: DateRange, second: DateRange) -> DateRange:
        """From the start of `first` to the end of `second`; "June to August" recurs as its ends do."""
        if first.every_year and second.every_year:
            end = _same_day_in(second.end, first.start.year)
            if end < first.start:
                end = _same_day_in(end, end.year + 1)
            return DateRange(first.start, end, Granularity.SPAN, every_year=True)
        if first.every_year:  # "from June to August 2019": June of that year
            first = first.in_year(second.end.year) or first
            if first.start > second.end:
                first = first.in_year(second.end.year - 1) or first
        elif second.every_year:  # "from March 2019 to June"
            second = second.in_year(first.start.year) or second
            if second.end < first.start:
                second = second.in_year(first.start.year + 1) or second
        return DateRange(min(first.start, second.start), max(first.end, second.end), Granularity.SPAN)

    # One date.

    def _date(self, i: int) -> _Found | None:
        if not 0 <= i < len(self.tokens):
            return None
        rules: tuple[Callable[[int], _Found | None], ...] = (
            self._relative_day,
            self._relative,
            self._ago,
            self._holiday,
            self._season,
            self._day_date,
            self._month,
            self._numeric,
            self._decade,
            self._year,
            self._weekday,
        )
        for rule in rules:
            found = rule(i)
            if found is not None:
                return found
        return None

    def _relative_day(self, i: int) -> _Found | None:
        word = self._word(i)
        back = {"today": 0, "tonight": 0, "yesterday": 1}.get(word or "")
        after = i + 1
        if word == "the" and [self._word(i + k) for k in (1, 2, 3)] == ["day", "before", "yesterday"]:
            back, after = 2, i + 4
        if back is None:
            return None
        day = self.today - timedelta(days=back)
        return DateRange(day, day, Granularity.DAY), after

    def _relative(self, i: int) -> _Found | None:
        """ "last week", "this month", "last summer", "last December", "past 3 days", "last Monday"."""
        word = self._word(i)
        if word not in _RELATIVE:
            return None
        this = word == "this"
        count = self._count_at(i + 1)
        unit = _UNITS.get(self._word(i + 2) or "")
        if count is not None and unit is not None and not this:  # "past 3 days": rolling, up to today
            start = _shift(self.today, unit, -count) + timedelta(days=1)
            return DateRange(start, self.today, Granularity.SPAN), i + 3
        following = self._word(i + 1)
        if following in ("week", "weekend"):
            monday = self.today - timedelta(days=self.today.weekday(), weeks=0 if this else 1)
            if following == "weekend":
                return DateRange(
                    monday + timedelta(days=5), monday + timedelta(days=6), Granularity.WEEK
                ), i + 2
            return DateRange(monday, monday + timedelta(days=6), Granularity.WEEK), i + 2
        if following == "month":
            day = self.today if this else self.today.replace(day=1) - timedelta(days=1)
            return _month_range(day.year, day.month), i + 2
        if following == "year":
            year = self.today.year - (not this)
            return DateRange(date(year, 1, 1), date(year, 12, 31), Granularity.YEAR), i + 2
        if following in _WEEKDAYS and not this:
            back = (self.today.weekday() - _WEEKDAYS[following] - 1) % 7 + 1  # strictly before today
            day = self.today - timedelta(days=back)
            return DateRange(day, day, Granularity.DAY), i + 2
        recurring = (
            self._holiday(i + 1, alone=False)
            or self._season(i + 1, alone=False)
            or self._month(i + 1, alone=False)
        )
        if recurring is None or not recurring[0].every_year:
            return None
        return (self._this(recurring[0]) if this else self._last_ended(recurring[0])), recurring[1]

    def _ago(self, i: int) -> _Found | None:
        """ "3 days ago", "a week ago", "two years ago": that day, week, month or year."""
        count = self._count_at(i)
        unit = _UNITS.get(self._word(i + 1) or "")
        if count is None or unit is None or self._word(i + 2) != "ago":
            return None
        day = _shift(self.today, unit, -count)
        if unit == "day":
            found = DateRange(day, day, Granularity.DAY)
        elif unit == "week":
            monday = day - timedelta(days=day.weekday())
            found = DateRange(monday, monday + timedelta(days=6), Granularity.WEEK)
        elif unit == "month":
            found = _month_range(day.year, day.month)
        else:
            found = DateRange(date(day.year, 1, 1), date(day.year, 12, 31), Granularity.YEAR)
        return found, i + 3

    def _holiday(self, i: int, alone: bool = True) -> _Found | None:
        """ "Christmas 2021", "Easter", "New Year's Eve 2019"."""
        for words, key in _HOLIDAY_NAMES:
            if any(self._word(i + k) != w for k, w in enumerate(words)):
                continue
            after = self._skip_comma(i + len(words))
            year = self._year_at(after)
            if year is not None:
                start, end = _HOLIDAYS[key](year)
                return DateRange(start, end, Granularity.HOLIDAY), after + 1
            # "a new year's resolution" is no date: alone, New Year needs a word that makes it one.
            if key.startswith("new year") and alone and not self._after(i, _NAME_CONTEXT):
                return None
            if alone and self._describes_next_word(i + len(words)):
                return None
            rule = _HOLIDAYS[key]
            start, end = rule(self.today.year)
            if start > self.today:
                start, end = rule(self.today.year - 1)
            return DateRange(start, end, Granularity.HOLIDAY, every_year=True, holiday=key), i + len(words)
        return None

    def _season(self, i: int, alone: bool = True) -> _Found | None:
        """ "summer 2018", "winter 2018/19", "summer of '69", "summer" (every year)."""
        word = self._word(i)
        if word not in _SEASONS:
            return None
        first, last = _SEASONS[word]
        if self.southern:
            first, last = (first + 5) % 12 + 1, (last + 5) % 12 + 1
        crosses_new_year = last < first
        after = i + 2 if self._word(i + 1) == "of" else self._skip_comma(i + 1)
        if crosses_new_year and re.fullmatch(
            r"\d{4}[-/](\d{2}|\d{4})", self.tokens[after].norm if self._kind(after) else ""
        ):
            start, end = _two_years(self.tokens[after].norm)
            if end == start + 1 and self._plausible(start):
                return _months(start, first, last), after + 1
        year = self._year_at(after)
        if year is not None:  # a winter is named by the year of its January, as meteorologists name it
            return _months(year - crosses_new_year, first, last), after + 1
        if alone and word in _AMBIGUOUS_SEASONS and not self._after(i, _NAME_CONTEXT):
            return None
        if alone and self._describes_next_word(i + 1):
            return None
        recurring = _months(self.today.year, first, last)
        if recurring.start > self.today:
            recurring = _months(self.today.year - 1, first, last)
        return replace(recurring, every_year=True), i + 1

    def _day_date(self, i: int) -> _Found | None:
        """ "14 July 2019", "the 14th of July", "July 14th, 2019", "Jul 14" (the most recent one)."""
        start = i + (self._word(i) == "the")
        day = self._day_number_at(start)
        if day is not None:
            month_at = start + 1 + (self._word(start + 1) == "of")
            month = self._month_at(month_at, abbreviations=True)
            end = month_at + 1
        else:
            month = self._month_at(start, abbreviations=True)
            day = self._day_number_at(start + 1)
            end = start + 2
        if month is None or day is None:
            return None
        year = self._year_at(self._skip_comma(end))
        if year is not None:
            end = self._skip_comma(end) + 1
        try:
            found = date(year or self.today.year, month, day)
            if year is None and found > self.today:
                found = date(self.today.year - 1, month, day)
        except ValueError:  # 31 June, 29 February 2019: no such day
            return None
        return DateRange(found, found, Granularity.DAY), end

    def _month(self, i: int, alone: bool = True) -> _Found | None:
        """ "July 2019", "Jul 2019", "July of 2019", "December" (every year)."""
        month = self._month_at(i, abbreviations=True)
        if month is None:
            return None
        after = i + 2 if self._word(i + 1) == "of" else self._skip_comma(i + 1)
        year = self._year_at(after)
        if year is not None:
            return _month_range(year, month), after + 1
        word = self._word(i)
        if word not in _MONTHS:  # "mar", "dec" are months only with a year or a day
            return None
        capitalised = i > 0 and self.tokens[i].text[0].isupper()  # not the query's first word: sentence case
        if alone and word in _AMBIGUOUS_MONTHS and not capitalised and not self._after(i, _NAME_CONTEXT):
            return None
        recurring = _month_range(self.today.year, month)
        if recurring.start > self.today:
            recurring = _month_range(self.today.year - 1, month)
        return replace(recurring, every_year=True), i + 1

    def _numeric(self, i: int) -> _Found | None:
        """ "2019-07-14", "2019-07", "14/07/2019", "2018-2020"."""
        kind, norm = self.tokens[i].kind, self.tokens[i].norm
        if kind == _NUMERIC_DATE:
            iso = re.fullmatch(r"(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?", norm)
            if iso and iso[3] is not None:  # year first: ISO 8601 and what cameras name files by
                try:
                    found = date(int(iso[1]), int(iso[2]), int(iso[3]))
                except ValueError:
                    return None
                return (
                    (DateRange(found, found, Granularity.DAY), i + 1) if self._plausible(found.year) else None
                )
            if iso:
                year, month = int(iso[1]), int(iso[2])
                if 1 <= month <= 12 and self._plausible(year):
                    return _month_range(year, month), i + 1
                kind = _YEAR_SPAN  # "2018-20"
            else:  # day and month in either order, a year of two or four digits: dateparser's to read
                day = _parse_day(self.tokens[i].text, self.today, self.month_first)
                if day is None or not self._plausible(day.year):
                    return None
                return DateRange(day, day, Granularity.DAY), i + 1
        if kind == _YEAR_SPAN:
            start, end = _two_years(norm)
            if self._plausible(start) and start < end and self._plausible(end):
                return DateRange(date(start, 1, 1), date(end, 12, 31), Granularity.SPAN), i + 1
        return None

    def _decade(self, i: int) -> _Found | None:
        """ "the 1990s", "1990s", "the 90s", "the nineties" ("in her 20s" is an age)."""
        the = self._word(i) == "the"
        at = i + 1 if the else i
        if self._kind(at) == _DECADE:
            digits = re.sub(r"\D", "", self.tokens[at].norm)
            if len(digits) == 2 and not the:
                return None
            decade = int(digits) if len(digits) == 4 else _century_year(int(digits), self.today)
        elif the and self._word(at) in _DECADE_WORDS:
            decade = _DECADE_WORDS[self._word(at)]  # type: ignore[index]
        else:
            return None
        if decade % 10 or not FIRST_YEAR // 10 * 10 <= decade <= self.today.year:
            return None
        return DateRange(date(decade, 1, 1), date(decade + 9, 12, 31), Granularity.DECADE), at + 1

    def _year(self, i: int) -> _Found | None:
        """A bare year, where a person would mean one: after a preposition, at the end, next to a date word."""
        year = self._year_at(i)
        if year is None or self._kind(i) != _NUMBER:
            return None
        following = self._word(i + 1)
        at_end = i + 1 >= len(self.tokens) or following == ","
        if self._word(i - 1) in _YEAR_CONTEXT or at_end or following in _DATE_WORDS | _JOINERS:
            return DateRange(date(year, 1, 1), date(year, 12, 31), Granularity.YEAR), i + 1
        return None

    def _weekday(self, i: int) -> _Found | None:
        """ "on Monday", "Monday": the most recent one, today included."""
        word = self._word(i)
        if word not in _WEEKDAYS:
            return None
        day = self.today - timedelta(days=(self.today.weekday() - _WEEKDAYS[word]) % 7)
        return DateRange(day, day, Granularity.DAY), i + 1

    def _last_ended(self, recurring: DateRange) -> DateRange:
        """The most recent occurrence that ended before today: "last summer", "last Christmas"."""
        for year in range(self.today.year, self.today.year - 3, -1):
            occurrence = recurring.in_year(year)
            if occurrence is not None and occurrence.end < self.today:
                return occurrence
        return replace(recurring, every_year=False, holiday=None)

    def _this(self, recurring: DateRange) -> DateRange:
        """ "this summer": the one going on, else one that ended this year (this winter, in March), else this
        year's, still to come."""
        candidates = [
            o for o in (recurring.in_year(self.today.year - 1), recurring.in_year(self.today.year)) if o
        ]
        for occurrence in candidates:
            if occurrence.start <= self.today <= occurrence.end:
                return occurrence
        for occurrence in reversed(candidates):
            if occurrence.end < self.today and occurrence.end.year == self.today.year:
                return occurrence
        return candidates[-1] if candidates else replace(recurring, every_year=False, holiday=None)


# --- calendar helpers ----------------------------------------------------------------------------------------


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _month_range(year: int, month: int) -> DateRange:
    return DateRange(date(year, month, 1), _last_day(year, month), Granularity.MONTH)


def _months(year: int, first: int, last: int) -> DateRange:
    """The months `first`…`last` from `year` on (into the next year when `last` < `first`), as a season."""
    end_year = year + (last < first)
    return DateRange(date(year, first, 1), _last_day(end_year, last), Granularity.SEASON)


def _same_day_in(day: date, year: int) -> date:
    """`day` moved to `year`; the last day of a month stays the last (29 February becomes the 28th)."""
    last = calendar.monthrange(day.year, day.month)[1]
    new_last = calendar.monthrange(year, day.month)[1]
    return date(year, day.month, new_last if day.day == last else min(day.day, new_last))


def _shift(day: date, unit: str, count: int) -> date:
    if unit == "day":
        return day + timedelta(days=count)
    if unit == "week":
        return day + timedelta(weeks=count)
    months = day.year * 12 + day.month - 1 + (count if unit == "month" else 12 * count)
    year, month = divmod(months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _century_year(two_digits: int, today: date) -> int:
    """'19 is 2019, '85 is 1985: the latest such year that is not in the future."""
    year = today.year // 100 * 100 + two_digits
    return year if year <= today.year else year - 100


def _month_first() -> bool:
    """Whether this computer's locale writes the month before the day (03/04 is 4 March in the US)."""
    try:
        name = locale.getlocale(locale.LC_TIME)[0] or ""
    except ValueError:
        return False
    return name.endswith(("_US", "_PH", "_FM", "_MH", "_PW"))


# --- dateparser, for the day-level phrases -------------------------------------------------------------------

_dateparser_lock = threading.Lock()


@functools.lru_cache(maxsize=256)  # a query typed letter by letter asks the same again: dateparser takes ms
def _parse_day(text: str, today: date, month_first: bool) -> date | None:
    """The day a numeric date names ("14/07/2019", "7/14/19", "14.07.19"): the locale's order where both fit."""
    # Imported on first use: dateparser costs a fifth of a second to import and more on its first parse.
    from dateparser.date import DateDataParser

    settings = {
        "PREFER_DATES_FROM": "past",
        "RETURN_TIME_AS_PERIOD": True,
        "RELATIVE_BASE": datetime.combine(today, datetime.min.time()),
        "DATE_ORDER": "MDY" if month_first else "DMY",
        "PREFER_DAY_OF_MONTH": "first",
    }
    with _dateparser_lock:  # its language data loads lazily and is shared between parsers
        data = DateDataParser(languages=["en"], settings=settings).get_date_data(text)
    if data.date_obj is None or data.period != "day":
        return None
    return data.date_obj.date()


# --- what is left of the query -----------------------------------------------------------------------------


def without_spans(query: str, spans: list[tuple[int, int]]) -> str:
    """`query` without the given (start, end) spans, its spaces and stray commas tidied: what is left to see.

    For the visual description once dates and places are found: the spans of both, in any order, may be
    removed in one call.
    """
    kept, position = [], 0
    spans = sorted(spans)
    for start, end in spans:
        kept.append(query[position:start])
        position = max(position, end)
    kept.append(query[position:])
    return _tidy(" ".join(kept))


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))
    return text.strip(" ,.;:-–—")
