"""A phone call in a real room, as LiveKit's SIP bridge makes one: a participant of kind SIP
with the bridge's `sip.*` attributes, in a room named after the caller's number, its audio
telephone band (300-3400 Hz, 8 kHz, G.711 mu-law) — real livekit-server, `parle serve` on
the `cpu` engines, `parle agent start` (harness/livekit_stack.py). livekit-sip itself cannot
be built on this project's machines (the Go proxy refuses it); what it adds, SIP and RTP on
the carrier's side, is LiveKit's.

The tutor answers (subscribes to the caller), greets in phone mode with the keypad's
commands, hears the caller and answers; a keypad key is a command; hanging up ends the
session; a second call from the same phone, its number written another way, is the same
learner; and the number appears nowhere in the store or PARLE's logs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.learner import phone_learner_id
from harness.livekit_stack import (
    PHONE_HASH_KEY,
    Learner,
    LiveKitStack,
    caller_grant,
    shared_stack,
    transcribe,
)
from harness.telephone import telephone
from harness.wer import word_error_rate
from parle.tutor import commands

NUMBER = "+5521987654321"
DIGITS = NUMBER[1:]
SAID = "Olá, meu nome é Ana e eu sou dos Estados Unidos."


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[LiveKitStack]:
    yield from shared_stack(request)


def sessions_of(stack: LiveKitStack, learner_id: str) -> list[dict[str, object]]:
    """The learner's stored sessions (none while the server knows no such learner)."""
    response = httpx.get(f"{stack.parle_url}/api/learners/{learner_id}", timeout=10)
    return list(response.json()["sessions"]) if response.status_code == 200 else []


async def test_two_calls_from_one_phone(stack: LiveKitStack, audio_dir: Path) -> None:
    learner_id = phone_learner_id(NUMBER, PHONE_HASH_KEY)
    assert learner_id is not None
    clip = (audio_dir / "utterances" / "u01.wav").read_bytes()

    # The first call: answered, greeted in phone mode, heard, answered; a key is a command.
    caller = Learner(stack.parle_url)
    joined = time.monotonic()
    await caller.join_with(caller_grant(stack.livekit, NUMBER))
    try:
        await caller.until("the tutor did not answer the call", lambda: caller.subscribed, 60)
        assert caller.subscribed is not None
        print(f"call answered (tutor subscribed) after {caller.subscribed - joined:.2f} s")
        await caller.greeted()
        greeting = caller.texts("lk.transcription", learner=False)
        assert greeting and commands.KEYPAD_HINT in greeting[0], greeting
        _, spoke_until = await caller.say(telephone(clip, loss=0.02))
        reply_start, reply_end, _ = await caller.reply(spoke_until)
        print(f"end of the caller's speech -> reply audio: {reply_start - spoke_until:.2f} s")
        heard_by_tutor = caller.texts("lk.transcription", learner=True, after=spoke_until - 10)
        assert heard_by_tutor and word_error_rate(SAID, heard_by_tutor[-1]) <= 0.3
        heard = await transcribe(
            stack.parle_url, caller.heard.wav(reply_start - 0.1, reply_end + 0.3)
        )
        assert len(heard.split()) >= 2, heard  # the caller heard speech
        await caller.room.local_participant.publish_dtmf(code=9, digit="9")  # means nothing
        await caller.room.local_participant.publish_dtmf(code=2, digit="2")  # "mais devagar"
        await caller.until(
            "the keypad's 2 was not answered",
            lambda: commands.SLOWER in caller.texts("lk.transcription", learner=False),
            60,
        )
        tutor_lines = caller.texts("lk.transcription", learner=False, after=reply_end)
        assert tutor_lines.count(commands.SLOWER) == 1, tutor_lines
    finally:
        await caller.leave()  # the caller hangs up

    await caller.until(
        "the call was not recorded", lambda: len(sessions_of(stack, learner_id)) == 1, 30
    )

    # The second call, the same phone written without "+": the same learner.
    again = Learner(stack.parle_url)
    try:
        await again.join_with(caller_grant(stack.livekit, DIGITS))
        await again.greeted()
    finally:
        await again.leave()
    await again.until(
        "the second call was not the same learner's",
        lambda: len(sessions_of(stack, learner_id)) == 2,
        30,
    )
    first, second = sessions_of(stack, learner_id)
    assert first["turns"] == 1  # the keypad's command is no turn
    # Each call is known by its own keyed label, never by its room's name.
    assert all(str(session["session_id"]).startswith("call-") for session in (first, second))
    assert first["session_id"] != second["session_id"]

    # The number is nowhere: not in the store, not in PARLE's logs.
    stored = b"".join(path.read_bytes() for path in stack.log_dir.glob("parle.db*"))  # + WAL
    for process in (stack.parle, stack.worker):
        text = process.log(10_000_000)
        assert DIGITS not in text and DIGITS[2:] not in text, process.name
        if process is stack.worker:
            starts = [
                line
                for line in text.splitlines()
                if '"session starting"' in line
                and any(
                    f'"session": "{session["session_id"]}"' in line for session in (first, second)
                )
            ]
            assert len(starts) == 2, starts  # each record once, with PARLE's fields
            assert all('"level": "info"' in line for line in starts), starts
            # The second call's tutor knew the learner: their stored level and note.
            assert '"returning": false' in starts[0] and '"returning": true' in starts[1]
    assert DIGITS.encode() not in stored and DIGITS[2:].encode() not in stored


async def test_a_caller_who_never_speaks_is_greeted_and_the_call_ends_recorded(
    stack: LiveKitStack,
) -> None:
    number = "+5531999990001"
    learner_id = phone_learner_id(number, PHONE_HASH_KEY)
    assert learner_id is not None
    caller = Learner(stack.parle_url)
    try:
        await caller.join_with(caller_grant(stack.livekit, number))
        await caller.greeted()
    finally:
        await caller.leave()  # silence, then the caller hangs up
    await caller.until(
        "the silent call was not recorded", lambda: len(sessions_of(stack, learner_id)) == 1, 30
    )
    (session,) = sessions_of(stack, learner_id)
    assert session["turns"] == 0


async def test_hanging_up_mid_reply_stops_its_llm_stream(
    stack: LiveKitStack, audio_dir: Path
) -> None:
    assert stack.relay is not None
    caller = Learner(stack.parle_url)
    await caller.join_with(caller_grant(stack.livekit, "+5531999990002"))
    # The reply is still being written when the tutor starts speaking it (as a larger model
    # writes): hanging up then must close its LLM stream, not let it run on.
    stack.relay.pace_s = 0.3
    stack.relay.hold_end_s = 45.0
    try:
        await caller.greeted()
        streams_before = len(stack.relay.streams)
        clip = (audio_dir / "utterances" / "u09.wav").read_bytes()
        _, spoke_until = await caller.say(telephone(clip))
        await caller.until("no reply", lambda: caller.heard.first_audible(spoke_until), 60)
        assert len(stack.relay.streams) > streams_before
        reply = stack.relay.streams[-1]
        assert not reply.finished, "the reply was written before the tutor spoke"
    except BaseException:
        stack.relay.pace_s = stack.relay.hold_end_s = 0.0
        await caller.leave()
        raise
    hung_up = time.monotonic()
    await caller.leave()
    try:
        await caller.until("the LLM stream stayed open", lambda: reply.ended_at, 30)
    finally:
        # Only now: set at once after the hang-up, the relay wrote the rest of the reply before
        # the tutor had heard of it, and the stream ended "finished" (seen in a full run).
        stack.relay.pace_s = stack.relay.hold_end_s = 0.0
    assert reply.closed_early and not reply.finished
    assert reply.ended_at is not None and reply.ended_at > hung_up - 1.0


async def test_two_calls_at_once_are_both_answered(stack: LiveKitStack, audio_dir: Path) -> None:
    callers = [Learner(stack.parle_url), Learner(stack.parle_url)]
    numbers = ["+5541999990003", "+5551999990004"]
    clips = [(audio_dir / "utterances" / f"{name}.wav").read_bytes() for name in ("u01", "u06")]
    try:
        await asyncio.gather(
            *(
                c.join_with(caller_grant(stack.livekit, n))
                for c, n in zip(callers, numbers, strict=True)
            )
        )
        await asyncio.gather(*(caller.greeted() for caller in callers))
        said = await asyncio.gather(
            *(c.say(telephone(clip)) for c, clip in zip(callers, clips, strict=True))
        )
        await asyncio.gather(*(c.reply(end) for c, (_, end) in zip(callers, said, strict=True)))
    finally:
        await asyncio.gather(*(caller.leave() for caller in callers))
    for number in numbers:
        learner_id = phone_learner_id(number, PHONE_HASH_KEY)
        assert learner_id is not None
        await callers[0].until(
            "a call was not recorded",
            lambda learner_id=learner_id: (
                [s["turns"] for s in sessions_of(stack, learner_id)] == [1]
            ),
            30,
        )
