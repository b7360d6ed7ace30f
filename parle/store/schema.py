"""The learner store's tables (SQLAlchemy Core). The database is built by the Alembic
migrations in `parle/store/migrations/`; a test checks that they and these tables agree.

Times are naive UTC (`datetime.now(UTC)` without its zone): the same on SQLite, which has no
zone type, and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ID_LENGTH = 128  # a session id: at most 128 characters (the id rule)
# A learner's key: `TENANT/LEARNER_ID` (`parle.tenants.store_key`), 64 + 1 + 128 at most.
KEY_LENGTH = 200
# SQLite keeps the declared VARCHAR(128) of the first migration: it never enforces a length,
# and widening the declaration there would rebuild tables whose foreign keys cascade.
KEY_TYPE = String(KEY_LENGTH).with_variant(String(ID_LENGTH), "sqlite")

learners = Table(
    "learners",
    metadata,
    Column("id", KEY_TYPE, primary_key=True),
    Column("level", String(2), nullable=True),  # the latest smoothed level (A1..C2)
    Column("created_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)


def _learner() -> Column[str]:
    return Column(
        "learner_id",
        KEY_TYPE,
        ForeignKey("learners.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


learner_sessions = Table(
    "learner_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _learner(),
    Column("session_key", String(ID_LENGTH), nullable=True),  # the door's session id
    Column("started_at", DateTime(), nullable=False),
    Column("last_turn_at", DateTime(), nullable=True),
    Column("start_level", String(2), nullable=True),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _learner(),
    Column(
        "session_id",
        Integer,
        ForeignKey("learner_sessions.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    Column("at", DateTime(), nullable=False),
    Column("transcript", Text, nullable=False),
    Column("reply", Text, nullable=False),
    Column("level", String(2), nullable=False),
    Column("estimate", String(2), nullable=True),
    Column("speech_s", Float, nullable=False),
    Column("words", Integer, nullable=False),
    Column("words_per_minute", Float, nullable=True),
    Column("timings", JSON, nullable=False),
)

corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _learner(),
    Column("turn_id", Integer, ForeignKey("turns.id", ondelete="CASCADE"), nullable=True),
    Column("at", DateTime(), nullable=False),
    Column("original", Text, nullable=False),
    Column("corrected", Text, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("kind", String(32), nullable=False),
)

vocabulary = Table(
    "vocabulary",
    metadata,
    Column(
        "learner_id",
        KEY_TYPE,
        ForeignKey("learners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("word", String(64), primary_key=True),  # a lowercase word form (no lemmatizer)
    Column("first_seen", DateTime(), nullable=False),
    Column("last_seen", DateTime(), nullable=False),
    Column("count", Integer, nullable=False),
)

level_history = Table(
    "level_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _learner(),
    Column(
        "session_id",
        Integer,
        ForeignKey("learner_sessions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("at", DateTime(), nullable=False),
    Column("level", String(2), nullable=False),
)

facts = Table(
    "facts",
    metadata,
    Column(
        "learner_id",
        KEY_TYPE,
        ForeignKey("learners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String(32), primary_key=True),  # name, country, city, job, interest
    Column("value", String(200), primary_key=True),
    Column("at", DateTime(), nullable=False),
)

# Child tables first: the order rows of one learner are erased in.
LEARNER_TABLES = (corrections, turns, level_history, learner_sessions, vocabulary, facts)
