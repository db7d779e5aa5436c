"""Places named in a typed query ("the cat in Tokyo", "from Iceland", "Kenya"), among those in the library.

Only the places where the library's photos were taken are looked for (the lead passes them in), so a word that
names no place there stays part of the visual description. Names are matched case- and accent-blind
("reykjavik" finds Reykjavík), longest first ("Rio de Janeiro" before "Rio"), at every level a `Place` has:
city, neighbourhood, region, country; a name that is several of them (Lisbon the city and the district) is the
most specific, in that order, and a "city, country" pair ("Nice, France") is one place.

A name that is also a common English word ("nice", "reading", "bath", "turkey") names the place only where the
query says so: written with a capital inside the query ("a dog in Nice", "beach Nice"), or after "in", "at",
"from", "near" or "around" and ending the phrase ("dog in nice", "in nice, 2019"; not "dog in nice weather"),
or as the whole query. So in a library with photos from Nice, "a nice dog" is still a nice dog. A name of
several words ("Long Beach") is always a name.

Countries are also found by the names people use for them: USA, US (in capitals: "us" is a word), U.S.,
United States of America, America, UK, Britain, Great Britain, Holland, UAE, Czechia and a few more; country
codes in general are not (IN, IS, IT, NO, ME are words).
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from engine.media.location import Place
from engine.search.common_words import COMMON_WORDS
from engine.search.dates import without_spans


class PlaceLevel(enum.StrEnum):
    """Which of a place's names a query matched, from the most specific."""

    CITY = "city"
    NEIGHBOURHOOD = "neighbourhood"
    REGION = "region"
    COUNTRY = "country"


@dataclass(frozen=True)
class FoundPlace:
    """One place named in the query: `name` as the library knows it, the `level` it matched at, and the
    library's `places` it covers (every photo taken at one of them is in that place)."""

    name: str
    level: PlaceLevel
    places: frozenset[Place]


@dataclass(frozen=True)
class PlaceMatch:
    """The places a query names, and what is left of it.

    `found[i]` was read from `query[spans[i][0]:spans[i][1]]`, which includes a preposition right before it
    ("in Lisbon", "from the UK"); `remainder` is the query without those spans, its spaces tidied.
    """

    found: list[FoundPlace]
    spans: list[tuple[int, int]]
    remainder: str


def find_places(query: str, known: Collection[Place]) -> PlaceMatch:
    """The places among `known` (the library's) that `query` names, longest name first.

    The index of names is cached for the last few sets of places; a caller that keeps one set for long can
    hold a `PlaceIndex` itself and skip hashing the set on every query.
    """
    return _index(frozenset(known)).find(query)


# Country names people write besides the one Place.country holds, by ISO code.
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("USA", "US", "U.S.", "U.S.A.", "America", "United States of America", "the States"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain"),
    "NL": ("Holland", "The Netherlands"),
    "AE": ("UAE", "Emirates"),
    "CZ": ("Czechia",),
    "KR": ("Korea",),
    "CI": ("Côte d'Ivoire",),
    "MK": ("Macedonia",),
    "SZ": ("Swaziland",),
    "TR": ("Türkiye",),
    "CV": ("Cabo Verde",),
    "VA": ("Vatican",),
    "RU": ("Russian Federation",),
    "CD": ("Democratic Republic of the Congo",),
}
# City names people write for GeoNames' own: "New York City" is "New York" or "NYC" to most.
_CITY_ALIASES: dict[str, tuple[str, ...]] = {
    "New York City": ("New York", "NYC"),
    "Genève": ("Geneva",),
    "Makkah": ("Mecca",),
}
# Aliases that are also words, matched only as written: "photos of us" is not the United States.
_CAPITALS_ONLY = {"US"}
# Words before a place that go with it, and that make an ambiguous name a place: "photos from Iceland".
_PREPOSITIONS = {"in", "at", "from", "near", "around"}
# Words after an ambiguous name that let it end its phrase: "in nice and lisbon", "in nice last summer".
_PHRASE_ENDS = _PREPOSITIONS | {"and", "or", "on", "during", "last", "this", "with", "the"}
_PRIORITY = {level: rank for rank, level in enumerate(PlaceLevel)}
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class _Name:
    level: PlaceLevel
    name: str
    places: frozenset[Place]
    capitals: str | None = None  # the exact spelling required, for an alias that is also a word ("US")


@dataclass(frozen=True)
class _Word:
    norm: str
    start: int
    end: int


class PlaceIndex:
    """The names of a library's places, ready to match queries against: build it once per set of places."""

    def __init__(self, known: Iterable[Place]) -> None:
        by_name: dict[tuple[tuple[str, ...], PlaceLevel, str | None], tuple[str, set[Place]]] = {}

        def add(
            level: PlaceLevel, typed: str | None, shown: str, place: Place, capitals: bool = False
        ) -> None:
            words = tuple(w.norm for w in _words(typed or ""))
            if words:
                by_name.setdefault((words, level, typed if capitals else None), (shown, set()))[1].add(place)

        for place in known:
            if place.city:
                add(PlaceLevel.CITY, place.city, place.city, place)
                for alias in _CITY_ALIASES.get(place.city, ()):
                    add(PlaceLevel.CITY, alias, place.city, place)
            if place.neighbourhood:
                add(PlaceLevel.NEIGHBOURHOOD, place.neighbourhood, place.neighbourhood, place)
            if place.region:
                add(PlaceLevel.REGION, place.region, place.region, place)
            add(PlaceLevel.COUNTRY, place.country, place.country, place)
            for alias in _COUNTRY_ALIASES.get(place.country_code, ()):
                add(PlaceLevel.COUNTRY, alias, place.country, place)
        self._names: dict[tuple[str, ...], list[_Name]] = {}
        for (words, level, capitals), (shown, places) in by_name.items():
            self._names.setdefault(words, []).append(_Name(level, shown, frozenset(places), capitals))
        for entries in self._names.values():
            entries.sort(key=lambda e: _PRIORITY[e.level])
        self._longest = max((len(words) for words in self._names), default=0)

    def find(self, query: str) -> PlaceMatch:
        words = _words(query)
        found: list[tuple[int, int, _Name]] = []  # first word, word after, name
        i = 0
        while i < len(words):
            match = self._match_at(query, words, i)
            if match is None:
                i += 1
                continue
            after, name = match
            found.append((i, after, name))
            i = after
        found = _pair_cities_with_countries(query, words, found)
        spans, results = [], []
        previous_after = -1
        for first, after, name in found:
            start = first
            if start > 0 and words[start - 1].norm == "the":
                start -= 1
            if start > 0 and words[start - 1].norm in _PREPOSITIONS:
                start -= 1
            # "in Lisbon or Porto": the word joining two places goes with them.
            if start > 0 and words[start - 1].norm in ("and", "or") and start - 1 == previous_after:
                start -= 1
            previous_after = after
            spans.append((words[start].start, words[after - 1].end))
            results.append(FoundPlace(name.name, name.level, name.places))
        return PlaceMatch(results, spans, without_spans(query, spans))

    def _match_at(self, query: str, words: list[_Word], i: int) -> tuple[int, _Name] | None:
        for length in range(min(self._longest, len(words) - i), 0, -1):
            key = tuple(w.norm for w in words[i : i + length])
            typed = query[words[i].start : words[i + length - 1].end]
            entries = [e for e in self._names.get(key, ()) if e.capitals is None or e.capitals == typed]
            if not entries:
                continue
            ambiguous = length == 1 and key[0] in COMMON_WORDS
            if ambiguous and not (
                _said_as_a_place(query, words, i)
                or self._followed_by_where_it_is(query, words, i + 1, entries[0])
            ):
                continue
            return i + length, entries[0]
        return None

    def _followed_by_where_it_is(self, query: str, words: list[_Word], i: int, name: _Name) -> bool:
        """Whether the words at `i` name a region or country that holds `name`: "Nice, France", "Reading UK"."""
        if i >= len(words) or not re.fullmatch(r"[\s,]*", query[words[i - 1].end : words[i].start]):
            return False
        for length in range(min(self._longest, len(words) - i), 0, -1):
            for entry in self._names.get(tuple(w.norm for w in words[i : i + length]), ()):
                if _PRIORITY[entry.level] > _PRIORITY[name.level] and entry.places & name.places:
                    return True
        return False


def _said_as_a_place(query: str, words: list[_Word], i: int) -> bool:
    """Whether the common word at `i` is written as a place name (see the module's notes)."""
    if len(words) == 1:
        return True
    if (
        i > 0 and query[words[i].start].isupper()
    ):  # a capital inside the query; the first word's is sentence case
        return True
    before = words[i - 1].norm if i > 0 else None
    if before == "the" and i > 1:
        before = words[i - 2].norm
    if before not in _PREPOSITIONS:
        return False
    if i + 1 == len(words):
        return True
    between = query[words[i].end : words[i + 1].start]
    return (
        bool(re.search(r"[,;:.!?]", between))
        or words[i + 1].norm in _PHRASE_ENDS
        or words[i + 1].norm.isdigit()
    )


def _pair_cities_with_countries(
    query: str, words: list[_Word], found: list[tuple[int, int, _Name]]
) -> list[tuple[int, int, _Name]]:
    """ "Nice, France", "Portland Oregon": a place followed by the region or country it is in is one place."""
    paired: list[tuple[int, int, _Name]] = []
    for first, after, name in found:
        if paired:
            previous_first, previous_after, previous = paired[-1]
            gap = query[words[previous_after - 1].end : words[first].start]
            within = previous.places & name.places
            coarser = _PRIORITY[name.level] > _PRIORITY[previous.level]
            if previous_after == first and re.fullmatch(r"[\s,]*", gap) and coarser and within:
                paired[-1] = (previous_first, after, _Name(previous.level, previous.name, within))
                continue
        paired.append((first, after, name))
    return paired


def _words(text: str) -> list[_Word]:
    return [_Word(_fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=4)
def _index(known: frozenset[Place]) -> PlaceIndex:
    # A library's places change only while indexing: the index is built once per set, not per query.
    return PlaceIndex(known)
