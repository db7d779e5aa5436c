"""Folders → scan → decode → Fast encoder → catalogue + vector index.

Decoding runs in a thread pool ahead of the model (PIL and PyAV release the GIL while they decode); the main
thread batches frames into the model and commits each file's frames and vectors in one transaction, so a run
killed at any instant loses nothing committed and the next run resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from engine.catalogue import Catalogue, Media, NewFrame, Status
from engine.control import RunControl
from engine.decoding import DecodeJob, DecodePool, FileSummary
from engine.errors import MediaError
from engine.media.location import Coordinates, Place
from engine.media.scanner import FoundFile, MediaKind, fingerprint, scan
from engine.models import FastEncoder
from engine.paths import display, is_inside
from engine.results import IndexProgress, IndexReport
from engine.vector_index import VectorIndex

log = logging.getLogger(__name__)

BATCH_SIZE = 32
CHECKPOINT_SECONDS = 30.0


@dataclass
class _Decoded:
    """A media file its decode worker has finished with."""

    media: Media
    summary: FileSummary


@dataclass
class _Pending:
    """A media file whose frames are being embedded."""

    decoded: _Decoded | None = None  # set once its worker has finished
    timestamps: list[int | None] = field(default_factory=list)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.decoded is not None and len(self.vectors) == len(self.timestamps)


class Indexer:
    """Brings a library's catalogue and index up to date with its folders, for one Fast encoder."""

    def __init__(
        self,
        catalogue: Catalogue,
        index: VectorIndex,
        encoder: FastEncoder,
        model_id: int,
        *,
        decoders: DecodePool,
        progress: Callable[[IndexProgress], None] | None = None,
        control: RunControl | None = None,
    ) -> None:
        """`control` pauses the run between two files, or stops it (what is committed is kept)."""
        self.catalogue = catalogue
        self.index = index
        self.encoder = encoder
        self.model_id = model_id
        self.decoders = decoders
        self.progress = progress
        self.control = control or RunControl()
        self.report = IndexReport()

    # scanning -----------------------------------------------------------------------------------------

    def sync(self, folders: Iterable[bytes], excluded: Iterable[bytes]) -> None:
        """Record what changed in these folders since the last run: new, changed, moved and deleted files.

        All folders are scanned before anything is deleted, so a file moved from one watched folder to
        another keeps its vectors.
        """
        excluded = list(excluded)
        known: dict[bytes, Media] = {}
        found: dict[bytes, FoundFile] = {}
        for folder in folders:
            if not os.path.isdir(folder):
                # An unplugged drive or unmounted share: keep everything, it comes back with the folder.
                self.report.unavailable += self.catalogue.set_unavailable(folder, True)
                log.warning("folder %s is not reachable; its files are kept as unavailable", display(folder))
                continue
            self.catalogue.set_unavailable(folder, False)
            try:
                scanned = {item.path: item for item in scan(folder, excluded)}
            except MediaError as error:
                log.warning("cannot scan %s: %s", display(folder), error)
                continue
            known.update(self.catalogue.media_under(folder))
            found.update(scanned)
        adopted: set[int] = set()
        for item in (f for path, f in found.items() if path not in known):
            moved_id = self._adopt_moved(item)
            if moved_id is None:
                self.catalogue.upsert_pending(item.path, item.kind, item.size, item.mtime_ns)
                self.report.new += 1
            else:
                adopted.add(moved_id)
        for path, item in found.items():
            row = known.get(path)
            if row is None:
                continue
            if row.size != item.size or row.mtime_ns != item.mtime_ns or row.kind != item.kind:
                self.catalogue.upsert_pending(path, item.kind, item.size, item.mtime_ns)
                self.report.updated += 1
            elif row.status == Status.INDEXED and row.model_id != self.model_id:
                self.report.updated += 1  # re-embedded for the new model
            elif row.status in (Status.INDEXED, Status.FAILED):
                self.report.skipped += 1
        # A file the scan did not yield but that still exists (in a folder that turned unreadable for a
        # moment, say) is kept; one in an excluded folder leaves the library.
        gone = [
            row.id
            for path, row in known.items()
            if path not in found
            and row.id not in adopted
            and (not os.path.lexists(path) or any(is_inside(path, folder) for folder in excluded))
        ]
        self.report.removed += self.catalogue.delete_media(gone)

    def _adopt_moved(self, item: FoundFile) -> int | None:
        """A new path whose content matches an indexed file that vanished keeps that file's vectors;
        returns the id of the media row it adopted."""
        try:
            print_ = fingerprint(item.path, item.size)
        except MediaError:
            return None
        moved = self.catalogue.moved_candidate(print_, item.kind, self.model_id)
        if moved is None:
            return None
        log.info("%s moved to %s", display(moved.path), display(item.path))
        self.catalogue.move_media(moved.id, item.path, item.size, item.mtime_ns)
        self.report.moved += 1
        return moved.id

    # embedding ----------------------------------------------------------------------------------------

    def embed_pending(self) -> None:
        """Decode and embed every media file the catalogue lists as needing it, committing file by file."""
        ids = self.catalogue.pending_ids(self.model_id)
        total = len(ids)
        if not total:
            return
        results: queue.Queue = queue.Queue(maxsize=BATCH_SIZE * 4)
        stop = threading.Event()
        pending: dict[int, _Pending] = {}
        batch: list[tuple[int, int, torch.Tensor]] = []
        done = 0
        last_checkpoint = time.monotonic()

        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with ThreadPoolExecutor(self.decoders.workers, thread_name_prefix="decode") as pool:
                    for chunk in _chunks(ids, 64):
                        if stop.is_set():
                            break
                        rows = self.catalogue.get_media(chunk)
                        list(pool.map(lambda m: self._decode(m, results, stop), rows))
            except BaseException as error:  # e.g. no decode worker could start: stop the run, say why
                failure.append(error)
            finally:
                _put(results, None, stop)

        producer = threading.Thread(target=produce, name="decode-feeder", daemon=True)
        producer.start()

        def flush() -> None:
            nonlocal done
            if batch:
                vectors = self.encoder.embed_prepared(torch.stack([t for _, _, t in batch]))
                for (media_id, slot, _), vector in zip(batch, vectors, strict=True):
                    pending[media_id].vectors[slot] = vector
                batch.clear()
            for media_id in [m for m, p in pending.items() if p.complete]:
                if self.control.stopped:
                    return  # stopped between two files: the rest is redone by the next run
                entry = pending.pop(media_id)
                self._commit(entry)
                done += 1
                if self.progress:
                    assert entry.decoded is not None
                    folder = display(os.path.dirname(entry.decoded.media.path))
                    self.progress(IndexProgress(done, total, folder, self.report.failed))
                self.control.proceed()  # between two files: a pause waits here

        try:
            while True:
                if self.control.stopped:
                    stop.set()
                    break
                try:
                    item = results.get(timeout=0.2)
                except queue.Empty:
                    flush()  # the decoders are behind: embed what is ready rather than wait
                    continue
                if item is None:
                    if failure:
                        raise failure[0]
                    break
                kind, media_id, payload = item
                entry = pending.setdefault(media_id, _Pending())
                if kind == "frame":
                    timestamp, tensor = payload
                    batch.append((media_id, len(entry.timestamps), tensor))
                    entry.timestamps.append(timestamp)
                    if len(batch) >= BATCH_SIZE:
                        flush()
                else:
                    entry.decoded = payload
                if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                    flush()
                    self.checkpoint()
                    last_checkpoint = time.monotonic()
            flush()
        finally:
            stop.set()
            _drain(results)
            producer.join()
        self.checkpoint()

    def _decode(self, media: Media, results: queue.Queue, stop: threading.Event) -> None:
        """Decode one file in a worker process; its prepared frames, then its summary, go on `results`."""
        if stop.is_set():
            return

        def on_frame(timestamp_ms: int | None, pixels: np.ndarray) -> bool:
            tensor = self.encoder.prepare(Image.fromarray(pixels))
            return _put(results, ("frame", media.id, (timestamp_ms, tensor)), stop)

        job = DecodeJob(
            media.path,
            media.kind,
            media.size,
            media.mtime_ns,
            min_side=getattr(self.encoder, "image_size", None),
        )
        summary = self.decoders.decode(job, on_frame, stop)
        if not stop.is_set():  # a stopped run records nothing about the file it was in
            _put(results, ("done", media.id, _Decoded(media, summary)), stop)

    def _commit(self, entry: _Pending) -> None:
        assert entry.decoded is not None
        media, summary = entry.decoded.media, entry.decoded.summary
        if summary.error is not None:
            log.warning("cannot index %s: %s", display(media.path), summary.error)
            self.catalogue.record_failed(media.id, summary.error, summary.fingerprint)
            self.report.failed += 1
            return
        frames = [NewFrame(entry.timestamps[i], entry.vectors[i]) for i in range(len(entry.timestamps))]
        self.catalogue.record_indexed(
            media.id,
            model_id=self.model_id,
            fingerprint=summary.fingerprint,
            width=summary.width,
            height=summary.height,
            duration_ms=summary.duration_ms,
            taken_at=summary.taken_at,
            frames=frames,
            location=summary.location,
            place=_place_of(summary.location),
        )
        self.report.frames += len(frames)
        if media.kind == MediaKind.IMAGE:
            self.report.images += 1
        else:
            self.report.videos += 1

    def checkpoint(self) -> None:
        """Bring the index up to date with what was committed and save it atomically."""
        self.index.catch_up(self.catalogue, self.model_id)
        self.index.save(self.catalogue, self.model_id)


def _place_of(location: Coordinates | None) -> Place | None:
    """The named place at a file's coordinates (the place names load on the first file that has some)."""
    if location is None:
        return None
    from engine.geocoding import place_of

    return place_of(location)


def _put(results: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put with a timeout loop, so a worker never blocks forever once the consumer has stopped."""
    while not stop.is_set():
        try:
            results.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _drain(results: queue.Queue) -> None:
    while True:
        try:
            results.get_nowait()
        except queue.Empty:
            return


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
