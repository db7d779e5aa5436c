"""`Library`: the engine's facade. The `glimpse` command and the desktop app are two thin faces over it."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.catalogue import Catalogue
from engine.errors import GlimpseError, LibraryError, UsageError
from engine.lock import WriterLock
from engine.models.presets import Preset
from engine.paths import default_library, display, is_inside, to_bytes, to_path
from engine.results import (
    CheckReport,
    FailedFile,
    IndexProgress,
    IndexReport,
    LibraryStatus,
    MediaDetails,
    SearchResult,
)
from engine.thumbnails import DEFAULT_MAX_BYTES, ThumbnailCache
from engine.vector_index import VectorIndex

log = logging.getLogger(__name__)

MODEL_SETTING = "model"
INTERVAL_SETTING = "frame_interval_s"
RERANK_SETTING = "rerank_k"
DEFAULT_FRAME_INTERVAL_S = 2.0
#: Default re-ranking depth (docs/benchmarks.md, "Re-ranking"): K = 100 stays far under 100 ms on a GPU; on a
#: CPU the largest K whose Slow pass stays interactive.
RERANK_GPU = 100
RERANK_CPU = 8


class Library:
    """A folder holding a catalogue, vector indexes, thumbnails and logs. Open one with `Library.open`."""

    def __init__(self, folder: Path, *, writable: bool, device: str = "auto") -> None:
        self.folder = folder
        self.writable = writable
        self.device = device
        self._lock = WriterLock(folder) if writable else None
        self._index: VectorIndex | None = None
        self._index_model_id: int | None = None
        self._pool = None
        self._tokens = None
        self._closed = False
        if self._lock is not None:
            self._lock.acquire()
        _log_to(folder)
        try:
            read_only = not writable and not os.access(folder, os.W_OK)
            self.catalogue = Catalogue(folder / "catalogue.sqlite", read_only=read_only)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(
        cls, folder: str | os.PathLike | None = None, *, writable: bool = False, device: str = "auto"
    ) -> Library:
        """Open (creating if needed) a library; `writable` takes the one-writer lock."""
        path = Path(folder).expanduser() if folder is not None else default_library()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LibraryError(f"cannot create the library folder {path}: {error.strerror}") from error
        if not os.access(path, os.W_OK | os.X_OK) and writable:
            raise LibraryError(f"the library folder {path} is read-only; choose another with --library")
        return cls(path, writable=writable, device=device)

    def _decoders(self, settings):
        """The decode worker processes, kept while the library is open (a watcher reuses them)."""
        from engine.decoding import DecodePool

        if self._pool is None or self._pool.settings != settings:
            if self._pool is not None:
                self._pool.close()
            self._pool = DecodePool(workers=os.cpu_count() or 1, settings=settings)
        return self._pool

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()
        if getattr(self, "catalogue", None) is not None:
            self.catalogue.close()
        if self._lock is not None:
            self._lock.release()
        _stop_logging_to(self.folder)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        if error is not None and not isinstance(error, GlimpseError | KeyboardInterrupt):
            # The trace of an unexpected failure goes to the library's log while it is still attached.
            log.error("unexpected failure", exc_info=(kind, error, trace))
        self.close()

    # folders ------------------------------------------------------------------------------------------

    def folders(self) -> list[Path]:
        return [to_path(f) for f in self.catalogue.folders()]

    def excluded_folders(self) -> list[Path]:
        return [to_path(f) for f in self.catalogue.folders(excluded=True)]

    def add_folder(self, folder: str | os.PathLike | bytes) -> bool:
        """Watch a folder (indexed on the next `index`); False if it was watched already."""
        self._require_writable()
        raw = to_bytes(folder)
        if not os.path.isdir(raw):
            raise UsageError(f"{display(raw)} is not a folder")
        return self.catalogue.add_folder(raw)

    def exclude_folder(self, folder: str | os.PathLike | bytes) -> bool:
        """Leave a sub-folder of a watched folder out of indexing; its files leave the library on next index."""
        self._require_writable()
        return self.catalogue.add_folder(to_bytes(folder), excluded=True)

    def remove_folder(self, folder: str | os.PathLike | bytes) -> int:
        """Stop watching a folder; its files leave the library (unless another watched folder holds them)."""
        self._require_writable()
        raw = to_bytes(folder)
        if not self.catalogue.remove_folder(raw):
            raise UsageError(f"{display(raw)} is not a watched folder")
        still = self.catalogue.folders()
        gone = [
            m.id
            for m in self.catalogue.media_under(raw).values()
            if not any(is_inside(m.path, f) for f in still)
        ]
        removed = self.catalogue.delete_media(gone)
        if removed:
            self._checkpoint_current()
        return removed

    # model --------------------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The model spec whose vectors this library searches (None before the first index)."""
        return self.catalogue.get_setting(MODEL_SETTING)

    @property
    def frame_interval_s(self) -> float:
        value = self.catalogue.get_setting(INTERVAL_SETTING)
        return float(value) if value else DEFAULT_FRAME_INTERVAL_S

    def set_frame_interval(self, seconds: float) -> None:
        self._require_writable()
        if not 0.1 <= seconds <= 600:
            raise UsageError("the video frame interval must be between 0.1 and 600 seconds")
        self.catalogue.set_setting(INTERVAL_SETTING, repr(float(seconds)))

    def _encoder(self, spec: str | None = None):
        from engine.models import load_fast  # torch loads only when a model is needed

        spec = spec or self.model
        if spec is None:
            raise UsageError("this library has not been indexed yet; run `glimpse index` first")
        return load_fast(spec, self.device)

    def _vector_index(self, model_key: str, dim: int, model_id: int) -> VectorIndex:
        """The index of a model's vectors, caught up with the catalogue (re-read if another process saved)."""
        if self._index is None or self._index_model_id != model_id or self._index.checkpoint_changed():
            # A reader maps the file instead of reading it: a quick open, and no copy of the graph per process.
            self._index = VectorIndex.open(
                self.folder / f"vectors-{model_key}.usearch",
                dim,
                self.catalogue,
                model_id,
                view=not self.writable,
            )
            self._index_model_id = model_id
        else:
            self._index.catch_up(self.catalogue, model_id)
        return self._index

    def _checkpoint_current(self) -> None:
        model = self.model
        known = self.catalogue.find_model(_key_of(model)) if model else None
        if model and known:
            index = self._vector_index(_key_of(model), known[1], known[0])
            index.save(self.catalogue, known[0])

    # indexing -----------------------------------------------------------------------------------------

    def index(
        self,
        folders: Sequence[str | os.PathLike | bytes] = (),
        *,
        model: str | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        notice: Callable[[str], None] = lambda message: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> IndexReport:
        """Scan the watched folders (or just `folders`, which become watched), embed what is new or changed."""
        from engine.decoding import DecodeSettings
        from engine.indexer import Indexer

        self._require_writable()
        started = time.monotonic()
        watched = set(self.catalogue.folders())
        for folder in folders:
            if to_bytes(folder) not in watched:
                self.add_folder(folder)
        targets = [to_bytes(f) for f in folders] or self.catalogue.folders()
        if not targets:
            raise UsageError("no folders to index; add one with `glimpse add FOLDER`")
        from engine.models.presets import DEFAULT_PRESET

        spec = model or self.model or DEFAULT_PRESET
        encoder = self._encoder(spec)
        previous = self.model
        if previous is not None and _key_of(previous) != encoder.key:
            count = self.catalogue.counts(None)["media"]
            notice(
                f"Switching this library's model from {previous} to {spec}: {count} files will be re-embedded."
            )
        model_id = self.catalogue.model_id(encoder.key, encoder.dim)
        self.catalogue.set_setting(MODEL_SETTING, spec)
        index = self._vector_index(encoder.key, encoder.dim, model_id)
        indexer = Indexer(
            self.catalogue,
            index,
            encoder,
            model_id,
            decoders=self._decoders(DecodeSettings(frame_interval_s=self.frame_interval_s)),
            progress=progress,
            should_stop=should_stop,
        )
        excluded = self.catalogue.folders(excluded=True)
        indexer.sync(targets, excluded)
        indexer.embed_pending()
        indexer.report.seconds = round(time.monotonic() - started, 3)
        return indexer.report

    # searching ----------------------------------------------------------------------------------------

    def search(
        self,
        text: str,
        *,
        limit: int = 20,
        kind: str | None = None,
        folder: str | os.PathLike | bytes | None = None,
        taken_from: dt.date | None = None,
        taken_to: dt.date | None = None,
        rerank: int | None = None,
        notice: Callable[[str], None] = lambda message: None,
    ) -> list[SearchResult]:
        """Files best matching a description, best first; a video by its best moment.

        Filters: `kind` ("image" or "video"), `folder`, and the days `taken_from`…`taken_to` (inclusive; the
        date taken, else the file's last change). `rerank`: how many of the Fast shortlist the Slow model
        re-scores (0: none; None: this library's setting, else the device's default, see `default_rerank`).
        """
        filters = _filters(kind, folder, taken_from, taken_to)
        query = text.strip() if isinstance(text, str) else ""
        if not query:
            raise UsageError("type a few words describing what you are looking for")
        if rerank is not None and rerank < 0:
            raise UsageError("the number of results to re-rank cannot be negative")
        encoder = self._encoder()
        vector = encoder.embed_texts([query])[0]
        k = self.rerank_k if rerank is None else rerank
        reranker = self._reranker(explicit=rerank is not None, notice=notice) if k else None
        k = k if reranker is not None else 0
        candidates = self._shortlist(encoder, vector, max(limit, k), filters)
        if k:
            assert reranker is not None
            candidates = reranker.rerank(query, candidates[:k]) + candidates[k:]
            _keep_scores_falling(candidates, k)
        return self._searcher(encoder).results(candidates[:limit])

    @property
    def rerank_k(self) -> int:
        """How many results the Slow model re-ranks by default: this library's setting, else the device's."""
        value = self.catalogue.get_setting(RERANK_SETTING)
        return int(value) if value is not None else default_rerank(self.device)

    def set_rerank_k(self, k: int) -> None:
        """Re-rank this many results by default (0 turns re-ranking off)."""
        self._require_writable()
        if not 0 <= k <= 1000:
            raise UsageError("re-rank between 0 (off) and 1000 results")
        self.catalogue.set_setting(RERANK_SETTING, str(int(k)))

    def _reranker(self, *, explicit: bool, notice: Callable[[str], None]):
        """The Slow re-ranker paired with this library's model, or None (no pair, or its weights are away)."""
        from engine.errors import ModelUnavailable
        from engine.models import load_slow
        from engine.models.presets import paired_slow
        from engine.reranker import Reranker
        from engine.token_cache import TokenCache

        if self.model is None:
            return None
        spec = paired_slow(self.model)
        if spec is None:
            if explicit:
                raise UsageError(f"the model {self.model} has no Slow re-ranker; search without --rerank")
            return None
        try:
            scorer = load_slow(spec, self.device)
        except ModelUnavailable as error:
            if explicit:
                raise
            notice(f"searching without re-ranking: {error}")
            return None
        if self._tokens is None:
            # Readers keep tokens on disk too: each CLI search is a new process that would start cold.
            self._tokens = TokenCache(self.folder / "tokens" if os.access(self.folder, os.W_OK) else None)
        return Reranker(scorer, self._decoders(self._decode_settings()), self._tokens)

    def _decode_settings(self):
        from engine.decoding import DecodeSettings

        return DecodeSettings(frame_interval_s=self.frame_interval_s)

    def similar(
        self,
        file: str | os.PathLike | bytes,
        *,
        limit: int = 20,
        kind: str | None = None,
        folder: str | os.PathLike | bytes | None = None,
        taken_from: dt.date | None = None,
        taken_to: dt.date | None = None,
    ) -> list[SearchResult]:
        """Files that look like `file` (a photo, or a video by its first frames), itself excluded; the
        filters are those of `search`."""
        import threading

        from engine.decoding import DecodeJob
        from engine.media.scanner import kind_of

        raw = to_bytes(file)
        if not os.path.isfile(raw):
            raise UsageError(f"{display(raw)} is not a file")
        encoder = self._encoder()
        vector = self._stored_vector(raw, encoder)
        if vector is None:
            kind = kind_of(raw)
            if kind is None:
                raise UsageError(f"{display(raw)} is not a photo or video Glimpse can read")
            frames: list[np.ndarray] = []
            summary = self._decoders(self._decode_settings()).decode(
                DecodeJob(raw, kind),
                lambda _ts, pixels: frames.append(pixels) or len(frames) < 8,
                threading.Event(),
            )
            if summary.error or not frames:
                raise UsageError(f"cannot read {display(raw)}: {summary.error}")
            from PIL import Image

            vectors = encoder.embed_images([Image.fromarray(f) for f in frames])
            vector = _unit(vectors.mean(axis=0))
        filters = _filters(kind, folder, taken_from, taken_to, exclude=raw)
        return self._searcher(encoder).results(self._shortlist(encoder, vector, limit, filters))

    def _stored_vector(self, raw: bytes, encoder) -> np.ndarray | None:
        media = self.catalogue.media_by_path(raw)
        known = self.catalogue.find_model(encoder.key)
        if media is None or known is None:
            return None
        frames = self.catalogue.frames_of_media(media.id)
        vectors = self.catalogue.vectors_of([f for f, _ in frames], known[0], known[1])
        if not vectors:
            return None
        return _unit(np.mean(list(vectors.values()), axis=0))

    def _searcher(self, encoder):
        from engine.searcher import Searcher

        known = self.catalogue.find_model(encoder.key)
        assert known is not None
        index = self._vector_index(encoder.key, encoder.dim, known[0])
        return Searcher(self.catalogue, index, int(self.frame_interval_s * 1000))

    def _shortlist(self, encoder, vector, limit, filters):
        if self.catalogue.find_model(encoder.key) is None:
            return []
        return self._searcher(encoder).shortlist(vector, limit, filters)

    # status and check ---------------------------------------------------------------------------------

    def status(self) -> LibraryStatus:
        model = self.model
        known = self.catalogue.find_model(_key_of(model)) if model else None
        counts = self.catalogue.counts(known[0] if known else None)
        return LibraryStatus(library=self.folder, model=model, folders=self.folders(), **counts)

    def check(self, *, repair: bool = False) -> CheckReport:
        """Compare the index file with the catalogue; `repair` rebuilds the index and requeues broken rows."""
        if repair:
            self._require_writable()
        problems: list[str] = []
        repaired: list[str] = []
        for what, count in self.catalogue.orphans().items():
            if count:
                problems.append(f"{count} {what}")
        model = self.model
        known = self.catalogue.find_model(_key_of(model)) if model else None
        if known is not None:
            path = self.folder / f"vectors-{_key_of(model)}.usearch"
            expected = set(self.catalogue.vector_keys(known[0]).tolist())
            loaded = VectorIndex._load(path, known[1])
            if loaded is None and expected:
                problems.append(f"the index file {path.name} is missing or unreadable")
            elif loaded is not None:
                loaded.catch_up(self.catalogue, known[0])
                actual = set(loaded.keys().tolist())
                if actual - expected:
                    problems.append(f"{len(actual - expected)} vectors in the index are not in the catalogue")
                if expected - actual:
                    problems.append(f"{len(expected - actual)} catalogue vectors are missing from the index")
            if repair and problems:
                self.catalogue.requeue_orphans()
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
                self._index = None
                index = self._vector_index(_key_of(model), known[1], known[0])
                index.save(self.catalogue, known[0])
                repaired.append(
                    "rebuilt the index from the catalogue; files with missing frames will be re-indexed"
                )
        return CheckReport(consistent=not problems, problems=problems, repaired=repaired)

    def _require_writable(self) -> None:
        if not self.writable:
            raise LibraryError("this library was opened read-only")

    # for the desktop app: details, failures, thumbnails, the log -------------------------------------

    def media_details(self, path: str | os.PathLike | bytes) -> MediaDetails | None:
        """Size, dimensions, dates and indexing state of a file of the library; None if it is not in it."""
        from datetime import datetime

        media = self.catalogue.media_by_path(to_bytes(path))
        if media is None:
            return None
        return MediaDetails(
            path=to_path(media.path),
            kind=media.kind,
            size=media.size,
            width=media.width,
            height=media.height,
            duration_s=media.duration_ms / 1000 if media.duration_ms is not None else None,
            taken_at=media.taken_at,
            modified=datetime.fromtimestamp(media.mtime_ns / 1e9),
            status=str(media.status),
            error=media.error,
        )

    def failed_files(self, limit: int = 1000) -> list[FailedFile]:
        """Files that could not be indexed, with the reason, up to `limit`."""
        failed: list[FailedFile] = []
        for media in self.catalogue.iter_media():
            if media.status == "failed":
                failed.append(FailedFile(path=to_path(media.path), error=media.error or "unknown error"))
                if len(failed) >= limit:
                    break
        return failed

    def thumbnails(self, max_bytes: int | None = None) -> ThumbnailCache:
        """The library's thumbnail cache (`thumbnails/`), bounded to `max_bytes`; usable from any thread.
        Close it when done: it decodes in worker processes."""
        return ThumbnailCache(self.folder / "thumbnails", max_bytes or DEFAULT_MAX_BYTES)

    @property
    def log_path(self) -> Path:
        """The library's log file (it may not exist yet)."""
        return self.folder / "glimpse.log"

    @staticmethod
    def fast_presets() -> list[Preset]:
        """The Fast model presets a library can be indexed with (Slow re-rankers come with them)."""
        from engine.models.presets import PRESETS

        return [preset for preset in PRESETS.values() if preset.kind == "fast"]

    @staticmethod
    def model_available(spec: str) -> bool:
        """Whether a model's weights are on this computer already (never touches the network)."""
        from engine.models import is_available

        return is_available(spec)

    @staticmethod
    def download_model(spec: str) -> Path:
        """Fetch a preset's weights into the local cache; ModelUnavailable says why when that cannot be."""
        from engine.models import download

        return download(spec)

    @staticmethod
    def detected_device() -> str:
        """What device "auto" runs the models on here, in words (e.g. "CPU", "GPU: NVIDIA H100")."""
        from engine.models import resolve_device

        if resolve_device("auto") == "cuda":
            import torch

            return f"GPU: {torch.cuda.get_device_name(0)}"
        return "CPU (no CUDA GPU found)"


def default_rerank(device: str) -> int:
    """How many results the Slow model re-ranks by default: on a GPU plenty, on a CPU what stays interactive."""
    from engine.models import resolve_device

    return RERANK_GPU if resolve_device(device) == "cuda" else RERANK_CPU


def _keep_scores_falling(candidates, reranked: int) -> None:
    """Results past the re-ranked head keep their Fast order, with scores capped so they never rise."""
    if not reranked or len(candidates) <= reranked:
        return
    ceiling = min(c.score for c in candidates[:reranked])
    for candidate in candidates[reranked:]:
        candidate.score = min(candidate.score, ceiling)
        ceiling = candidate.score


def _filters(kind, folder, taken_from, taken_to, exclude: bytes | None = None):
    from engine.searcher import Filters

    if kind not in (None, "image", "video"):
        raise UsageError("the type must be image or video")
    if taken_from and taken_to and taken_from > taken_to:
        raise UsageError("the date range ends before it starts")
    return Filters(
        kind=kind,
        folder=to_bytes(folder) if folder is not None else None,
        exclude_path=exclude,
        after=dt.datetime.combine(taken_from, dt.time.min) if taken_from else None,
        before=dt.datetime.combine(taken_to + dt.timedelta(days=1), dt.time.min) if taken_to else None,
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def _key_of(spec: str) -> str:
    from engine.models.presets import parse_model_spec

    return parse_model_spec(spec).key


#: The library log files this process writes, by path: (handler, libraries open on it).
_log_files: dict[str, tuple[logging.Handler, int]] = {}


def _log_to(folder: Path) -> None:
    """Send the log to the library's log file while a library of that folder is open: the engine's from INFO,
    and the libraries' warnings too (open_clip logs through the root logger), which then stay off the terminal."""
    target = str(folder / "glimpse.log")
    if target in _log_files:
        handler, count = _log_files[target]
        _log_files[target] = (handler, count + 1)
        return
    try:
        handler = logging.FileHandler(target, encoding="utf-8", errors="backslashreplace")
    except OSError:
        return  # a read-only library still searches; it just cannot log
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("engine").setLevel(logging.INFO)
    _log_files[target] = (handler, 1)


def _stop_logging_to(folder: Path) -> None:
    target = str(folder / "glimpse.log")
    if target not in _log_files:
        return
    handler, count = _log_files.pop(target)
    if count > 1:
        _log_files[target] = (handler, count - 1)
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
