"""Alembic environment: Glimpse runs migrations programmatically on the catalogue's own connection."""

from alembic import context

from engine.catalogue import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
