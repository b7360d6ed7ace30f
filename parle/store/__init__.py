"""The learner store: a learner's sessions, turns, corrections, vocabulary, level history and
facts in a SQL database (SQLite by default, or PostgreSQL), written off the hot path.

`build_recorder(settings)` makes the recorder a server hands its pipeline (an outage loses no
turn: they wait in a journal, `journal_path`); `LearnerStore` reads and writes the database;
the Alembic migrations are in `migrations/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from parle.config import Settings
from parle.store.database import (
    StoreConfigError,
    StoreFileError,
    StoreUnavailableError,
    database_url,
)
from parle.store.recorder import StoreRecorder, StoreState
from parle.store.store import LearnerStore

__all__ = [
    "LearnerStore",
    "StoreConfigError",
    "StoreFileError",
    "StoreRecorder",
    "StoreState",
    "StoreUnavailableError",
    "build_recorder",
    "database_url",
    "journal_path",
]


def build_recorder(
    settings: Settings, *, on_error: Callable[[str], None] | None = None
) -> StoreRecorder:
    """The learner store of `settings` (`PARLE_DATABASE_URL`, `PARLE_RETENTION_DAYS`,
    `PARLE_STORE_QUEUE`), not started."""
    url = database_url(settings.database_url, settings.cache_dir)
    return StoreRecorder(
        LearnerStore(url),
        queue_size=settings.store_queue,
        retention_days=settings.retention_days,
        on_error=on_error,
        journal=journal_path(settings.cache_dir, url),
    )


def journal_path(cache_dir: Path, url: str) -> Path:
    """The journal of the database at `url`: `cache_dir/store-journal-HASH.jsonl`, one per
    database, so that records meant for one are never replayed into another (a changed
    `PARLE_DATABASE_URL`). The hash is of the URL without its password."""
    name = make_url(url).render_as_string(hide_password=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return cache_dir / f"store-journal-{digest}.jsonl"
