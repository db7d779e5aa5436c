"""What the engine's facade hands out: plain dataclasses, no dicts-of-anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal


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
    #: Where it was taken, as a person reads it ("Lisbon, Portugal"); None: unknown.
    place: str | None = None
    #: When it was taken (ISO 8601, the camera's local time); None: unknown.
    taken: str | None = None
    #: The lines of text read in it that hold the query's words; None: none matched.
    text: str | None = None
    #: What it matched: "visual", "text", "place", "date".
    matched: list[str] = field(default_factory=list)
    #: Where in `text` the query's words are (start, end), for highlighting; not part of the JSON output.
    text_spans: list[tuple[int, int]] = field(default_factory=list)
    #: What a view shows about the file (size, dimensions, dates); not part of the JSON output.
    details: MediaDetails | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        del data["details"], data["text_spans"]
        data["path"] = str(self.path)
        data["segments"] = [list(s) for s in self.segments]
        return data

    def to_wire(self) -> dict:
        """Every field, the details included, as JSON values: what the resident engine sends (`from_wire`)."""
        data = self.to_json()
        data["text_spans"] = [list(span) for span in self.text_spans]
        data["details"] = self.details.to_wire() if self.details is not None else None
        return data

    @classmethod
    def from_wire(cls, data: dict) -> SearchResult:
        """The result `to_wire` described, equal to the one it was made from."""
        details = data["details"]
        return cls(
            **{
                **data,
                "path": Path(data["path"]),
                "segments": [(start, end) for start, end in data["segments"]],
                "text_spans": [(start, end) for start, end in data.get("text_spans", [])],
                "details": MediaDetails.from_wire(details) if details is not None else None,
            }
        )


@dataclass(frozen=True)
class QueryPart:
    """One thing a query was understood to ask for: `kind` is "visual", "words", "place" or "date"; `label` is
    what a person reads ("Lisbon, Portugal", "July 2019"), `detail` says more (the days a date covers), and
    `spans` are where in `Query.text` it was said, so that it can be taken out of the query."""

    kind: Literal["visual", "words", "place", "date"]
    label: str
    detail: str = ""
    spans: tuple[tuple[int, int], ...] = ()


@dataclass
class SearchResults:
    """One search's answer, in the order asked for: the results that clear the relevance cutoff, then the
    less relevant ones past it (`glimpse search --all`, the window's "Show N less relevant results")."""

    shown: list[SearchResult] = field(default_factory=list)
    hidden: list[SearchResult] = field(default_factory=list)
    #: The query as understood (empty for a search by a picture): `QueryPart.spans` refer to `query`.
    query: str = ""
    parts: list[QueryPart] = field(default_factory=list)

    def query_without(self, part: QueryPart) -> str:
        """The query with one of its parts taken out: what to search for when a person removes that chip."""
        from engine.search.dates import without_spans

        return without_spans(self.query, list(part.spans))

    def explain(self) -> str:
        """What the query was understood to mean, on one line: "looking for: a cat · place: Tokyo, Japan"."""
        names = {"visual": "looking for", "words": "words", "place": "place", "date": "date"}
        return " · ".join(f"{names[part.kind]}: {part.label}" for part in self.parts)

    @property
    def all(self) -> list[SearchResult]:
        return self.shown + self.hidden

    def to_wire(self) -> dict:
        """Both groups, every field of every result: what the resident engine sends (`from_wire`)."""
        return {
            "shown": [r.to_wire() for r in self.shown],
            "hidden": [r.to_wire() for r in self.hidden],
            "query": self.query,
            "parts": [asdict(part) for part in self.parts],
        }

    @classmethod
    def from_wire(cls, data: dict) -> SearchResults:
        return cls(
            shown=[SearchResult.from_wire(r) for r in data["shown"]],
            hidden=[SearchResult.from_wire(r) for r in data["hidden"]],
            query=data.get("query", ""),
            parts=[
                QueryPart(**{**part, "spans": tuple(tuple(span) for span in part["spans"])})
                for part in data.get("parts", [])
            ],
        )


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
    read: int = 0  # files whose text was read in this run (the reading pass)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class IndexProgress:
    done: int
    total: int
    current: str  # the file or folder being worked on, for a status line
    failed: int
    #: "visual" (decoding and embedding) or "reading" (the words in the pictures, after).
    stage: str = "visual"


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
    #: Indexed files whose text has been read (the reading pass follows the visual pass).
    read: int
    folders: list[Path]
    excluded: list[Path] = field(default_factory=list)  # sub-folders left out of watched folders
    #: What the library's image vectors were computed in: "int8" or "fp32" (None before the first index).
    precision: str | None = None
    #: Whether `model` is one `glimpse tune` made for this library.
    tuned: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["library"] = str(self.library)
        data["folders"] = [str(f) for f in self.folders]
        data["excluded"] = [str(f) for f in self.excluded]
        return data

    @classmethod
    def from_json(cls, data: dict) -> LibraryStatus:
        """The status `to_json` described (the resident engine's reply)."""
        return cls(
            **{
                **data,
                "library": Path(data["library"]),
                "folders": [Path(f) for f in data["folders"]],
                "excluded": [Path(f) for f in data["excluded"]],
            }
        )


@dataclass
class CheckReport:
    consistent: bool
    problems: list[str]
    repaired: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> CheckReport:
        return cls(**data)


@dataclass
class FailedFile:
    path: Path
    error: str

    def to_json(self) -> dict:
        return {"path": str(self.path), "error": self.error}

    @classmethod
    def from_json(cls, data: dict) -> FailedFile:
        return cls(path=Path(data["path"]), error=data["error"])


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
    #: Where it was taken: the place's name as a person reads it ("Lisbon, Portugal"), and the coordinates.
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    #: All the text read in it (a video's moments one after the other); None: none, or not read yet.
    text: str | None = None

    def to_wire(self) -> dict:
        """Every field as JSON values, dates in ISO 8601 (`from_wire` gives back an equal object)."""
        data = asdict(self)
        data["path"] = str(self.path)
        for name in _DATES:
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    @classmethod
    def from_wire(cls, data: dict) -> MediaDetails:
        dates = {
            name: datetime.fromisoformat(data[name]) if data[name] is not None else None for name in _DATES
        }
        return cls(**{**data, **dates, "path": Path(data["path"])})


_DATES = ("taken_at", "modified", "when")
