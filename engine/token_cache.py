"""Visual tokens of re-ranked frames, kept so that the next query re-ranking them skips the image tower.

The Slow model's per-image work (decode the file, run the image tower) costs far more than scoring a query
against the tokens it produces (docs/benchmarks.md, "Re-ranking"), and a shortlist tends to come back: the same
photos match a user's successive, related queries. Tokens are kept in two tiers, each bounded in bytes, the
least recently used entry leaving first: memory (for a long-running app) and a folder in the library (for the
command line, whose every search is a new process). Entries are float16, keyed by (Slow model key, frame id);
frame ids are never reused by the catalogue, so an entry can never describe another picture.

A damaged or unreadable file is a cache miss, removed, never an error. Several processes may share the folder:
writes are atomic (temporary file + rename), and each process keeps the folder under its bound as it adds;
two adding at once may overshoot it until either next adds or opens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Memory tier: 256 MiB holds about a thousand frames of CoCa ViT-B-32 tokens (255 × 512 float16 each).
DEFAULT_MEMORY_BYTES = 256 << 20
#: Disk tier: 2 GiB holds about eight thousand frames of CoCa ViT-B-32 tokens.
DEFAULT_DISK_BYTES = 2 << 30

_SUFFIX = ".npy"

Key = tuple[str, int]


@dataclass(frozen=True)
class CacheUsage:
    """How full each tier is."""

    memory_entries: int
    memory_bytes: int
    disk_entries: int
    disk_bytes: int


class TokenCache:
    """A bounded LRU cache of visual tokens in memory and, when given a folder, on disk."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_bytes: int = DEFAULT_DISK_BYTES,
    ) -> None:
        self.folder = folder
        self.memory_limit = memory_bytes
        self.disk_limit = disk_bytes if folder is not None else 0
        self._lock = threading.Lock()
        self._memory: OrderedDict[Key, torch.Tensor] = OrderedDict()
        self._memory_bytes = 0
        # Disk entries by recency, oldest first: read from the files' modification times on open, kept up to
        # date in this process (a hit touches its file, so other processes see the recency too).
        self._disk: OrderedDict[Key, int] = OrderedDict()
        self._disk_bytes = 0
        if folder is not None:
            self._scan(folder)

    def get(self, model_key: str, frame_id: int) -> torch.Tensor | None:
        """The frame's cached tokens (tokens, width) as a float16 CPU tensor, or None."""
        key = (model_key, frame_id)
        with self._lock:
            tokens = self._memory.get(key)
            if tokens is not None:
                self._memory.move_to_end(key)
                self._touch(key)
                return tokens
            if key not in self._disk:
                return None
            tokens = self._read(key)
            if tokens is not None:
                self._remember(key, tokens)
            return tokens

    def put(self, model_key: str, frame_id: int, tokens: torch.Tensor) -> None:
        """Keep a frame's tokens (tokens, width), stored as float16, in both tiers."""
        key = (model_key, frame_id)
        half = tokens.detach().to("cpu", torch.float16).contiguous()
        with self._lock:
            self._remember(key, half)
            if self.folder is not None and key not in self._disk:
                self._write(key, half)

    def tokens(
        self,
        model_key: str,
        frame_ids: Sequence[int],
        compute: Callable[[list[int]], torch.Tensor],
    ) -> torch.Tensor:
        """Tokens of `frame_ids` → (N, tokens, width) float16 on the CPU; `compute` makes the missing ones.

        `compute(ids)` returns the tokens of those frames in that order, in one batch. Computed tokens are
        rounded to float16 like cached ones, so a frame scores the same whether its tokens were cached or not.
        """
        found = {frame_id: self.get(model_key, frame_id) for frame_id in dict.fromkeys(frame_ids)}
        missing = [frame_id for frame_id, tokens in found.items() if tokens is None]
        if missing:
            for frame_id, tokens in zip(missing, compute(missing), strict=True):
                self.put(model_key, frame_id, tokens)
                found[frame_id] = tokens.detach().to("cpu", torch.float16)
        return torch.stack([found[frame_id] for frame_id in frame_ids])

    def usage(self) -> CacheUsage:
        """How many entries and bytes each tier holds now."""
        with self._lock:
            return CacheUsage(len(self._memory), self._memory_bytes, len(self._disk), self._disk_bytes)

    # --- memory tier ------------------------------------------------------------------------------------

    def _remember(self, key: Key, tokens: torch.Tensor) -> None:
        size = tokens.numel() * tokens.element_size()
        if size > self.memory_limit:
            return
        previous = self._memory.pop(key, None)
        if previous is not None:
            self._memory_bytes -= previous.numel() * previous.element_size()
        self._memory[key] = tokens
        self._memory_bytes += size
        while self._memory_bytes > self.memory_limit:
            _, evicted = self._memory.popitem(last=False)
            self._memory_bytes -= evicted.numel() * evicted.element_size()

    # --- disk tier --------------------------------------------------------------------------------------

    def _path(self, key: Key) -> Path:
        assert self.folder is not None
        model_key, frame_id = key
        return self.folder / model_key / f"{frame_id}{_SUFFIX}"

    def _scan(self, folder: Path) -> None:
        entries: list[tuple[int, Key, int]] = []
        try:
            models = [entry for entry in os.scandir(folder) if entry.is_dir()]
        except FileNotFoundError:
            return
        except OSError as error:
            log.warning("cannot read the token cache %s: %s", folder, error)
            return
        for model in models:
            for entry in os.scandir(model.path):
                stem = entry.name.removesuffix(_SUFFIX)
                if not (entry.name.endswith(_SUFFIX) and stem.isdigit()):
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # another process evicted it meanwhile
                    continue
                entries.append((stat.st_mtime_ns, (model.name, int(stem)), stat.st_size))
        for _, key, size in sorted(entries):
            self._disk[key] = size
            self._disk_bytes += size
        self._shrink_disk()

    def _read(self, key: Key) -> torch.Tensor | None:
        path = self._path(key)
        try:
            array = np.load(path, allow_pickle=False)
            if array.dtype != np.float16 or array.ndim != 2:
                raise ValueError(f"holds {array.dtype} {array.shape}, not float16 (tokens, width)")
            os.utime(path)
        except FileNotFoundError:  # another process evicted it
            self._forget_file(key)
            return None
        except (OSError, ValueError, EOFError) as error:
            log.warning("dropping unreadable cached tokens %s: %s", path, error)
            self._forget_file(key)
            return None
        self._disk.move_to_end(key)
        return torch.from_numpy(array)

    def _write(self, key: Key, tokens: torch.Tensor) -> None:
        size = tokens.numel() * tokens.element_size()
        if size > self.disk_limit:
            return
        path = self._path(key)
        temporary: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
                temporary = Path(file.name)
                np.save(file, tokens.numpy(), allow_pickle=False)
            os.replace(temporary, path)
        except OSError as error:
            # A full or read-only disk costs speed, never a search.
            log.warning("cannot cache tokens in %s: %s", path.parent, error)
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            return
        self._disk[key] = path.stat().st_size
        self._disk_bytes += self._disk[key]
        self._shrink_disk()

    def _touch(self, key: Key) -> None:
        """Mark a disk entry used now, so that a memory hit keeps its file from being evicted first."""
        if key in self._disk:
            self._disk.move_to_end(key)
            with contextlib.suppress(OSError):  # evicted by another process: it is rewritten on the next miss
                os.utime(self._path(key))

    def _shrink_disk(self) -> None:
        while self._disk_bytes > self.disk_limit and self._disk:
            self._forget_file(next(iter(self._disk)))

    def _forget_file(self, key: Key) -> None:
        self._disk_bytes -= self._disk.pop(key, 0)
        self._path(key).unlink(missing_ok=True)
