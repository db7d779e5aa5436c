"""Thumbnails of photos and of video moments, cached on disk in the library's `thumbnails/` folder.

A thumbnail's file name is a hash of what it shows (the file's path, size and modification time, the moment
for a video, the size asked for), so a changed file gets a new thumbnail and a stale one is simply never read
again; the cache is trimmed, least recently used first, whenever it outgrows its byte budget. Safe to call
from several threads at once: each thumbnail is written to a temporary file and moved into place.

Files are decoded in the engine's decode worker processes (`engine.decoding`), as indexing does, so a file that
crashes or hangs a codec costs its thumbnail only, never the application that asked for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from engine.decoding import DecodeJob, DecodePool, DecodeSettings
from engine.errors import MediaError
from engine.media.scanner import MediaKind, kind_of
from engine.paths import to_bytes

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Trim only once the cache is this much over budget, so that trimming is rare.
_SLACK = 1.1


class ThumbnailCache:
    """JPEG thumbnails under `folder` (a library's `thumbnails/`), bounded to about `max_bytes`."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, *, timeout_s: float = 20.0) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None  # counted lazily, on the first write
        # One worker process per thread asking at once, started on first use.
        self._pool = DecodePool(workers=1, settings=DecodeSettings(timeout_s=timeout_s))

    def close(self) -> None:
        """Stop the decode worker processes (a later `get` starts new ones)."""
        self._pool.close()

    def get(self, path: str | os.PathLike | bytes, *, seconds: float | None = None, side: int = 256) -> Path:
        """The thumbnail file of a photo, or of a video `seconds` in; made now if not cached. MediaError if
        the file cannot be read."""
        raw = to_bytes(path)
        try:
            stat = os.stat(raw)
        except OSError as error:
            raise MediaError(f"cannot read the file: {error.strerror or error}") from None
        key = hashlib.sha1(
            b"\0".join(
                [raw, str(stat.st_size).encode(), str(stat.st_mtime_ns).encode(), repr(seconds).encode()]
            )
            + f"\0{side}".encode()
        ).hexdigest()
        target = self.folder / key[:2] / f"{key}.jpg"
        if target.exists():
            with contextlib.suppress(OSError):  # a read-only cache still serves
                os.utime(target)  # recently used: trimmed last
            return target
        picture = self._picture(raw, seconds, side)
        picture.thumbnail((side * 2, side), resample=3)  # never wider than twice the height asked for
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{threading.get_ident()}.tmp")
        picture.convert("RGB").save(temporary, "JPEG", quality=85)
        os.replace(temporary, target)
        self._grew(target.stat().st_size)
        return target

    def size_bytes(self) -> int:
        """What the cache holds on disk now."""
        return sum(f.stat().st_size for f in self.folder.glob("*/*.jpg"))

    def trim(self, max_bytes: int | None = None) -> int:
        """Delete the least recently used thumbnails until the cache fits; returns how many went."""
        budget = self.max_bytes if max_bytes is None else max_bytes
        with self._lock:
            files = []
            for file in self.folder.glob("*/*.jpg"):
                try:
                    stat = file.stat()
                except OSError:
                    continue
                files.append((stat.st_mtime, stat.st_size, file))
            total = sum(size for _, size, _ in files)
            removed = 0
            for _, size, file in sorted(files):
                if total <= budget:
                    break
                file.unlink(missing_ok=True)
                total -= size
                removed += 1
            self._bytes = total
        return removed

    def _picture(self, raw: bytes, seconds: float | None, side: int) -> Image.Image:
        kind = kind_of(raw)
        if kind is None:
            raise MediaError("not a photo or video Glimpse can read")
        at_ms = round((seconds or 0.0) * 1000) if kind == MediaKind.VIDEO else None
        frames: list[np.ndarray] = []
        summary = self._pool.decode(
            DecodeJob(raw, str(kind), at_ms=at_ms, min_side=side),
            lambda _timestamp, pixels: frames.append(pixels) is None,
            threading.Event(),
        )
        if summary.error is not None or not frames:
            raise MediaError(summary.error or "no picture could be decoded")
        return Image.fromarray(frames[0])

    def _grew(self, added: int) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = 0
                counting = True
            else:
                self._bytes += added
                counting = False
        if counting:
            with self._lock:
                self._bytes = self.size_bytes()
        if self._bytes > self.max_bytes * _SLACK:
            self.trim()
