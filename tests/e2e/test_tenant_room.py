"""Two tenants' learners through real rooms: livekit-server, `parle serve` with two apps'
keys and the worker's, `parle agent start` presenting the worker's key
(harness/livekit_stack.py). A learner joins with a token one app's key asked for; the
tutor's record of them is that app's alone, whatever id the other app uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.livekit_stack import Learner, LiveKitStack, require_livekit_server

ALPHA, BETA, WORKER = "alpha-app-key", "beta-app-key", "worker-key"


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveKitStack]:
    require_livekit_server()
    stack = LiveKitStack(
        parle_env={
            "PARLE_API_KEYS": f"alpha:{ALPHA},beta:{BETA},ops:{WORKER}",
            "PARLE_AGENT_API_KEYS": WORKER,
        },
        worker_env={"PARLE_SERVER_API_KEY": WORKER},
    )
    try:
        yield stack
    finally:
        stack.close()


def record(stack: LiveKitStack, key: str, learner_id: str) -> httpx.Response:
    return httpx.get(
        f"{stack.parle_url}/api/learners/{learner_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


async def test_a_rooms_learner_is_recorded_for_the_app_that_asked_for_its_token(
    stack: LiveKitStack, audio_dir: Path
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        grant = await client.post(
            f"{stack.parle_url}/api/token",
            json={"learner_id": "lia"},
            headers={"Authorization": f"Bearer {BETA}"},
        )
    assert grant.status_code == 200, grant.text
    learner = Learner(stack.parle_url)
    await learner.join_with(grant.json())
    try:
        greeted = await learner.greeted()
        clip = (audio_dir / "utterances" / "u01.wav").read_bytes()
        _, spoke_until = await learner.say(clip)
        await learner.reply(max(greeted, spoke_until))
    finally:
        await learner.leave()
    # The turn is sent once the reply is done: give the worker's queue a moment.
    await learner.until(
        "the turn was not recorded for beta",
        lambda: (
            record(stack, BETA, "lia").status_code == 200
            and record(stack, BETA, "lia").json()["turns"] >= 1
        ),
        30,
    )
    stored = record(stack, BETA, "lia").json()
    assert stored["learner_id"] == "lia" and stored["sessions_total"] == 1
    other = record(stack, ALPHA, "lia")
    assert other.status_code == 404 and other.json()["error"]["code"] == "learner_not_found"
