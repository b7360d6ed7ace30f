"""Speaking speed without a pitch change, chunk by chunk (WSOLA).

For TTS models with no speed control of their own (Qwen3-TTS): the tutor slows down for
beginners. Each 20 ms output frame is the input segment, near where the speed says it should
be, that best continues the previous one (waveform-similarity overlap-add), so voices keep
their pitch. It runs on a stream: audio is pushed as it comes and what can already be
computed comes back; `flush` gives the rest. Pushing in chunks gives exactly the output of
one push.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]


class TimeStretcher:
    """Plays `speed` times faster (0.85: slower), pitch unchanged, for float mono audio."""

    def __init__(self, speed: float, sample_rate: int, *, frame_ms: float = 20.0) -> None:
        if not 0.25 <= speed <= 4.0:
            raise ValueError("speed must be between 0.25 and 4")
        self.speed = speed
        self.size = 2 * int(sample_rate * frame_ms / 2000)  # even: two halves overlap
        self.hop = self.size // 2
        self.search = self.hop // 2
        # A periodic Hann window: halves overlapping by 50 % sum to one.
        k = np.arange(self.size)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * k / self.size)).astype(np.float32)
        self._input = np.zeros(0, dtype=np.float32)
        self._start = 0  # absolute index of `_input[0]`
        self._received = 0
        self._emitted = 0
        self._frames = 0  # output frames made; the next is read near frames * hop * speed
        self._previous: int | None = None  # absolute start of the last segment used
        self._tail = np.zeros(self.hop, dtype=np.float32)

    def push(self, audio: Audio) -> Audio:
        """Take more input; return the output that is ready."""
        self._input = np.concatenate((self._input, np.asarray(audio, dtype=np.float32)))
        self._received += len(audio)
        out = self._run(final=False)
        self._emitted += len(out)
        return out

    def flush(self) -> Audio:
        """The rest of the output, once the input has ended: as long in all as the input
        at this speed (the padding that let the last frames be read is not played)."""
        out = np.concatenate((self._run(final=True), self._tail))
        self._tail = np.zeros(self.hop, dtype=np.float32)
        out = out[: max(0, round(self._received / self.speed) - self._emitted)]
        self._emitted += len(out)
        return out

    def _run(self, *, final: bool) -> Audio:
        frames = []
        while True:
            nominal = round(self._frames * self.hop * self.speed)
            if final and nominal >= self._received:
                break
            needed = nominal + self.search + self.size
            if self._previous is not None:
                needed = max(needed, self._previous + self.hop + self.size)
            if needed > self._start + len(self._input):
                if not final:
                    break
                padding = needed - self._start - len(self._input)
                self._input = np.concatenate((self._input, np.zeros(padding, np.float32)))
            frames.append(self._frame(nominal))
        self._forget()
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)

    def _segment(self, start: int) -> Audio:
        begin = start - self._start
        return self._input[begin : begin + self.size]

    def _frame(self, nominal: int) -> Audio:
        if self._previous is None:
            start = nominal
        else:
            # The segment that best continues the last one, within `search` of `nominal`.
            target = self._segment(self._previous + self.hop)
            low = max(self._start, nominal - self.search)
            high = nominal + self.search
            region = self._input[low - self._start : high - self._start + self.size]
            scores = np.correlate(region, target, mode="valid")
            start = low + int(np.argmax(scores))
        segment = self._segment(start) * self.window
        out = self._tail + segment[: self.hop]
        self._tail = segment[self.hop :].copy()
        self._previous = start
        self._frames += 1
        return out

    def _forget(self) -> None:
        """Drop input no later frame can read."""
        nominal = round(self._frames * self.hop * self.speed)
        keep_from = nominal - self.search
        if self._previous is not None:
            keep_from = min(keep_from, self._previous + self.hop)
        drop = max(0, keep_from - self._start)
        if drop:
            self._input = self._input[drop:]
            self._start += drop
