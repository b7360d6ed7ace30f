"""Tenants: a learner belongs to the API key (tenant) that created it. A learner's key in
every table becomes `TENANT/LEARNER_ID` (`parle.tenants.store_key`), wide enough for both;
the records made before tenants existed go to the `default` tenant (keyless servers, and a
key named `default:` in `PARLE_API_KEYS`).

Revision ID: 0002_tenants
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_tenants"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_LENGTH, NEW_LENGTH = 128, 200
CHILDREN = ("learner_sessions", "turns", "corrections", "vocabulary", "level_history", "facts")
PREFIX = "default/"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # SQLite does not enforce a VARCHAR's length (and widening there would rebuild the
        # tables, whose foreign keys cascade): only PostgreSQL needs the wider columns.
        op.alter_column(
            "learners", "id", type_=sa.String(NEW_LENGTH), existing_type=sa.String(OLD_LENGTH)
        )
        for table in CHILDREN:
            op.alter_column(
                table,
                "learner_id",
                type_=sa.String(NEW_LENGTH),
                existing_type=sa.String(OLD_LENGTH),
            )
    # New parent rows first, then the children moved over, then the old parents gone: the
    # foreign keys hold at every step (neither database cascades an update of a key).
    op.execute(
        "INSERT INTO learners (id, level, created_at, updated_at) "
        f"SELECT '{PREFIX}' || id, level, created_at, updated_at FROM learners "
        "WHERE id NOT LIKE '%/%'"
    )
    for table in CHILDREN:
        op.execute(
            f"UPDATE {table} SET learner_id = '{PREFIX}' || learner_id "
            "WHERE learner_id NOT LIKE '%/%'"
        )
    op.execute("DELETE FROM learners WHERE id NOT LIKE '%/%'")


def downgrade() -> None:
    raise NotImplementedError("records of several tenants cannot be merged back into one")
