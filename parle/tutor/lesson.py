"""A session's lesson: the scenario it follows, the corrections made so far (for the closing
recap), the learner's speaking-speed steps, and the last reply's speech (for "repete").

One `Lesson` per session: the server keeps it on `SessionMemory.lesson`, the LiveKit
`TutorAgent` on itself. Pure state and texts: the doors do the speaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parle.audio import AudioChunk
from parle.tutor.commands import speed_of
from parle.tutor.corrections import Correction
from parle.tutor.scenarios import Scenario, get_scenario, scenario_note

MAX_CORRECTIONS = 20  # kept per lesson; the recap names the last few
RECAP_CORRECTIONS = 3
# A reply's speech is cached for "repete" up to this long (24 kHz PCM16: 48 KB a second);
# a longer one is spoken again from its text instead.
MAX_REPLAY_SECONDS = 30.0

GENERIC_CLOSER = "Foi ótimo conversar com você hoje!"
FAREWELL = "Até a próxima!"


@dataclass
class SpokenReply:
    """The tutor's last reply: its text and, once wholly spoken, its audio and how it was
    spoken (a replay must sound as the learner asked: same voice, same speed)."""

    text: str
    chunks: list[AudioChunk] = field(default_factory=list)
    voice: str | None = None
    speed: float | None = None
    complete: bool = False
    seconds: float = 0.0

    def add(self, chunk: AudioChunk) -> None:
        self.seconds += chunk.duration_s
        if self.seconds <= MAX_REPLAY_SECONDS:
            self.chunks.append(chunk)
        else:
            self.chunks.clear()  # too long to keep: "repete" synthesizes it again

    def replayable(self, voice: str | None, speed: float | None) -> bool:
        return self.complete and bool(self.chunks) and (voice, speed) == (self.voice, self.speed)


class Lesson:
    """One session's lesson state."""

    def __init__(self) -> None:
        self.scenario: Scenario | None = None
        self.chosen: str | None = None  # the scenario id the client asked for last
        self.corrections: list[Correction] = []
        self.speed_steps = 0
        self.last_reply: SpokenReply | None = None
        self._speaking: SpokenReply | None = None

    # --- the scenario ---------------------------------------------------------------------

    def wants(self, scenario_id: str | None) -> bool:
        """Whether a client naming `scenario_id` (None: none named) starts a scenario now."""
        return scenario_id is not None and scenario_id.strip().lower() != self.chosen

    def start(self, scenario_id: str, notes: dict[str, str]) -> Scenario:
        """Start the scenario `scenario_id` (`UnknownScenarioError` if none): its note goes
        into the session's context `notes`, the corrections start afresh."""
        scenario = get_scenario(scenario_id)
        self.scenario, self.chosen = scenario, scenario.id
        self.corrections.clear()
        notes["scenario"] = scenario_note(scenario)
        return scenario

    def end(self, notes: dict[str, str]) -> str:
        """The closing line (the scenario's closer, a recap of the lesson's corrections, a
        farewell); the role-play stops and the corrections start afresh."""
        closer = self.scenario.closer if self.scenario else GENERIC_CLOSER
        text = f"{closer} {recap(self.corrections)} {FAREWELL}"
        self.scenario = None  # `chosen` stays: the same id sent again does not restart it
        notes.pop("scenario", None)
        self.corrections.clear()
        return text

    def record(self, correction: Correction) -> None:
        self.corrections.append(correction)
        del self.corrections[:-MAX_CORRECTIONS]

    # --- speed ----------------------------------------------------------------------------

    def speed(self, base: float) -> float:
        """The speaking speed now: the level's (or the client's) `base`, moved by the
        learner's "slower"/"faster"."""
        return speed_of(base, self.speed_steps)

    def step(self, base: float, direction: int) -> bool:
        """One step slower (-1) or faster (+1); False when already at the limit."""
        before = self.speed(base)
        self.speed_steps += direction
        if self.speed(base) == before:
            self.speed_steps -= direction
            return False
        return True

    # --- the last reply's speech ----------------------------------------------------------

    def speaking(self, voice: str | None, speed: float | None) -> SpokenReply:
        """A reply starts being spoken: its audio is collected as it goes."""
        self._speaking = SpokenReply("", voice=voice, speed=speed)
        return self._speaking

    def heard(self, chunk: AudioChunk) -> None:
        """A chunk of the reply being spoken went out."""
        if self._speaking is not None:
            self._speaking.add(chunk)

    def spoken(self, text: str, *, complete: bool) -> None:
        """The reply being spoken has ended (`complete`: all of its audio went out)."""
        reply, self._speaking = self._speaking, None
        if not text.strip():
            return
        reply = reply or SpokenReply("")
        reply.text, reply.complete = text.strip(), complete
        self.last_reply = reply


def recap(corrections: list[Correction]) -> str:
    """A short spoken recap of the lesson's corrections (the last few)."""
    if not corrections:
        return "Hoje você não precisou de nenhuma correção. Parabéns!"
    shown = corrections[-RECAP_CORRECTIONS:]
    items = "; ".join(f"em vez de {c.original}, diga {c.corrected}" for c in shown)
    if len(corrections) == 1:
        return f"Uma dica para lembrar de hoje: {items}."
    return f"Para lembrar de hoje: {items}."
