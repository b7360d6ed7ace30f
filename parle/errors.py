"""Typed errors whose messages are safe to show a client: no paths, no internals."""

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
    """A model or model server failed while serving a turn."""

    code = "engine"


class LlmUnavailableError(EngineError):
    """The LLM server does not answer or answered with an error."""

    code = "llm_unavailable"
