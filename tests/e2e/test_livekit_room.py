"""Real rooms: livekit-server (the repository's livekit.yaml, on loopback), `parle serve` on the
real `cpu` engines and `parle agent start`, each its own process (harness/livekit_stack.py);
learners join with LiveKit's Python SDK through the token PARLE mints, speak the test clips in
real time, and hear the tutor as a client does (WebRTC, Opus). What they hear is checked as
audio: loud enough, long enough, and Whisper hears Portuguese in it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.tutor import GREETING
from harness.livekit_stack import Learner, LiveKitStack, shared_stack, transcribe
from harness.wer import normalize, word_error_rate

# Words a Portuguese sentence of a tutor can hardly do without (articles, pronouns, "é", ...).
PORTUGUESE = {
    "a", "o", "as", "os", "um", "uma", "de", "do", "da", "em", "no", "na", "que", "é", "e",
    "você", "eu", "para", "com", "não", "muito", "bem", "sim", "seu", "sua", "meu", "minha",
    "como", "qual", "mais", "por", "isso", "está", "olá", "obrigado", "bom", "boa",
}  # fmt: skip


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[LiveKitStack]:
    yield from shared_stack(request)


@pytest.fixture
async def learner(stack: LiveKitStack) -> AsyncIterator[Learner]:
    learner = Learner(stack.parle_url)
    try:
        yield await learner.join(level="A2")
    finally:
        await learner.leave()


def clip(audio_dir: Path, name: str) -> bytes:
    return (audio_dir / "utterances" / f"{name}.wav").read_bytes()


async def test_the_tutor_greets_hears_and_answers_in_a_real_room(
    stack: LiveKitStack, learner: Learner, audio_dir: Path
) -> None:
    greeting_end = await learner.greeted()
    greeting_start = learner.heard.first_audible(0.0)
    assert greeting_start is not None
    # The greeting as heard over WebRTC is the greeting's words.
    heard = await transcribe(
        stack.parle_url, learner.heard.wav(greeting_start - 0.1, greeting_end + 0.3)
    )
    assert word_error_rate(GREETING, heard) <= 0.4, heard
    assert learner.texts("lk.transcription", learner=False) == [GREETING]

    _, spoke_until = await learner.say(clip(audio_dir, "u01"))
    events = await learner.until("no level event", lambda: learner.texts("parle.tutor"), 60)
    level = json.loads(events[0])
    assert level["type"] == "level" and level["level"] in ("A1", "A2", "B1")
    mine = await learner.until(
        "the learner's words were not transcribed",
        lambda: learner.texts("lk.transcription", learner=True),
        60,
    )
    assert word_error_rate("Olá, meu nome é Ana e eu sou dos Estados Unidos.", mine[0]) <= 0.25

    reply_start, reply_end, replies = await learner.reply(spoke_until)
    assert learner.heard.audible_seconds(reply_start, reply_end) >= 1.0
    heard = await transcribe(stack.parle_url, learner.heard.wav(reply_start - 0.1, reply_end + 0.3))
    words = set(normalize(heard))
    assert len(words) >= 3 and words & PORTUGUESE, heard
    # Whisper hears in the received audio the words the tutor's transcription says it spoke
    # (SmolLM2-135M coins words Whisper spells otherwise: shared words, not a WER, are checked).
    spoken = {w for w in normalize(" ".join(replies)) if len(w) >= 3}
    assert len(spoken & words) >= min(3, len(spoken)), (replies, heard)


async def test_barge_in_stops_the_tutor_at_the_client_and_closes_its_llm_stream(
    stack: LiveKitStack, learner: Learner, audio_dir: Path
) -> None:
    assert stack.relay is not None
    await learner.greeted()
    # Tokens paced as a larger model writes them, and the stream kept open after the last one:
    # the reply is still being written while it is spoken (however short SmolLM2's is, and
    # however early preemptive generation started it), so the barge-in finds an open LLM
    # stream to close.
    stack.relay.pace_s = 0.3
    stack.relay.hold_end_s = 45.0
    try:
        streams_before = len(stack.relay.streams)
        _, spoke_until = await learner.say(clip(audio_dir, "u09"))
        await learner.until("no spoken reply", lambda: learner.heard.first_audible(spoke_until), 60)
        # The learner speaks as soon as the tutor does, while its reply is still being written.
        assert len(stack.relay.streams) > streams_before
        interrupted = stack.relay.streams[-1]
        assert not interrupted.finished, "the reply was written before the tutor spoke"
        barge_start, barge_end = await learner.say(clip(audio_dir, "u03"))
        speech_onset = barge_start + 0.3  # the clip's leading silence
        # The tutor's last audible frame at the client before it fell silent for good (2 s:
        # longer than any pause between the pieces of one reply).
        stopped = await learner.until(
            "the tutor did not stop talking",
            lambda: learner.heard.silent_since(speech_onset, 2.0),
            20,
        )
        stop_latency = stopped - speech_onset
        print(f"barge-in: the tutor's audio stopped {stop_latency * 1000:.0f} ms after onset")
        assert 0 < stop_latency < 2.0
        await learner.until("the LLM stream stayed open", lambda: interrupted.ended_at, 30)
        assert interrupted.closed_early and not interrupted.finished
        assert interrupted.ended_at is not None and interrupted.ended_at > speech_onset

        # The next turn is answered: the barge-in's words heard, a new reply spoken. (A WER, not
        # one word: the `cpu` profile's Whisper base once heard its last word as "portugueses").
        barge = await learner.until(
            "the barge-in was not transcribed",
            lambda: learner.texts("lk.transcription", learner=True, after=barge_start),
            60,
        )
        assert word_error_rate("Como se diz library em português?", barge[0]) <= 0.35, barge
        answer_start, _, _ = await learner.reply(barge_end)
        assert answer_start > stopped + 2.0
    finally:
        stack.relay.pace_s = stack.relay.hold_end_s = 0.0


async def test_two_rooms_at_once_are_both_answered(stack: LiveKitStack, audio_dir: Path) -> None:
    learners = [Learner(stack.parle_url), Learner(stack.parle_url)]
    turns_before = stack.metric("parle_agent_stage_seconds_count", stage="end_to_end")
    try:
        await asyncio.gather(*(learner.join(level="A2") for learner in learners))
        rooms = {learner.grant["room"] for learner in learners}
        assert len(rooms) == 2
        await asyncio.gather(*(learner.greeted() for learner in learners))
        said = await asyncio.gather(
            learners[0].say(clip(audio_dir, "u01")), learners[1].say(clip(audio_dir, "u06"))
        )

        async def answered(learner: Learner, spoke_until: float) -> float:
            return float(
                await learner.until(
                    "a room was not answered",
                    lambda: learner.heard.first_audible(spoke_until),
                    90,
                )
            )

        answers = await asyncio.gather(
            *(answered(learner, end) for learner, (_, end) in zip(learners, said, strict=True))
        )
        latencies = [a - end for a, (_, end) in zip(answers, said, strict=True)]
        print("two rooms: first audio after speech end, ms:", [round(x * 1000) for x in latencies])
        for learner in learners:
            await learner.until(
                "a room's reply had no transcription",
                lambda learner=learner: learner.texts(  # type: ignore[misc]
                    "lk.transcription", learner=False, after=said[0][1] - 5
                ),
                30,
            )
        # LiveKit's metrics see both rooms, each with its learner and its tutor.
        livekit = stack.livekit.metrics()
        assert _gauge(livekit, "livekit_room_total") >= 2, livekit[-2000:]
        assert _gauge(livekit, "livekit_participant_total") >= 4
        # PARLE's metrics see both answered turns (the agent reports them, best effort).
        deadline = time.monotonic() + 15
        while (
            stack.metric("parle_agent_stage_seconds_count", stage="end_to_end") < turns_before + 2
        ):
            assert time.monotonic() < deadline, "the agent's turn metrics did not reach PARLE"
            await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*(learner.leave() for learner in learners))


def _gauge(metrics: str, name: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head = line.split(" ")[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total
