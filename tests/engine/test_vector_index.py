"""The vector index: a derived cache with high-water marks, caught up on open, rebuilt when broken."""

from pathlib import Path

import numpy as np
import pytest

from engine.catalogue import Catalogue
from engine.vector_index import VectorIndex
from tests.engine.test_catalogue import index_file, unit


@pytest.fixture
def catalogue(tmp_path):
    c = Catalogue(tmp_path / "catalogue.sqlite")
    yield c
    c.close()


def open_index(tmp_path, catalogue, model):
    return VectorIndex.open(tmp_path / "vectors-m.usearch", 8, catalogue, model)


def test_search_finds_the_nearest_frame(tmp_path, catalogue):
    model = catalogue.model_id("m", 8)
    for i in range(20):
        index_file(catalogue, f"/{i}.jpg".encode(), model, seed=i)
    index = open_index(tmp_path, catalogue, model)
    keys, scores = index.search(unit(8, 7), 3)
    assert keys[0] == 8 and scores[0] == pytest.approx(1.0, abs=1e-2)
    assert list(scores) == sorted(scores, reverse=True)


def test_asking_for_every_frame_returns_every_frame_in_exact_order(tmp_path, catalogue):
    # An HNSW graph cannot promise every node is reachable: asked for all 3,000 of these, it returns fewer.
    model = catalogue.model_id("m", 8)
    for i in range(6):
        index_file(catalogue, f"/{i}.mp4".encode(), model, frames=500, kind="video", seed=i * 1000)
    index = open_index(tmp_path, catalogue, model)
    query = unit(8, 10**6)
    keys, _ = index.search(query, len(index))
    assert len(keys) == len(set(keys.tolist())) == 3000
    every = np.stack([unit(8, i * 1000 + f) for i in range(6) for f in range(500)])
    exact = np.argsort(-(every @ query), kind="stable")[:20] + 1  # frame ids count from 1 in insertion order
    assert keys[:20].tolist() == exact.tolist()


def test_reopen_catches_up_with_additions_and_deletions_since_the_checkpoint(tmp_path, catalogue):
    model = catalogue.model_id("m", 8)
    first = index_file(catalogue, b"/a.jpg", model)
    index = open_index(tmp_path, catalogue, model)
    index.save(catalogue, model)
    index_file(catalogue, b"/b.jpg", model)
    catalogue.delete_media([first])
    reopened = open_index(tmp_path, catalogue, model)
    assert sorted(reopened.keys().tolist()) == [2]


def test_replay_from_older_marks_is_harmless(tmp_path, catalogue):
    """A crash between replacing the index file and its marks leaves new file + old marks."""
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a.jpg", model)
    index = open_index(tmp_path, catalogue, model)
    index.save(catalogue, model)
    old_meta = index.meta_path.read_text()
    index_file(catalogue, b"/b.jpg", model)
    index.catch_up(catalogue, model)
    index.save(catalogue, model)
    index.meta_path.write_text(old_meta)
    reopened = open_index(tmp_path, catalogue, model)
    assert sorted(reopened.keys().tolist()) == [1, 2]
    assert len(reopened) == 2


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "no-meta"])
def test_broken_index_file_is_rebuilt(tmp_path, catalogue, damage):
    model = catalogue.model_id("m", 8)
    for i in range(5):
        index_file(catalogue, f"/{i}.jpg".encode(), model)
    index = open_index(tmp_path, catalogue, model)
    index.save(catalogue, model)
    path = tmp_path / "vectors-m.usearch"
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        index.meta_path.unlink()
    rebuilt = open_index(tmp_path, catalogue, model)
    assert sorted(rebuilt.keys().tolist()) == [1, 2, 3, 4, 5]


def test_save_is_atomic_and_skipped_when_nothing_changed(tmp_path, catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a.jpg", model)
    index = open_index(tmp_path, catalogue, model)
    index.save(catalogue, model)
    mtime = index.path.stat().st_mtime_ns
    index.save(catalogue, model)
    assert index.path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))


def test_a_disk_full_during_save_leaves_the_previous_index_valid(tmp_path, catalogue, monkeypatch):
    import errno

    from engine.errors import explain

    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a.jpg", model)
    index = open_index(tmp_path, catalogue, model)
    index.save(catalogue, model)
    index_file(catalogue, b"/b.jpg", model, seed=1)
    index.catch_up(catalogue, model)

    def full_disk(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half an index")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(type(index.index), "save", full_disk)
    with pytest.raises(OSError) as failure:
        index.save(catalogue, model)
    assert "disk is full" in str(explain(failure.value))
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    survivor = VectorIndex.load(tmp_path / "vectors-m.usearch", 8)
    assert survivor is not None and sorted(survivor.keys().tolist()) == [1]
    assert sorted(open_index(tmp_path, catalogue, model).keys().tolist()) == [1, 2]  # caught up again
