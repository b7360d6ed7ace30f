"""Role-play lessons ("scenarios") as data: one YAML file per lesson in this folder, shipped
with the package. Each names the setting, the tutor's role, the learner's goals, the target
vocabulary, the level range it suits, and the lines that open and close it.

A session that follows a scenario gets `scenario_note` as its context note
(`SessionMemory.notes["scenario"]`, after the system prompt): fixed for the session, so the
LLM server's prefix cache keeps hitting.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import yaml

from parle.errors import ParleError
from parle.tutor.levels import LEVELS, level_index


class UnknownScenarioError(ParleError):
    """A client named a scenario that does not exist."""

    code = "bad_scenario"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    level_min: str
    level_max: str
    setting: str
    role: str
    goals: tuple[str, ...]
    vocabulary: tuple[str, ...]
    opener: str
    closer: str

    def suits(self, level: str) -> bool:
        """Whether a learner at `level` is within this lesson's range."""
        return level_index(self.level_min) <= level_index(level) <= level_index(self.level_max)

    def as_dict(self) -> dict[str, Any]:
        """The public shape (`GET /api/scenarios`)."""
        fields = asdict(self)
        fields["levels"] = [self.level_min, self.level_max]
        del fields["level_min"], fields["level_max"]
        fields["goals"] = list(self.goals)
        fields["vocabulary"] = list(self.vocabulary)
        return fields


def _text(data: dict[str, Any], key: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source}: '{key}' must be a non-empty text")
    return " ".join(value.split())


def _texts(data: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{source}: '{key}' must be a non-empty list of texts")
    return tuple(" ".join(v.split()) for v in value)


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """One scenario from its YAML; a missing or malformed field is a `ValueError` naming it."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a scenario is a mapping")
    levels = data.get("levels")
    if (
        not isinstance(levels, list)
        or len(levels) != 2
        or not all(isinstance(level, str) and level.upper() in LEVELS for level in levels)
        or level_index(levels[0].upper()) > level_index(levels[1].upper())
    ):
        raise ValueError(f"{source}: 'levels' must be [lowest, highest], each one of A1..C2")
    return Scenario(
        id=_text(data, "id", source),
        title=_text(data, "title", source),
        level_min=levels[0].upper(),
        level_max=levels[1].upper(),
        setting=_text(data, "setting", source),
        role=_text(data, "role", source),
        goals=_texts(data, "goals", source),
        vocabulary=_texts(data, "vocabulary", source),
        opener=_text(data, "opener", source),
        closer=_text(data, "closer", source),
    )


@functools.cache
def scenarios() -> dict[str, Scenario]:
    """Every shipped scenario by id, in title order (read once; the files are package data)."""
    found = []
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".yaml"):
            found.append(parse_scenario(entry.read_text("utf-8"), entry.name))
    ids = [scenario.id for scenario in found]
    if len(set(ids)) != len(ids):
        raise ValueError("two scenarios share an id")
    return {s.id: s for s in sorted(found, key=lambda s: (level_index(s.level_min), s.title))}


def get_scenario(scenario_id: str) -> Scenario:
    """The scenario `scenario_id`; `UnknownScenarioError` when there is none."""
    found = scenarios().get(scenario_id.strip().lower())
    if found is None:
        raise UnknownScenarioError(
            f"Unknown scenario; available: {', '.join(scenarios())}.",
        )
    return found


def scenario_note(scenario: Scenario) -> str:
    """What the LLM is told about the lesson, after its system prompt: the role to keep, the
    goals to steer toward and the words to bring in."""
    goals = "; ".join(scenario.goals)
    words = ", ".join(scenario.vocabulary)
    return (
        f'Aula de hoje: a simulação "{scenario.title}". Cenário: {scenario.setting} '
        f"Seu papel: {scenario.role} Fique sempre nesse papel: fale como essa pessoa, na cena, "
        f"sem dizer que é uma simulação. Conduza a conversa, uma etapa por vez, para que o "
        f"aluno consiga: {goals}. Use com naturalidade, e leve o aluno a usar, estas "
        f"palavras: {words}. Continue corrigindo como combinado, sem sair da cena. "
        f'Você abriu a cena dizendo: "{scenario.opener}"'
    )
