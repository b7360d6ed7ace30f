"""Real-time voice I/O for an in-process `AgentSession`: a learner's microphone that plays clips
as 20 ms frames at the pace of a real microphone, and a loudspeaker that plays out in real time
and records what it got. They stand in for LiveKit's room audio (RoomIO), which needs a server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import io

from parle.audio import decode_audio

RATE = 16_000
FRAME = RATE // 50  # 20 ms


class LearnerMicrophone(io.AudioInput):
    """Real-time 20 ms frames: silence, or the clips handed to `say`, in order."""

    def __init__(self) -> None:
        super().__init__(label="learner")
        self._pending = np.zeros(0, dtype=np.int16)
        self._next = time.monotonic()

    def say(self, clip: Path) -> float:
        audio = (decode_audio(clip.read_bytes()) * 32767).astype(np.int16)
        self._pending = np.concatenate([self._pending, audio])
        return audio.size / RATE

    async def __anext__(self) -> rtc.AudioFrame:
        self._next += FRAME / RATE
        await asyncio.sleep(max(0.0, self._next - time.monotonic()))
        chunk, self._pending = self._pending[:FRAME], self._pending[FRAME:]
        if chunk.size < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - chunk.size, dtype=np.int16)])
        return rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME)


class Speaker(io.AudioOutput):
    """Plays out in real time, as a loudspeaker would (a frame that arrives late plays late),
    and records every frame."""

    def __init__(self) -> None:
        super().__init__(
            label="speaker", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=None
        )
        self.frames: list[rtc.AudioFrame] = []
        self.interrupted = 0
        self._pushed = 0.0
        self._started = 0.0
        self._ends = 0.0  # when the queued audio will have played
        self._cleared = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        now = time.monotonic()
        if not self._pushed:
            self._started = self._ends = now
            self.on_playback_started(created_at=time.time())
        self._pushed += frame.duration
        self._ends = max(self._ends, now) + frame.duration
        self.frames.append(frame)

    def flush(self) -> None:
        super().flush()
        if self._pushed:
            self._cleared.clear()
            self._task = asyncio.create_task(
                self._play_out(self._pushed, self._started, self._ends)
            )
            self._pushed = 0.0

    def clear_buffer(self) -> None:
        self._cleared.set()
        if self._pushed:  # cleared before its flush: the segment ends here, interrupted
            position = min(self._pushed, time.monotonic() - self._started)
            self._pushed = 0.0
            self.interrupted += 1
            self.on_playback_finished(playback_position=position, interrupted=True)

    async def _play_out(self, duration: float, started: float, ends: float) -> None:
        remaining = max(0.0, ends - time.monotonic())
        try:
            await asyncio.wait_for(self._cleared.wait(), remaining)
            interrupted = True
        except TimeoutError:
            interrupted = False
        position = min(duration, time.monotonic() - started)
        self.interrupted += interrupted
        self.on_playback_finished(playback_position=position, interrupted=interrupted)
