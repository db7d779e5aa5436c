"""A file on its way to becoming a result: the frames that matched and its scores so far."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.catalogue import FrameHit

if TYPE_CHECKING:
    from engine.search.text import TextMatch


@dataclass(frozen=True)
class Candidate:
    """One file of a shortlist. Each stage returns new candidates (`dataclasses.replace`), never changes one."""

    media_id: int
    path: bytes
    kind: str  # "image" | "video"
    #: Its frames that matched, with their Fast scores, best first.
    frames: tuple[tuple[FrameHit, float], ...]
    #: The score the order follows: the Fast score, or the fused score once the Slow model re-scored it.
    score: float
    #: log p(query | its best frame) from the Slow model; None when not re-scored.
    slow_score: float | None = None
    #: The frame that sets the moment shown (where the words were read, the Slow model's favourite); None:
    #: the Fast model's best.
    best: FrameHit | None = None
    #: The query's words found written in it.
    text: TextMatch | None = None

    @property
    def moment(self) -> FrameHit:
        return self.best or self.frames[0][0]

    @property
    def fast_score(self) -> float:
        """The Fast score of the moment's frame."""
        moment = self.moment.frame_id
        return next(score for frame, score in self.frames if frame.frame_id == moment)
