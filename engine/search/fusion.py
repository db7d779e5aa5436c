"""Fusing the Slow model's scores with the Fast model's, within one query's re-ranked shortlist.

    score = fast + FUSION_WEIGHT × (slow − best slow of the shortlist)

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

#: Cosine units per log-likelihood unit, calibrated on a validation split (see the module docstring).
FUSION_WEIGHT = 0.05


def fuse(fast: Sequence[float], slow: Sequence[float], weight: float = FUSION_WEIGHT) -> list[float]:
    """Fused scores of a re-ranked shortlist, one per candidate, from their Fast and Slow scores."""
    top = max(slow)
    return [f + weight * (s - top) for f, s in zip(fast, slow, strict=True)]
