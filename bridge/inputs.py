"""Checks on what a client sends, shared by every door: a bad value is a 4xx naming it."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from bridge.errors import ApiError
from parle.turn import TurnOptions
from parle.tutor.levels import LEVELS

_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z]{2})?")


async def read_audio_form(request: Request, field: str, alias: str) -> tuple[bytes, FormData]:
    """The audio upload of a multipart request (in `field`, or `alias`) and the whole form."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, f"Send the audio as multipart/form-data (field '{field}').", "bad_type")
    form = await request.form(max_files=2, max_fields=16, max_part_size=64 * 1024)
    upload = form.get(field) or form.get(alias)
    if not isinstance(upload, UploadFile):
        raise ApiError(400, f"The multipart field '{field}' is required.", "no_audio")
    return await upload.read(), form


def form_text(form: FormData, name: str) -> str | None:
    """A text field of a form, stripped; None when absent, empty or a file."""
    value = form.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


def check_session_id(value: str | None) -> str:
    """A client's session id, or a new one when it sent none."""
    if not value:
        return uuid.uuid4().hex
    if not _SESSION_ID.fullmatch(value):
        raise ApiError(
            422,
            "session_id may use letters, digits and . _ : - (at most 128 characters).",
            "bad_session_id",
        )
    return value


def check_level(level: str | None) -> str | None:
    if level is None:
        return None
    if level.upper() not in LEVELS:
        raise ApiError(422, f"level must be one of {', '.join(LEVELS)}.", "bad_level")
    return level.upper()


def check_options(
    *,
    voices: list[str],
    languages: frozenset[str],
    voice: str | None,
    level: str | None,
    language: str | None,
    speed: float | None = None,
) -> TurnOptions:
    """Validate a client's per-turn choices against what the engines offer; a bad one is a
    422 naming the field."""
    checked_level = check_level(level)
    if voice and voices and voice not in voices:
        raise ApiError(422, f"Unknown voice; available: {', '.join(voices)}.", "bad_voice")
    if speed is not None and not 0.5 <= speed <= 2.0:
        raise ApiError(422, "speed must be between 0.5 and 2.0.", "bad_speed")
    stt_language = None
    if language is not None:
        if not _LANGUAGE.fullmatch(language):
            raise ApiError(422, "language must be a code such as pt or pt-BR.", "bad_language")
        stt_language = re.split(r"[-_]", language)[0]
        if languages and stt_language not in languages:
            raise ApiError(
                422,
                "language: speech recognition does not know this language (use a code such "
                "as pt, en, es).",
                "bad_language",
            )
    return TurnOptions(voice=voice or None, speed=speed, level=checked_level, language=stt_language)
