"""The catalogue: schema via Alembic, lossless paths, atomic per-file commits, deletion log."""

import sqlite3

import numpy as np
import pytest

from engine.catalogue import Catalogue, NewFrame, Status


@pytest.fixture
def catalogue(tmp_path):
    c = Catalogue(tmp_path / "catalogue.sqlite")
    yield c
    c.close()


def unit(dim, seed):
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def index_file(catalogue, path, model_id, frames=1, kind="image", seed=0):
    media_id = catalogue.upsert_pending(path, kind, 100, 1)
    catalogue.record_indexed(
        media_id,
        model_id=model_id,
        fingerprint=path.hex(),
        width=10,
        height=10,
        duration_ms=None,
        taken_at=None,
        frames=[NewFrame(i * 2000 if kind == "video" else None, unit(8, seed + i)) for i in range(frames)],
    )
    return media_id


def test_schema_is_created_by_alembic_in_wal_mode(catalogue, tmp_path):
    db = sqlite3.connect(tmp_path / "catalogue.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"folders", "media", "frames", "models", "vectors", "vector_deletions", "settings"} <= tables


def test_any_bytes_path_round_trips(catalogue):
    model = catalogue.model_id("m", 8)
    weird = b"/photos/caf\xe9 \xff\xfe\n.jpg"
    index_file(catalogue, weird, model)
    assert catalogue.media_by_path(weird).path == weird
    assert list(catalogue.media_under(b"/photos")) == [weird]


def test_folder_prefix_does_not_match_sibling_folders(catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a/b/x.jpg", model)
    index_file(catalogue, b"/a/bc/y.jpg", model)
    assert list(catalogue.media_under(b"/a/b")) == [b"/a/b/x.jpg"]


def test_vectors_are_float16_and_read_back_in_order(catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/v.mp4", model, frames=3, kind="video")
    keys, vectors, last = catalogue.vectors_since(model, 0, 8)
    assert len(keys) == 3 and last == 3
    np.testing.assert_allclose(vectors[1], unit(8, 1), atol=1e-3)
    keys, vectors, last2 = catalogue.vectors_since(model, last, 8)
    assert len(keys) == 0 and last2 == last


def test_deleting_media_logs_vector_deletions_through_the_cascade(catalogue):
    model = catalogue.model_id("m", 8)
    media_id = index_file(catalogue, b"/v.mp4", model, frames=2, kind="video")
    catalogue.delete_media([media_id])
    deleted, last = catalogue.deletions_since(model, 0)
    assert sorted(deleted.tolist()) == [1, 2]
    assert catalogue.counts(model)["frames"] == 0
    catalogue.prune_deletions(model, last)
    assert len(catalogue.deletions_since(model, 0)[0]) == 0
    assert catalogue.last_seqs() == (2, 2)  # sequence numbers never go back


def test_reindexing_a_file_replaces_its_frames(catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/v.mp4", model, frames=3, kind="video")
    index_file(catalogue, b"/v.mp4", model, frames=2, kind="video")
    assert catalogue.counts(model)["frames"] == 2
    assert len(catalogue.deletions_since(model, 0)[0]) == 3


def test_pending_includes_files_embedded_by_another_model(catalogue):
    old = catalogue.model_id("old", 8)
    new = catalogue.model_id("new", 8)
    media_id = index_file(catalogue, b"/x.jpg", old)
    assert catalogue.pending_ids(old) == []
    assert catalogue.pending_ids(new) == [media_id]
    assert catalogue.counts(new)["pending"] == 1


def test_model_dimension_is_fixed(catalogue):
    catalogue.model_id("m", 8)
    with pytest.raises(Exception, match="8-wide"):
        catalogue.model_id("m", 16)


def test_unavailable_folder_keeps_its_media(catalogue):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/drive/a.jpg", model)
    assert catalogue.set_unavailable(b"/drive", True) == 1
    assert catalogue.media_by_path(b"/drive/a.jpg").status == Status.UNAVAILABLE
    assert catalogue.frames([1]) == {}  # not searchable while away
    assert catalogue.set_unavailable(b"/drive", False) == 1
    assert 1 in catalogue.frames([1])


def test_orphans_are_found_and_requeued(catalogue, tmp_path):
    model = catalogue.model_id("m", 8)
    index_file(catalogue, b"/a.jpg", model)
    db = sqlite3.connect(tmp_path / "catalogue.sqlite")
    db.execute("DELETE FROM vectors")
    db.commit()
    assert catalogue.orphans()["frames without vectors"] == 1
    assert catalogue.requeue_orphans() == 1
    assert catalogue.pending_ids(model) == [1]
