"""`Library`: the engine's facade. The `glimpse` command and the desktop app are two thin faces over it."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.catalogue import Catalogue, VectorSpace
from engine.control import RunControl
from engine.errors import GlimpseError, LibraryError, UsageError
from engine.lock import WriterLock
from engine.models import INT8_KEY_SUFFIX
from engine.models.presets import Preset
from engine.paths import LOG_FILE, default_library, display, is_inside, to_bytes, to_path
from engine.results import (
    CheckReport,
    FailedFile,
    IndexProgress,
    IndexReport,
    LibraryStatus,
    SearchResults,
)
from engine.search.query import SearchRequest, SortOrder
from engine.thumbnails import DEFAULT_MAX_BYTES, ThumbnailCache
from engine.vector_index import VectorIndex

if TYPE_CHECKING:
    from engine.reading.reading_pass import ReadingReport
    from engine.tuning import TuneReport

log = logging.getLogger(__name__)

MODEL_SETTING = "model"
#: The vector-space key of the model's vectors (the spec's key, with the precision when not fp32).
MODEL_KEY_SETTING = "model_key"
INTERVAL_SETTING = "frame_interval_s"
RERANK_SETTING = "rerank_k"
DEFAULT_FRAME_INTERVAL_S = 2.0
#: Default re-ranking depth (docs/benchmarks.md, "Re-ranking"): K = 100 stays far under 100 ms on a GPU; on a
#: CPU the largest K whose Slow pass stays interactive.
RERANK_GPU = 100
RERANK_CPU = 8


@dataclass(frozen=True)
class CurrentModel:
    """The model a library searches with: the spec the person chose and the catalogue's space of its vectors."""

    spec: str
    space: VectorSpace

    @property
    def precision(self) -> str:
        """What the vectors were computed in: "int8" when the key says so (engine/models/openclip.py), else fp32."""
        return "int8" if self.space.key.endswith(INT8_KEY_SUFFIX) else "fp32"


class Library:
    """A folder holding a catalogue, vector indexes, thumbnails and logs. Open one with `Library.open`."""

    def __init__(self, folder: Path, *, writable: bool, device: str = "auto") -> None:
        self.folder = folder
        self.writable = writable
        self.device = device
        self._lock = WriterLock(folder) if writable else None
        self._index: VectorIndex | None = None
        self._pool = None
        self._readers = None
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

    def decoders(self):
        """The library's crash-contained decode worker processes (engine/decoding.py), for its frame interval."""
        return self._decoders(self._decode_settings())

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
        if self._readers is not None:
            self._readers.close()
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
    def slow_model(self) -> str | None:
        """The Slow spec that re-ranks this library's searches (None when its model has no pair): its model's
        pair, or for a tuned model the pair of the model it was tuned from (a tuned `NAME@random` keeps its
        random-weight teacher)."""
        from engine.models.presets import paired_slow
        from engine.tuning import TUNED_FROM_SETTING

        spec = self.catalogue.get_setting(TUNED_FROM_SETTING) or self.model
        return paired_slow(spec) if spec is not None else None

    def current_model(self) -> CurrentModel | None:
        """The library's model and its vectors' space, resolved once (None before the first index)."""
        spec = self.model
        if spec is None:
            return None
        # Libraries indexed before the key was recorded use the spec's own key.
        key = self.catalogue.get_setting(MODEL_KEY_SETTING) or _key_of(spec)
        space = self.catalogue.find_model(key)
        return CurrentModel(spec, space) if space is not None else None

    @property
    def frame_interval_s(self) -> float:
        value = self.catalogue.get_setting(INTERVAL_SETTING)
        return float(value) if value else DEFAULT_FRAME_INTERVAL_S

    def set_frame_interval(self, seconds: float) -> None:
        self._require_writable()
        if not 0.1 <= seconds <= 600:
            raise UsageError("the video frame interval must be between 0.1 and 600 seconds")
        self.catalogue.set_setting(INTERVAL_SETTING, repr(float(seconds)))

    def _encoder(self, spec: str):
        from engine.models import load_fast  # torch loads only when a model is needed

        return load_fast(spec, self.device)

    def vector_index(self, space: VectorSpace) -> VectorIndex:
        """The index of a model's vectors, caught up with the catalogue (re-read if another process saved)."""
        index = self._index
        if index is None or index.path != self._index_path(space) or index.checkpoint_changed():
            # A reader maps the file instead of reading it: a quick open, and no copy of the graph per process.
            self._index = VectorIndex.open(
                self._index_path(space), space.dim, self.catalogue, space.id, view=not self.writable
            )
        else:
            index.catch_up(self.catalogue, space.id)
        return self._index

    def _index_path(self, space: VectorSpace) -> Path:
        return self.folder / f"vectors-{space.key}.usearch"

    def _checkpoint_current(self) -> None:
        current = self.current_model()
        if current is not None:
            self.vector_index(current.space).save(self.catalogue, current.space.id)

    # indexing -----------------------------------------------------------------------------------------

    def index(
        self,
        folders: Sequence[str | os.PathLike | bytes] = (),
        *,
        model: str | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        notice: Callable[[str], None] = lambda message: None,
        control: RunControl | None = None,
        read_text: bool = True,
    ) -> IndexReport:
        """Scan the watched folders (or just `folders`, which become watched), embed what is new or changed,
        then (`read_text`) read the words written in what is not read yet (`read_text`, the method).

        `control` pauses or stops the run between two files (what is done is kept)."""
        from engine.decoding import DecodeSettings
        from engine.indexer import Indexer
        from engine.models.presets import DEFAULT_PRESET

        self._require_writable()
        started = time.monotonic()
        watched = set(self.catalogue.folders())
        for folder in folders:
            if to_bytes(folder) not in watched:
                self.add_folder(folder)
        targets = [to_bytes(f) for f in folders] or self.catalogue.folders()
        if not targets:
            raise UsageError("no folders to index; add one with `glimpse add FOLDER`")
        spec = model or self.model or DEFAULT_PRESET
        encoder = self._encoder(spec)
        previous = self.current_model()
        if previous is not None and previous.space.key != encoder.key:
            count = self.catalogue.counts(None)["media"]
            if previous.spec == spec:
                now = "int8" if encoder.key.endswith(INT8_KEY_SUFFIX) else "fp32"
                notice(
                    f"This library's vectors were made in {previous.precision} and {spec} runs in {now} here: "
                    f"its {count} files will be re-embedded, so that it never mixes the two."
                )
            else:
                notice(
                    f"Switching this library's model from {previous.spec} to {spec}: "
                    f"{count} files will be re-embedded."
                )
        self.catalogue.model_id(encoder.key, encoder.dim)
        space = self.catalogue.find_model(encoder.key)
        assert space is not None
        self.catalogue.set_setting(MODEL_SETTING, spec)
        self.catalogue.set_setting(MODEL_KEY_SETTING, space.key)
        indexer = Indexer(
            self.catalogue,
            self.vector_index(space),
            encoder,
            space.id,
            decoders=self._decoders(DecodeSettings(frame_interval_s=self.frame_interval_s)),
            progress=progress,
            control=control or RunControl(),
        )
        indexer.sync(targets, self.catalogue.folders(excluded=True))
        indexer.embed_pending()
        report = indexer.report
        if read_text and not indexer.control.stopped:
            report.read = self.read_text(progress=progress, control=indexer.control).read
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def read_text(
        self,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        control: RunControl | None = None,
    ) -> ReadingReport:
        """The reading pass: read the words written in every indexed file not read yet (and look up where
        files indexed before places were known were taken). `control` pauses or stops it between two files."""
        from engine.reading.reading_pass import ReadingPass

        self._require_writable()
        current = self.current_model()
        if current is None:
            raise UsageError("this library has not been indexed yet; run `glimpse index` first")
        reading = ReadingPass(
            self.catalogue,
            current.space,
            decoders=self._decoders(self._decode_settings()),
            readers=self._read_pool(),
            control=control,
            progress=progress,
        )
        reading.locate()
        reading.read()
        return reading.report

    def _read_pool(self):
        """The OCR worker processes (low priority), kept while the library is open."""
        from engine.reading.pool import ReadPool

        if self._readers is None:
            self._readers = ReadPool(workers=1)
        return self._readers

    def tune(
        self,
        *,
        minutes: float | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        notice: Callable[[str], None] = lambda message: None,
        control: RunControl | None = None,
    ) -> TuneReport:
        """Adapt the library's Fast model to its own pictures, taught by its Slow model (engine/tuning.py); if
        the tuned model is better on held-out captions, re-embed the library with it."""
        from engine.tuning import DEFAULT_MINUTES, tune

        self._require_writable()
        report = tune(self, minutes=minutes or DEFAULT_MINUTES, device=self.device, say=notice)
        if report.tuned:
            self.index(model=report.model, progress=progress, notice=notice, control=control, read_text=False)
        return report

    def untune(
        self,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        notice: Callable[[str], None] = lambda message: None,
        control: RunControl | None = None,
    ) -> str:
        """Go back from a tuned model to the one it was made from, re-embedding the library; returns it."""
        from engine.tuning import untune

        self._require_writable()
        origin = untune(self)
        self.index(model=origin, progress=progress, notice=notice, control=control, read_text=False)
        return origin

    @property
    def tuned(self) -> bool:
        """Whether the library's model is one `tune` made for it."""
        from engine.tuning import TUNED_FROM_SETTING

        return self.catalogue.get_setting(TUNED_FROM_SETTING) is not None

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
        sort: SortOrder = "relevance",
        notice: Callable[[str], None] = lambda message: None,
    ) -> SearchResults:
        """Files best matching a description, a video by its best moment: those that clear the relevance
        cutoff (`shown`), then the less relevant ones (`hidden`), up to `limit` in all.

        Filters: `kind` ("image" or "video"), `folder`, and the days `taken_from`…`taken_to` (inclusive; the
        date taken, else the file's last change). `rerank`: how many of the Fast shortlist the Slow model
        re-scores (0: none; None: this library's setting, else the device's default, see `default_rerank`).
        `sort`: "relevance", "newest" or "oldest" (by the same date the filter reads).
        """
        request = SearchRequest(
            text=text if isinstance(text, str) else "",
            limit=limit,
            kind=kind,
            folder=to_bytes(folder) if folder is not None else None,
            taken_from=taken_from,
            taken_to=taken_to,
            rerank=rerank,
            sort=sort,
        )
        return self.run(request, notice=notice)

    def similar(
        self,
        file: str | os.PathLike | bytes,
        *,
        limit: int = 20,
        kind: str | None = None,
        folder: str | os.PathLike | bytes | None = None,
        taken_from: dt.date | None = None,
        taken_to: dt.date | None = None,
        sort: SortOrder = "relevance",
    ) -> SearchResults:
        """Files that look like `file` (a photo, or a video by its first frames), itself excluded; the
        filters and the order are those of `search`."""
        raw = to_bytes(file)
        if not os.path.isfile(raw):
            raise UsageError(f"{display(raw)} is not a file")
        request = SearchRequest(
            similar_to=raw,
            limit=limit,
            kind=kind,
            folder=to_bytes(folder) if folder is not None else None,
            taken_from=taken_from,
            taken_to=taken_to,
            sort=sort,
        )
        return self.run(request)

    def run(
        self, request: SearchRequest, *, notice: Callable[[str], None] = lambda message: None
    ) -> SearchResults:
        """Answer a search request (words, or a file's look-alikes) through the query pipeline."""
        from engine.search.pipeline import QueryPipeline, Searchable

        request.check()
        current = self.current_model()
        if current is None:
            raise UsageError("this library has not been indexed yet; run `glimpse index` first")
        searchable = Searchable(
            catalogue=self.catalogue,
            space=current.space,
            index=self.vector_index(current.space),
            encoder=self._encoder(current.spec),
            frame_interval_ms=int(self.frame_interval_s * 1000),
        )
        pipeline = QueryPipeline(
            searchable,
            reranker=lambda explicit: self._reranker(current.spec, explicit=explicit, notice=notice),
            decoders=lambda: self._decoders(self._decode_settings()),
            default_rerank=self.rerank_k,
        )
        return pipeline.run(request)

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

    def _reranker(self, spec: str, *, explicit: bool, notice: Callable[[str], None]):
        """The library's Slow re-ranker (`slow_model`) for a search with `spec`, or None (no pair, or its
        weights are away)."""
        from engine.errors import ModelUnavailable
        from engine.models import load_slow
        from engine.search.fusion import fusion_weight
        from engine.search.rerank import Reranker
        from engine.token_cache import TokenCache

        slow = self.slow_model
        if slow is None:
            if explicit:
                raise UsageError(f"the model {spec} has no Slow re-ranker; search without --rerank")
            return None
        try:
            scorer = load_slow(slow, self.device)
        except ModelUnavailable as error:
            if explicit:
                raise
            notice(f"searching without re-ranking: {error}")
            return None
        if self._tokens is None:
            # Readers keep tokens on disk too: each CLI search is a new process that would start cold.
            self._tokens = TokenCache(self.folder / "tokens" if os.access(self.folder, os.W_OK) else None)
        return Reranker(scorer, self._decoders(self._decode_settings()), self._tokens, fusion_weight(spec))

    def _decode_settings(self):
        from engine.decoding import DecodeSettings

        return DecodeSettings(frame_interval_s=self.frame_interval_s)

    # status and check ---------------------------------------------------------------------------------

    def status(self) -> LibraryStatus:
        current = self.current_model()
        counts = self.catalogue.counts(current.space.id if current else None)
        return LibraryStatus(
            library=self.folder,
            model=self.model,
            folders=self.folders(),
            excluded=self.excluded_folders(),
            precision=current.precision if current else None,
            tuned=self.tuned,
            **counts,
        )

    def check(self, *, repair: bool = False) -> CheckReport:
        """Compare the index file with the catalogue; `repair` rebuilds the index and requeues broken rows."""
        if repair:
            self._require_writable()
        problems: list[str] = []
        repaired: list[str] = []
        for what, count in self.catalogue.orphans().items():
            if count:
                problems.append(f"{count} {what}")
        current = self.current_model()
        if current is not None:
            space = current.space
            path = self._index_path(space)
            expected = set(self.catalogue.vector_keys(space.id).tolist())
            loaded = VectorIndex.load(path, space.dim)
            if loaded is None and expected:
                problems.append(f"the index file {path.name} is missing or unreadable")
            elif loaded is not None:
                loaded.catch_up(self.catalogue, space.id)
                actual = set(loaded.keys().tolist())
                if actual - expected:
                    problems.append(f"{len(actual - expected)} vectors in the index are not in the catalogue")
                if expected - actual:
                    problems.append(f"{len(expected - actual)} catalogue vectors are missing from the index")
            if repair and problems:
                self.catalogue.requeue_orphans()
                VectorIndex.delete_files(path)
                self._index = None
                self.vector_index(space).save(self.catalogue, space.id)
                repaired.append(
                    "rebuilt the index from the catalogue; files with missing frames will be re-indexed"
                )
        return CheckReport(consistent=not problems, problems=problems, repaired=repaired)

    def _require_writable(self) -> None:
        if not self.writable:
            raise LibraryError("this library was opened read-only")

    # for the desktop app: failures, thumbnails, models, devices ---------------------------------------------------

    def failed_files(self, limit: int = 1000) -> list[FailedFile]:
        """Files that could not be indexed, with the reason, up to `limit`."""
        return self.catalogue.failed_files(limit)

    @staticmethod
    def thumbnail_cache(folder: Path, max_bytes: int | None = None) -> ThumbnailCache:
        """The thumbnail cache of the library in `folder` (`thumbnails/`), bounded to `max_bytes`; usable from
        any thread, without opening the library. Close it when done: it decodes in worker processes."""
        return ThumbnailCache(folder / "thumbnails", max_bytes or DEFAULT_MAX_BYTES)

    @staticmethod
    def presets() -> list[Preset]:
        """Every model preset, Fast encoders and Slow re-rankers."""
        from engine.models.presets import PRESETS

        return list(PRESETS.values())

    @staticmethod
    def fast_presets() -> list[Preset]:
        """The Fast model presets a library can be indexed with (Slow re-rankers come with them)."""
        return [preset for preset in Library.presets() if preset.kind == "fast"]

    @staticmethod
    def default_model() -> str:
        """The preset a new library is indexed with unless told otherwise."""
        from engine.models.presets import DEFAULT_PRESET

        return DEFAULT_PRESET

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


def _key_of(spec: str) -> str:
    from engine.models.presets import parse_model_spec

    return parse_model_spec(spec).key


#: The library log files this process writes, by path: (handler, libraries open on it).
_log_files: dict[str, tuple[logging.Handler, int]] = {}


def _log_to(folder: Path) -> None:
    """Send the log to the library's log file while a library of that folder is open: the engine's from INFO,
    and the libraries' warnings too (open_clip logs through the root logger), which then stay off the terminal."""
    target = str(folder / LOG_FILE)
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
    target = str(folder / LOG_FILE)
    if target not in _log_files:
        return
    handler, count = _log_files.pop(target)
    if count > 1:
        _log_files[target] = (handler, count - 1)
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
