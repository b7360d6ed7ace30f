"""The tutor's instructions. The system prompt is a pure function of (level, region), so it
stays byte-identical across a session's turns and the LLM server's prefix cache hits; the
per-turn reminder pins the language, because small models drift into English."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from parle.engines.base import ChatMessage
from parle.tutor.corrections import MARKERS
from parle.tutor.levels import CorrectionStrategy, policy_for

Region = Literal["BR", "PT"]

_PERSONA = {
    "BR": (
        "Você é a Parle, uma professora de português do Brasil, paciente e calorosa. "
        "Você conversa por voz com um aluno estrangeiro e fala sempre em português do Brasil, "
        "com vocabulário brasileiro (ônibus, trem, celular, café da manhã)."
    ),
    "PT": (
        "Você é a Parle, uma professora de português europeu, paciente e calorosa. "
        "Conversa por voz com um aluno estrangeiro e fala sempre em português de Portugal, "
        "com vocabulário português (autocarro, comboio, telemóvel, pequeno-almoço)."
    ),
}

_SPOKEN_STYLE = (
    "Suas respostas são faladas em voz alta: de uma a três frases curtas, sem listas, sem "
    "markdown, sem emojis e sem traduções. Termine sempre com uma pergunta simples para o "
    "aluno continuar falando."
)

LEVEL_RULES = {
    "A1": (
        "O aluno é iniciante (A1). Use só palavras muito frequentes e o presente do indicativo. "
        "Frases de até oito palavras. Fale um pouco acima do nível dele, nunca muito."
    ),
    "A2": (
        "O aluno é básico (A2). Use palavras do dia a dia, presente, pretérito perfeito e "
        "futuro com 'ir'. Frases de até doze palavras, um pouco acima do nível dele."
    ),
    "B1": (
        "O aluno é intermediário (B1). Use vocabulário variado, pretérito imperfeito e "
        "conectivos como 'porque', 'quando', 'então'. Frases de tamanho médio."
    ),
    "B2": (
        "O aluno é intermediário avançado (B2). Fale com naturalidade, use o subjuntivo e "
        "expressões idiomáticas comuns, um pouco acima do nível dele."
    ),
    "C1": (
        "O aluno é avançado (C1). Fale como com um falante fluente: vocabulário preciso, "
        "todos os tempos verbais, nuances e registro."
    ),
    "C2": (
        "O aluno é proficiente (C2). Fale como com um falante nativo culto, com expressões "
        "idiomáticas e referências culturais."
    ),
}

# One rule per correction strategy; which strategy a level gets is the level's policy.
CORRECTION_RULES: dict[CorrectionStrategy, str] = {
    "recast": (
        "Se o aluno errar, repita a ideia dele corretamente dentro da sua resposta, com "
        "naturalidade, sem falar de gramática (reformulação)."
    ),
    "hint": (
        "Se o aluno errar, repita a forma correta com naturalidade e, se ajudar, dê uma pista "
        "curta para ele mesmo perceber o erro."
    ),
    "explicit": (
        "Se o aluno errar, diga de forma gentil e explícita qual é a forma correta, em uma "
        "frase curta."
    ),
    "note": (
        "Se o aluno errar, corrija explicitamente com uma nota gramatical curta (por exemplo, "
        "o nome do tempo verbal ou da regra)."
    ),
}

_ONE_CORRECTION = (
    "Corrija no máximo um erro por vez, o mais importante. Quando corrigir, depois da "
    f"resposta falada escreva numa linha só: {MARKERS[0]}"
    '{"original": "o que o aluno disse", "corrected": "a forma correta", '
    '"explanation": "explicação curta", "kind": "grammar"}'
    f"{MARKERS[0].replace('<', '</')} . Esse bloco nunca é falado. Se não houver erro, "
    "não escreva o bloco."
)


def system_prompt(level: str, region: Region = "BR") -> str:
    """The whole system prompt for a level and region (deterministic: prefix-cache friendly)."""
    level = level.upper() if level.upper() in LEVEL_RULES else "A2"
    return " ".join(
        (
            _PERSONA[region],
            _SPOKEN_STYLE,
            LEVEL_RULES[level],
            CORRECTION_RULES[policy_for(level).correction],
            _ONE_CORRECTION,
        )
    )


def turn_reminder(level: str, region: Region = "BR") -> str:
    """The per-turn system message after the learner's words: it pins the language."""
    language = "português do Brasil" if region == "BR" else "português de Portugal"
    return f"(Nível {level.upper()}. Responda só em {language}, em até três frases curtas.)"


def build_messages(
    history: Sequence[ChatMessage],
    user_text: str,
    *,
    level: str = "A2",
    region: Region = "BR",
    context: Sequence[str] = (),
    hint: str | None = None,
) -> list[ChatMessage]:
    """System prompt, the session's context notes, its history, the learner's words, the
    reminder, then this turn's correction `hint` (`parle.tutor.grammar.hint`) if any.

    The system prompt depends only on (level, region): byte-identical across sessions, so the
    LLM server's prefix cache always covers it. `context` (what this session adds: the
    learner's profile, the lesson's scenario) follows it as one system message, fixed for the
    session. The reminder is a system message of its own after the learner's words (appended
    to the user's text, small models read it back aloud), and it stays after each of the
    history's learner messages too: a request then starts with the whole previous request,
    and the server's cache, which holds that request and the reply it generated, covers
    everything up to the new words. Without the past reminders the previous request diverged
    where its reminder was, and the last reply was prefilled again on every turn (SmolLM2 on
    the `cpu` profile, turns 2-4: first token 483-582 ms, 319-337 ms with them;
    bench/bench_history_cache.py). The hint comes last and is never kept in the history: it
    costs the next request a re-prefill of this reply only, on a turn with an error.
    """
    notes: list[ChatMessage] = (
        [{"role": "system", "content": "\n\n".join(context)}] if context else []
    )
    reminder: ChatMessage = {"role": "system", "content": turn_reminder(level, region)}
    past: list[ChatMessage] = []
    for message in history:
        past.append(message)
        if message["role"] == "user":
            past.append(reminder)
    steer: list[ChatMessage] = [{"role": "system", "content": hint}] if hint else []
    return [
        {"role": "system", "content": system_prompt(level, region)},
        *notes,
        *past,
        {"role": "user", "content": user_text},
        reminder,
        *steer,
    ]
