"""The catalogue: SQLite (WAL) through SQLAlchemy 2, the library's source of truth, vectors included.

Paths are stored as the raw bytes the OS gave us, so any file name the OS allows round-trips losslessly.
The schema is created and upgraded by Alembic (engine/migrations); the ORM classes here mirror it.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    column,
    create_engine,
    delete,
    event,
    false,
    func,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from engine.errors import LibraryError
from engine.media.location import Coordinates, Place
from engine.paths import to_path
from engine.results import FailedFile, MediaDetails

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: The full-text indexes of what was read (migration 0003): SQLite FTS5 tables, kept in step with `readings`
#: by triggers, outside the ORM. Words (unicode61, accents removed) and three-letter pieces (trigram).
WORDS_INDEX, CODES_INDEX = FULL_TEXT_TABLES = ("readings_words", "readings_codes")
# SQLite keeps the last AUTOINCREMENT value of each table here, even after rows are deleted.
_SEQUENCES = table("sqlite_sequence", column("name"), column("seq"))


class Base(DeclarativeBase):
    pass


class Status(enum.StrEnum):
    PENDING = "pending"  # seen on disk, not yet embedded with the library's model
    INDEXED = "indexed"
    FAILED = "failed"  # could not be decoded; `error` says why
    UNAVAILABLE = "unavailable"  # its folder is gone (an unplugged drive); kept, not deleted


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String, unique=True)
    dim: Mapped[int] = mapped_column(Integer)


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_status", "status", "model_id"),
        # What finding a moved file asks for (migration 0002).
        Index("ix_media_fingerprint", "fingerprint", "status", "model_id"),
        Index("ix_media_place", "place_id"),
        Index("ix_media_read", "status", "read_at"),
        Index("ix_media_dated", "dated_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    kind: Mapped[str] = mapped_column(String)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str | None] = mapped_column(String)
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration_ms: Mapped[int | None]
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String, default=Status.PENDING)
    error: Mapped[str | None]
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    indexed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Where it was taken (migration 0003): coordinates, their named place, and whether they were looked for.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    place_id: Mapped[int | None] = mapped_column(Integer)
    located: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    #: When its text was read (None: not yet).
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: `file_date`: when it was taken, else when the file last changed.
    dated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class PlaceRow(Base):
    """A named place files were taken at; `key` identifies it (see `place_key`)."""

    __tablename__ = "places"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String, unique=True)
    neighbourhood: Mapped[str | None]
    city: Mapped[str | None]
    region: Mapped[str | None]
    country: Mapped[str]
    country_code: Mapped[str]


class Reading(Base):
    """The text read in a photo (timestamp None) or in one moment of a video."""

    __tablename__ = "readings"
    __table_args__ = (Index("ix_readings_media", "media_id", "timestamp_ms"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    timestamp_ms: Mapped[int | None]
    text: Mapped[str]
    folded: Mapped[str]
    lines: Mapped[str]


class ReadingTerm(Base):
    """A word read (five letters or more) under one of its one-letter-deleted spellings."""

    __tablename__ = "reading_terms"
    __table_args__ = {"sqlite_with_rowid": False}
    variant: Mapped[str] = mapped_column(String, primary_key=True)
    term: Mapped[str] = mapped_column(String, primary_key=True)


class Frame(Base):
    __tablename__ = "frames"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are index keys: never reuse one
    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    timestamp_ms: Mapped[int | None]


class Vector(Base):
    __tablename__ = "vectors"
    __table_args__ = (
        UniqueConstraint("frame_id", "model_id"),
        Index("ix_vectors_model_seq", "model_id", "seq"),
        {"sqlite_autoincrement": True},  # seq is the index's high-water mark
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class VectorDeletion(Base):
    """Filled by a trigger on `vectors`, so an index file can replay deletions made since its checkpoint."""

    __tablename__ = "vector_deletions"
    __table_args__ = {"sqlite_autoincrement": True}
    seq: Mapped[int] = mapped_column(primary_key=True)
    frame_id: Mapped[int]
    model_id: Mapped[int]


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str]


@dataclass(frozen=True)
class VectorSpace:
    """A model's vectors in the catalogue: the id its rows carry, its key (part of the index file's name) and the
    vectors' width."""

    id: int
    key: str
    dim: int


@dataclass(frozen=True)
class NewReading:
    """What was read in one moment of a file (None: a photo): the text as read, folded, and line by line."""

    timestamp_ms: int | None
    text: str
    folded: str
    lines_json: str


@dataclass(frozen=True)
class TextHit:
    """A reading that matched a full-text query: its file, its moment, the text read, and how well (rank)."""

    reading_id: int
    media_id: int
    timestamp_ms: int | None
    text: str
    #: SQLite FTS5's bm25 rank: lower is better.
    rank: float


def place_key(place: Place) -> str:
    """What identifies a place among the library's: its names, from the most precise, and its country."""
    return "|".join(
        part or "" for part in (place.neighbourhood, place.city, place.region, place.country_code)
    )


def file_date(taken_at: dt.datetime | None, mtime_ns: int) -> dt.datetime:
    """The date a person thinks of for a file: when it was taken (EXIF, a video's creation time), else when the
    file last changed. Date filters and date sorting both use this one rule."""
    return taken_at or dt.datetime.fromtimestamp(mtime_ns / 1e9)


@dataclass(frozen=True)
class FrameHit:
    """A frame joined with its media file, as search needs it."""

    frame_id: int
    media_id: int
    path: bytes
    kind: str
    timestamp_ms: int | None
    #: `file_date` of its file.
    when: dt.datetime | None = None
    #: The named place its file was taken at (None: unknown).
    place_id: int | None = None


@dataclass(frozen=True)
class NewFrame:
    timestamp_ms: int | None
    vector: np.ndarray


def under(column, folder: bytes):
    """SQL condition: a BLOB path column lies inside `folder` (byte-wise prefix, '/' + anything)."""
    prefix = folder.rstrip(b"/") + b"/"
    # Every path that starts with prefix sorts in [prefix, prefix with its last byte + 1).
    return (column >= prefix) & (column < prefix[:-1] + b"0")


def encode_vector(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float16).tobytes()


def decode_vectors(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim).astype(np.float32)


class Catalogue:
    """The library's SQLite database: folders, media, frames, models, vectors and settings."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open the catalogue; `read_only` for a library on a read-only disk (it is then searched as it is)."""
        self.path = path
        self.read_only = read_only
        if read_only:
            # immutable: no locks and no WAL files, which a read-only folder could not hold anyway.
            url = f"sqlite:///file:{quote(str(path))}?mode=ro&immutable=1&uri=true"
        else:
            url = f"sqlite:///{path}"
        self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
        if not read_only:
            event.listen(self.engine, "connect", _configure_connection)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self._migrate()

    def _migrate(self) -> None:
        config = alembic_config()
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        try:
            with self.engine.begin() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
                if current == head:
                    return
                if current not in {None, *(script.revision for script in scripts.walk_revisions())}:
                    raise LibraryError(
                        f"the catalogue {self.path} was written by a newer version of Glimpse "
                        f"(schema {current}); update Glimpse to open it"
                    )
                if self.read_only:
                    raise LibraryError(
                        f"the catalogue {self.path} needs upgrading and its folder is read-only; "
                        "open it once where it can be written"
                    )
                log.info("upgrading catalogue %s from schema %s to %s", self.path, current, head)
                # pysqlite runs DDL outside any transaction: without this BEGIN a kill between two steps would
                # leave half a schema that the next upgrade trips over. IMMEDIATE takes the write lock first,
                # so a second process opening the catalogue waits, then finds the upgrade done.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as error:
            raise LibraryError(f"cannot open the catalogue {self.path}: {error.orig}") from error

    def close(self) -> None:
        self.engine.dispose()

    # settings -----------------------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(Setting, key)
            return row.value if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.session.begin() as s:
            s.merge(Setting(key=key, value=value))

    def delete_setting(self, key: str) -> None:
        with self.session.begin() as s:
            s.execute(delete(Setting).where(Setting.key == key))

    # folders ------------------------------------------------------------------------------------------

    def folders(self, excluded: bool = False) -> list[bytes]:
        with self.session() as s:
            return list(
                s.scalars(select(Folder.path).where(Folder.excluded == excluded).order_by(Folder.path))
            )

    def add_folder(self, path: bytes, excluded: bool = False) -> bool:
        """Add a watched (or excluded) folder; False when it was already there."""
        with self.session.begin() as s:
            row = s.scalar(select(Folder).where(Folder.path == path))
            if row is not None and row.excluded == excluded:
                return False
            if row is None:
                s.add(Folder(path=path, excluded=excluded, added_at=dt.datetime.now()))
            else:
                row.excluded = excluded
            return True

    def remove_folder(self, path: bytes) -> bool:
        with self.session.begin() as s:
            return s.execute(delete(Folder).where(Folder.path == path)).rowcount > 0

    # models -------------------------------------------------------------------------------------------

    def model_id(self, key: str, dim: int) -> int:
        """The id of a model's vector space, created on first use."""
        with self.session.begin() as s:
            row = s.scalar(select(Model).where(Model.key == key))
            if row is None:
                row = Model(key=key, dim=dim)
                s.add(row)
                s.flush()
            elif row.dim != dim:
                raise LibraryError(f"model {key} was recorded with {row.dim}-wide vectors, now gives {dim}")
            return row.id

    def find_model(self, key: str) -> VectorSpace | None:
        """The vector space of a known model, or None."""
        with self.session() as s:
            row = s.scalar(select(Model).where(Model.key == key))
            return VectorSpace(row.id, row.key, row.dim) if row else None

    # media --------------------------------------------------------------------------------------------

    def media_under(self, folder: bytes) -> dict[bytes, Media]:
        with self.session() as s:
            return {m.path: m for m in s.scalars(select(Media).where(under(Media.path, folder)))}

    def media_by_path(self, path: bytes) -> Media | None:
        with self.session() as s:
            return s.scalar(select(Media).where(Media.path == path))

    def upsert_pending(self, path: bytes, kind: str, size: int, mtime_ns: int) -> int:
        """Record a file seen on disk that needs embedding; returns its media id."""
        with self.session.begin() as s:
            row = s.scalar(select(Media).where(Media.path == path))
            if row is None:
                row = Media(path=path, kind=kind)
                s.add(row)
            row.kind, row.size, row.mtime_ns = kind, size, mtime_ns
            row.status, row.error, row.model_id = Status.PENDING, None, None
            row.taken_at, row.dated_at = None, file_date(None, mtime_ns)
            # New content: what was read in it and where it was taken are looked at again.
            row.read_at, row.located, row.latitude, row.longitude, row.place_id = (
                None,
                False,
                None,
                None,
                None,
            )
            s.flush()
            s.execute(delete(Reading).where(Reading.media_id == row.id))
            return row.id

    def moved_candidate(self, fingerprint: str, kind: str, model_id: int) -> Media | None:
        """An indexed media row with this content whose file no longer exists: the file was moved."""
        with self.session() as s:
            rows = s.scalars(
                select(Media).where(
                    Media.fingerprint == fingerprint,
                    Media.kind == kind,
                    Media.status == Status.INDEXED,
                    Media.model_id == model_id,
                )
            )
            return next((m for m in rows if not os.path.lexists(m.path)), None)

    def move_media(self, media_id: int, new_path: bytes, size: int, mtime_ns: int) -> None:
        """Give an indexed media row its new path, keeping its frames and vectors; drops a pending twin."""
        with self.session.begin() as s:
            s.execute(delete(Media).where(Media.path == new_path, Media.id != media_id))
            taken_at = s.scalar(select(Media.taken_at).where(Media.id == media_id))
            s.execute(
                update(Media)
                .where(Media.id == media_id)
                .values(path=new_path, size=size, mtime_ns=mtime_ns, dated_at=file_date(taken_at, mtime_ns))
            )

    def record_indexed(
        self,
        media_id: int,
        *,
        model_id: int,
        fingerprint: str | None,
        width: int | None,
        height: int | None,
        duration_ms: int | None,
        taken_at: dt.datetime | None,
        frames: Sequence[NewFrame],
        location: Coordinates | None = None,
        place: Place | None = None,
    ) -> None:
        """Replace a media file's frames and vectors in one transaction: all or nothing. `location` is where
        it was taken as its file says (None: it says nothing), `place` the place named there."""
        with self.session.begin() as s:
            place_id = self._place_id(s, place)
            mtime_ns = s.scalar(select(Media.mtime_ns).where(Media.id == media_id))
            s.execute(delete(Frame).where(Frame.media_id == media_id))
            for frame in frames:
                row = Frame(media_id=media_id, timestamp_ms=frame.timestamp_ms)
                s.add(row)
                s.flush()
                s.add(Vector(frame_id=row.id, model_id=model_id, data=encode_vector(frame.vector)))
            s.execute(
                update(Media)
                .where(Media.id == media_id)
                .values(
                    status=Status.INDEXED,
                    error=None,
                    model_id=model_id,
                    fingerprint=fingerprint,
                    width=width,
                    height=height,
                    duration_ms=duration_ms,
                    taken_at=taken_at,
                    dated_at=file_date(taken_at, mtime_ns or 0),
                    indexed_at=dt.datetime.now(),
                    latitude=location.latitude if location else None,
                    longitude=location.longitude if location else None,
                    place_id=place_id,
                    located=True,
                )
            )

    def record_failed(self, media_id: int, error: str, fingerprint: str | None = None) -> None:
        with self.session.begin() as s:
            s.execute(delete(Frame).where(Frame.media_id == media_id))
            s.execute(
                update(Media)
                .where(Media.id == media_id)
                .values(
                    status=Status.FAILED, error=error, fingerprint=fingerprint, indexed_at=dt.datetime.now()
                )
            )

    def delete_media(self, media_ids: Iterable[int]) -> int:
        ids = list(media_ids)
        with self.session.begin() as s:
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                removed += s.execute(delete(Media).where(Media.id.in_(chunk))).rowcount
            return removed

    def set_unavailable(self, folder: bytes, unavailable: bool) -> int:
        """Mark a missing folder's media unavailable (kept, not deleted), or bring them back."""
        old, new = (
            (Status.INDEXED, Status.UNAVAILABLE) if unavailable else (Status.UNAVAILABLE, Status.INDEXED)
        )
        with self.session.begin() as s:
            return s.execute(
                update(Media).where(under(Media.path, folder), Media.status == old).values(status=new)
            ).rowcount

    def pending_ids(self, model_id: int) -> list[int]:
        """Media that still need embedding with this model (pending, or embedded by another model)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Media.id)
                    .where(
                        (Media.status == Status.PENDING)
                        | ((Media.status == Status.INDEXED) & (Media.model_id != model_id))
                    )
                    .order_by(Media.path)
                )
            )

    def get_media(self, media_ids: Sequence[int]) -> list[Media]:
        with self.session() as s:
            rows = {m.id: m for m in s.scalars(select(Media).where(Media.id.in_(list(media_ids))))}
            return [rows[i] for i in media_ids if i in rows]

    # places -------------------------------------------------------------------------------------------

    def _place_id(self, s, place: Place | None) -> int | None:
        if place is None:
            return None
        key = place_key(place)
        row = s.scalar(select(PlaceRow).where(PlaceRow.key == key))
        if row is None:
            row = PlaceRow(
                key=key,
                neighbourhood=place.neighbourhood,
                city=place.city,
                region=place.region,
                country=place.country,
                country_code=place.country_code,
            )
            s.add(row)
            s.flush()
        return row.id

    def record_location(self, media_id: int, location: Coordinates | None, place: Place | None) -> None:
        """Where an indexed file was taken, looked for after it was indexed (a library older than places)."""
        with self.session.begin() as s:
            place_id = self._place_id(s, place)
            s.execute(
                update(Media)
                .where(Media.id == media_id)
                .values(
                    latitude=location.latitude if location else None,
                    longitude=location.longitude if location else None,
                    place_id=place_id,
                    located=True,
                )
            )

    def indexed_media(self) -> list[Media]:
        """Every indexed file, oldest in the library first."""
        with self.session() as s:
            return list(s.scalars(select(Media).where(Media.status == Status.INDEXED).order_by(Media.id)))

    def unlocated(self, limit: int = 200) -> list[Media]:
        """Indexed files whose location was never looked for (indexed before Glimpse knew places)."""
        return self._indexed_where(Media.located.is_(False), limit)

    def _indexed_where(self, condition, limit: int) -> list[Media]:
        """Up to `limit` indexed files meeting `condition`, oldest in the library first."""
        with self.session() as s:
            query = select(Media).where(Media.status == Status.INDEXED, condition).order_by(Media.id)
            return list(s.scalars(query.limit(limit)))

    def places(self) -> dict[int, Place]:
        """The places the library's indexed files were taken at, by place id."""
        with self.session() as s:
            present = select(Media.place_id).where(Media.status == Status.INDEXED).distinct()
            return {r.id: _place(r) for r in s.scalars(select(PlaceRow).where(PlaceRow.id.in_(present)))}

    # reading ------------------------------------------------------------------------------------------

    def unread(self, limit: int = 200) -> list[Media]:
        """Indexed files whose text has not been read yet, oldest in the library first."""
        return self._indexed_where(Media.read_at.is_(None), limit)

    def record_reading(
        self, media_id: int, readings: Sequence[NewReading], terms: Iterable[tuple[str, str]] = ()
    ) -> None:
        """What was read in a file (maybe nothing), replacing what was read before, in one transaction; `terms`
        are (variant, word) pairs of the deletion neighbourhood (engine/search/words.py)."""
        with self.session.begin() as s:
            s.execute(delete(Reading).where(Reading.media_id == media_id))
            for reading in readings:
                s.add(
                    Reading(
                        media_id=media_id,
                        timestamp_ms=reading.timestamp_ms,
                        text=reading.text,
                        folded=reading.folded,
                        lines=reading.lines_json,
                    )
                )
            pairs = [{"variant": v, "term": t} for v, t in set(terms)]
            if pairs:
                s.execute(sqlite_insert(ReadingTerm).values(pairs).on_conflict_do_nothing())
            s.execute(update(Media).where(Media.id == media_id).values(read_at=dt.datetime.now()))

    def readings_of(self, media_ids: Sequence[int]) -> dict[int, list[Reading]]:
        """Everything read in these files, by media id, in time order."""
        out: dict[int, list[Reading]] = {}
        ids = list(dict.fromkeys(int(i) for i in media_ids))
        with self.session() as s:
            for start in range(0, len(ids), 900):
                rows = s.scalars(
                    select(Reading)
                    .where(Reading.media_id.in_(ids[start : start + 900]))
                    .order_by(Reading.media_id, Reading.timestamp_ms)
                )
                for row in rows:
                    out.setdefault(row.media_id, []).append(row)
        return out

    def match_text(self, index: str, expression: str, limit: int) -> list[TextHit]:
        """Readings whose text matches an FTS5 `expression` in one of FULL_TEXT_TABLES, best first."""
        if index not in FULL_TEXT_TABLES:
            raise ValueError(f"no full-text index {index!r}")
        sql = (
            f"SELECT r.id, r.media_id, r.timestamp_ms, r.text, {index}.rank FROM {index} "
            f"JOIN readings r ON r.id = {index}.rowid WHERE {index} MATCH :expression "
            f"ORDER BY {index}.rank LIMIT :limit"
        )
        with self.engine.connect() as connection:
            try:
                rows = connection.exec_driver_sql(sql, {"expression": expression, "limit": limit}).all()
            except OperationalError as error:  # a malformed expression is the caller's bug, said plainly
                raise ValueError(f"bad full-text query {expression!r}: {error.orig}") from None
        return [TextHit(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def terms_with_variants(self, variants: Iterable[str]) -> set[str]:
        """The words read that have one of these one-letter-deleted spellings (or are one of them)."""
        wanted = list(set(variants))
        found: set[str] = set()
        with self.session() as s:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                found.update(s.scalars(select(ReadingTerm.term).where(ReadingTerm.variant.in_(chunk))))
        return found

    # counts -------------------------------------------------------------------------------------------

    def counts(self, model_id: int | None) -> dict[str, int]:
        with self.session() as s:
            by_kind = dict(
                s.execute(
                    select(Media.kind, func.count())
                    .where(Media.status == Status.INDEXED, Media.model_id == model_id)
                    .group_by(Media.kind)
                ).all()
            )
            by_status = dict(s.execute(select(Media.status, func.count()).group_by(Media.status)).all())
            read = (
                s.scalar(
                    select(func.count())
                    .select_from(Media)
                    .where(Media.status == Status.INDEXED, Media.read_at.is_not(None))
                )
                or 0
            )
            frames = (
                s.scalar(select(func.count()).select_from(Vector).where(Vector.model_id == model_id)) or 0
            )
            stale = (
                s.scalar(
                    select(func.count())
                    .select_from(Media)
                    .where(Media.status == Status.INDEXED, Media.model_id != model_id)
                )
                or 0
            )
        return {
            "media": sum(by_status.values()),
            "images": by_kind.get("image", 0),
            "videos": by_kind.get("video", 0),
            "frames": frames,
            "failed": by_status.get(Status.FAILED, 0),
            "pending": by_status.get(Status.PENDING, 0) + stale,
            "unavailable": by_status.get(Status.UNAVAILABLE, 0),
            "read": read,
        }

    # vectors ------------------------------------------------------------------------------------------

    def vectors_since(self, model_id: int, after_seq: int, dim: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(frame ids, vectors, last seq) of a model's vectors written after `after_seq`."""
        with self.session() as s:
            rows = s.execute(
                select(Vector.seq, Vector.frame_id, Vector.data)
                .where(Vector.model_id == model_id, Vector.seq > after_seq)
                .order_by(Vector.seq)
            ).all()
        if not rows:
            return np.zeros(0, dtype=np.uint64), np.zeros((0, dim), np.float32), after_seq
        keys = np.fromiter((r.frame_id for r in rows), dtype=np.uint64, count=len(rows))
        return keys, decode_vectors([r.data for r in rows], dim), rows[-1].seq

    def deletions_since(self, model_id: int, after_seq: int) -> tuple[np.ndarray, int]:
        with self.session() as s:
            rows = s.execute(
                select(VectorDeletion.seq, VectorDeletion.frame_id)
                .where(VectorDeletion.model_id == model_id, VectorDeletion.seq > after_seq)
                .order_by(VectorDeletion.seq)
            ).all()
        if not rows:
            return np.zeros(0, dtype=np.uint64), after_seq
        return np.array([r.frame_id for r in rows], dtype=np.uint64), rows[-1].seq

    def prune_deletions(self, model_id: int, up_to_seq: int) -> None:
        with self.session.begin() as s:
            s.execute(
                delete(VectorDeletion).where(
                    VectorDeletion.model_id == model_id, VectorDeletion.seq <= up_to_seq
                )
            )

    def last_seqs(self) -> tuple[int, int]:
        """The highest vector and deletion sequence numbers ever issued (AUTOINCREMENT never goes back)."""
        with self.session() as s:
            seqs = dict(s.execute(select(_SEQUENCES.c.name, _SEQUENCES.c.seq)).all())
        return seqs.get("vectors", 0), seqs.get("vector_deletions", 0)

    def vector_keys(self, model_id: int) -> np.ndarray:
        with self.session() as s:
            keys = s.scalars(select(Vector.frame_id).where(Vector.model_id == model_id)).all()
        return np.array(keys, dtype=np.uint64)

    def vectors_of(self, frame_ids: Sequence[int], model_id: int, dim: int) -> dict[int, np.ndarray]:
        with self.session() as s:
            rows = s.execute(
                select(Vector.frame_id, Vector.data).where(
                    Vector.model_id == model_id, Vector.frame_id.in_(list(frame_ids))
                )
            ).all()
        matrix = decode_vectors([r.data for r in rows], dim)
        return {r.frame_id: matrix[i] for i, r in enumerate(rows)}

    def frames(self, frame_ids: Sequence[int]) -> dict[int, FrameHit]:
        """Frames joined with their media; frames that no longer exist are simply absent."""
        out: dict[int, FrameHit] = {}
        ids = [int(i) for i in frame_ids]
        with self.session() as s:
            for start in range(0, len(ids), 900):
                # Two primary-key look-ups rather than a join: without statistics SQLite may plan the join
                # as a scan of every file's frames, 90% of a search's time at a million frames. For the same
                # reason the status is checked here: in SQL it made SQLite read every indexed file through
                # ix_media_status (60 ms a search at 300,000 files, against 10 ms).
                frames = s.execute(
                    select(Frame.id, Frame.media_id, Frame.timestamp_ms).where(
                        Frame.id.in_(ids[start : start + 900])
                    )
                ).all()
                media = {
                    m.id: m
                    for m in s.execute(
                        select(
                            Media.id, Media.path, Media.kind, Media.dated_at, Media.place_id, Media.status
                        ).where(Media.id.in_({f.media_id for f in frames}))
                    )
                    if m.status == Status.INDEXED
                }
                for f in frames:
                    m = media.get(f.media_id)
                    if m is not None:
                        out[f.id] = FrameHit(
                            f.id, f.media_id, m.path, m.kind, f.timestamp_ms, m.dated_at, m.place_id
                        )
        return out

    def frames_of(self, media_ids: Sequence[int]) -> dict[int, FrameHit]:
        """Every frame of these indexed files, by frame id."""
        ids = list(dict.fromkeys(int(i) for i in media_ids))
        frame_ids: list[int] = []
        with self.session() as s:
            for start in range(0, len(ids), 900):
                frame_ids += s.scalars(select(Frame.id).where(Frame.media_id.in_(ids[start : start + 900])))
        return self.frames(frame_ids)

    def media_matching(
        self,
        *,
        place_ids: Collection[int] | None = None,
        days: Sequence[tuple[dt.date, dt.date]] | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[int]:
        """Indexed files taken at one of `place_ids` and on one of the `days` ranges (first and last day), by
        their date, newest first unless told otherwise. None: no condition of that kind."""
        condition = Media.status == Status.INDEXED
        if place_ids is not None:
            condition &= Media.place_id.in_(list(place_ids))
        if days is not None:
            during = [
                (Media.dated_at >= dt.datetime.combine(first, dt.time.min))
                & (Media.dated_at < dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min))
                for first, last in days
            ]
            condition &= or_(*during) if during else false()
        order = Media.dated_at.desc() if newest_first else Media.dated_at.asc()
        with self.session() as s:
            query = select(Media.id).where(condition).order_by(order, Media.id)
            return list(s.scalars(query.limit(limit) if limit is not None else query))

    def date_span(self) -> tuple[dt.date, dt.date] | None:
        """The first and last day the library's indexed files are dated (None: an empty library)."""
        with self.session() as s:
            first, last = s.execute(
                select(func.min(Media.dated_at), func.max(Media.dated_at)).where(
                    Media.status == Status.INDEXED
                )
            ).one()
        return (first.date(), last.date()) if first and last else None

    def frames_of_media(self, media_id: int) -> list[tuple[int, int | None]]:
        with self.session() as s:
            return [
                (r.id, r.timestamp_ms)
                for r in s.execute(
                    select(Frame.id, Frame.timestamp_ms).where(Frame.media_id == media_id).order_by(Frame.id)
                )
            ]

    def details(self, media_ids: Sequence[int]) -> dict[int, MediaDetails]:
        """What a view shows about each of these files, by media id, in one query per 900 files."""
        ids = list(dict.fromkeys(int(i) for i in media_ids))
        out: dict[int, MediaDetails] = {}
        with self.session() as s:
            for start in range(0, len(ids), 900):
                rows = list(s.scalars(select(Media).where(Media.id.in_(ids[start : start + 900]))))
                places = {
                    p.id: p
                    for p in s.scalars(select(PlaceRow).where(PlaceRow.id.in_({m.place_id for m in rows})))
                }
                read: dict[int, list[str]] = {}
                for media_id, text in s.execute(
                    select(Reading.media_id, Reading.text)
                    .where(Reading.media_id.in_([m.id for m in rows]))
                    .order_by(Reading.media_id, Reading.timestamp_ms)
                ):
                    read.setdefault(media_id, []).append(text)
                for m in rows:
                    place = places.get(m.place_id) if m.place_id is not None else None
                    out[m.id] = MediaDetails(
                        path=to_path(m.path),
                        kind=m.kind,
                        size=m.size,
                        width=m.width,
                        height=m.height,
                        duration_s=m.duration_ms / 1000 if m.duration_ms is not None else None,
                        taken_at=m.taken_at,
                        modified=dt.datetime.fromtimestamp(m.mtime_ns / 1e9),
                        when=m.dated_at or file_date(m.taken_at, m.mtime_ns),
                        status=str(m.status),
                        error=m.error,
                        place=_place(place).label if place is not None else None,
                        text="\n".join(read[m.id]) if m.id in read else None,
                        latitude=m.latitude,
                        longitude=m.longitude,
                    )
        return out

    def failed_files(self, limit: int) -> list[FailedFile]:
        """Files that could not be indexed, with the reason, in path order, up to `limit`."""
        with self.session() as s:
            rows = s.execute(
                select(Media.path, Media.error)
                .where(Media.status == Status.FAILED)
                .order_by(Media.path)
                .limit(limit)
            ).all()
        return [FailedFile(path=to_path(r.path), error=r.error or "unknown error") for r in rows]

    def orphans(self) -> dict[str, int]:
        """Rows that point at nothing: indexed media without frames, frames without vectors of their model."""
        with self.session() as s:
            no_frames = s.scalar(
                select(func.count())
                .select_from(Media)
                .where(
                    Media.status == Status.INDEXED,
                    ~select(Frame.id).where(Frame.media_id == Media.id).exists(),
                )
            )
            no_vector = s.scalar(
                select(func.count())
                .select_from(Frame)
                .join(Media, Media.id == Frame.media_id)
                .where(
                    Media.status == Status.INDEXED,
                    ~select(Vector.seq)
                    .where(Vector.frame_id == Frame.id, Vector.model_id == Media.model_id)
                    .exists(),
                )
            )
        return {"media without frames": no_frames or 0, "frames without vectors": no_vector or 0}

    def requeue_orphans(self) -> int:
        """Send indexed media with missing frames or vectors back to pending, to be embedded again."""
        with self.session.begin() as s:
            broken = (
                ~select(Frame.id).where(Frame.media_id == Media.id).exists()
                | select(Frame.id)
                .where(
                    Frame.media_id == Media.id,
                    ~select(Vector.seq)
                    .where(Vector.frame_id == Frame.id, Vector.model_id == Media.model_id)
                    .exists(),
                )
                .exists()
            )
            return s.execute(
                update(Media).where(Media.status == Status.INDEXED, broken).values(status=Status.PENDING)
            ).rowcount


def _place(row: PlaceRow) -> Place:
    return Place(
        city=row.city,
        region=row.region,
        country=row.country,
        country_code=row.country_code,
        neighbourhood=row.neighbourhood,
    )


def alembic_config() -> Config:
    """Alembic's configuration for the catalogue's migrations (engine/migrations)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _configure_connection(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
