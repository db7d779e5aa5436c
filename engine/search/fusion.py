"""How a candidate's scores combine: the Slow model's with the Fast model's, then the words read in it.

**The Slow model and the Fast one.** Within one query's re-ranked shortlist, a candidate's visual score is

    visual = fast + w × (slow / n − best of the shortlist's slow / n)

where `fast` is the Fast cosine similarity, `slow` the Slow log-likelihood log p(query | image) and `n` the
number of tokens it sums (`SlowScorer.scored_tokens`): the Slow model's verdict is compared per token, in nats
per token. Why per token: a log-likelihood grows with the query (3 to 20 nats apart on a shortlist for CoCa,
against 0.01 to 0.05 between CLIP cosines), so a weight on raw log-likelihoods that suits a five-word query
hands a fifteen-word one to the Slow model alone; per token, a caption-length query and a keyword spread alike.

- The score stays on the Fast cosine scale: the Slow model's favourite keeps its Fast score and the others lose
  in proportion to how much less likely the Slow model finds the query for them, so scores stay comparable
  across queries and the relevance cutoff (engine/search/cutoff.py) reads them as cosines.
- A Slow model that is unsure (near-equal log-likelihoods) moves nothing: its differences times `w` stay below
  the Fast model's, whose order then stands; a sure one (a nat per token apart, say) decides.
- `w` belongs to a pair of models (the Fast preset's `fusion_weight`, engine/models/presets.py), calibrated on a
  validation set where one can be: `glimpse eval DATASET --calibrate-fusion` measures R@1 over a range of
  weights (`calibrate`) and keeps the best in the user's `fusion.json` (`calibrated_weight`), which wins over
  the preset's. docs/models.md, "Fusion", has the figures and the pretrained presets' default.

**Words read in the picture.** A file whose text holds a share `s` of the query's words scores `visual +
TEXT_WEIGHT × s` (`total`): one word found written in a picture ranks it above every picture that only looks
right, since cosine similarities differ by far less than 1, and among files holding as many words the visual
score decides.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_config_path

if TYPE_CHECKING:
    from engine.search.candidates import Candidate

log = logging.getLogger(__name__)

#: Cosine units per nat per token when a preset names no weight and none was calibrated.
DEFAULT_FUSION_WEIGHT = 0.1
#: Score units per share of the query's words found written in a file.
TEXT_WEIGHT = 1.0
#: The weights `calibrate` tries, smallest first (cosine units per nat per token); infinity: the Slow order.
WEIGHTS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, math.inf)
#: Where calibrated weights are kept, by Fast preset name: the user's config folder, else this variable's.
CONFIG_ENV = "GLIMPSE_CONFIG_DIR"


def total(candidate: Candidate) -> float:
    """The score results are ordered by: the visual score, plus the words read in the file."""
    return candidate.score + (TEXT_WEIGHT * candidate.text.share if candidate.text is not None else 0.0)


def fuse(fast: Sequence[float], slow: Sequence[float], tokens: int, weight: float) -> list[float]:
    """The visual scores of a re-ranked shortlist, from each candidate's Fast cosine and Slow log-likelihood
    (`tokens`: how many tokens the log-likelihoods sum)."""
    per_token = [s / max(1, tokens) for s in slow]
    if math.isinf(weight):  # the Slow order alone, the Fast score breaking exact ties
        return [p + f * 1e-9 for f, p in zip(fast, per_token, strict=True)]
    top = max(per_token)
    return [f + weight * (p - top) for f, p in zip(fast, per_token, strict=True)]


@dataclass(frozen=True)
class Shortlist:
    """One validation query's shortlist: its candidates' Fast and Slow scores, and which one is right."""

    fast: Sequence[float]
    slow: Sequence[float]
    tokens: int
    #: Index of the right candidate among them; None when the Fast model left it out of the shortlist.
    right: int | None


@dataclass(frozen=True)
class Calibration:
    """R@1 (percent) by weight over a validation set, and the weight that maximises it."""

    recall_by_weight: dict[float, float]
    best_weight: float
    queries: int

    def to_json(self) -> dict:
        return {
            "r1_by_weight": {str(w): r for w, r in self.recall_by_weight.items()},
            "best_weight": self.best_weight,
            "fast_only_r1": self.recall_by_weight[0.0],
            "slow_only_r1": self.recall_by_weight[math.inf],
            "queries": self.queries,
        }


def calibrate(shortlists: Sequence[Shortlist], weights: Sequence[float] = WEIGHTS) -> Calibration:
    """R@1 of the fused order at each weight; the best is the smallest of the most accurate (a finite one:
    the Fast score keeps breaking the Slow model's near-ties), so the Fast model keeps what say it can."""
    if not shortlists:
        raise ValueError("calibrating the fusion needs at least one validation query")
    recall = {}
    for weight in weights:
        hits = 0
        for shortlist in shortlists:
            if shortlist.right is None:
                continue
            fused = fuse(shortlist.fast, shortlist.slow, shortlist.tokens, weight)
            hits += max(range(len(fused)), key=fused.__getitem__) == shortlist.right
        recall[weight] = round(100 * hits / len(shortlists), 2)
    finite = [w for w in weights if not math.isinf(w)]
    best = max(finite, key=lambda w: (recall[w], -w))
    return Calibration(recall, best, len(shortlists))


def fusion_weight(spec: str) -> float:
    """The fusion weight of the Fast model `spec` and its Slow pair: calibrated on this computer, else its
    preset's, else DEFAULT_FUSION_WEIGHT."""
    from engine.models.presets import parse_model_spec

    preset = parse_model_spec(spec).preset
    calibrated = calibrated_weight(preset.name)
    if calibrated is not None:
        return calibrated
    return preset.fusion_weight if preset.fusion_weight is not None else DEFAULT_FUSION_WEIGHT


def calibration_file() -> Path:
    """The file calibrated weights are kept in: `fusion.json` in the user's Glimpse config folder."""
    folder = os.environ.get(CONFIG_ENV)
    return (Path(folder) if folder else user_config_path("glimpse", appauthor=False)) / "fusion.json"


def calibrated_weight(preset: str) -> float | None:
    """The weight `glimpse eval --calibrate-fusion` measured for a Fast preset on this computer, if any."""
    try:
        value = json.loads(calibration_file().read_text(encoding="utf-8")).get(preset, {}).get("weight")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value >= 0 and math.isfinite(value) else None


def save_calibration(preset: str, calibration: Calibration, dataset: str) -> Path:
    """Keep a calibrated weight for a Fast preset (replacing the file atomically); returns the file."""
    path = calibration_file()
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved = saved if isinstance(saved, dict) else {}
    except (OSError, ValueError):
        saved = {}
    saved[preset] = {"weight": calibration.best_weight, "dataset": dataset, **calibration.to_json()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    temporary.replace(path)
    return path
