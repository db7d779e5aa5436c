"""What people remember beyond the pixels: the words read in photos and video frames, and where files were taken.

- `readings`: the text recognised in a photo or in one video frame (`timestamp_ms`), as read (`text`, lines
  joined by newlines), case- and accent-folded (`folded`), and line by line with boxes and confidence (`lines`,
  JSON). Keyed by media and moment, not by frame, so a change of model (which replaces every frame row) keeps
  what was read.
- `readings_words` (FTS5, unicode61 with diacritics removed) indexes `folded` by words ("cafe" finds "CAFÉ",
  "strasse" finds "Straße": the folding is Glimpse's own, engine/search/words.py, the same for the queries);
  `readings_codes` (FTS5 trigram) indexes `folded` by three-letter pieces, so part of a code or a plate finds
  it ("RE16" in "RE16TGK"). Both are external-content tables kept in step by triggers.
- `reading_terms`: each word of five letters or more that was read, under every spelling with one letter
  deleted, so that a query word one misread letter away finds it (a deletion neighbourhood, as SymSpell).
- `places`: the named places files were taken at (reverse-geocoded offline), one row per distinct place.
- media gains its coordinates, its place, whether its location was looked for (`located`), when its text
  was read (`read_at`; NULL: not yet), and `dated_at`, the date a person thinks of (taken, else last changed:
  `catalogue.file_date`), indexed, so that a date in a query narrows a large library without reading it all.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The FTS5 tables, their shadow tables and triggers are outside the ORM (tests/engine/test_catalogue.py skips them).
FTS_TABLES = ("readings_words", "readings_codes")


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String, nullable=False, unique=True),
        sa.Column("neighbourhood", sa.String),
        sa.Column("city", sa.String),
        sa.Column("region", sa.String),
        sa.Column("country", sa.String, nullable=False),
        sa.Column("country_code", sa.String, nullable=False),
    )
    # Plain ALTER TABLE ADD COLUMN, never Alembic's batch "move and copy": dropping the old media table would
    # cascade to every frame and vector (foreign keys are on, and cannot be turned off inside the upgrade's
    # transaction). Hence no foreign-key constraint on place_id, and a literal default.
    op.add_column("media", sa.Column("latitude", sa.Float))
    op.add_column("media", sa.Column("longitude", sa.Float))
    op.add_column("media", sa.Column("place_id", sa.Integer))
    op.add_column("media", sa.Column("located", sa.Boolean, nullable=False, server_default="0"))
    op.add_column("media", sa.Column("read_at", sa.DateTime))
    op.add_column("media", sa.Column("dated_at", sa.DateTime))
    # catalogue.file_date's rule, in SQL, for the files indexed before it was kept.
    op.execute(
        "UPDATE media SET dated_at = coalesce(taken_at, "
        "strftime('%Y-%m-%d %H:%M:%f', mtime_ns / 1000000000.0, 'unixepoch', 'localtime'))"
    )
    op.create_index("ix_media_place", "media", ["place_id"])
    op.create_index("ix_media_dated", "media", ["dated_at"])
    op.create_index("ix_media_read", "media", ["status", "read_at"])
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("media_id", sa.Integer, sa.ForeignKey("media.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timestamp_ms", sa.Integer),
        sa.Column("text", sa.String, nullable=False),
        sa.Column("folded", sa.String, nullable=False),
        sa.Column("lines", sa.String, nullable=False),
    )
    op.create_index("ix_readings_media", "readings", ["media_id", "timestamp_ms"])
    op.create_table(
        "reading_terms",
        sa.Column("variant", sa.String, primary_key=True),
        sa.Column("term", sa.String, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.execute(
        "CREATE VIRTUAL TABLE readings_words USING fts5(folded, content='readings', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE VIRTUAL TABLE readings_codes USING fts5(folded, content='readings', content_rowid='id', "
        "tokenize='trigram')"
    )
    # The database keeps both text indexes in step with `readings`, in the same transaction (a cascade from a
    # deleted media row fires these too), so no code path can forget one.
    op.execute(
        "CREATE TRIGGER readings_added AFTER INSERT ON readings BEGIN "
        "INSERT INTO readings_words (rowid, folded) VALUES (new.id, new.folded); "
        "INSERT INTO readings_codes (rowid, folded) VALUES (new.id, new.folded); END"
    )
    op.execute(
        "CREATE TRIGGER readings_removed AFTER DELETE ON readings BEGIN "
        "INSERT INTO readings_words (readings_words, rowid, folded) VALUES ('delete', old.id, old.folded); "
        "INSERT INTO readings_codes (readings_codes, rowid, folded) VALUES ('delete', old.id, old.folded); END"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER readings_removed")
    op.execute("DROP TRIGGER readings_added")
    for name in FTS_TABLES:
        op.execute(f"DROP TABLE {name}")
    op.drop_table("reading_terms")
    op.drop_index("ix_readings_media", table_name="readings")
    op.drop_table("readings")
    op.drop_index("ix_media_read", table_name="media")
    op.drop_index("ix_media_dated", table_name="media")
    op.drop_index("ix_media_place", table_name="media")
    for column in ("dated_at", "read_at", "located", "place_id", "longitude", "latitude"):
        op.drop_column("media", column)  # SQLite's own DROP COLUMN (3.35+), for the same reason as above
    op.drop_table("places")
