"""The reading pass: after the visual pass, the words in each indexed photo and video are read into the catalogue.

It reads every indexed file whose text has not been read yet (`Catalogue.unread`), a few at a time, and commits
each file's text in one transaction (`Catalogue.record_reading`), so a run killed at any instant keeps every
file it finished and redoes the one in flight. A photo is read whole (the read pool decodes it); a video is read
at the frames whose picture changed (`frames_to_read`, from the frames' Fast vectors, which the visual pass
already made), each decoded at that moment in the crash-contained decode pool. A file the reader cannot read
(a crash or a hang in OCR) is recorded as read with nothing in it, logged, and not tried again until it changes.

It runs at a lower priority than the visual pass (its workers are niced, and its `RunControl` is paused while a
visual run goes on), so that photos are searchable by their looks first. It also looks up where files indexed
before Glimpse knew places were taken (`Catalogue.unlocated`), which is cheap and needs no OCR.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.catalogue import Catalogue, Media, NewReading, VectorSpace
from engine.control import RunControl
from engine.decoding import DecodeJob, DecodePool
from engine.errors import GlimpseError
from engine.paths import display
from engine.reading.frames import frames_to_read
from engine.reading.pool import ReadPool, ReadResult
from engine.results import IndexProgress
from engine.search.words import deletions, fold, words

log = logging.getLogger(__name__)

#: Files taken from the catalogue at a time.
BATCH_FILES = 8
#: A video frame whose Fast vector is at least this close to the last frame read shows nothing new to read.
SAME_PICTURE = 0.95
#: Shorter side video frames are decoded to for reading (1080p keeps captions and signs legible).
FRAME_SIDE = 1080


@dataclass
class ReadingReport:
    """What a reading pass did."""

    read: int = 0  # files whose text was read (with or without words in them)
    with_text: int = 0  # of those, files in which some text was found
    failed: int = 0  # files the reader could not read (recorded as read, with nothing)
    located: int = 0  # files indexed before places whose location was looked up


class ReadingPass:
    """Reads the text of a library's indexed files that have not been read yet."""

    def __init__(
        self,
        catalogue: Catalogue,
        space: VectorSpace,
        *,
        decoders: DecodePool,
        readers: ReadPool,
        control: RunControl | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.space = space
        self.decoders = decoders
        self.readers = readers
        self.control = control or RunControl()
        self.progress = progress
        self.report = ReadingReport()
        self._stop = threading.Event()

    def locate(self) -> None:
        """Look up where the files indexed before Glimpse knew places were taken (their EXIF or video tags)."""
        from engine.geocoding import place_of

        while self.control.proceed():
            batch = self.catalogue.unlocated()
            if not batch:
                return
            for media in batch:
                summary = self.decoders.decode(
                    DecodeJob(media.path, media.kind, location_only=True), lambda *_: True, self._stop
                )
                location = summary.location
                self.catalogue.record_location(media.id, location, place_of(location) if location else None)
                self.report.located += 1
                if not self.control.proceed():
                    return

    def read(self) -> None:
        """Read every file not read yet, file by file, until done or stopped."""
        total = self.catalogue.counts(self.space.id)
        total_files = total["images"] + total["videos"] - total["read"]
        done = 0
        while self.control.proceed():
            batch = self.catalogue.unread(BATCH_FILES)
            if not batch:
                return
            photos = [m for m in batch if m.kind == "image"]
            results = self.readers.read_many([m.path for m in photos], stop=self._stop) if photos else []
            for media, result in zip(photos, results, strict=True):
                if result.stopped:
                    return  # closed under us: read it next time
                self._record(media, [(None, result)])
                done += 1
                self._tell(done, total_files, media)
                if not self.control.proceed():
                    return
            for media in (m for m in batch if m.kind == "video"):
                read = self._read_video(media)
                if self._stop.is_set() or any(result.stopped for _, result in read):
                    return  # stopped mid-video: read it next time
                self._record(media, read)
                done += 1
                self._tell(done, total_files, media)
                if not self.control.proceed():
                    return

    def stop(self) -> None:
        """Stop at once, from any thread: what is being read is dropped and read again next time."""
        self._stop.set()
        self.control.stop()

    def _read_video(self, media: Media) -> list[tuple[int | None, ReadResult]]:
        frames = self.catalogue.frames_of_media(media.id)
        vectors = self.catalogue.vectors_of([f for f, _ in frames], self.space.id, self.space.dim)
        known = [(f, t) for f, t in frames if f in vectors]
        if not known:
            return []
        chosen = frames_to_read(np.stack([vectors[f] for f, _ in known]), SAME_PICTURE)
        moments, pictures = [], []
        for index in chosen:
            timestamp = known[index][1]
            picture = self._frame(media, timestamp or 0)
            if picture is not None:
                moments.append(timestamp)
                pictures.append(picture)
        label = display(media.path)
        labels = [f"{label} at {(t or 0) / 1000:.1f} s" for t in moments]
        results = self.readers.read_many(pictures, labels=labels, stop=self._stop) if pictures else []
        return list(zip(moments, results, strict=True))

    def _frame(self, media: Media, timestamp_ms: int) -> np.ndarray | None:
        """A video's picture at a moment, decoded in the crash-contained pool; None where it cannot be read."""
        job = DecodeJob(media.path, "video", at_ms=timestamp_ms, min_side=FRAME_SIDE)
        return self.decoders.first_picture(job, self._stop)[0]

    def _record(self, media: Media, results: list[tuple[int | None, ReadResult]]) -> None:
        readings, terms, failed = [], set(), False
        for timestamp, result in results:
            if result.error:
                failed = True
                log.warning("cannot read the text of %s: %s", display(media.path), result.error)
                continue
            if not result.lines:
                continue
            text = "\n".join(line.text for line in result.lines)
            lines = [
                {"text": line.text, "box": [list(point) for point in line.box], "confidence": line.confidence}
                for line in result.lines
            ]
            readings.append(NewReading(timestamp, text, fold(text), json.dumps(lines, ensure_ascii=False)))
            for word in words(text):
                terms |= {(variant, word) for variant in deletions(word)}
                if deletions(word):
                    terms.add((word, word))
        self.catalogue.record_reading(media.id, readings, terms)
        self.report.read += 1
        self.report.with_text += bool(readings)
        self.report.failed += failed

    def _tell(self, done: int, total: int, media: Media) -> None:
        if self.progress is not None:
            folder = display(os.path.dirname(media.path))
            self.progress(IndexProgress(done, max(total, done), folder, self.report.failed, stage="reading"))


class BackgroundReading:
    """The reading pass of a library in a thread of its own, for `glimpse watch` and the index service.

    `wake()` after a visual run reads what is unread; `hold()` before a visual run pauses it between two files
    (the visual pass goes first) and `release()` after lets it go on. `pause()`/`resume()` are the person's;
    `stop()` ends the current pass (the next `wake` starts another); `close()` ends the thread.
    """

    def __init__(
        self,
        library,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        on_change: Callable[[str], None] = lambda state: None,
    ) -> None:
        """`library` is an open, writable `engine.Library`; `on_change` hears "reading" when a pass starts and
        "read" when one ends (done or stopped)."""
        self.library = library
        self.progress = progress
        self.on_change = on_change
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._closing = False
        self._held = self._paused = False
        self._control: RunControl | None = None
        self._thread = threading.Thread(target=self._run, name="reading", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._control is not None

    def wake(self) -> None:
        self._wanted.set()

    def hold(self) -> None:
        with self._lock:
            self._held = True
            self._apply()

    def release(self) -> None:
        with self._lock:
            self._held = False
            self._apply()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._apply()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._apply()

    def stop(self) -> None:
        with self._lock:
            control = self._control
        if control is not None:
            control.stop()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self.stop()
        self._wanted.set()
        self._thread.join()

    def _apply(self) -> None:
        if self._control is not None:
            if self._held or self._paused:
                self._control.pause()
            else:
                self._control.resume()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            with self._lock:
                if self._closing:
                    return
                self._control = RunControl()
                self._apply()
                control = self._control
            self.on_change("reading")
            try:
                self.library.read_text(progress=self.progress, control=control)
            except GlimpseError as error:
                log.warning("the reading pass stopped: %s", error)
            except Exception:  # a reading failure must never take the watcher or the service down
                log.exception("the reading pass failed")
            finally:
                with self._lock:
                    self._control = None
                self.on_change("read")
