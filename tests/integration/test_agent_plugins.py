"""The LiveKit plugins against the real PARLE server on loopback (instant engines and a
scripted LLM, so every word is known): recognize, synthesize, chat, and the framework's
errors when a server is down or slow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APITimeoutError,
    llm,
    stt,
)

from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from harness.uvicorn_thread import free_port
from tests.doubles.learner import speech_wav
from tests.doubles.stack import REPLY, Stack, make_stack

FINAL = stt.SpeechEventType.FINAL_TRANSCRIPT
FAST_FAIL = APIConnectOptions(max_retry=1, retry_interval=0.01, timeout=2.0)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with make_stack(llm_delay=0.01) as stack:
        yield stack


def frames_of(seconds: float, rate: int = 16_000) -> list[rtc.AudioFrame]:
    """A learner's speech cut into 20 ms frames, as the session hands a VAD segment to the
    STT."""
    pcm = np.frombuffer(speech_wav(seconds)[44:], dtype="<i2")
    step = rate // 50
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), rate, 1, len(pcm[i : i + step]))
        for i in range(0, len(pcm), step)
    ]


async def test_stt_recognizes_through_the_server(stack: Stack) -> None:
    plugin = ParleSTT(server_url=stack.url)
    event = await plugin.recognize(frames_of(1.0))
    await plugin.aclose()
    assert event.alternatives[0].text == "Olá, meu nome é Ana."
    assert event.alternatives[0].language == "pt"


async def test_stt_streams_interim_preflight_and_final_transcripts(stack: Stack) -> None:
    plugin = ParleSTT(server_url=stack.url)
    assert plugin.capabilities.streaming and plugin.capabilities.manual_flush
    stream = plugin.stream()
    events: list[stt.SpeechEvent] = []

    preflight, final = asyncio.Event(), asyncio.Event()

    async def collect() -> None:
        async for event in stream:
            events.append(event)
            if event.type == stt.SpeechEventType.PREFLIGHT_TRANSCRIPT:
                preflight.set()
            elif event.type == FINAL:
                final.set()

    collecting = asyncio.create_task(collect())
    for frame in frames_of(3.0) + silent_frames(0.4):
        stream.push_frame(frame)
        await asyncio.sleep(0.005)
    # The pause is heard by the server: the preflight transcript comes before any flush.
    await asyncio.wait_for(preflight.wait(), 10)
    decodes = stack.stt.calls

    def finals() -> list[str]:
        return [e.alternatives[0].text for e in events if e.type == FINAL]

    stream.flush()  # the framework's end of speech
    await asyncio.wait_for(final.wait(), 10)
    assert finals() == ["Olá, meu nome é Ana."]
    assert stack.stt.calls == decodes  # the final is the transcript drafted at the pause
    stream.end_input()  # its flush finds nothing to commit: an empty final answers it
    await asyncio.wait_for(collecting, 10)
    await plugin.aclose()
    assert finals() == ["Olá, meu nome é Ana.", ""]
    kinds = [e.type for e in events]
    assert kinds[0] == stt.SpeechEventType.START_OF_SPEECH
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    usage = [e for e in events if e.type == stt.SpeechEventType.RECOGNITION_USAGE]
    assert usage and usage[0].recognition_usage is not None
    assert usage[0].recognition_usage.audio_duration == pytest.approx(3.4, abs=0.05)


def silent_frames(seconds: float, rate: int = 16_000) -> list[rtc.AudioFrame]:
    step = rate // 50
    return [rtc.AudioFrame(bytes(2 * step), rate, 1, step) for _ in range(int(seconds * 50))]


async def test_tts_streams_pcm_frames(stack: Stack) -> None:
    plugin = ParleTTS(server_url=stack.url, speed=1.1)
    frames = [event.frame async for event in plugin.synthesize("Bom dia! Como vai você?")]
    await plugin.aclose()
    assert frames and all(f.sample_rate == 24_000 and f.num_channels == 1 for f in frames)
    samples = sum(f.samples_per_channel for f in frames)
    expected = sum(len(t) for t in stack.tts.texts) * 240  # 10 ms a character
    assert expected <= samples <= expected + 480  # the framework may pad its last frame
    assert stack.tts.speeds == [1.1] * len(stack.tts.texts)


async def test_tts_plays_at_the_rate_the_server_says(stack: Stack) -> None:
    stack.tts.sample_rate = 16_000  # an engine speaking at another rate than Kokoro's 24 kHz
    plugin = ParleTTS(server_url=stack.url)
    frames = [event.frame async for event in plugin.synthesize("Bom dia!")]
    await plugin.aclose()
    assert frames and all(f.sample_rate == 16_000 for f in frames)
    assert sum(f.samples_per_channel for f in frames) >= len("Bom dia!") * 160


async def test_llm_streams_chat_chunks(stack: Stack) -> None:
    plugin = ParleLLM(base_url=stack.llm.url)
    context = llm.ChatContext()
    context.add_message(role="system", content="Você é uma professora.")
    context.add_message(role="user", content="Olá!")
    stream = plugin.chat(chat_ctx=context)
    text = "".join([c.delta.content async for c in stream if c.delta and c.delta.content])
    await plugin.aclose()
    assert text == "".join(REPLY)
    sent = stack.llm.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["stream"] is True and sent["model"] == "scripted"


async def test_llm_interrupted_turn_closes_the_stream() -> None:
    with make_stack(llm_delay=0.3) as stack:
        plugin = ParleLLM(base_url=stack.llm.url)
        context = llm.ChatContext()
        context.add_message(role="user", content="Olá!")
        stream = plugin.chat(chat_ctx=context)
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                break
        await stream.aclose()
        assert await stack.llm.wait_for(lambda: stack.llm.disconnected == 1)
        await plugin.aclose()


async def test_server_down_is_a_connection_error_after_retries() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(APIConnectionError):
        await ParleSTT(server_url=down).recognize(frames_of(0.5), conn_options=FAST_FAIL)
    with pytest.raises(APIConnectionError):
        async for _ in ParleTTS(server_url=down).synthesize("Oi", conn_options=FAST_FAIL):
            pass
    stream = ParleSTT(server_url=down).stream(conn_options=FAST_FAIL)
    stream.push_frame(frames_of(0.1)[0])
    with pytest.raises(APIConnectionError):
        async for _ in stream:
            pass


async def test_slow_llm_server_times_out() -> None:
    with make_stack(llm_delay=1.0) as stack:
        plugin = ParleLLM(base_url=stack.llm.url)
        context = llm.ChatContext()
        context.add_message(role="user", content="Olá!")
        slow = APIConnectOptions(max_retry=0, retry_interval=0.01, timeout=0.3)
        with pytest.raises(APITimeoutError):
            async for _ in plugin.chat(chat_ctx=context, conn_options=slow):
                pass
        await plugin.aclose()


async def test_each_room_of_a_worker_has_its_own_limits() -> None:
    with make_stack(api_keys="worker", agent_api_keys="worker", client_turns_per_minute=1) as stack:
        one, two = (ParleSTT(server_url=stack.url, api_key="worker", room=r) for r in ("a", "b"))
        assert (await one.recognize(frames_of(1.0))).alternatives[0].text
        assert (await two.recognize(frames_of(1.0))).alternatives[0].text  # not room a's budget
        # Room a's second turn is over its budget (the framework gives up after its retries).
        with pytest.raises(APIConnectionError, match="429 Too Many Requests"):
            await one.recognize(frames_of(1.0), conn_options=FAST_FAIL)
        await one.aclose()
        await two.aclose()
