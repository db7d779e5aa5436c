"""The relevance cutoff: how many of the best-first results a person is shown before asking for more.

Files holding the query's words written in them are always shown (they come first). Of the others, re-ranked
results keep the Slow model's shortlist (those with a Slow score); otherwise a result must score
within RELEVANCE_GAP of the best Fast score. At least MIN_SHOWN results are shown either way, since a query's
best matches can all be weak and still be what the person wants. The rest stay a click (`--all`) away.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.search.candidates import Candidate

#: A result whose Fast score is this far below the best one is hidden until the person asks for more.
RELEVANCE_GAP = 0.1
#: The fewest results shown before the relevance cutoff applies.
MIN_SHOWN = 8


def relevant_count(candidates: Sequence[Candidate]) -> int:
    """How many of the best-first `candidates` clear the relevance cutoff."""
    read = sum(1 for c in candidates if c.text is not None)
    looks = [c for c in candidates if c.text is None]
    shown = 0
    if any(c.slow_score is not None for c in looks):
        shown = sum(1 for c in looks if c.slow_score is not None)
    elif looks:
        best = max(c.fast_score for c in looks)
        shown = sum(1 for c in looks if c.fast_score >= best - RELEVANCE_GAP)
    return min(len(candidates), max(read + shown, MIN_SHOWN))
