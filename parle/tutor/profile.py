"""A returning learner, told to the tutor: a short note placed after the system prompt
(`SessionMemory.notes["learner"]`), fixed for the session so the LLM server's prefix cache
keeps covering the conversation."""

from __future__ import annotations

from dataclasses import dataclass, field

# Keeps the note short: small models lose the thread in long instructions.
MAX_ITEMS = 5
MAX_TOPIC_CHARS = 80


@dataclass(frozen=True)
class Mistake:
    original: str
    corrected: str
    count: int


@dataclass(frozen=True)
class LearnerProfile:
    """What the store knows of a learner, as far as the tutor needs it."""

    learner_id: str
    level: str | None = None
    sessions: int = 0
    facts: dict[str, list[str]] = field(default_factory=dict)  # kind -> values
    mistakes: list[Mistake] = field(default_factory=list)  # recurring ones, most frequent first
    topics: list[str] = field(default_factory=list)  # the last things they said, latest last
    learning: list[str] = field(default_factory=list)  # words new to them, latest first

    @property
    def name(self) -> str | None:
        names = self.facts.get("name")
        return names[0] if names else None


def _join(items: list[str]) -> str:
    return "; ".join(items[:MAX_ITEMS])


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TOPIC_CHARS else text[: MAX_TOPIC_CHARS - 1] + "…"


def learner_note(profile: LearnerProfile) -> str | None:
    """The note for the tutor, in Portuguese (the prompt's language); None for a learner the
    tutor has nothing to know about yet."""
    lines: list[str] = []
    about: list[str] = []
    if profile.name:
        about.append(f"chama-se {profile.name}")
    for kind, phrase in (("country", "é de"), ("city", "mora em"), ("job", "trabalha como")):
        values = profile.facts.get(kind)
        if values:
            about.append(f"{phrase} {values[0]}")
    interests = profile.facts.get("interest")
    if interests:
        about.append("gosta de " + ", ".join(interests[:MAX_ITEMS]))
    if about:
        lines.append("O aluno " + ", ".join(about) + ".")
    if profile.mistakes:
        mistakes = [f'"{m.original}" → "{m.corrected}"' for m in profile.mistakes]
        lines.append("Erros frequentes: " + _join(mistakes) + ".")
    if profile.topics:
        lines.append(
            "Na última conversa ele disse: " + _join([f'"{_short(t)}"' for t in profile.topics])
        )
    if profile.learning:
        lines.append("Palavras que está aprendendo: " + ", ".join(profile.learning[:8]) + ".")
    if not lines:
        return None
    heading = (
        "Você já conversou com este aluno "
        f"({profile.sessions} {'conversa' if profile.sessions == 1 else 'conversas'}). "
        "Use o que sabe dele com naturalidade, sem repetir tudo, e ajude-o com esses erros."
    )
    return "\n".join([heading, *lines])
