"""Alembic environment: migrations run on the connection handed over by `migrate.py`."""

from __future__ import annotations

from alembic import context

from needlepoint.adapters.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite can only ALTER by copying tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
