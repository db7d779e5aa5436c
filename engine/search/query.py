"""What a person asked for (`SearchRequest`) and what its words mean to the search (`Query`, from `parse`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.paths import is_inside

if TYPE_CHECKING:  # the command line imports this module for its choices; the catalogue loads SQLAlchemy
    from engine.catalogue import FrameHit

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

    def accept(self, hit: FrameHit) -> bool:
        if self.kind and hit.kind != self.kind:
            return False
        if self.folder and not is_inside(hit.path, self.folder):
            return False
        if self.after is not None and (hit.when is None or hit.when < self.after):
            return False
        if self.before is not None and (hit.when is None or hit.when >= self.before):
            return False
        return hit.path != self.exclude_path


@dataclass(frozen=True)
class Query:
    """A request's words as the search understands them."""

    #: The words as typed, without surrounding space.
    text: str
    #: What the picture should show: the Fast model embeds it, the Slow model scores it.
    visual: str


def parse(text: str) -> Query:
    """Split typed words into what the search looks for."""
    words = " ".join(text.split())
    return Query(text=words, visual=words)
