"""The learner store on real databases: SQLite (a file) and PostgreSQL (a throwaway cluster,
tests/doubles/postgres.py). Migrations, every write, the profile the tutor gets, the report,
the export, erasure, retention, and the recorder's queue, drain and outage behaviour."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from parle.recording import TurnRecord
from parle.sessions import SessionMemory
from parle.store import LearnerStore, StoreConfigError, StoreRecorder, database_url
from parle.store.schema import metadata
from parle.store.store import SessionRef, utcnow
from parle.tenants import DEFAULT_TENANT, store_key
from parle.tutor.corrections import Correction


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind (a PostgreSQL database per test)."""
    if request.param == "sqlite":
        yield database_url(f"sqlite:///{tmp_path / 'parle.db'}", tmp_path)
        return
    import asyncpg

    server: str = request.getfixturevalue("postgres_url")
    name = "parle_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield database_url(server.rsplit("/", 1)[0] + "/" + name, tmp_path)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[LearnerStore]:
    store = LearnerStore(db_url)
    await store.start()
    yield store
    await store.close()


def turn(
    text: str, *, level: str = "A2", speech_s: float = 3.0, correction: Correction | None = None
) -> TurnRecord:
    return TurnRecord(
        transcript=text,
        reply="Que legal! E você?",
        level=level,
        estimate=level,
        speech_s=speech_s,
        timings={"stt_ms": 100.0, "ttfa_ms": 400.0, "total_ms": 900.0},
        correction=correction,
    )


def test_database_urls(tmp_path: Path) -> None:
    assert database_url("", tmp_path) == f"sqlite+aiosqlite:///{tmp_path / 'parle.db'}"
    assert database_url("sqlite:////var/x.db", tmp_path) == "sqlite+aiosqlite:////var/x.db"
    assert (
        database_url("postgresql://u:p@db:5432/parle", tmp_path)
        == "postgresql+asyncpg://u:p@db:5432/parle"
    )
    with pytest.raises(StoreConfigError):
        database_url("mysql://u@h/db", tmp_path)


async def test_migrations_build_the_schema_the_code_uses(store: LearnerStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = store._require()
    async with engine.connect() as conn:

        def diff(sync_conn: object) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(sync_conn), metadata))

        assert await conn.run_sync(diff) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"learners", "turns", "corrections", "vocabulary", "facts"} <= tables
    await store.start()  # migrating again at the next start is a no-op


async def test_a_learners_record_profile_report_export_and_erasure(store: LearnerStore) -> None:
    ref = SessionRef("ana", "s1", utcnow(), "A2")
    await store.open_session(ref)
    mistake = Correction("eu sabo", "eu sei", "saber é irregular", "grammar")
    t0 = utcnow()
    await store.record_turn(ref, turn("Olá, meu nome é Ana e eu sou dos Estados Unidos."), t0)
    await store.record_turn(
        ref, turn("Eu trabalho como engenheira e gosto de praia.", correction=mistake), t0
    )
    await store.record_turn(
        ref, turn("Eu sabo nadar muito bem.", level="B1", correction=mistake), t0
    )
    profile = await store.profile("ana")
    assert profile is not None
    assert profile.level == "B1" and profile.sessions == 1
    assert profile.facts["name"] == ["Ana"]
    assert profile.facts["country"] == ["Estados Unidos"]
    assert profile.facts["job"] == ["engenheira"]
    assert profile.facts["interest"] == ["praia"]
    assert [(m.original, m.corrected, m.count) for m in profile.mistakes] == [
        ("eu sabo", "eu sei", 2)
    ]
    assert profile.topics[-1] == "Eu sabo nadar muito bem."
    assert "nadar" in profile.learning and "muito" not in profile.learning  # a stopword

    report = await store.report("ana")
    assert report is not None
    assert report["level"] == "B1"
    assert [h["level"] for h in report["level_history"]] == ["A2", "B1"]
    assert report["turns"] == 3
    assert report["words_per_minute"] == pytest.approx((11 + 8 + 5) * 20 / 3, abs=0.1)
    assert report["sessions"][0]["turns"] == 3 and report["sessions"][0]["session_id"] == "s1"
    assert report["corrections"]["by_kind"] == {"grammar": 2}
    assert report["corrections"]["recent"][0]["corrected"] == "eu sei"
    assert report["recurring_mistakes"] == [
        {"original": "eu sabo", "corrected": "eu sei", "count": 2}
    ]
    assert report["vocabulary"]["total"] > 10

    # A second session: the vocabulary counts on, the new name replaces the old one.
    ref2 = SessionRef("ana", "s2", utcnow(), "B1")
    await store.record_turn(ref2, turn("Me chamo Aninha. Eu gosto de praia.", level="B1"), utcnow())
    export = await store.export("ana")
    assert export is not None
    assert export["learner"]["id"] == "ana" and len(export["learner_sessions"]) == 2
    assert len(export["turns"]) == 4 and len(export["corrections"]) == 2
    praia = next(v for v in export["vocabulary"] if v["word"] == "praia")
    assert praia["count"] == 2
    assert {(f["kind"], f["value"]) for f in export["facts"]} >= {
        ("name", "Aninha"),
        ("interest", "praia"),
    }
    assert ("name", "Ana") not in {(f["kind"], f["value"]) for f in export["facts"]}

    assert await store.delete("ana") is True
    assert await store.report("ana") is None and await store.export("ana") is None
    assert await store.delete("ana") is False
    async with store._require().connect() as conn:
        for table in metadata.sorted_tables:
            count = (await conn.execute(table.select())).all()
            assert count == [], table.name


async def test_retention_deletes_old_data_and_learners_with_nothing_newer(
    store: LearnerStore,
) -> None:
    old = utcnow() - dt.timedelta(days=400)
    gone = SessionRef("gone", None, old, "A1")
    await store.open_session(gone)
    await store.record_turn(gone, turn("Eu gosto de café."), old)
    # Learners are created at their first write's time; "gone" must look old throughout.
    from sqlalchemy import update

    from parle.store.schema import learners

    async with store._require().begin() as conn:
        await conn.execute(update(learners).values(created_at=old, updated_at=old))
    kept = SessionRef("kept", None, old, "A1")
    await store.open_session(kept)
    await store.record_turn(kept, turn("Eu moro em Lisboa."), old)
    await store.record_turn(kept, turn("Eu gosto de chá."), utcnow())
    assert await store.purge(utcnow() - dt.timedelta(days=365)) == 1
    assert await store.report("gone") is None
    report = await store.report("kept")
    assert report is not None and report["turns"] == 1
    assert "city" not in report["facts"] and report["facts"]["interest"] == ["chá"]


async def test_recorder_writes_in_the_background_and_drains_on_stop(db_url: str) -> None:
    recorder = StoreRecorder(LearnerStore(db_url))
    await recorder.start()
    assert recorder.ready
    memory = SessionMemory()
    await recorder.session_started(memory, "bia", "s1")
    assert "learner" not in memory.notes and memory.level is None  # never seen before
    for i in range(20):
        recorder.turn_finished(memory, turn(f"Eu gosto de número {i}.", level="B2"))
    await recorder.stop()  # a clean shutdown writes everything accepted

    recorder = StoreRecorder(LearnerStore(db_url))  # a restart
    await recorder.start()
    fresh = SessionMemory()
    await recorder.session_started(fresh, "bia", "s2")
    assert fresh.level is not None and fresh.level.level == "B2"
    assert "Eu gosto de número 19." in fresh.notes["learner"]
    assert await recorder.flush()  # the new session's row is written in the background
    report = await recorder.store.report("bia")
    assert report is not None and report["turns"] == 20 and len(report["sessions"]) == 2
    await recorder.stop()


async def test_an_unreachable_database_costs_a_warning_and_a_metric(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from harness.uvicorn_thread import free_port

    errors: list[str] = []
    url = database_url(f"postgresql://nobody@127.0.0.1:{free_port()}/none", tmp_path)
    recorder = StoreRecorder(LearnerStore(url), on_error=errors.append)
    started = asyncio.get_running_loop().time()
    with caplog.at_level("WARNING"):
        await recorder.start()
        memory = SessionMemory()
        await recorder.session_started(memory, "cai", "s1")
        recorder.turn_finished(memory, turn("Eu sou de Angola."))
        await recorder.flush()
        await recorder.stop()
    assert asyncio.get_running_loop().time() - started < 10
    assert not recorder.ready and "learner" not in memory.notes
    assert errors and errors[0] == "connect" and "write" in errors
    warnings = [r for r in caplog.records if r.name.startswith("parle.store")]
    assert len(warnings) == 1  # one warning per outage, not one per turn
    assert "Angola" not in caplog.text  # a learner's words never reach the logs


async def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    errors: list[str] = []
    url = database_url(f"sqlite:///{tmp_path / 'q.db'}", tmp_path)
    recorder = StoreRecorder(LearnerStore(url), queue_size=2, on_error=errors.append)
    memory = SessionMemory()
    await recorder.session_started(memory, "dan", None)  # not started: nothing is read
    recorder.turn_finished(memory, turn("Um."))
    recorder.turn_finished(memory, turn("Dois."))  # the queue holds 2: this one is dropped
    assert errors == ["queue_full"]


async def test_records_made_before_tenants_go_to_the_default_tenant(db_url: str) -> None:
    """A database of the first migration, with a learner in it: after the upgrade the
    learner, every row of theirs, belongs to the `default` tenant (a keyless server's, or a
    key named `default:`), and their report reads as before."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from parle.store import database as db

    engine = db.create_engine(db_url)

    def to_first(connection: object) -> None:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")

    at = utcnow()
    async with engine.begin() as conn:
        await conn.run_sync(to_first)
        await conn.execute(text("INSERT INTO learners VALUES ('ana', 'B1', :at, :at)"), {"at": at})
        await conn.execute(
            text(
                "INSERT INTO learner_sessions (learner_id, session_key, started_at, start_level)"
                " VALUES ('ana', 's1', :at, 'B1')"
            ),
            {"at": at},
        )
        await conn.execute(
            text(
                "INSERT INTO turns (learner_id, session_id, at, transcript, reply, level,"
                " speech_s, words, timings) VALUES ('ana', 1, :at, 'Eu moro no Porto.', 'Legal!',"
                " 'B1', 2.0, 4, '{}')"
            ),
            {"at": at},
        )
        await conn.execute(
            text("INSERT INTO vocabulary VALUES ('ana', 'porto', :at, :at, 1)"), {"at": at}
        )
    await engine.dispose()

    store = LearnerStore(db_url)
    await store.start()
    try:
        report = await store.report(store_key(DEFAULT_TENANT, "ana"))
        assert report is not None
        assert report["learner_id"] == "ana" and report["turns"] == 1
        assert report["level"] == "B1" and report["vocabulary"]["total"] == 1
        assert await store.report("ana") is None  # no row is left under the bare id
        assert await store.report(store_key("acme", "ana")) is None
        # Two tenants' learners of one id are two learners, with ids of the longest kind.
        long_id = "x" * 128
        for tenant in ("acme", "t" * 64):
            ref = SessionRef(store_key(tenant, long_id), "s", utcnow(), "A2")
            await store.record_turn(ref, turn("Oi."), utcnow())
        acme = await store.report(store_key("acme", long_id))
        assert acme is not None and acme["turns"] == 1 and acme["learner_id"] == long_id
    finally:
        await store.close()
