"""The learner store's database: its URL (the async driver chosen for the user), the engine,
and the migrations run at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Seconds a connection attempt may take: an unreachable database must not hold up start-up.
CONNECT_TIMEOUT_S = 5.0


class StoreConfigError(ValueError):
    """`PARLE_DATABASE_URL` names a database PARLE cannot use."""


def database_url(setting: str, cache_dir: Path) -> str:
    """The async SQLAlchemy URL for `PARLE_DATABASE_URL` (`sqlite:///PATH`,
    `postgresql://...`; empty: SQLite at `cache_dir/parle.db`)."""
    if not setting:
        return f"sqlite+aiosqlite:///{cache_dir / 'parle.db'}"
    try:
        url = make_url(setting)
    except Exception:
        raise StoreConfigError(
            "PARLE_DATABASE_URL must look like sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise StoreConfigError("PARLE_DATABASE_URL: only sqlite and postgresql are supported")
    return url.render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys (cascading deletes) and WAL (readers do not
    wait for the writer)."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def upgrade(connection: Connection) -> None:
    """Bring the database to the newest migration (run through `AsyncConnection.run_sync`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
