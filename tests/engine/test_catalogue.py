"""The catalogue: schema via Alembic and its upgrades, lossless paths, atomic per-file commits, deletion log."""

import sqlite3

import numpy as np
import pytest
from alembic import command, op
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event

from engine.catalogue import (
    FULL_TEXT_TABLES,
    Base,
    Catalogue,
    NewFrame,
    Status,
    alembic_config,
    encode_vector,
)
from engine.errors import LibraryError

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


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
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"folders", "media", "frames", "models", "vectors", "vector_deletions", "settings"} <= tables


def test_the_orm_mirrors_the_migrations(catalogue):
    def not_full_text(name, kind, parent_names) -> bool:
        # The FTS5 tables and their shadow tables are SQLite's own, outside the ORM (migration 0003).
        return not (kind == "table" and name.startswith(FULL_TEXT_TABLES))

    with catalogue.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": not_full_text})
        assert compare_metadata(context, Base.metadata) == []


def write_first_schema_catalogue(path) -> None:
    """A catalogue as Glimpse's first schema (revision 0001) left it, written without today's code: indexed,
    failed and pending files, a video's frames, a deleted file's logged vector, a folder, a model, a setting."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    with db:
        db.execute("INSERT INTO folders VALUES (1, ?, 0, '2026-11-01 09:00:00.000000')", (b"/photos",))
        db.execute("INSERT INTO models VALUES (1, 'tiny-test', 8)")
        db.execute("INSERT INTO settings VALUES ('model', 'tiny-test')")
        files = [
            (b"a.jpg", "image", Status.INDEXED, 1),
            (b"v.mp4", "video", Status.INDEXED, 2),
            (b"bad.jpg", "image", Status.FAILED, 0),
            (b"new.jpg", "image", Status.PENDING, 0),
            (b"gone.jpg", "image", Status.INDEXED, 1),
        ]
        for media_id, (name, kind, status, frames) in enumerate(files, start=1):
            db.execute(
                "INSERT INTO media (id, path, kind, size, mtime_ns, fingerprint, status, error, model_id) "
                "VALUES (?, ?, ?, 100, 1, ?, ?, ?, ?)",
                (
                    media_id,
                    b"/photos/" + name,
                    kind,
                    f"print-{media_id}",
                    str(status),
                    "not a JPEG file" if status == Status.FAILED else None,
                    1 if status == Status.INDEXED else None,
                ),
            )
            for i in range(frames):
                timestamp = i * 2000 if kind == "video" else None
                frame = db.execute(
                    "INSERT INTO frames (media_id, timestamp_ms) VALUES (?, ?)", (media_id, timestamp)
                ).lastrowid
                vector = encode_vector(unit(8, frame))
                db.execute("INSERT INTO vectors (frame_id, model_id, data) VALUES (?, 1, ?)", (frame, vector))
        db.execute("DELETE FROM media WHERE path = ?", (b"/photos/gone.jpg",))  # its vector goes to the log
    db.close()


def every_row(path, columns: dict[str, list[str]] | None = None) -> dict[str, list]:
    """Every row of every table (but Alembic's), or of the tables and columns in `columns`."""
    db = sqlite3.connect(path)
    if columns is None:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {
            t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables if t != "alembic_version"
        }
    rows = {t: sorted(db.execute(f"SELECT {', '.join(names)} FROM {t}")) for t, names in columns.items()}
    db.close()
    return rows


def columns_of(path) -> dict[str, list[str]]:
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns = {
        t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables if t != "alembic_version"
    }
    db.close()
    return columns


def test_a_catalogue_of_the_first_schema_is_upgraded_and_keeps_every_row(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    write_first_schema_catalogue(path)
    old_columns = columns_of(path)
    before = every_row(path)
    assert before["media"] and before["vector_deletions"]

    catalogue = Catalogue(path)
    try:
        with catalogue.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == HEAD
        assert every_row(path, old_columns) == before  # later schemas add columns and tables, lose nothing
        assert catalogue.counts(1) == {
            "media": 4,
            "images": 1,
            "videos": 1,
            "frames": 3,
            "failed": 1,
            "pending": 1,
            "unavailable": 0,
            "read": 0,
        }
        keys, vectors, last = catalogue.vectors_since(1, 0, 8)
        assert keys.tolist() == [1, 2, 3] and last == 3
        np.testing.assert_allclose(vectors[1], unit(8, 2), atol=1e-3)
        assert catalogue.deletions_since(1, 0)[0].tolist() == [4]
        assert catalogue.last_seqs() == (4, 1)  # the index's high-water marks still hold
        assert catalogue.moved_candidate("print-1", "image", 1).path == b"/photos/a.jpg"
        assert catalogue.get_setting("model") == "tiny-test" and catalogue.folders() == [b"/photos"]
    finally:
        catalogue.close()


class PowerCut(Exception):
    pass


def test_an_upgrade_cut_short_leaves_the_old_schema_and_the_next_open_finishes_it(tmp_path, monkeypatch):
    path = tmp_path / "catalogue.sqlite"
    write_first_schema_catalogue(path)
    old_columns = columns_of(path)
    before = every_row(path)

    def power_cut(*args, **kwargs):
        raise PowerCut

    with monkeypatch.context() as patch:
        patch.setattr(op, "create_index", power_cut)  # 0002 has dropped the old index by then
        with pytest.raises(PowerCut):
            Catalogue(path)
    assert columns_of(path) == old_columns and every_row(path) == before  # all of it rolled back
    catalogue = Catalogue(path)
    try:
        assert every_row(path, old_columns) == before
        db = sqlite3.connect(path)
        columns = [r[2] for r in db.execute("PRAGMA index_info(ix_media_fingerprint)")]
        db.close()
        assert columns == ["fingerprint", "status", "model_id"]
    finally:
        catalogue.close()


def test_a_catalogue_of_a_newer_glimpse_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    Catalogue(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    with pytest.raises(LibraryError) as refused:
        Catalogue(path)
    assert str(refused.value) == (
        f"the catalogue {path} was written by a newer version of Glimpse (schema 9999); update Glimpse to open it"
    )


def query_plans(catalogue, call) -> list[str]:
    """SQLite's plan of every SELECT that `call` runs on the catalogue."""
    statements = []

    def record(connection, cursor, statement, parameters, context, many):
        statements.append((statement, parameters))

    event.listen(catalogue.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(catalogue.engine, "before_cursor_execute", record)
    with catalogue.engine.connect() as connection:
        return [
            " ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters))
            for sql, parameters in statements
            if sql.lstrip().startswith("SELECT")
        ]


def test_per_file_and_per_search_look_ups_never_read_the_whole_library(catalogue):
    model = catalogue.model_id("m", 8)
    for i in range(20):
        index_file(catalogue, f"/p/{i}.jpg".encode(), model, seed=i)
    # Without statistics SQLite once took ix_media_status (status, model_id) for these: every indexed file.
    [moved] = query_plans(catalogue, lambda: catalogue.moved_candidate(b"/p/3.jpg".hex(), "image", model))
    assert "USING INDEX ix_media_fingerprint (fingerprint=? AND status=? AND model_id=?)" in moved
    for plan in query_plans(catalogue, lambda: catalogue.frames(list(range(1, 11)))):
        assert "USING INTEGER PRIMARY KEY" in plan


def test_failed_files_are_one_query_and_details_one_per_table(catalogue):
    model = catalogue.model_id("m", 8)
    ids = [index_file(catalogue, f"/p/{i}.jpg".encode(), model, seed=i) for i in range(30)]
    for i in (25, 3, 14):
        catalogue.record_failed(ids[i], f"broken {i}")
    [plan] = query_plans(catalogue, lambda: catalogue.failed_files(2))
    assert (
        plan.startswith("SEARCH media USING INDEX") and "(status=?)" in plan
    )  # only the failed rows are read
    assert [(str(f.path), f.error) for f in catalogue.failed_files(10)] == [
        ("/p/14.jpg", "broken 14"),
        ("/p/25.jpg", "broken 25"),
        ("/p/3.jpg", "broken 3"),
    ]
    media, places, readings = query_plans(catalogue, lambda: catalogue.details(ids[:20]))
    assert "USING INTEGER PRIMARY KEY" in media and "USING INTEGER PRIMARY KEY" in places
    assert "USING INDEX ix_readings_media" in readings  # what was read in them, without reading the library
    details = catalogue.details([ids[5], ids[2], 10_000])
    assert set(details) == {ids[5], ids[2]} and str(details[ids[5]].path) == "/p/5.jpg"


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
