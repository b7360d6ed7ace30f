"""Server-side turn-taking: Silero VAD run on fixed 32 ms windows as audio arrives, and the
segmenter that turns its probabilities into a turn's moments.

`StreamingVad` carries Silero's recurrent state and each window's 64-sample context from one
call to the next, so feeding audio in any pieces gives exactly the probabilities of one pass
over the whole stream (faster-whisper's `SileroVADModel`, same ONNX model, nothing
downloaded). `Segmenter` is pure: probabilities in, `VadEvent`s out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from parle.audio import STT_SAMPLE_RATE, FloatAudio

WINDOW = 512  # samples at 16 kHz: 32 ms, Silero's window
_CONTEXT = 64


class StreamingVad:
    """Silero VAD probabilities for a stream, one per complete 32 ms window."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session  # shared, loaded once per process
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)

    def __call__(self, audio: FloatAudio) -> list[float]:
        """The probabilities of the windows `audio` completes (blocking: call off the loop)."""
        audio = np.concatenate([self._rest, audio]) if self._rest.size else audio
        whole = audio.size - audio.size % WINDOW
        self._rest = audio[whole:].copy()
        if not whole:
            return []
        windows = audio[:whole].reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None], windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        rows = np.concatenate([contexts, windows], axis=1).astype(np.float32)
        out, self._h, self._c = self._session.run(None, {"input": rows, "h": self._h, "c": self._c})
        return [float(p) for p in np.asarray(out).reshape(-1)]


@dataclass(frozen=True)
class VadEvent:
    """`start`: speech began at `sample`; `pause`: it stopped at `sample` and the silence has
    lasted the speculation delay; `resume`: speech again after a pause; `end`: the silence
    lasted the endpointing delay (the turn is over; `sample` is where speech stopped)."""

    kind: Literal["start", "pause", "resume", "end"]
    sample: int


@dataclass
class SegmenterConfig:
    threshold: float = 0.5
    silence_ms: int = 1000  # the endpointing delay
    speculation_ms: int = 200  # silence before a reply may be started speculatively
    start_ms: int = 96  # speech this long starts a turn (a click does not)
    resume_ms: int = 64  # speech this long after a pause resumes the turn
    max_turn_ms: int = 60_000  # a turn this long ends, whatever the VAD says

    @property
    def negative(self) -> float:
        # Silero's hysteresis: speech goes on until the probability drops well below.
        return max(self.threshold - 0.15, 0.01)


def _windows(ms: int) -> int:
    return max(1, -(-ms * STT_SAMPLE_RATE // 1000 // WINDOW))


class Segmenter:
    """A turn's moments from per-window speech probabilities (window i = samples
    [i * 512, (i + 1) * 512) of the session's stream)."""

    def __init__(self, config: SegmenterConfig) -> None:
        self.config = config
        self.window = 0  # index of the next window
        self.speaking = False
        self._run = 0  # consecutive speech windows (before a start, or during a silence)
        self._silence = 0  # windows of silence since speech stopped
        self._speech_end = 0
        self._turn_start = 0
        self._paused = False

    def reset(self) -> None:
        self.speaking = False
        self._run = self._silence = 0
        self._paused = False

    def feed(self, probabilities: list[float]) -> list[VadEvent]:
        events: list[VadEvent] = []
        c = self.config
        for p in probabilities:
            index = self.window
            self.window += 1
            if not self.speaking:
                self._run = self._run + 1 if p >= c.threshold else 0
                if self._run >= _windows(c.start_ms):
                    self.speaking = True
                    self._turn_start = (index - self._run + 1) * WINDOW
                    self._run = self._silence = 0
                    self._paused = False
                    events.append(VadEvent("start", self._turn_start))
                continue
            if (index + 1) * WINDOW - self._turn_start >= c.max_turn_ms * STT_SAMPLE_RATE // 1000:
                end = (index + 1) * WINDOW if not self._silence else self._speech_end
                events.append(VadEvent("end", end))
                self.reset()
                continue
            if not self._silence:
                if p < c.negative:
                    self._silence = 1
                    self._run = 0
                    self._speech_end = index * WINDOW
                else:
                    continue
            else:
                self._run = self._run + 1 if p >= c.threshold else 0
                if self._run >= _windows(c.resume_ms):
                    if self._paused:
                        events.append(VadEvent("resume", index * WINDOW))
                    self._silence = self._run = 0
                    self._paused = False
                    continue
                self._silence += 1
            if not self._paused and self._silence >= _windows(c.speculation_ms):
                self._paused = True
                events.append(VadEvent("pause", self._speech_end))
            if self._silence >= _windows(c.silence_ms):
                events.append(VadEvent("end", self._speech_end))
                self.reset()
        return events
