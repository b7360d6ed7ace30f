"""The learner store's database: its URL (the async driver chosen for the user), the engine,
the migrations run at start-up, and what tells an outage apart: a busy database (try again),
a corrupt one, and a SQLite file deleted or replaced under the server (connect again)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Seconds a connection attempt may take (and, on SQLite, a write may wait for another
# writer's lock): an unreachable database must not hold up start-up.
CONNECT_TIMEOUT_S = 5.0

# SQLite's result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first bytes of every SQLite database file
_SIDECARS = ("-wal", "-shm")  # a WAL database's other files, named after it


class StoreConfigError(ValueError):
    """`PARLE_DATABASE_URL` names a database PARLE cannot use."""


class StoreUnavailableError(RuntimeError):
    """The learner store cannot be used now (not started, or its file is gone)."""


class StoreFileError(StoreUnavailableError):
    """The SQLite file was deleted, replaced, or overwritten since the store connected: the
    engine's open connections would go on writing where nobody reads."""


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


def create_engine(url: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys (cascading deletes) and WAL (readers do not
    wait for the writer). `timeout_s`: connecting, and on SQLite waiting for a lock."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {"timeout": timeout_s}
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


# --- telling failures apart ---------------------------------------------------------------------


def _sqlite_code(exc: BaseException) -> int | None:
    """SQLite's result code of a failure (SQLAlchemy's, or the driver's own), else None."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: BaseException) -> bool:
    """Another writer holds the database: the same connection works once it lets go."""
    return _sqlite_code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED)


def is_corrupt(exc: BaseException) -> bool:
    """The SQLite file is not (or no longer) a database."""
    return _sqlite_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


# --- the SQLite file ----------------------------------------------------------------------------


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").expanduser()


def file_identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode: another file at the same path differs."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _header(path: Path) -> bytes:
    """The file's first bytes, as many as SQLite's header has."""
    with path.open("rb") as file:
        return file.read(len(SQLITE_MAGIC))


def _looks_like_sqlite(path: Path) -> bool:
    """An empty file (a database about to be made) or one that begins as SQLite's do."""
    return _header(path) in (b"", SQLITE_MAGIC)


def check_sqlite_file(path: Path, identity: tuple[int, int] | None) -> None:
    """Raises `StoreFileError` when the file the engine opened (`identity`) is not there any
    more, or no longer begins as a database. SQLite itself would not notice: its connections
    keep writing to a deleted file, and to a garbled one through its own cache."""
    found = file_identity(path)
    if found is None:
        raise StoreFileError("the SQLite file is gone")
    if identity is not None and found != identity:
        raise StoreFileError("the SQLite file was replaced")
    try:
        head = _header(path)
    except OSError:
        head = b""
    if head != SQLITE_MAGIC:  # a connected database is never empty: WAL mode wrote its header
        raise StoreFileError("the SQLite file is not a database")


def prepare_sqlite_file(path: Path, *, corrupt: bool = False) -> None:
    """Before connecting: a file that is not a database (or that SQLite found `corrupt`) is
    moved aside, so that a new one is made; the WAL of a deleted database too, so that it is
    not read as the new one's."""
    if not path.exists():
        if any(Path(f"{path}{suffix}").exists() for suffix in _SIDECARS):
            move_aside(path, "lost")
        return
    if corrupt or not _looks_like_sqlite(path):
        move_aside(path, "corrupt")


def move_aside(path: Path, reason: str) -> Path:
    """Renames the database and its WAL files to `NAME.REASON-TIMESTAMP` (kept for whoever
    may recover them, never deleted); returns the new name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.{reason}-{stamp}")
    for suffix in ("", *_SIDECARS):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    log.warning(
        "learner store: SQLite files moved aside; a new database is made",
        extra={"reason": reason, "moved_to": str(aside)},
    )
    return aside
