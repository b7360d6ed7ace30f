"""`LearnerStore`: a learner's long-term record in a SQL database (SQLite or PostgreSQL,
through SQLAlchemy's async engine). A learner is named by their store key (tenant and id,
`parle.tenants.store_key`); what leaves the store names them by the id alone. The
constructor is cheap; `start()` connects and runs the migrations; `close()` lets go of the
connections.

Writes come from one writer (`parle.store.recorder.StoreRecorder`), in order, and may be
written again after an outage: a session's row is found again by its learner, key and start
(its id is the database's, so a database connected anew is asked again), and a turn written
with `once` is not written twice. A SQLite file deleted, replaced or garbled under the server
fails the next write (`StoreFileError`); the next `start()` makes a new one, moving a corrupt
one aside. Reads are the profile the tutor gets when a session starts, the report, and the
export.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, desc, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parle.recording import TurnRecord
from parle.store import database
from parle.store.schema import (
    LEARNER_TABLES,
    corrections,
    facts,
    learner_sessions,
    learners,
    level_history,
    turns,
    vocabulary,
)
from parle.tenants import learner_of
from parle.tutor.facts import SINGLE_KINDS, extract_facts, is_learning_word, words_of
from parle.tutor.profile import LearnerProfile, Mistake

# How much of a learner's record the profile and the report show.
RECENT_CORRECTIONS = 10
NEW_WORDS = 20
LAST_TOPICS = 3
# A report draws at most the latest this many sessions and level changes (a learner of
# years has thousands; the totals still count them all).
REPORT_SESSIONS = 100
REPORT_LEVEL_CHANGES = 200


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _iso(value: Any) -> Any:
    return value.isoformat() + "Z" if isinstance(value, dt.datetime) else value


def _rows(result: Sequence[Any]) -> list[dict[str, Any]]:
    return [{key: _iso(value) for key, value in row._mapping.items()} for row in result]


@dataclass
class SessionRef:
    """A session row, as the writer knows it: its id once inserted, and the engine (`epoch`)
    that id came from. Its learner, key and start name the row in any database."""

    learner_id: str
    session_key: str | None
    started_at: dt.datetime
    start_level: str | None
    id: int | None = None
    epoch: int = 0


class LearnerStore:
    """The learner database; see the module docstring."""

    def __init__(self, url: str, *, timeout_s: float = database.CONNECT_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._engine: AsyncEngine | None = None
        # Each engine is a new epoch: the database behind it may not be the one a session's
        # id came from (a SQLite file made anew), so those ids are looked up again.
        self._epoch = 0
        self._file = database.sqlite_file(url)
        self._identity: tuple[int, int] | None = None
        self._corrupt = False  # SQLite said so: the file is moved aside at the next start
        # Awaited before a learner is erased: whoever holds records not yet written drops them.
        self.on_delete: list[Callable[[str], Awaitable[None]]] = []

    @property
    def backend(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]

    async def start(self) -> None:
        """Connect and migrate to the newest schema; raises when the database is unreachable.
        A SQLite file that is not a database is moved aside and a new one made (as is a
        deleted one: the migrations build it)."""
        try:
            await self._start()
        except DBAPIError as exc:
            if self._file is None or not database.is_corrupt(exc):
                raise
            await self.close()
            self._corrupt = True
            await self._start()

    async def _start(self) -> None:
        if self._engine is None:
            if self._file is not None:
                database.prepare_sqlite_file(self._file, corrupt=self._corrupt)
                self._corrupt = False
            self._engine = database.create_engine(self.url, timeout_s=self.timeout_s)
            self._epoch += 1
        async with self._engine.begin() as conn:
            await conn.run_sync(database.upgrade)
        if self._file is not None:
            self._identity = database.file_identity(self._file)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _require(self) -> AsyncEngine:
        if self._engine is None:
            raise database.StoreUnavailableError("the learner store is not connected")
        return self._engine

    # --- writes (the recorder's writer task) --------------------------------------------------

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write's transaction, on a file that is still the one connected to."""
        engine = self._require()
        if self._file is not None:
            database.check_sqlite_file(self._file, self._identity)
        try:
            async with engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            if self._file is not None and database.is_corrupt(exc):
                self._corrupt = True
            raise

    async def open_session(self, ref: SessionRef) -> None:
        """The session's row: found when it is there already (written before an outage, or
        by a write whose answer was lost), else inserted."""
        epoch = self._epoch
        async with self._writing() as conn:
            session_id = await self._session_row(conn, ref)
        ref.id, ref.epoch = session_id, epoch

    async def _session_row(self, conn: AsyncConnection, ref: SessionRef) -> int:
        found = await conn.scalar(
            select(learner_sessions.c.id)
            .where(
                learner_sessions.c.learner_id == ref.learner_id,
                learner_sessions.c.started_at == ref.started_at,
                learner_sessions.c.session_key.is_(None)
                if ref.session_key is None
                else learner_sessions.c.session_key == ref.session_key,
            )
            .order_by(learner_sessions.c.id)
            .limit(1)
        )
        if found is not None:
            return int(found)
        await self._ensure_learner(conn, ref.learner_id, ref.start_level, ref.started_at)
        result = await conn.execute(
            insert(learner_sessions)
            .values(
                learner_id=ref.learner_id,
                session_key=ref.session_key,
                started_at=ref.started_at,
                start_level=ref.start_level,
            )
            .returning(learner_sessions.c.id)
        )
        return int(result.scalar_one())

    async def record_turn(
        self, ref: SessionRef, record: TurnRecord, at: dt.datetime, *, once: bool = False
    ) -> bool:
        """One turn: its row, its correction, its words, the facts it states and, when the
        level moved, the level history; its session's row when it has none yet. One
        transaction. With `once` (a write tried again, a journal replayed), a turn its session
        already holds at `at` is left as it is: False."""
        epoch = self._epoch
        learner_id = ref.learner_id
        async with self._writing() as conn:
            if ref.id is not None and ref.epoch == epoch:
                session_id = ref.id
            else:
                session_id = await self._session_row(conn, ref)
            if once and await self._has_turn(conn, learner_id, session_id, at):
                ref.id, ref.epoch = session_id, epoch
                return False
            current = await self._ensure_learner(conn, learner_id, record.level, at)
            result = await conn.execute(
                insert(turns)
                .values(
                    learner_id=learner_id,
                    session_id=session_id,
                    at=at,
                    transcript=record.transcript,
                    reply=record.reply,
                    level=record.level,
                    estimate=record.estimate,
                    speech_s=round(record.speech_s, 3),
                    words=record.words,
                    words_per_minute=record.words_per_minute,
                    timings=record.timings,
                )
                .returning(turns.c.id)
            )
            turn_id = int(result.scalar_one())
            if record.correction is not None:
                c = record.correction
                await conn.execute(
                    insert(corrections).values(
                        learner_id=learner_id,
                        turn_id=turn_id,
                        at=at,
                        original=c.original,
                        corrected=c.corrected,
                        explanation=c.explanation,
                        kind=c.kind or "other",
                    )
                )
            await self._add_words(conn, learner_id, words_of(record.transcript), at)
            await self._add_facts(conn, learner_id, record.transcript, at)
            if current != record.level:
                await conn.execute(
                    insert(level_history).values(
                        learner_id=learner_id, session_id=session_id, at=at, level=record.level
                    )
                )
            await conn.execute(
                update(learners)
                .where(learners.c.id == learner_id)
                .values(level=record.level, updated_at=at)
            )
            await conn.execute(
                update(learner_sessions)
                .where(learner_sessions.c.id == session_id)
                .values(last_turn_at=at)
            )
        # Only once committed: a rolled-back insert's id names no row.
        ref.id, ref.epoch = session_id, epoch
        return True

    async def _has_turn(
        self, conn: AsyncConnection, learner_id: str, session_id: int, at: dt.datetime
    ) -> bool:
        # A session's turns come one after another: two never share their microsecond.
        found = await conn.scalar(
            select(turns.c.id)
            .where(
                turns.c.session_id == session_id,
                turns.c.learner_id == learner_id,
                turns.c.at == at,
            )
            .limit(1)
        )
        return found is not None

    async def _ensure_learner(
        self, conn: AsyncConnection, learner_id: str, level: str | None, at: dt.datetime
    ) -> str | None:
        """The learner's stored level; the learner is created (with `level` as the start of
        their level history) when new."""
        row = await conn.execute(select(learners.c.level).where(learners.c.id == learner_id))
        found = row.first()
        if found is not None:
            return found[0]  # type: ignore[no-any-return]
        await conn.execute(
            insert(learners).values(id=learner_id, level=level, created_at=at, updated_at=at)
        )
        if level is not None:
            await conn.execute(
                insert(level_history).values(learner_id=learner_id, at=at, level=level)
            )
        return level

    def _insert(self, conn: AsyncConnection, table: Table) -> Any:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    async def _add_words(
        self, conn: AsyncConnection, learner_id: str, words: dict[str, int], at: dt.datetime
    ) -> None:
        if not words:
            return
        stmt = self._insert(conn, vocabulary).values(
            [
                {"learner_id": learner_id, "word": w, "first_seen": at, "last_seen": at, "count": n}
                for w, n in sorted(words.items())
            ]
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[vocabulary.c.learner_id, vocabulary.c.word],
                set_={
                    "last_seen": stmt.excluded.last_seen,
                    "count": vocabulary.c.count + stmt.excluded.count,
                },
            )
        )

    async def _add_facts(
        self, conn: AsyncConnection, learner_id: str, text: str, at: dt.datetime
    ) -> None:
        for fact in extract_facts(text):
            if fact.kind in SINGLE_KINDS:  # a new name, job... replaces the old one
                await conn.execute(
                    delete(facts).where(facts.c.learner_id == learner_id, facts.c.kind == fact.kind)
                )
            stmt = self._insert(conn, facts).values(
                learner_id=learner_id, kind=fact.kind, value=fact.value, at=at
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[facts.c.learner_id, facts.c.kind, facts.c.value],
                    set_={"at": stmt.excluded.at},
                )
            )

    # --- reads --------------------------------------------------------------------------------

    async def exists(self, learner_id: str) -> bool:
        async with self._require().connect() as conn:
            row = await conn.execute(select(learners.c.id).where(learners.c.id == learner_id))
            return row.first() is not None

    async def profile(self, learner_id: str) -> LearnerProfile | None:
        """What the tutor should know of a returning learner; None for one never seen."""
        async with self._require().connect() as conn:
            row = (await conn.execute(select(learners).where(learners.c.id == learner_id))).first()
            if row is None:
                return None
            sessions = await conn.scalar(
                select(func.count())
                .select_from(learner_sessions)
                .where(learner_sessions.c.learner_id == learner_id)
            )
            return LearnerProfile(
                learner_id=learner_id,
                level=row.level,
                sessions=int(sessions or 0),
                facts=await self._facts(conn, learner_id),
                mistakes=await self._mistakes(conn, learner_id),
                topics=await self._last_topics(conn, learner_id),
                learning=await self._new_words(conn, learner_id),
            )

    async def _facts(self, conn: AsyncConnection, learner_id: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        rows = await conn.execute(
            select(facts.c.kind, facts.c.value)
            .where(facts.c.learner_id == learner_id)
            .order_by(desc(facts.c.at), facts.c.value)
        )
        for kind, value in rows:
            found.setdefault(kind, []).append(value)
        return found

    async def _mistakes(self, conn: AsyncConnection, learner_id: str) -> list[Mistake]:
        """Corrections made more than once (the same corrected form), most frequent first."""
        count = func.count().label("n")
        rows = await conn.execute(
            select(func.max(corrections.c.original), corrections.c.corrected, count)
            .where(corrections.c.learner_id == learner_id)
            .group_by(corrections.c.corrected)
            .having(func.count() >= 2)
            .order_by(desc(count), corrections.c.corrected)
            .limit(5)
        )
        return [Mistake(original, corrected, int(n)) for original, corrected, n in rows]

    async def _last_topics(self, conn: AsyncConnection, learner_id: str) -> list[str]:
        """The learner's last few utterances of their latest session, oldest first."""
        latest = (
            select(turns.c.session_id)
            .where(turns.c.learner_id == learner_id)
            .order_by(desc(turns.c.at), desc(turns.c.id))
            .limit(1)
            .scalar_subquery()
        )
        rows = await conn.execute(
            select(turns.c.transcript)
            .where(turns.c.learner_id == learner_id, turns.c.session_id == latest)
            .order_by(desc(turns.c.at), desc(turns.c.id))
            .limit(LAST_TOPICS)
        )
        return [text for (text,) in rows][::-1]

    async def _new_words(self, conn: AsyncConnection, learner_id: str) -> list[str]:
        rows = await conn.execute(
            select(vocabulary.c.word)
            .where(vocabulary.c.learner_id == learner_id)
            .order_by(desc(vocabulary.c.first_seen), vocabulary.c.word)
            .limit(20 * NEW_WORDS)
        )
        return [word for (word,) in rows if is_learning_word(word)][:NEW_WORDS]

    async def report(self, learner_id: str) -> dict[str, Any] | None:
        """The learner's progress (`GET /api/learners/{id}`); None for one never seen. Its
        sessions and level history are the latest `REPORT_SESSIONS` and
        `REPORT_LEVEL_CHANGES`, oldest first; `sessions_total` counts them all."""
        profile = await self.profile(learner_id)
        if profile is None:
            return None
        async with self._require().connect() as conn:
            history = await conn.execute(
                select(level_history.c.at, level_history.c.level)
                .where(level_history.c.learner_id == learner_id)
                .order_by(desc(level_history.c.at), desc(level_history.c.id))
                .limit(REPORT_LEVEL_CHANGES)
            )
            per_session = await conn.execute(
                select(
                    learner_sessions.c.id,
                    learner_sessions.c.session_key,
                    learner_sessions.c.started_at,
                    learner_sessions.c.start_level,
                    func.count(turns.c.id).label("turns"),
                    func.avg(turns.c.words_per_minute).label("wpm"),
                    func.max(turns.c.level).label("max_level"),
                )
                .select_from(learner_sessions.outerjoin(turns))
                .where(learner_sessions.c.learner_id == learner_id)
                .group_by(learner_sessions.c.id)
                .order_by(desc(learner_sessions.c.started_at), desc(learner_sessions.c.id))
                .limit(REPORT_SESSIONS)
            )
            totals = (
                await conn.execute(
                    select(func.count(turns.c.id), func.avg(turns.c.words_per_minute)).where(
                        turns.c.learner_id == learner_id
                    )
                )
            ).one()
            recent = await conn.execute(
                select(
                    corrections.c.at,
                    corrections.c.original,
                    corrections.c.corrected,
                    corrections.c.explanation,
                    corrections.c.kind,
                )
                .where(corrections.c.learner_id == learner_id)
                .order_by(desc(corrections.c.at), desc(corrections.c.id))
                .limit(RECENT_CORRECTIONS)
            )
            by_kind = await conn.execute(
                select(corrections.c.kind, func.count())
                .where(corrections.c.learner_id == learner_id)
                .group_by(corrections.c.kind)
                .order_by(corrections.c.kind)
            )
            words_total = await conn.scalar(
                select(func.count())
                .select_from(vocabulary)
                .where(vocabulary.c.learner_id == learner_id)
            )
            sessions = [
                {
                    "id": row.id,
                    "session_id": row.session_key,
                    "started_at": _iso(row.started_at),
                    "start_level": row.start_level,
                    "turns": int(row.turns),
                    "words_per_minute": None if row.wpm is None else round(float(row.wpm), 1),
                }
                for row in per_session
            ][::-1]
            changes = [{"at": _iso(at), "level": level} for at, level in history][::-1]
            return {
                "learner_id": learner_of(learner_id),
                "level": profile.level,
                "level_history": changes,
                "sessions": sessions,
                "sessions_total": profile.sessions,  # counted by `profile` already
                "turns": int(totals[0]),
                "words_per_minute": None if totals[1] is None else round(float(totals[1]), 1),
                "corrections": {
                    "recent": _rows(recent.all()),
                    "by_kind": {kind: int(n) for kind, n in by_kind},
                },
                "recurring_mistakes": [
                    {"original": m.original, "corrected": m.corrected, "count": m.count}
                    for m in profile.mistakes
                ],
                "vocabulary": {"new_words": profile.learning, "total": int(words_total or 0)},
                "facts": profile.facts,
            }

    async def export(self, learner_id: str) -> dict[str, Any] | None:
        """Every row held about a learner (`GET /api/learners/{id}/export`)."""
        async with self._require().connect() as conn:
            row = (await conn.execute(select(learners).where(learners.c.id == learner_id))).first()
            if row is None:
                return None
            learner = _rows([row])[0]
            learner["id"] = learner_of(learner_id)
            data: dict[str, Any] = {"learner": learner}
            for table in reversed(LEARNER_TABLES):
                result = await conn.execute(
                    select(table)
                    .where(table.c.learner_id == learner_id)
                    .order_by(*table.primary_key)
                )
                rows = _rows(result.all())
                for item in rows:
                    item["learner_id"] = learner["id"]
                data[table.name] = rows
            return data

    # --- erasure ------------------------------------------------------------------------------

    async def delete(self, learner_id: str) -> bool:
        """Erase everything about a learner; False when there was nothing. What the writer
        still holds of them (`on_delete`) is dropped first."""
        for forget in self.on_delete:
            await forget(learner_id)
        async with self._require().begin() as conn:
            return await self._erase(conn, [learner_id]) > 0

    async def _erase(self, conn: AsyncConnection, learner_ids: list[str]) -> int:
        # Explicit, child tables first: not every database enforces the cascades.
        for table in LEARNER_TABLES:
            await conn.execute(delete(table).where(table.c.learner_id.in_(learner_ids)))
        result = await conn.execute(delete(learners).where(learners.c.id.in_(learner_ids)))
        return int(result.rowcount or 0)

    async def purge(self, before: dt.datetime) -> int:
        """Retention: delete every row older than `before`, and learners with nothing newer.
        Returns how many learners went entirely."""
        async with self._require().begin() as conn:
            old_turns = select(turns.c.id).where(turns.c.at < before)
            await conn.execute(delete(corrections).where(corrections.c.at < before))
            await conn.execute(delete(corrections).where(corrections.c.turn_id.in_(old_turns)))
            await conn.execute(delete(turns).where(turns.c.at < before))
            await conn.execute(delete(level_history).where(level_history.c.at < before))
            last = func.coalesce(learner_sessions.c.last_turn_at, learner_sessions.c.started_at)
            stale_sessions = select(learner_sessions.c.id).where(last < before)
            for table in (turns, level_history):
                await conn.execute(delete(table).where(table.c.session_id.in_(stale_sessions)))
            await conn.execute(delete(learner_sessions).where(last < before))
            await conn.execute(delete(vocabulary).where(vocabulary.c.last_seen < before))
            await conn.execute(delete(facts).where(facts.c.at < before))
            stale = await conn.execute(select(learners.c.id).where(learners.c.updated_at < before))
            ids = [learner_id for (learner_id,) in stale]
            return await self._erase(conn, ids) if ids else 0
