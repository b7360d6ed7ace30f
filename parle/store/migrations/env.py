"""Alembic's environment for the learner store. PARLE runs the migrations itself at start-up
(`parle.store.migrate`), on a connection it hands over in `config.attributes["connection"]`;
there is no alembic.ini (the migrations ship inside the package)."""

from __future__ import annotations

from alembic import context

from parle.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the learner store's migrations through parle.store.migrate")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
