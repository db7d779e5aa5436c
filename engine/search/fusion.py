"""How a candidate's scores combine: the Slow model's with the Fast model's, then the words read in it.

A file whose text holds a share `s` of the query's words scores `visual + TEXT_WEIGHT × s` (`total`): one word
found written in a picture ranks it above every picture that only looks right, since cosine similarities
differ by far less than 1, and among files holding as many words the visual score decides.

Within one query's re-ranked shortlist, the visual score is

    visual = fast + FUSION_WEIGHT × (slow − best slow of the shortlist)

where `fast` is the Fast cosine similarity and `slow` the Slow log-likelihood log p(query | image). The order
is the order of slow + fast / FUSION_WEIGHT (the Slow model decides, the Fast score breaks near-ties), and the
score stays on the cosine scale: the Slow model's favourite keeps its Fast score, the others lose in proportion
to how much less likely the Slow model finds the query for them. That keeps scores comparable across queries,
which the relevance cutoff (engine/search/cutoff.py) needs. The raw log-likelihood is not length-normalised:
every candidate of one query is scored on the same tokens.

The weight was calibrated on the validation split of the synthetic shapes set with the shipped `shapes` pair,
K = 10, 400 captions (`benchmarks/calibrate_fusion.py build/shapes/data --queries 400`, results in
benchmarks/results/fusion-shapes-val.json): R@1 is 43.8 for Fast alone, 77.2 for Slow alone (the order of the
Slow scores), and peaks at 78.0 for w = 0.05, where the Fast score breaks the Slow model's near-ties; w = 0.01
gives 73.0 and w = 0.1 gives 77.8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.search.candidates import Candidate

#: Cosine units per log-likelihood unit, calibrated on a validation split (see the module docstring).
FUSION_WEIGHT = 0.05
#: Score units per share of the query's words found written in a file.
TEXT_WEIGHT = 1.0


def total(candidate: Candidate) -> float:
    """The score results are ordered by: the visual score, plus the words read in the file."""
    return candidate.score + (TEXT_WEIGHT * candidate.text.share if candidate.text is not None else 0.0)


def fuse(fast: Sequence[float], slow: Sequence[float], weight: float = FUSION_WEIGHT) -> list[float]:
    """Fused scores of a re-ranked shortlist, one per candidate, from their Fast and Slow scores."""
    top = max(slow)
    return [f + weight * (s - top) for f, s in zip(fast, slow, strict=True)]
