"""The first schema: folders, media, frames, models, vectors (float16 blobs), deletion log, settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("excluded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String, nullable=False, unique=True),
        sa.Column("dim", sa.Integer, nullable=False),
    )
    op.create_table(
        "media",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("mtime_ns", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String, index=True),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("taken_at", sa.DateTime),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("error", sa.String),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id")),
        sa.Column("indexed_at", sa.DateTime),
    )
    op.create_index("ix_media_status", "media", ["status", "model_id"])
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("media_id", sa.Integer, sa.ForeignKey("media.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timestamp_ms", sa.Integer),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_frames_media_id", "frames", ["media_id"])
    op.create_table(
        "vectors",
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("frame_id", sa.Integer, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("frame_id", "model_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_vectors_model_seq", "vectors", ["model_id", "seq"])
    op.create_table(
        "vector_deletions",
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("frame_id", sa.Integer, nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    # Deletions are logged by the database itself, in the same transaction, so no code path can forget one.
    op.execute(
        "CREATE TRIGGER vectors_deleted AFTER DELETE ON vectors BEGIN "
        "INSERT INTO vector_deletions (frame_id, model_id) VALUES (old.frame_id, old.model_id); END"
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER vectors_deleted")
    for name in ("settings", "vector_deletions", "vectors", "frames", "media", "models", "folders"):
        op.drop_table(name)
