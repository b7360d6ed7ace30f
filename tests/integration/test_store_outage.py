"""The learner store through outages (issue 24 §4), on real databases: a SQLite write lock held
past the retry bound, the SQLite file deleted and garbled under a running server, PostgreSQL
stopped and started again, a journal left by a process that died. No turn is lost, none is
written twice, nothing needs a restart; `/ready` says how the store is and stays 200."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parle.recording import TurnRecord
from parle.sessions import SessionMemory
from parle.store import LearnerStore, StoreRecorder, database_url
from parle.store.journal import Journal, PendingTurn
from parle.store.store import SessionRef

SECRET = "segredo"  # in every turn: never in a log line


def turn(text: str, level: str = "A2") -> TurnRecord:
    return TurnRecord(
        transcript=f"{text} ({SECRET})",
        reply="Que legal!",
        level=level,
        estimate=level,
        speech_s=2.0,
        timings={"stt_ms": 100.0},
    )


def recorder_for(url: str, journal: Path, errors: list[str] | None = None) -> StoreRecorder:
    """A recorder with the bounds of a test: a lock waited for 0.1 s, records tried again
    for 0.5 s, every backoff short."""
    return StoreRecorder(
        LearnerStore(url, timeout_s=0.1),
        journal=journal,
        retry_for_s=0.5,
        backoff_min_s=0.05,
        backoff_max_s=0.2,
        on_error=None if errors is None else errors.append,
    )


async def until(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def transcripts(recorder: StoreRecorder, learner: str) -> list[str]:
    """The learner's turns in the database, in the order they were written."""
    export = await recorder.store.export(learner)
    assert export is not None
    return [row["transcript"].removesuffix(f" ({SECRET})") for row in export["turns"]]


def delete_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def moved_aside(folder: Path) -> bytes:
    """What the one database moved aside holds."""
    (aside,) = [path for path in folder.glob("parle.db.corrupt-*") if path.name.endswith("Z")]
    return aside.read_bytes()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "parle.db"
    return db, database_url(f"sqlite:///{db}", tmp_path)


@pytest.fixture(autouse=True)
def no_words_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.DEBUG, logger="parle.store"):
        yield
    for record in caplog.records:
        if record.levelno > logging.DEBUG:
            assert SECRET not in record.getMessage() and SECRET not in str(record.__dict__)


async def test_a_write_lock_past_the_retry_bound_loses_no_turn(
    sqlite_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = sqlite_db
    errors: list[str] = []
    recorder = recorder_for(url, tmp_path / "journal.jsonl", errors)
    await recorder.start()
    memory = SessionMemory()
    await recorder.session_started(memory, "ana", "s1")
    recorder.turn_finished(memory, turn("antes"))
    assert await recorder.flush()

    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer, for longer than the retry bound
    try:
        for i in range(3):
            recorder.turn_finished(memory, turn(f"durante {i}"))
        other = SessionMemory()  # a session begun during the outage: its row waits too
        await recorder.session_started(other, "ana", "s2")
        recorder.turn_finished(other, turn("outra"))
        await until(lambda: recorder.journal_items == 5)  # tried for 0.5 s, then journaled
        assert recorder.state == "degraded" and "write" in errors
        assert (tmp_path / "journal.jsonl").exists()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    recorder.turn_finished(memory, turn("depois"))
    await until(lambda: recorder.state == "ok")
    assert await recorder.flush()
    assert await transcripts(recorder, "ana") == [
        "antes", "durante 0", "durante 1", "durante 2", "outra", "depois"
    ]  # fmt: skip
    report = await recorder.store.report("ana")
    assert report is not None and [s["turns"] for s in report["sessions"]] == [5, 1]
    assert not (tmp_path / "journal.jsonl").exists()  # replayed: emptied
    await recorder.stop()


async def test_a_deleted_sqlite_file_is_made_anew_without_a_restart(
    sqlite_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = sqlite_db
    recorder = recorder_for(url, tmp_path / "journal.jsonl")
    await recorder.start()
    memory = SessionMemory()
    await recorder.session_started(memory, "bia", "s1")
    recorder.turn_finished(memory, turn("antes"))
    assert await recorder.flush()
    delete_database(db)

    for i in range(3):
        recorder.turn_finished(memory, turn(f"depois {i}"))
    await until(lambda: recorder.state == "ok" and recorder._queue.empty())
    assert await recorder.flush()
    assert db.exists()
    # What the deleted file held is gone with it; the session goes on in the new one.
    assert await transcripts(recorder, "bia") == ["depois 0", "depois 1", "depois 2"]
    report = await recorder.store.report("bia")
    assert report is not None and report["sessions"][0]["session_id"] == "s1"
    await recorder.stop()


async def test_a_garbled_sqlite_file_is_moved_aside_and_made_anew(
    sqlite_db: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, url = sqlite_db
    recorder = recorder_for(url, tmp_path / "journal.jsonl")
    await recorder.start()
    memory = SessionMemory()
    await recorder.session_started(memory, "cai", "s1")
    recorder.turn_finished(memory, turn("antes"))
    assert await recorder.flush()
    with sqlite3.connect(db) as conn:  # everything in the file itself, none in the WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.write_bytes(b"\xde\xad\xbe\xef garbage " * 4096)

    for i in range(3):
        recorder.turn_finished(memory, turn(f"depois {i}"))
    await until(lambda: recorder.state == "ok" and recorder._queue.empty())
    assert await recorder.flush()
    assert await transcripts(recorder, "cai") == ["depois 0", "depois 1", "depois 2"]
    assert moved_aside(tmp_path).startswith(b"\xde\xad\xbe\xef")  # kept, not deleted
    moved = [r for r in caplog.records if "moved aside" in r.getMessage()]
    assert moved and moved[0].levelno == logging.WARNING
    await recorder.stop()


async def test_a_journal_left_by_a_dead_process_is_replayed_once_at_the_next_start(
    sqlite_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = sqlite_db
    journal = tmp_path / "journal.jsonl"
    first = recorder_for(url, journal)
    await first.start()
    memory = SessionMemory()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        await first.session_started(memory, "dan", "s1")
        for i in range(4):
            first.turn_finished(memory, turn(f"frase {i}"))
        await until(lambda: first.journal_items == 5)
        for task in first._tasks:  # the process dies: no stop(), nothing drained
            task.cancel()
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    # It had begun replaying: the session and two turns are in the database already.
    items, unreadable = Journal(journal).load()
    assert unreadable == 0 and len(items) == 5
    store = LearnerStore(url)
    await store.start()
    assert isinstance(items[0], SessionRef)
    await store.open_session(items[0])
    for item in items[1:3]:
        assert isinstance(item, PendingTurn)
        await store.record_turn(item.ref, item.record, item.at, once=True)
    await store.close()
    with journal.open("ab") as cut:  # and died in the middle of a line
        cut.write(b'{"v": 1, "kind": "tu')

    second = recorder_for(url, journal)
    await second.start()
    await until(lambda: second.state == "ok")
    assert await second.flush()
    assert await transcripts(second, "dan") == [f"frase {i}" for i in range(4)]
    report = await second.store.report("dan")
    assert report is not None and len(report["sessions"]) == 1
    assert not journal.exists()
    await second.stop()


async def test_a_full_journal_drops_the_newest_and_counts(
    sqlite_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = sqlite_db
    errors: list[str] = []
    recorder = StoreRecorder(
        LearnerStore(url, timeout_s=0.1),
        journal=tmp_path / "journal.jsonl",
        journal_max_bytes=1500,  # three of these turns
        retry_for_s=0.2,
        backoff_min_s=0.05,
        on_error=errors.append,
    )
    await recorder.start()
    memory = SessionMemory()
    await recorder.session_started(memory, "ivo", "s1")
    assert await recorder.flush()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(8):
            recorder.turn_finished(memory, turn(f"frase {i}"))
        await until(lambda: recorder.journal_items + errors.count("journal_full") == 8)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    kept = recorder.journal_items
    assert 0 < kept < 8
    await until(lambda: recorder.state == "ok")
    assert await transcripts(recorder, "ivo") == [f"frase {i}" for i in range(kept)]
    await recorder.stop()


async def test_an_erased_learner_is_not_brought_back_by_the_journal(
    sqlite_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, url = sqlite_db
    recorder = recorder_for(url, tmp_path / "journal.jsonl")
    await recorder.start()
    memory, other = SessionMemory(), SessionMemory()
    await recorder.session_started(memory, "eva", "s1")
    await recorder.session_started(other, "gil", "s2")
    assert await recorder.flush()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        recorder.turn_finished(memory, turn("apagar"))
        recorder.turn_finished(other, turn("manter"))
        await until(lambda: recorder.journal_items == 2)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert await recorder.store.delete("eva")
    await until(lambda: recorder.state == "ok")
    assert await recorder.store.export("eva") is None
    assert await transcripts(recorder, "gil") == ["manter"]
    await recorder.stop()


# --- PostgreSQL ---------------------------------------------------------------------------------


class _Cluster:
    """The test session's PostgreSQL cluster, stopped and started again in place."""

    def __init__(self, settings: dict[str, str]) -> None:
        from tests.doubles.postgres import postgres_bin

        bin_dir = postgres_bin()
        assert bin_dir is not None
        self.pg_ctl = str(bin_dir / "pg_ctl")
        self.data = settings["data_directory"]
        self.options = (
            f"-c listen_addresses=127.0.0.1 -p {settings['port']} "
            f"-k {settings['unix_socket_directories']} -c fsync=off"
        )
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        command = [self.pg_ctl, "-D", self.data, *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        self._run("-m", "fast", "-w", "stop")

    def start(self) -> None:
        log = str(Path(self.data).parent / "log")
        self._run("-l", log, "-o", self.options, "-w", "-t", "60", "start")


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[tuple[str, _Cluster]]:
    """A fresh database on the session's cluster, and the cluster (left running)."""
    import asyncpg

    name = "parle_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    settings: dict[str, Any] = {}
    for setting in ("data_directory", "port", "unix_socket_directories"):
        settings[setting] = await admin.fetchval(f"SHOW {setting}")
    await admin.close()
    cluster = _Cluster(settings)
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name, cluster
    finally:
        # The other tests' cluster is up again, whatever happened here (an error: it was up).
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.start()


async def test_postgresql_stopped_and_started_again_loses_and_doubles_nothing(
    postgres: tuple[str, _Cluster], tmp_path: Path
) -> None:
    server, cluster = postgres
    url = database_url(server, tmp_path)
    errors: list[str] = []
    recorder = recorder_for(url, tmp_path / "journal.jsonl", errors)
    await recorder.start()
    memory = SessionMemory()
    await recorder.session_started(memory, "fia", "s1")
    for i in range(3):
        recorder.turn_finished(memory, turn(f"antes {i}"))
    assert await recorder.flush()

    await asyncio.to_thread(cluster.stop)
    try:
        for i in range(3):
            recorder.turn_finished(memory, turn(f"durante {i}"))
        await until(lambda: recorder.journal_items == 3)
        assert recorder.state == "unavailable" and not recorder.ready
        assert errors.count("connect") == 1  # an outage is counted once, not each attempt
    finally:
        await asyncio.to_thread(cluster.start)
    recorder.turn_finished(memory, turn("depois"))
    await until(lambda: recorder.state == "ok")  # reconnected on its own
    assert await recorder.flush()
    expected = [f"antes {i}" for i in range(3)] + [f"durante {i}" for i in range(3)] + ["depois"]
    assert await transcripts(recorder, "fia") == expected
    report = await recorder.store.report("fia")
    assert report is not None and len(report["sessions"]) == 1
    await recorder.stop()


# --- through the server -------------------------------------------------------------------------


def test_ready_names_the_store_state_and_stays_200(tmp_path: Path) -> None:
    from harness.uvicorn_thread import free_port
    from tests.doubles.learner import speech_wav
    from tests.doubles.stack import make_stack

    db = tmp_path / "ready.db"
    with make_stack(database_url=f"sqlite:///{db}", cache_dir=tmp_path) as stack:
        ready = httpx.get(f"{stack.url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["store"] == "ok"
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            answer = httpx.post(  # answered while the store cannot write
                f"{stack.url}/api/stream-audio",
                files={"audio": ("learner.wav", speech_wav(), "audio/wav")},
                data={"learner_id": "hugo"},
                timeout=30,
            )
            assert answer.status_code == 200 and "event: complete" in answer.text
            ready = _poll_ready(stack.url, "degraded")
            assert ready.status_code == 200
            metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
            assert 'parle_store_state{state="degraded"} 1.0' in metrics
            assert 'parle_store_state{state="ok"} 0.0' in metrics
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        _poll_ready(stack.url, "ok")
        report = httpx.get(f"{stack.url}/api/learners/hugo", timeout=10).json()
        assert report["turns"] == 1

    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/parle"
    with make_stack(database_url=unreachable, cache_dir=tmp_path) as stack:
        ready = httpx.get(f"{stack.url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["store"] == "unavailable"
        metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
        assert 'parle_store_state{state="unavailable"} 1.0' in metrics
        assert "parle_store_journal_items 0.0" in metrics


def _poll_ready(url: str, state: str, timeout_s: float = 20.0) -> httpx.Response:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        ready = httpx.get(f"{url}/ready", timeout=10)
        if ready.json().get("store") == state:
            return ready
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.1)
