"""The turn pipeline against a scripted OpenAI-compatible server on loopback, with the real
`OpenAIChatModel` client and instant STT/TTS doubles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.scripted_llm import ScriptedLlmServer
from parle.audio import wav_bytes
from parle.engines.chat import OpenAIChatModel
from parle.errors import AudioInputError, LlmUnavailableError
from parle.sessions import SessionStore
from parle.testing import InstantSynthesizer, InstantTranscriber
from parle.turn import (
    AudioEvent,
    CompleteEvent,
    CorrectionEvent,
    LevelEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    StageEvent,
    TranscriptEvent,
    TurnEvent,
    TurnOptions,
    TurnPipeline,
)
from parle.tutor.levels import POLICIES, LexicalLevelEstimator
from tests.doubles.learner import speech_wav

REPLY = ["Muito bem", ", Ana!", " De onde", " você é?", " Eu moro", " no Brasil."]


def silent_wav(seconds: float = 1.0) -> bytes:
    return wav_bytes(b"\x00\x00" * int(16_000 * seconds), 16_000)


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLlmServer]:
    server = ScriptedLlmServer(REPLY, delay_s=0.02).start()
    yield server
    server.stop()


@pytest.fixture
async def chat(llm: ScriptedLlmServer) -> AsyncIterator[OpenAIChatModel]:
    client = OpenAIChatModel(llm.url)
    yield client
    await client.aclose()


def pipeline(
    chat: OpenAIChatModel,
    tts: InstantSynthesizer | None = None,
    *,
    heard: str = "Olá, meu nome é Ana.",
) -> TurnPipeline:
    return TurnPipeline(
        InstantTranscriber(heard),
        chat,
        tts or InstantSynthesizer(),
        sessions=SessionStore(max_turns=4),
    )


async def collect(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


async def test_streamed_turn_event_order_and_content(chat: OpenAIChatModel) -> None:
    events = await collect(pipeline(chat).run(speech_wav()))
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["stage", "transcript", "stage"]
    assert [e.stage for e in events if isinstance(e, StageEvent)] == ["stt", "llm", "tts"]
    assert kinds[-1] == "complete"
    transcript = next(e for e in events if isinstance(e, TranscriptEvent))
    assert transcript.text == "Olá, meu nome é Ana."
    response = next(e for e in events if isinstance(e, ResponseEvent))
    assert response.text == "".join(REPLY)
    deltas = [e for e in events if isinstance(e, ResponseDeltaEvent)]
    assert [d.delta for d in deltas] == REPLY
    audio = [e for e in events if isinstance(e, AudioEvent)]
    assert [a.index for a in audio] == list(range(len(audio)))
    assert [a.text for a in audio] == ["Muito bem, Ana!", "De onde você é?", "Eu moro no Brasil."]
    assert all(a.chunk.sample_rate == 24_000 for a in audio)
    complete = events[-1]
    assert isinstance(complete, CompleteEvent)
    assert complete.response == "".join(REPLY)


async def test_tts_starts_before_the_llm_finishes(chat: OpenAIChatModel) -> None:
    events = await collect(pipeline(chat).run(speech_wav()))
    first_audio = next(i for i, e in enumerate(events) if isinstance(e, AudioEvent))
    response_at = next(i for i, e in enumerate(events) if isinstance(e, ResponseEvent))
    assert first_audio < response_at
    deltas_before_audio = sum(isinstance(e, ResponseDeltaEvent) for e in events[:first_audio])
    assert deltas_before_audio < len(REPLY)


async def test_timings_present_and_consistent(chat: OpenAIChatModel) -> None:
    events = await collect(pipeline(chat, InstantSynthesizer(delay_s=0.01)).run(speech_wav()))
    timings = events[-1].timings  # type: ignore[union-attr]
    assert timings.ttfa_ms is not None and timings.llm_first_token_ms is not None
    assert 0 <= timings.stt_ms <= timings.ttfa_ms <= timings.total_ms
    assert 0 < timings.llm_first_token_ms <= timings.llm_ms <= timings.total_ms
    assert timings.tts_ms >= 3 * 10  # three pieces, 10 ms each
    # The scripted server spaces its 6 tokens 20 ms apart.
    assert timings.llm_ms >= 6 * 20
    assert set(timings.as_dict()) >= {"stt_ms", "llm_ms", "tts_ms", "ttfa_ms", "total_ms"}


async def test_sequential_mode_speaks_after_the_whole_reply(chat: OpenAIChatModel) -> None:
    tts = InstantSynthesizer()
    events = await collect(
        pipeline(chat, tts).run(speech_wav(), options=TurnOptions(sequential=True))
    )
    response_at = next(i for i, e in enumerate(events) if isinstance(e, ResponseEvent))
    audio_at = [i for i, e in enumerate(events) if isinstance(e, AudioEvent)]
    assert audio_at and min(audio_at) > response_at
    assert tts.texts == ["Muito bem, Ana! De onde você é? Eu moro no Brasil."]


async def test_cancelling_stops_llm_and_tts(llm: ScriptedLlmServer) -> None:
    llm.delay_s = 0.2  # a slow writer: the turn is cancelled mid-reply
    chat = OpenAIChatModel(llm.url)
    tts = InstantSynthesizer(delay_s=5.0)
    turn = pipeline(chat, tts)
    events = turn.run(speech_wav(), session="s1")
    seen = []
    async for event in events:
        seen.append(event)
        if event == StageEvent("tts"):  # the first piece is being synthesized
            break
    await events.aclose()
    assert await llm.wait_for(lambda: llm.disconnected == 1)
    assert llm.completed == 0
    assert tts.cancelled == 1  # the synthesis in flight was cancelled, not left running
    assert not [t for t in asyncio.all_tasks() if "guard" in repr(t.get_coro())]
    # What the learner heard part of is remembered, marked as the assistant's.
    memory = turn.sessions.get("s1").messages
    assert memory[0] == {"role": "user", "content": "Olá, meu nome é Ana."}
    assert memory[1]["role"] == "assistant" and memory[1]["content"].startswith("Muito bem")
    await chat.aclose()


async def test_cancelling_the_consumer_task(llm: ScriptedLlmServer) -> None:
    llm.delay_s = 0.2
    chat = OpenAIChatModel(llm.url)
    turn = pipeline(chat)

    async def consume() -> None:
        async for _ in turn.run(speech_wav()):
            pass

    task = asyncio.create_task(consume())
    assert await llm.wait_for(lambda: len(llm.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await llm.wait_for(lambda: llm.disconnected == 1)
    await chat.aclose()


async def test_two_sessions_keep_their_own_memory(
    chat: OpenAIChatModel, llm: ScriptedLlmServer
) -> None:
    turn = pipeline(chat)
    await collect(turn.run(speech_wav(), session="ana"))
    await collect(turn.run(speech_wav(), session="ana"))
    await collect(turn.run(speech_wav(), session="bia"))
    ana_second, bia_first = llm.requests[1]["messages"], llm.requests[2]["messages"]
    roles = ["system", "user", "system", "assistant", "user", "system"]
    assert [m["role"] for m in ana_second] == roles
    assert ana_second[3]["content"] == "".join(REPLY)
    assert [m["role"] for m in bia_first] == ["system", "user", "system"]
    assert len(turn.sessions.get("ana").messages) == 4
    assert len(turn.sessions.get("bia").messages) == 2


async def test_memory_is_bounded(chat: OpenAIChatModel) -> None:
    turn = pipeline(chat)
    for _ in range(6):
        await collect(turn.run(speech_wav(), session="long"))
    assert len(turn.sessions.get("long").messages) == 2 * 4


async def test_silence_gives_empty_transcript_and_no_llm_call(
    chat: OpenAIChatModel, llm: ScriptedLlmServer
) -> None:
    events = await collect(pipeline(chat).run(silent_wav()))
    assert [e.kind for e in events] == ["stage", "transcript", "complete"]
    assert events[1].text == ""  # type: ignore[union-attr]
    assert llm.requests == []


async def test_bad_audio_raises_before_any_event(chat: OpenAIChatModel) -> None:
    events = pipeline(chat).run(b"not audio at all")
    with pytest.raises(AudioInputError) as info:
        await events.__anext__()
    assert info.value.reason == "undecodable"


async def test_llm_failure_is_a_typed_error(chat: OpenAIChatModel, llm: ScriptedLlmServer) -> None:
    llm.fail_status = 500
    with pytest.raises(LlmUnavailableError, match="500"):
        await collect(pipeline(chat).run(speech_wav()))


async def test_text_turn_skips_stt(chat: OpenAIChatModel) -> None:
    stt = InstantTranscriber()
    turn = TurnPipeline(stt, chat, InstantSynthesizer())
    events = await collect(turn.run_text("Oi!"))
    assert stt.calls == 0
    assert events[0] == StageEvent("llm")
    assert events[-1].transcript == "Oi!"  # type: ignore[union-attr]


async def test_turn_is_remembered_when_complete_leaves(chat: OpenAIChatModel) -> None:
    turn = pipeline(chat)
    events = turn.run(speech_wav(), session="quick")
    async for event in events:
        if isinstance(event, CompleteEvent):
            # The client stops reading here, without closing the iterator.
            assert len(turn.sessions.get("quick").messages) == 2
            break


CORRECTED_REPLY = [
    "Que legal", "! Você foi", " à praia", " ontem? Eu", " adoro o mar.", " <corr",
    'ecao>{"original": ', '"Eu vai na praia", "corrected": "Eu fui à praia", ',
    '"explanation": "passado", "kind": "tense"}</correcao>',
]  # fmt: skip


async def test_correction_block_is_sent_apart_and_never_spoken(llm: ScriptedLlmServer) -> None:
    llm.tokens = CORRECTED_REPLY
    chat = OpenAIChatModel(llm.url)
    tts = InstantSynthesizer()
    # The learner's words hold what the block corrects (a block on words they never said is
    # dropped: tests/unit/test_grammar.py).
    events = await collect(pipeline(chat, tts, heard="Eu vai na praia ontem.").run(speech_wav()))
    await chat.aclose()
    assert all("<" not in text and "original" not in text for text in tts.texts)
    assert " ".join(tts.texts) == "Que legal! Você foi à praia ontem? Eu adoro o mar."
    response = next(e for e in events if isinstance(e, ResponseEvent))
    assert response.text == "Que legal! Você foi à praia ontem? Eu adoro o mar."
    correction = next(e for e in events if isinstance(e, CorrectionEvent)).correction
    assert (correction.original, correction.corrected, correction.kind) == (
        "Eu vai na praia",
        "Eu fui à praia",
        "tense",
    )
    kinds = [e.kind for e in events]
    assert kinds.index("audio") < kinds.index("response") < kinds.index("correction")
    assert "<correcao>" not in events[-1].response  # type: ignore[union-attr]


async def test_malformed_correction_block_is_dropped(llm: ScriptedLlmServer) -> None:
    llm.tokens = ["Muito bem!", " <correcao>", "{oops, not json"]
    chat = OpenAIChatModel(llm.url)
    events = await collect(pipeline(chat).run(speech_wav()))
    await chat.aclose()
    assert not any(isinstance(e, CorrectionEvent) for e in events)
    assert events[-1].response == "Muito bem!"  # type: ignore[union-attr]


async def test_level_is_estimated_and_steers_the_turn(
    chat: OpenAIChatModel, llm: ScriptedLlmServer
) -> None:
    estimator = LexicalLevelEstimator()
    estimator.load()
    tts = InstantSynthesizer()
    turn = TurnPipeline(
        InstantTranscriber("Eu gosto de gato."), chat, tts, estimator=estimator, level="A1"
    )
    events = await collect(turn.run(speech_wav(), session="lv"))
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["stage", "transcript", "level", "stage"]
    level = next(e for e in events if isinstance(e, LevelEvent))
    assert (level.level, level.estimate) == ("A1", "A1")
    assert sum(level.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert llm.requests[-1]["max_tokens"] == POLICIES["A1"].max_tokens
    assert set(tts.speeds) == {POLICIES["A1"].tts_speed}
    assert "(A1)" in llm.requests[-1]["messages"][0]["content"]
    # A client naming a level starts the session there; its speed choice wins.
    await collect(turn.run(speech_wav(), session="lv2", options=TurnOptions(level="B2", speed=1.2)))
    assert llm.requests[-1]["max_tokens"] == POLICIES["B2"].max_tokens
    assert tts.speeds[-1] == 1.2
