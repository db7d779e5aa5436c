"""What the engine's facade hands out: plain dataclasses, no dicts-of-anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class SearchResult:
    rank: int
    path: Path
    kind: str  # "image" | "video"
    score: float
    fast_score: float
    slow_score: float | None
    timestamp: float | None  # seconds into a video of the best matching frame; None for photos
    media_id: int
    frame_id: int
    #: For a video: (start, end) seconds of runs of neighbouring frames that match well.
    segments: list[tuple[float, float]] = field(default_factory=list)
    #: What a view shows about the file (size, dimensions, dates); not part of the JSON output.
    details: MediaDetails | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        del data["details"]
        data["path"] = str(self.path)
        data["segments"] = [list(s) for s in self.segments]
        return data


@dataclass
class SearchResults:
    """One search's answer, in the order asked for: the results that clear the relevance cutoff, then the
    less relevant ones past it (`glimpse search --all`, the window's "Show N less relevant results")."""

    shown: list[SearchResult] = field(default_factory=list)
    hidden: list[SearchResult] = field(default_factory=list)

    @property
    def all(self) -> list[SearchResult]:
        return self.shown + self.hidden


@dataclass
class IndexReport:
    images: int = 0  # photos embedded in this run
    videos: int = 0  # videos embedded in this run
    frames: int = 0  # vectors written in this run
    new: int = 0
    updated: int = 0  # changed on disk, or re-embedded for a new model
    moved: int = 0  # renamed or moved files that kept their vectors
    removed: int = 0
    failed: int = 0
    skipped: int = 0  # unchanged since the last run
    unavailable: int = 0  # files in folders that are gone right now (kept, not deleted)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class IndexProgress:
    done: int
    total: int
    current: str  # the file or folder being worked on, for a status line
    failed: int


@dataclass
class LibraryStatus:
    library: Path
    model: str | None
    media: int
    images: int
    videos: int
    frames: int
    failed: int
    pending: int
    unavailable: int
    folders: list[Path]
    excluded: list[Path] = field(default_factory=list)  # sub-folders left out of watched folders

    def to_json(self) -> dict:
        data = asdict(self)
        data["library"] = str(self.library)
        data["folders"] = [str(f) for f in self.folders]
        data["excluded"] = [str(f) for f in self.excluded]
        return data


@dataclass
class CheckReport:
    consistent: bool
    problems: list[str]
    repaired: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class FailedFile:
    path: Path
    error: str


@dataclass
class MediaDetails:
    """What a detail pane shows about one file of the library."""

    path: Path
    kind: str  # "image" | "video"
    size: int  # bytes
    width: int | None
    height: int | None
    duration_s: float | None  # videos only
    taken_at: datetime | None  # the camera's local time (EXIF, or the video's creation time)
    modified: datetime
    #: The date a person thinks of: when it was taken, else when the file last changed (`file_date`).
    when: datetime
    status: str  # "indexed" | "pending" | "failed" | "unavailable"
    error: str | None  # why indexing failed, when it did
