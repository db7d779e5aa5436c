"""The usearch ANN index of one model's vectors: a derived cache of the catalogue, never the truth.

On disk: `vectors-<model>.usearch` plus `vectors-<model>.json` holding the high-water marks (the last vector
and deletion sequence numbers of the catalogue the file contains). The index file is replaced first and the
marks second, both atomically, so after a crash the marks are never ahead of the file; replaying from older
marks is harmless because adding a present key is skipped and removing an absent one does nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index

from engine.catalogue import Catalogue

log = logging.getLogger(__name__)

# HNSW settings, measured in docs/benchmarks.md ("Search"): links per node (index size and recall),
# candidates kept while inserting (64 inserts 2.5x faster than 128 but loses recall; inserting is never the
# bottleneck next to the model, so quality wins) and while searching (recall against latency, settable per
# search without a rebuild).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
# Up to this many vectors a brute-force scan is as fast as the graph (measured: 2.5 ms against 3.8 ms for the
# top 400 of 20,000) and exact. The graph also cannot promise every node is reachable, so a search that asks
# for all the vectors scans them too: asked for k = n, HNSW returned 19,993 of 20,000.
EXACT_UP_TO = 20_000


@dataclass(frozen=True)
class Marks:
    vectors: int = 0
    deletions: int = 0


class VectorIndex:
    """A model's frames in an HNSW graph (cosine, f16), kept up to date from the catalogue."""

    def __init__(self, path: Path, dim: int, index: Index, marks: Marks, *, view: bool = False) -> None:
        self.path = path
        self.dim = dim
        self.index = index
        self.marks = marks
        self.saved_marks = marks
        #: A read-only memory map of the file: opening costs no reading, and the vectors committed since
        #: its checkpoint (the tail) are scored exactly at search time instead of joining the graph.
        self.view = view
        self._tail_keys = np.zeros(0, dtype=np.uint64)
        self._tail_vectors = np.zeros((0, dim), dtype=np.float32)
        self._removed = np.zeros(0, dtype=np.uint64)  # keys of the file deleted from the catalogue since
        try:
            self.loaded_mtime_ns: int | None = self.meta_path.stat().st_mtime_ns
        except FileNotFoundError:
            self.loaded_mtime_ns = None

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    @classmethod
    def open(
        cls, path: Path, dim: int, catalogue: Catalogue, model_id: int, *, view: bool = False
    ) -> VectorIndex:
        """Load the index file (rebuilding it when missing, corrupt or ahead of the catalogue), then catch up.

        `view`: map the file read-only instead of reading it, for processes that only search.
        """
        loaded = cls.load(path, dim, view=view)
        last_vector, last_deletion = catalogue.last_seqs()
        if loaded is not None and (
            loaded.marks.vectors > last_vector or loaded.marks.deletions > last_deletion
        ):
            log.warning("index %s is ahead of its catalogue (restored from elsewhere?): rebuilding", path)
            loaded = None
        if loaded is None:
            loaded = cls(path, dim, _new_index(dim), Marks())
            loaded.saved_marks = Marks(-1, -1)  # never saved: the next checkpoint must write it
        loaded.catch_up(catalogue, model_id)
        return loaded

    @classmethod
    def load(cls, path: Path, dim: int, *, view: bool = False) -> VectorIndex | None:
        """The index file as it is, without catching up; None when it is missing, incomplete or unreadable."""
        meta_path = path.with_suffix(".json")
        if not path.exists() or not meta_path.exists():
            if path.exists() or meta_path.exists():
                log.warning("index %s is incomplete: rebuilding it from the catalogue", path)
            return None
        try:
            meta = json.loads(meta_path.read_text())
            marks = Marks(int(meta["vectors"]), int(meta["deletions"]))
            index = Index.restore(str(path), view=view)
            if index is None or index.ndim != dim:
                raise ValueError("not an index of this model")
            index.expansion_search = EXPANSION_SEARCH
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
            log.warning("index %s is unreadable (%s): rebuilding it from the catalogue", path, error)
            return None
        return cls(path, dim, index, marks, view=view)

    def catch_up(self, catalogue: Catalogue, model_id: int) -> int:
        """Apply the catalogue's vectors and deletions written since the marks; returns how many changed."""
        keys, vectors, last_vector = catalogue.vectors_since(model_id, self.marks.vectors, self.dim)
        deleted, last_deletion = catalogue.deletions_since(model_id, self.marks.deletions)
        if self.view:
            self._catch_up_tail(keys, vectors, deleted)
        elif len(deleted):
            self.index.remove(deleted)
        if len(keys) and not self.view:
            fresh = ~np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
            if fresh.any():
                self.index.add(keys[fresh], vectors[fresh])
        self.marks = Marks(last_vector, last_deletion)
        return len(keys) + len(deleted)

    def _catch_up_tail(self, keys: np.ndarray, vectors: np.ndarray, deleted: np.ndarray) -> None:
        """A view's catch-up: new vectors join the exactly scored tail, deletions are filtered out."""
        if len(keys):
            in_file = np.zeros(len(keys), dtype=bool)
            if len(self.index):
                in_file = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
            fresh = ~in_file & ~np.isin(keys, self._tail_keys)  # a replay from older marks adds nothing twice
            self._tail_keys = np.concatenate([self._tail_keys, keys[fresh]])
            self._tail_vectors = np.concatenate([self._tail_vectors, vectors[fresh]])
        if len(deleted):
            kept = ~np.isin(self._tail_keys, deleted)
            self._tail_keys, self._tail_vectors = self._tail_keys[kept], self._tail_vectors[kept]
            if len(self.index):
                in_file = np.asarray(self.index.contains(deleted), dtype=bool).reshape(-1)
                self._removed = np.union1d(self._removed, deleted[in_file])

    def search(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The `count` nearest frames: (frame ids, cosine similarities), best first."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if len(self) == 0 or count <= 0:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
        keys, scores = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
        if len(self.index):
            # Deleted keys still in a view's graph may take places in the answer: ask for that many more.
            wanted = min(count + len(self._removed), len(self.index))
            exact = len(self.index) <= EXACT_UP_TO or wanted == len(self.index)
            matches = self.index.search(query, wanted, exact=exact)
            keys, scores = matches.keys.astype(np.uint64), (1.0 - matches.distances).astype(np.float32)
            if len(self._removed):
                kept = ~np.isin(keys, self._removed)
                keys, scores = keys[kept], scores[kept]
        if not len(self._tail_keys):
            return keys[:count], scores[:count]
        tail_scores = self._tail_vectors @ query
        tail_scores /= np.maximum(np.linalg.norm(self._tail_vectors, axis=1) * np.linalg.norm(query), 1e-12)
        keys = np.concatenate([keys, self._tail_keys])
        scores = np.concatenate([scores, tail_scores.astype(np.float32)])
        best = np.argsort(-scores, kind="stable")[:count]
        return keys[best], scores[best]

    def score(self, query: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine similarities of `query` to the frames `keys` (those the index holds): (keys, scores),
        best first. For a search narrowed to a few files (a place or a date named), where scoring their frames
        beats asking the graph for its nearest and throwing most of them away."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        keys = np.unique(np.asarray(keys, dtype=np.uint64))
        in_tail = np.isin(keys, self._tail_keys)
        found_keys: list[np.ndarray] = []
        found_vectors: list[np.ndarray] = []
        if in_tail.any():
            rows = np.flatnonzero(np.isin(self._tail_keys, keys))
            found_keys.append(self._tail_keys[rows])
            found_vectors.append(self._tail_vectors[rows])
        in_file = keys[~in_tail & ~np.isin(keys, self._removed)]
        if len(in_file) and len(self.index):
            fetched = self.index.get(in_file)
            present = [i for i, vector in enumerate(fetched) if vector is not None]
            if present:
                found_keys.append(in_file[present])
                found_vectors.append(np.stack([fetched[i] for i in present]).astype(np.float32))
        if not found_keys:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
        keys, vectors = np.concatenate(found_keys), np.concatenate(found_vectors)
        scores = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(query), 1e-12)
        best = np.argsort(-scores, kind="stable")
        return keys[best], scores[best].astype(np.float32)

    def __len__(self) -> int:
        return len(self.index) - len(self._removed) + len(self._tail_keys)

    def keys(self) -> np.ndarray:
        keys = np.asarray(self.index.keys, dtype=np.uint64)
        if len(self._removed):
            keys = keys[~np.isin(keys, self._removed)]
        return np.concatenate([keys, self._tail_keys])

    def save(self, catalogue: Catalogue | None = None, model_id: int | None = None) -> None:
        """Checkpoint atomically if anything changed since the last save; prunes replayed deletions."""
        if self.marks == self.saved_marks:
            return
        if self.view:
            raise RuntimeError("a read-only view of an index cannot be saved; open it without view")
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.index.save(str(tmp))
            _fsync(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk keeps the previous file, and no half-written one
            raise
        _write_atomically(
            self.meta_path, json.dumps({"vectors": self.marks.vectors, "deletions": self.marks.deletions})
        )
        self.saved_marks = self.marks
        self.loaded_mtime_ns = self.meta_path.stat().st_mtime_ns
        if catalogue is not None and model_id is not None:
            catalogue.prune_deletions(model_id, self.marks.deletions)

    def checkpoint_changed(self) -> bool:
        """Whether another process saved a newer checkpoint of this index since it was loaded."""
        try:
            return self.meta_path.stat().st_mtime_ns != self.loaded_mtime_ns
        except FileNotFoundError:
            return self.loaded_mtime_ns is not None

    @staticmethod
    def delete_files(path: Path) -> None:
        """Remove an index file and its marks (the catalogue rebuilds them on the next open)."""
        for file in (path, path.with_suffix(".json")):
            file.unlink(missing_ok=True)


def _new_index(dim: int) -> Index:
    return Index(
        ndim=dim,
        metric="cos",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
