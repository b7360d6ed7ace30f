"""Learners through the server's doors (real uvicorn, the scripted LLM that records every
request): identity per door, a returning learner's level and profile in the prompt, the
record surviving a restart (a new app on the same database), reports, export, erasure, keys,
and a database that is not there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from parle.tutor.prompts import system_prompt
from tests.doubles.learner import speech_wav
from tests.doubles.stack import Stack, make_stack


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A `PARLE_DATABASE_URL` of each kind, empty."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'learners.db'}"
        return
    import asyncio

    import asyncpg

    server: str = request.getfixturevalue("postgres_url")
    name = "parle_" + uuid.uuid4().hex[:12]

    async def create() -> None:
        admin = await asyncpg.connect(server)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()

    asyncio.run(create())
    yield server.rsplit("/", 1)[0] + "/" + name


def sse_turn(stack: Stack, **fields: str) -> list[tuple[str, dict[str, Any]]]:
    from tests.doubles.clients import parse_sse

    response = httpx.post(
        f"{stack.url}/api/stream-audio",
        files={"audio": ("learner.wav", speech_wav(), "audio/wav")},
        data=fields,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    frames = parse_sse(response.text)
    assert frames[-1][0] == "complete", frames[-1]
    return frames


def last_request(stack: Stack) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = stack.llm.requests[-1]["messages"]
    return messages


def test_a_returning_learner_keeps_level_and_profile_across_a_restart(database: str) -> None:
    with make_stack(database_url=database) as stack:
        sse_turn(stack, session_id="first", learner_id="ana", level="B2")
        first = last_request(stack)
        assert first[0]["content"] == system_prompt("B2")
        assert len(first) == 3  # a new learner: nothing known yet, no learner note
        report = httpx.get(f"{stack.url}/api/learners/ana", timeout=10).json()
        assert report["level"] == "B2" and report["turns"] == 1
        assert report["facts"] == {"name": ["Ana"]}

        # A second session of the same server: the stored level and a profile note.
        sse_turn(stack, session_id="second", learner_id="ana")
        second = last_request(stack)
        assert second[0]["content"] == system_prompt("B2")  # byte-identical: prefix cache
        note = second[1]
        assert note["role"] == "system" and "Ana" in note["content"]
        assert "Olá, meu nome é Ana." in note["content"]  # what they said last time

    # A new server on the same database: nothing was forgotten.
    with make_stack(database_url=database) as stack:
        report = httpx.get(f"{stack.url}/api/learners/ana", timeout=10).json()
        assert report["turns"] == 2 and len(report["sessions"]) == 2
        assert [h["level"] for h in report["level_history"]] == ["B2"]
        sse_turn(stack, session_id="third", learner_id="ana")
        third = last_request(stack)
        assert third[0]["content"] == system_prompt("B2")
        assert 'chama-se "Ana"' in third[1]["content"]
        # An anonymous session is as before: no note, the default level, nothing stored.
        sse_turn(stack, session_id="anonymous")
        anonymous = last_request(stack)
        assert anonymous[0]["content"] == system_prompt("A2") and len(anonymous) == 3
        assert httpx.get(f"{stack.url}/api/learners/ana", timeout=10).json()["turns"] == 3


async def until_complete(ws: Any) -> None:
    while True:
        message = await ws.recv()
        if isinstance(message, str) and json.loads(message)["type"] == "complete":
            return


async def test_websocket_learner_by_query_and_by_config(tmp_path: Path) -> None:
    with make_stack(database_url=f"sqlite:///{tmp_path / 'ws.db'}") as stack:
        async with websockets.connect(f"{stack.ws_url}?learner_id=bia") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "text", "text": "Eu trabalho como professora."}))
            await until_complete(ws)
        async with websockets.connect(stack.ws_url) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "config", "learner_id": "caio"}))
            ack = json.loads(await ws.recv())
            assert ack["config"]["learner_id"] == "caio"
            await ws.send(json.dumps({"type": "config", "learner_id": "no spaces!"}))
            assert json.loads(await ws.recv())["code"] == "bad_learner_id"
            await ws.send(json.dumps({"type": "text", "text": "Eu gosto de futebol."}))
            await until_complete(ws)
        async with websockets.connect(f"{stack.ws_url}?learner_id=bad%20id") as ws:
            assert json.loads(await ws.recv())["code"] == "bad_learner_id"
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            bia = (await client.get("/api/learners/bia")).json()
            assert bia["facts"] == {"job": ["professora"]} and bia["turns"] == 1
            assert bia["words_per_minute"] is None  # typed: no speaking rate
            caio = (await client.get("/api/learners/caio")).json()
            assert caio["facts"] == {"interest": ["futebol"]}


def test_report_export_erasure_and_keys(tmp_path: Path) -> None:
    key = {"Authorization": "Bearer k1"}
    with make_stack(database_url=f"sqlite:///{tmp_path / 'r.db'}", api_keys="k1") as stack:
        files = {"audio": ("learner.wav", speech_wav(), "audio/wav")}
        httpx.post(
            f"{stack.url}/api/stream-audio",
            files=files,
            data={"learner_id": "dora"},
            headers=key,
            timeout=30,
        ).raise_for_status()
        base = f"{stack.url}/api/learners/dora"
        for path in ("", "/report", "/export"):
            assert httpx.get(base + path, timeout=10).status_code == 401
        assert httpx.delete(base, timeout=10).status_code == 401

        report = httpx.get(base, headers=key, timeout=10).json()
        for field in ("learner_id", "level", "level_history", "sessions", "turns",
                      "words_per_minute", "corrections", "recurring_mistakes", "vocabulary",
                      "facts"):  # fmt: skip
            assert field in report
        assert report["words_per_minute"] and report["words_per_minute"] > 0
        page = httpx.get(base + "/report", headers=key, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<svg" in page.text and "dora" in page.text and "<script" not in page.text
        export = httpx.get(base + "/export", headers=key, timeout=10).json()
        assert export["turns"][0]["transcript"] == "Olá, meu nome é Ana."

        assert httpx.delete(base, headers=key, timeout=10).json() == {
            "learner_id": "dora",
            "deleted": True,
        }
        for path in ("", "/report", "/export"):
            gone = httpx.get(base + path, headers=key, timeout=10)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "learner_not_found"
        assert httpx.delete(base, headers=key, timeout=10).status_code == 404
        bad = httpx.get(f"{stack.url}/api/learners/a%20b", headers=key, timeout=10)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_learner_id"
        refused = httpx.post(
            f"{stack.url}/api/stream-audio",
            files=files,
            data={"learner_id": "x" * 129},
            headers=key,
            timeout=30,
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "bad_learner_id"


def test_turns_go_on_without_a_database() -> None:
    from harness.uvicorn_thread import free_port

    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/parle"
    with make_stack(database_url=unreachable) as stack:
        for session in ("s1", "s2"):
            frames = sse_turn(stack, session_id=session, learner_id="eva")
            assert frames[-1][1]["response"]
        assert len(last_request(stack)) == 3  # no profile: as an anonymous session
        answer = httpx.get(f"{stack.url}/api/learners/eva", timeout=10)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "store_unavailable"
        metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
        assert 'parle_store_errors_total{op="connect"} 1.0' in metrics
        assert 'parle_store_errors_total{op="write"}' in metrics


async def test_a_long_record_is_bounded_and_drawn_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learner of years: the report holds the latest sessions (and counts them all), and
    drawing its page never holds up the server's other work (the learners' audio)."""
    import asyncio
    import time

    from bridge.routes import learners
    from parle.store import LearnerStore, database_url
    from parle.store.store import REPORT_SESSIONS, SessionRef, utcnow
    from parle.tenants import DEFAULT_TENANT, store_key
    from tests.integration.test_learner_store import turn

    url = f"sqlite:///{tmp_path / 'long.db'}"
    store = LearnerStore(database_url(url, tmp_path))
    await store.start()
    total = REPORT_SESSIONS + 20
    for n in range(total):
        ref = SessionRef(store_key(DEFAULT_TENANT, "avo"), f"s{n}", utcnow(), "B1")
        await store.record_turn(ref, turn("Eu moro em Lisboa."), utcnow())
    await store.close()

    drawn = learners.render_report

    def slow_render(report: dict[str, Any]) -> str:
        time.sleep(1.0)  # a chart-heavy page on a slow box
        return drawn(report)

    monkeypatch.setattr(learners, "render_report", slow_render)
    with make_stack(database_url=url) as stack:
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            report = (await client.get("/api/learners/avo")).json()
        assert report["sessions_total"] == total and len(report["sessions"]) == REPORT_SESSIONS
        assert report["sessions"][-1]["session_id"] == f"s{total - 1}"  # the latest, in order
        assert report["turns"] == total
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            page = asyncio.create_task(client.get("/api/learners/avo/report"))
            await asyncio.sleep(0.3)  # the page is being drawn
            started = time.monotonic()
            assert (await client.get("/health")).status_code == 200
            assert time.monotonic() - started < 0.5  # not waiting for the drawing
            answer = await page
        assert answer.status_code == 200 and f"#{total}" in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "SAMEORIGIN"  # the web client frames it
        assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["referrer-policy"] == "no-referrer"
