"""pipecat's side of bench/bench_pipecat.py: one voice pipeline, driven over stdin/stdout.

    .venv-pipecat/bin/python bench/pipecat/pipeline.py CONFIG.json

Runs in its own virtualenv (`.venv-pipecat`, bench/pipecat/requirements.txt) and never imports
PARLE: the orchestrator hands over, in CONFIG.json, the files and settings PARLE itself
resolved (the faster-whisper folder, the Kokoro ONNX file and voice style, the llama.cpp
server's URL and model alias, the tutor's system prompt).

The pipeline is pipecat's usual voice bot:

    FeedInput -> WhisperSTTService -> user aggregator -> OpenAILLMService -> KokoroTTSService
              -> ProbeOutput -> assistant aggregator

with the user aggregator running pipecat's Silero VAD (`SileroVADAnalyzer`) and its default
turn strategies (VAD start; the bundled smart-turn v3 model decides the end of the turn).
`FeedInput`/`ProbeOutput` are the smallest possible pipecat transports (subclasses of
`BaseInputTransport`/`BaseOutputTransport`): the first is a microphone fed from this process,
20 ms PCM16 frames at real time (silence when there is nothing to say); the second is a
speaker that timestamps every audio chunk pipecat writes to it.

Protocol, one JSON object a line. In: {"cmd": "turn", "pcm": PATH, "mode": "live"|"blob",
"lead_s": 0.3} (PATH: 16 kHz mono PCM16 of the speech alone) or {"cmd": "quit"}. Out:
{"event": "ready", ...} once, then one result per turn: {"ttfa_ms": ..., "marks_ms": {...}, ...}.

live: lead silence, the clip and then silence, all at real time; time from pushing the frame
that holds the last speech sample to the first TTS audio chunk written to the output.
blob: the lead silence, the clip and 0.5 s of silence handed over as a recording, pushed at ten
times real time (pipecat's VAD runs after the STT and sends its start/stop frames back up to
it: frames pushed all at once would pass the STT before the VAD had cut them into a segment),
then silence at real time; time from the end of that push to the first audio chunk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.services.kokoro.tts import KokoroTTSService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

IN_RATE = 16_000
OUT_RATE = 24_000
FRAME_S = 0.02
FRAME_BYTES = int(IN_RATE * FRAME_S) * 2
SILENCE = bytes(FRAME_BYTES)
TURN_TIMEOUT_S = 60.0


class FeedInput(BaseInputTransport):
    """A microphone fed by this process: `push_audio_frame` is called by `Feeder`."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)


class ProbeOutput(BaseOutputTransport):
    """A speaker that keeps the time of the first TTS audio chunk written after `arm()`."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.first_audio: float | None = None
        self._armed = False

    def arm(self) -> None:
        self.first_audio = None
        self._armed = True

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._armed and isinstance(frame, TTSAudioRawFrame) and any(frame.audio):
            self.first_audio = time.perf_counter()
            self._armed = False
        return True


class Marks(BaseObserver):
    """When each stage of a turn first shows up (perf_counter), and when the turn is over."""

    WATCHED = (
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
        TranscriptionFrame,
        UserStoppedSpeakingFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        TTSTextFrame,
        TTSStartedFrame,
        TTSAudioRawFrame,
        LLMFullResponseEndFrame,
        BotStoppedSpeakingFrame,
    )

    def __init__(self) -> None:
        super().__init__(observe_every_push=False)
        self.times: list[tuple[str, float]] = []
        self.transcripts: list[str] = []
        self.reply = ""
        self.done = asyncio.Event()

    def reset(self) -> None:
        self.times = []
        self.transcripts = []
        self.reply = ""
        self.done = asyncio.Event()

    def after(self, start: float) -> dict[str, float]:
        """Each stage's first time at or after `start`, in ms from it."""
        marks: dict[str, float] = {}
        for name, at in self.times:
            if at >= start:
                marks.setdefault(name, round((at - start) * 1000, 1))
        return marks

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if not isinstance(frame, self.WATCHED):
            return
        self.times.append((type(frame).__name__, time.perf_counter()))
        if isinstance(frame, TranscriptionFrame):
            self.transcripts.append(frame.text.strip())
        elif isinstance(frame, LLMFullResponseStartFrame):
            self.reply = ""  # an earlier response of this turn was cut off
        elif isinstance(frame, LLMTextFrame):
            self.reply += frame.text
        if isinstance(frame, BotStoppedSpeakingFrame):
            # Over once the last response has ended and its audio has all been played.
            names = [name for name, _ in self.times]
            starts = [i for i, name in enumerate(names) if name == "LLMFullResponseStartFrame"]
            last = set(names[starts[-1] :]) if starts else set()
            if {"LLMFullResponseEndFrame", "TTSAudioRawFrame"} <= last:
                self.done.set()


class Feeder:
    """Pushes 20 ms frames into the input transport, silence when there is nothing to say.

    Frames go at real time, or ten times faster for a recording handed over whole (`fast`):
    pipecat's VAD sits in the user aggregator, after the STT, and its start/stop frames travel
    back up to the STT, so frames pushed all in one go would reach the STT before the VAD
    has cut them into a segment.
    """

    def __init__(self, transport: FeedInput) -> None:
        self.transport = transport
        self._queue: list[tuple[bytes, bool, bool]] = []  # (frame, marked, fast)
        self.marked_sent: float | None = None

    def say(self, frames: list[bytes], marked: int, *, fast: bool = False) -> None:
        """Queue frames; the time `frames[marked]` is pushed is kept in `marked_sent`."""
        self.marked_sent = None
        self._queue.extend((f, i == marked, fast) for i, f in enumerate(frames))

    async def run(self) -> None:
        start = time.perf_counter()
        tick = 0
        while True:
            audio, marked, fast = self._queue.pop(0) if self._queue else (SILENCE, False, False)
            frame = InputAudioRawFrame(audio=audio, sample_rate=IN_RATE, num_channels=1)
            await self.transport.push_audio_frame(frame)
            if marked:
                self.marked_sent = time.perf_counter()
            tick += 1
            wait = start + tick * (FRAME_S / 10 if fast else FRAME_S) - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if fast or wait <= 0:  # re-base the clock (after a fast stretch, or a busy core)
                start, tick = time.perf_counter(), 0


def frames_of(path: str) -> list[bytes]:
    """A PCM16 file as 20 ms frames (the last one padded with silence)."""
    pcm = Path(path).read_bytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


class Bot:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.context = LLMContext()
        stop_secs = config.get("vad_stop_secs")
        vad_params = VADParams(stop_secs=stop_secs) if stop_secs is not None else VADParams()
        self.vad_stop_secs = vad_params.stop_secs
        aggregators = LLMContextAggregatorPair(
            self.context,
            user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer(params=vad_params)),
        )
        self.input = FeedInput(TransportParams(audio_in_enabled=True, audio_in_sample_rate=IN_RATE))
        self.output = ProbeOutput(
            TransportParams(audio_out_enabled=True, audio_out_sample_rate=OUT_RATE)
        )
        stt = WhisperSTTService(
            device="cpu",
            compute_type=config["stt_compute_type"],
            settings=WhisperSTTService.Settings(model=config["stt_model"], language=Language.PT),
        )
        llm = OpenAILLMService(
            base_url=config["llm_url"],
            api_key="none",
            settings=OpenAILLMService.Settings(
                model=config["llm_model"],
                system_instruction=config["system_prompt"],
                max_tokens=config["llm_max_tokens"],
                temperature=config["llm_temperature"],
            ),
        )
        tts = KokoroTTSService(
            model_path=config["kokoro_model"],
            voices_path=config["kokoro_voices"],
            settings=KokoroTTSService.Settings(
                voice=config["voice"], language=Language.PT_BR, speed=config.get("tts_speed", 1.0)
            ),
        )
        pipeline = Pipeline(
            [
                self.input,
                stt,
                aggregators.user(),
                llm,
                tts,
                self.output,
                aggregators.assistant(),
            ]
        )
        self.marks = Marks()
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE, enable_metrics=True
            ),
            observers=[self.marks],
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        self.started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(_worker: Any, _frame: Frame) -> None:
            self.started.set()

        self.feeder = Feeder(self.input)

    async def turn(self, pcm_path: str, mode: str, lead_s: float) -> dict[str, Any]:
        self.context.set_messages([])  # every turn opens a new conversation
        speech = frames_of(pcm_path)
        lead = [SILENCE] * round(lead_s / FRAME_S)
        self.marks.reset()
        self.output.arm()
        if mode == "live":  # marked: the frame that holds the last speech sample
            self.feeder.say(lead + speech, len(lead) + len(speech) - 1)
        else:  # marked: the end of the recording (0.5 s of silence after the speech)
            recording = lead + speech + [SILENCE] * round(0.5 / FRAME_S)
            self.feeder.say(recording, len(recording) - 1, fast=True)
        try:
            await asyncio.wait_for(self.marks.done.wait(), TURN_TIMEOUT_S)
        except TimeoutError:
            logger.warning("turn timed out")
        end = self.feeder.marked_sent
        first = self.output.first_audio
        ttfa = (first - end) * 1000 if first is not None and end is not None else None
        marks = self.marks.after(end) if end is not None else {}
        if ttfa is not None:
            marks["output_write"] = round(ttfa, 1)
        await asyncio.sleep(0.3)  # the tail of the turn (context updates) settles
        return {
            "ttfa_ms": ttfa,
            "marks_ms": marks,
            "responses": sum(name == "LLMFullResponseStartFrame" for name, _ in self.marks.times),
            "transcripts": self.marks.transcripts,
            "reply": self.marks.reply.strip(),
        }


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def main(config: dict[str, Any]) -> None:
    logger.remove()
    logger.add(sys.stderr, level=config.get("log_level", "DEBUG"))
    bot = Bot(config)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(bot.worker)
    running = asyncio.create_task(runner.run())
    await asyncio.wait_for(bot.started.wait(), 120)
    feeding = asyncio.create_task(bot.feeder.run())
    emit(
        {
            "event": "ready",
            "vad_stop_secs": bot.vad_stop_secs,
            "pipecat": _version("pipecat-ai"),
        }
    )
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            emit(await bot.turn(command["pcm"], command["mode"], command.get("lead_s", 0.3)))
    finally:
        feeding.cancel()
        await bot.worker.cancel()
        await asyncio.wait_for(running, 30)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
