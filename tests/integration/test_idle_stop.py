"""A rented TensorDock box stops itself after N idle minutes, never while someone is served,
retrying a failed call; against a fake of TensorDock's API on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from bridge.idle import ActivityTracker, IdleStopper, TensorDockClient
from tests.doubles.stack import make_stack
from tests.doubles.tensordock import FakeTensorDock

INSTANCE = "550e8400-e29b-41d4-a716-446655440000"
TOKEN = "td-secret-token"


@pytest.fixture
def tensordock() -> Iterator[FakeTensorDock]:
    fake = FakeTensorDock().start()
    yield fake
    fake.stop()


def rented(fake: FakeTensorDock, minutes: float) -> dict[str, object]:
    return {
        "tensordock_api_url": fake.api_url,
        "tensordock_api_token": TOKEN,
        "tensordock_instance_id": INSTANCE,
        "idle_stop_minutes": minutes,
    }


def wait_for(predicate: object, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_an_idle_box_stops_itself_once(tensordock: FakeTensorDock) -> None:
    with make_stack(**rented(tensordock, minutes=0.01)):  # 0.6 s
        assert wait_for(lambda: tensordock.calls, 5)
        time.sleep(0.5)
    assert tensordock.calls == [
        {"instance": INSTANCE, "authorization": f"Bearer {TOKEN}", "body": b""}
    ]


async def test_never_while_a_session_is_open(tensordock: FakeTensorDock) -> None:
    with make_stack(**rented(tensordock, minutes=0.01)) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await asyncio.sleep(2.0)  # > 3x the idle time, with a learner connected
            assert tensordock.calls == []
            async with httpx.AsyncClient() as client:  # probes are not activity either way
                for _ in range(5):
                    await client.get(f"{stack.url}/health")
        closed = time.monotonic()
        while not tensordock.calls:
            assert time.monotonic() - closed < 5, "the box never stopped after the session"
            await asyncio.sleep(0.02)
        assert time.monotonic() - closed >= 0.6  # the idle time counts from the last session


def test_requests_keep_the_box_awake_and_strangers_do_not(tensordock: FakeTensorDock) -> None:
    with make_stack(api_keys="k1", **rented(tensordock, minutes=0.02)) as stack:  # 1.2 s
        for _ in range(8):  # a real client, every 0.3 s for 2.4 s
            httpx.post(
                f"{stack.url}/api/reset", json={"session_id": "s"}, headers={"x-api-key": "k1"}
            )
            time.sleep(0.3)
        assert tensordock.calls == []
        started = time.monotonic()
        while not tensordock.calls:  # a stranger's rejected calls do not count
            assert httpx.post(f"{stack.url}/api/reset", json={}).status_code == 401
            assert time.monotonic() - started < 5
            time.sleep(0.2)


def test_no_idle_stop_without_both_credentials(tensordock: FakeTensorDock) -> None:
    settings = rented(tensordock, minutes=0.01)
    settings["tensordock_instance_id"] = ""
    with make_stack(**settings):
        time.sleep(1.5)
    assert tensordock.calls == []


@pytest.mark.parametrize(
    ("failures", "calls"),
    [
        ((500, 503), 3),  # retried within one round
        ((500, 500, 500), 4),  # a whole round failed: tried again at the next check
    ],
)
async def test_a_failed_stop_is_retried(failures: tuple[int, ...], calls: int) -> None:
    fake = FakeTensorDock(*failures).start()
    try:
        client = TensorDockClient(api_url=fake.api_url, token=TOKEN, instance_id=INSTANCE)
        activity = ActivityTracker()
        activity.last_active -= 10
        stopper = IdleStopper(activity, client, idle_s=1, check_s=0.05, retry_delay_s=0.01)
        await asyncio.wait_for(stopper.run(), 5)
        assert stopper.stopped and len(fake.calls) == calls
    finally:
        fake.stop()
