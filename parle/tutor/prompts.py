"""The tutor's instructions. The system prompt stays byte-identical across a session's turns
so the LLM server's prefix cache hits; the per-turn reminder pins the language, because small
models drift into English.
"""

from __future__ import annotations

from collections.abc import Sequence

from parle.engines.base import ChatMessage

SYSTEM_PROMPT = (
    "Você é a Parle, uma professora de português brasileiro paciente e calorosa. "
    "Você conversa por voz com um aluno estrangeiro. "
    "Responda sempre em português do Brasil, com frases curtas e naturais para serem faladas: "
    "no máximo três frases, sem listas, sem markdown e sem emojis. "
    "Se o aluno errar, repita a ideia dele de forma correta, com naturalidade, "
    "corrigindo no máximo um erro por vez. "
    "Termine com uma pergunta simples para o aluno continuar falando."
)

LEVEL_NOTES = {
    "A1": "O aluno é iniciante (A1): use palavras muito simples e o presente.",
    "A2": "O aluno é básico (A2): use frases simples, presente e passado.",
    "B1": "O aluno é intermediário (B1): fale com naturalidade, frases de tamanho médio.",
    "B2": "O aluno é intermediário avançado (B2): fale com naturalidade e variedade.",
    "C1": "O aluno é avançado (C1): fale como com um falante fluente.",
    "C2": "O aluno é proficiente (C2): fale como com um falante nativo.",
}


def turn_reminder(level: str) -> str:
    return f"(Nível {level}. Responda só em português do Brasil, em até três frases curtas.)"


def build_messages(
    history: Sequence[ChatMessage], user_text: str, *, level: str = "A2"
) -> list[ChatMessage]:
    """System prompt, the session's history, the learner's words, then the reminder.

    The reminder is a system message of its own after the learner's words: appended to the
    user's text, small models read it back aloud.
    """
    return [
        {"role": "system", "content": system_prompt(level)},
        *history,
        {"role": "user", "content": user_text},
        {"role": "system", "content": turn_reminder(level)},
    ]


def system_prompt(level: str) -> str:
    return f"{SYSTEM_PROMPT} {LEVEL_NOTES.get(level, LEVEL_NOTES['A2'])}"
