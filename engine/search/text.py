"""The text retriever: the query's words → the photos and video moments they are written in (SQLite FTS5).

Each word to read is looked for three ways, and a reading (the text of one photo or one video moment) counts
the word found when any of them finds it:

- as a word, case and accents folded ("cafe" finds "CAFÉ"), in the words index;
- one misread letter away, for words of five letters or more ("bakery" finds "BAKFRY"): the words read that
  share a one-letter-deleted spelling with it (the `reading_terms` table), checked to be one edit away;
- for codes, plates and numbers (anything with a digit), as a part of a longer run of letters and digits, in
  the trigram index ("RE16" finds "RE16TGK" and "RE16 TGK").

A quoted phrase of several words must appear in that order. A file scores by the share of the query's words
found in its best reading; that reading's moment is the file's moment, and its lines holding them are shown.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from engine.catalogue import CODES_INDEX, WORDS_INDEX, Catalogue, TextHit
from engine.search.words import (
    CODE_MIN_LENGTH,
    FUZZY_MIN_LENGTH,
    deletions,
    fold,
    is_code,
    within_one_edit,
    words,
)

_TOKEN = re.compile(r"[^\W_]+")
#: Readings fetched per word looked for: a word written in more pictures than this is no help in finding one.
HITS_PER_WORD = 5000


@dataclass(frozen=True)
class TextMatch:
    """A file whose text holds some of the query's words, in its best reading."""

    media_id: int
    #: The moment of that reading in a video (None: a photo).
    timestamp_ms: int | None
    #: Share of the query's words (and quoted phrases) found: 0 to 1.
    share: float
    #: The query's words found, as the query has them.
    found: tuple[str, ...]
    #: The lines of that reading that hold them.
    lines: tuple[str, ...]


class TextRetriever:
    """Finds the query's words in what the reading pass read."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def find(self, wanted: Sequence[str], allowed: Collection[int] | None = None) -> dict[int, TextMatch]:
        """The files holding some of `wanted` (words, or quoted phrases of several words), by media id;
        `allowed`: only these files (a place or a date narrowed the search)."""
        wanted = [w for w in dict.fromkeys(wanted) if words(w)]
        if not wanted:
            return {}
        found_in: dict[int, set[str]] = {}  # reading id → the wanted words it holds
        readings: dict[int, TextHit] = {}
        for want in wanted:
            for hit in self._readings_with(want):
                if allowed is None or hit.media_id in allowed:
                    readings[hit.reading_id] = hit
                    found_in.setdefault(hit.reading_id, set()).add(want)
        best: dict[int, tuple[int, TextHit]] = {}
        for reading_id, held in found_in.items():
            hit = readings[reading_id]
            previous = best.get(hit.media_id)
            # The reading holding the most words; of equals, the earliest moment.
            if previous is None or (len(held), -(hit.timestamp_ms or 0)) > (
                previous[0],
                -(previous[1].timestamp_ms or 0),
            ):
                best[hit.media_id] = (len(held), hit)
        return {
            media_id: self._match(hit, found_in[hit.reading_id], wanted)
            for media_id, (_, hit) in best.items()
        }

    def _readings_with(self, want: str) -> list[TextHit]:
        pieces = words(want)
        if len(pieces) > 1:  # a phrase: its words in order
            expression = '"' + " ".join(pieces) + '"'
            return self.catalogue.match_text(WORDS_INDEX, expression, HITS_PER_WORD)
        word = pieces[0]
        spellings = {word}
        if len(word) >= FUZZY_MIN_LENGTH and not is_code(word):
            near = self.catalogue.terms_with_variants(deletions(word) | {word})
            spellings |= {term for term in near if within_one_edit(word, term)}
        hits = self.catalogue.match_text(
            WORDS_INDEX, " OR ".join(f'"{s}"' for s in sorted(spellings)), HITS_PER_WORD
        )
        if is_code(word) and len(word) >= CODE_MIN_LENGTH:
            seen = {h.reading_id for h in hits}
            inside = self.catalogue.match_text(CODES_INDEX, f'"{word}"', HITS_PER_WORD)
            hits += [h for h in inside if h.reading_id not in seen]
        return hits

    def _match(self, hit: TextHit, held: set[str], wanted: list[str]) -> TextMatch:
        found = tuple(w for w in wanted if w in held)
        return TextMatch(
            media_id=hit.media_id,
            timestamp_ms=hit.timestamp_ms,
            share=len(found) / len(wanted),
            found=found,
            lines=_lines_holding(hit.text, found),
        )


def spans_of(text: str, found: Sequence[str]) -> list[tuple[int, int]]:
    """Where in `text` the found words are written (as the retriever matched them), for highlighting."""
    wanted = {w for phrase in found for w in words(phrase)}
    spans = []
    for match in _TOKEN.finditer(text):
        token = fold(match.group())
        if any(
            token == w
            or (len(w) >= FUZZY_MIN_LENGTH and within_one_edit(w, token))
            or (is_code(w) and w in token)
            for w in wanted
        ):
            spans.append(match.span())
    return spans


def _lines_holding(text: str, found: Sequence[str]) -> tuple[str, ...]:
    """The lines of `text` that hold a found word (the first line when none does: a match of a code's part)."""
    lines = text.splitlines()
    return tuple(line for line in lines if spans_of(line, found)) or tuple(lines[:1])
