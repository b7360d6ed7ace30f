"""The learner store: learners, their sessions, turns, corrections, vocabulary, level
history and facts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _learner_fk(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(
        "learner_id",
        sa.String(128),
        sa.ForeignKey("learners.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "learners",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("level", sa.String(2), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "learner_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _learner_fk(),
        sa.Column("session_key", sa.String(128), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_turn_at", sa.DateTime(), nullable=True),
        sa.Column("start_level", sa.String(2), nullable=True),
    )
    op.create_index("ix_learner_sessions_learner_id", "learner_sessions", ["learner_id"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _learner_fk(),
        sa.Column(
            "session_id",
            sa.Integer,
            sa.ForeignKey("learner_sessions.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("transcript", sa.Text, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("level", sa.String(2), nullable=False),
        sa.Column("estimate", sa.String(2), nullable=True),
        sa.Column("speech_s", sa.Float, nullable=False),
        sa.Column("words", sa.Integer, nullable=False),
        sa.Column("words_per_minute", sa.Float, nullable=True),
        sa.Column("timings", sa.JSON, nullable=False),
    )
    op.create_index("ix_turns_learner_id", "turns", ["learner_id"])
    op.create_index("ix_turns_session_id", "turns", ["session_id"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _learner_fk(),
        sa.Column(
            "turn_id", sa.Integer, sa.ForeignKey("turns.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("original", sa.Text, nullable=False),
        sa.Column("corrected", sa.Text, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
    )
    op.create_index("ix_corrections_learner_id", "corrections", ["learner_id"])
    op.create_table(
        "vocabulary",
        _learner_fk(primary_key=True),
        sa.Column("word", sa.String(64), primary_key=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "level_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _learner_fk(),
        sa.Column(
            "session_id",
            sa.Integer,
            sa.ForeignKey("learner_sessions.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("level", sa.String(2), nullable=False),
    )
    op.create_index("ix_level_history_learner_id", "level_history", ["learner_id"])
    op.create_table(
        "facts",
        _learner_fk(primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "facts",
        "level_history",
        "vocabulary",
        "corrections",
        "turns",
        "learner_sessions",
        "learners",
    ):
        op.drop_table(table)
