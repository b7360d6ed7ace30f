"""Typed errors whose messages are safe to show a client: no paths, no internals.

Every engine failure reaches a door as an `EngineError` subclass (the pipeline wraps anything
else an engine raises), so each door can answer it with a stable `code` and keep serving.
"""

from __future__ import annotations


class ParleError(Exception):
    """Base of every error PARLE reports to a client; `code` is stable, `str()` is readable."""

    code = "internal"


class AudioInputError(ParleError):
    """The client's audio cannot be used (undecodable, empty, too short, too long)."""

    code = "bad_audio"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        # One of: empty, undecodable, too_short, too_long, too_large.
        self.reason = reason


class EngineError(ParleError):
    """A model or model server could not serve a request."""

    code = "engine"


class EngineUnavailableError(EngineError):
    """An engine is not loaded, or its server does not answer: try again later."""

    code = "engine_unavailable"


class LlmUnavailableError(EngineUnavailableError):
    """The LLM server does not answer or answered with an error."""

    code = "llm_unavailable"


class EngineFailedError(EngineError):
    """An engine raised while serving a request; `stage` says which one (stt, llm, tts)."""

    code = "engine_failed"

    def __init__(self, message: str, *, stage: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.code = f"{stage}_failed"


class EngineInputError(EngineError):
    """The request asks an engine for something it cannot do (an unknown voice, a language
    the STT does not know, a text longer than the model takes)."""

    code = "engine_bad_input"


class LlmContextError(EngineInputError):
    """The prompt is over the LLM's context window (the server refused it): the turn's words,
    with whatever history is left, are too long for the model."""

    code = "llm_context_exceeded"


class EngineTimeoutError(EngineError):
    """An engine took longer than its time limit; the work was stopped."""

    code = "timeout"


class GrammarUnavailableError(EngineUnavailableError):
    """The grammar checker (LanguageTool) does not answer, answered with an error or took too
    long. Never fails a turn: the turn goes on with PARLE's own rules and the LLM's block."""

    code = "grammar_unavailable"
