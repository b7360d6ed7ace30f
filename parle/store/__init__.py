"""The learner store: a learner's sessions, turns, corrections, vocabulary, level history and
facts in a SQL database (SQLite by default, or PostgreSQL), written off the hot path.

`build_recorder(settings)` makes the recorder a server hands its pipeline; `LearnerStore`
reads and writes the database; the Alembic migrations are in `migrations/`.
"""

from __future__ import annotations

from collections.abc import Callable

from parle.config import Settings
from parle.store.database import StoreConfigError, database_url
from parle.store.recorder import StoreRecorder
from parle.store.store import LearnerStore

__all__ = ["LearnerStore", "StoreConfigError", "StoreRecorder", "build_recorder", "database_url"]


def build_recorder(
    settings: Settings, *, on_error: Callable[[str], None] | None = None
) -> StoreRecorder:
    """The learner store of `settings` (`PARLE_DATABASE_URL`, `PARLE_RETENTION_DAYS`,
    `PARLE_STORE_QUEUE`), not started."""
    store = LearnerStore(database_url(settings.database_url, settings.cache_dir))
    return StoreRecorder(
        store,
        queue_size=settings.store_queue,
        retention_days=settings.retention_days,
        on_error=on_error,
    )
