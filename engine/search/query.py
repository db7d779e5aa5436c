"""What a person asked for (`SearchRequest`) and what its words mean to the search (`Query`, from `parse`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.paths import is_inside
from engine.results import QueryPart
from engine.search.words import STOP_WORDS, fold, is_code, words

if TYPE_CHECKING:  # the command line imports this module for its choices; these load SQLAlchemy, dateutil
    from engine.catalogue import FrameHit
    from engine.media.location import Place
    from engine.search.dates import DateRange
    from engine.search.places import FoundPlace

#: How results are ordered: by relevance, or by the date a person thinks of (taken, else last changed).
SortOrder = Literal["relevance", "newest", "oldest"]
SORT_ORDERS: tuple[SortOrder, ...] = ("relevance", "newest", "oldest")


@dataclass(frozen=True)
class SearchRequest:
    """One search, as the command line and the window ask it: words, or a file to find look-alikes of.

    `kind` ("image" or "video"), `folder` and the days `taken_from`…`taken_to` (inclusive) narrow the results;
    `rerank`: how many of the Fast shortlist the Slow model re-scores (0: none; None: the library's default).
    """

    text: str = ""
    similar_to: bytes | None = None
    limit: int = 20
    kind: str | None = None
    folder: bytes | None = None
    taken_from: dt.date | None = None
    taken_to: dt.date | None = None
    rerank: int | None = None
    sort: SortOrder = "relevance"

    def check(self) -> None:
        """Raise UsageError, in one sentence, for a request that cannot be answered as asked."""
        if self.similar_to is None and not self.text.strip():
            raise UsageError("type a few words describing what you are looking for")
        if self.limit < 1:
            raise UsageError("ask for at least one result")
        if self.kind not in (None, "image", "video"):
            raise UsageError("the type must be image or video")
        if self.taken_from and self.taken_to and self.taken_from > self.taken_to:
            raise UsageError("the date range ends before it starts")
        if self.rerank is not None and self.rerank < 0:
            raise UsageError("the number of results to re-rank cannot be negative")
        if self.sort not in SORT_ORDERS:
            raise UsageError("sort by relevance, newest or oldest")

    def filters(self) -> Filters:
        return Filters(
            kind=self.kind,
            folder=self.folder,
            exclude_path=self.similar_to,
            after=dt.datetime.combine(self.taken_from, dt.time.min) if self.taken_from else None,
            before=(
                dt.datetime.combine(self.taken_to + dt.timedelta(days=1), dt.time.min)
                if self.taken_to
                else None
            ),
        )


@dataclass(frozen=True)
class Filters:
    """What a frame's file must be to appear in the results."""

    kind: str | None = None  # "image" | "video"
    folder: bytes | None = None
    exclude_path: bytes | None = None
    #: Taken (else last changed) on or after / before this moment.
    after: dt.datetime | None = None
    before: dt.datetime | None = None
    #: Only these files (the ones taken at a place, or on a day, the query names); None: any.
    media_ids: frozenset[int] | None = None

    def accept(self, hit: FrameHit) -> bool:
        if self.media_ids is not None and hit.media_id not in self.media_ids:
            return False
        if self.kind and hit.kind != self.kind:
            return False
        if self.folder and not is_inside(hit.path, self.folder):
            return False
        if self.after is not None and (hit.when is None or hit.when < self.after):
            return False
        if self.before is not None and (hit.when is None or hit.when >= self.before):
            return False
        return hit.path != self.exclude_path


#: Quotation marks around words to read: typewriter and typographic ones.
_QUOTED = re.compile(r'"([^"]*)"|“([^”]*)”|„([^“”]*)[“”]|«\s*([^»]*?)\s*»')
#: Words that say "show me pictures" rather than what is in them: a query of nothing else has no visual part
#: ("photos from July 2019").
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "from",
        "in",
        "at",
        "on",
        "taken",
        "all",
        "any",
        "some",
        "my",
        "our",
        "me",
        "us",
        "show",
        "find",
        "photo",
        "photos",
        "picture",
        "pictures",
        "image",
        "images",
        "video",
        "videos",
        "clip",
        "clips",
        "shot",
        "shots",
        "moment",
        "moments",
    ]
)


@dataclass(frozen=True)
class Query:
    """A request's words as the search understands them."""

    #: The words as typed, spaces tidied: `QueryPart.spans` refer to this text.
    text: str
    #: What the picture should show ("" when the query names nothing to see): the Fast model embeds it, the Slow
    #: model scores it.
    visual: str
    #: Words to find written in the pictures: the quoted phrases, always; and the visual description's words
    #: that could be written (stop words left out), which rank a picture showing them written first.
    phrases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    places: tuple[FoundPlace, ...] = ()
    dates: tuple[DateRange, ...] = ()
    parts: tuple[QueryPart, ...] = ()

    @property
    def read_words(self) -> tuple[str, ...]:
        """Everything to look for in what was read: the quoted phrases, then the visual words."""
        return self.phrases + self.words


def parse(text: str, *, today: dt.date | None = None, places: Collection[Place] = ()) -> Query:
    """Split typed words into what the search looks for: quoted words to read, dates, the library's `places`,
    and the visual description (what is left, whose words may also be written in the picture).

    A date and a place named by the same words (a town called March) are read as the date.
    """
    from engine.search.dates import find_dates, without_spans
    from engine.search.places import find_places

    typed = " ".join(text.split())
    quotes = [
        (m.start(), m.end(), next(g for g in m.groups() if g is not None)) for m in _QUOTED.finditer(typed)
    ]
    phrases = tuple(" ".join(q.split()) for _, _, q in quotes if q.strip())
    quote_spans = [(start, end) for start, end, _ in quotes]
    dates = find_dates(typed, today or dt.date.today())
    taken = quote_spans + dates.spans
    found_places = find_places(typed, places) if places else None
    place_parts, place_spans = [], []
    for place, span in zip(found_places.found, found_places.spans, strict=True) if found_places else ():
        if not any(start < span[1] and span[0] < end for start, end in taken):
            place_parts.append(place)
            place_spans.append(span)
    visual = without_spans(typed, taken + place_spans)
    if all(word in _FILLER for word in fold(visual).split()):
        visual = ""
    parts = [QueryPart("visual", visual)] if visual else []
    parts += [
        QueryPart("words", f"“{p}”", spans=(span,)) for p, span in zip(phrases, quote_spans, strict=False)
    ]
    parts += [
        QueryPart("place", _place_label(found), spans=(span,))
        for found, span in zip(place_parts, place_spans, strict=True)
    ]
    parts += [
        QueryPart("date", _date_label(typed, span), _days(found), spans=(span,))
        for found, span in zip(dates.ranges, dates.spans, strict=True)
    ]
    read = tuple(
        dict.fromkeys(w for w in words(visual) if w not in STOP_WORDS and (len(w) > 2 or is_code(w)))
    )
    return Query(
        text=typed,
        visual=visual,
        phrases=phrases,
        words=read,
        places=tuple(place_parts),
        dates=tuple(dates.ranges),
        parts=tuple(parts),
    )


def _place_label(found: FoundPlace) -> str:
    """ "Lisbon, Portugal" for a city, "Iceland" for a country: the name and what it lies in."""
    if found.level == "country" or len({p.country for p in found.places}) != 1:
        return found.name
    return f"{found.name}, {next(iter(found.places)).country}"


def _date_label(typed: str, span: tuple[int, int]) -> str:
    """The date as it was typed, without the preposition before it: "July 2019", "last summer"."""
    said = typed[span[0] : span[1]].strip(" ,")
    head, _, rest = said.partition(" ")
    return (
        rest if rest and head.lower() in ("in", "on", "at", "from", "during", "of", "around", "for") else said
    )


def _days(found: DateRange) -> str:
    """The days a date covers, as a person reads them: "1–31 July 2019", "24–26 December, every year"."""
    start, end = found.start, found.end
    if start == end:
        text = f"{start.day} {start:%B %Y}"
    elif (start.year, start.month) == (end.year, end.month):
        text = f"{start.day}–{end.day} {start:%B %Y}"
    elif start.year == end.year:
        text = f"{start.day} {start:%B} – {end.day} {end:%B %Y}"
    else:
        text = f"{start.day} {start:%B %Y} – {end.day} {end:%B %Y}"
    return f"{text}, and the same days every year" if found.every_year else text
