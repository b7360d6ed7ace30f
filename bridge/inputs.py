"""Checks on what a client sends, shared by every door: a bad value is a 4xx naming it."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from bridge.errors import ApiError
from parle.tenants import DEFAULT_TENANT, ID_PATTERN
from parle.turn import TurnOptions
from parle.tutor.levels import LEVELS
from parle.tutor.scenarios import UnknownScenarioError, get_scenario

_SESSION_ID = re.compile(ID_PATTERN)
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


async def read_lesson_form(
    request: Request, field: str, alias: str
) -> tuple[bytes | None, FormData]:
    """As `read_audio_form`, except that a request ending the lesson (`end`) may come without
    audio (a button, not words): then the audio is None."""
    try:
        return await read_audio_form(request, field, alias)
    except ApiError as exc:
        if exc.code != "no_audio":
            raise
        form = await request.form()  # already parsed: Starlette keeps it
        if not form_flag(form, "end"):
            raise
        return None, form


def form_flag(form: FormData, name: str) -> bool:
    """A yes/no form field (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`); absent = no."""
    value = (form_text(form, name) or "false").lower()
    if value not in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        raise ApiError(422, f"{name} must be true or false.", f"bad_{name}")
    return value in ("true", "1", "yes", "on")


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


def check_learner_id(value: str | None) -> str | None:
    """A client's learner id (the session-id rules), or None: an anonymous session."""
    if not value:
        return None
    if not _SESSION_ID.fullmatch(value):
        raise ApiError(
            422,
            "learner_id may use letters, digits and . _ : - (at most 128 characters).",
            "bad_learner_id",
        )
    return value


def check_scenario(value: str | None) -> str | None:
    """A scenario id (`GET /api/scenarios`), or None: no role-play."""
    if not value:
        return None
    try:
        return get_scenario(value).id
    except UnknownScenarioError as exc:
        raise ApiError(422, str(exc), "bad_scenario") from None


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
    learner_id: str | None = None,
    scenario: str | None = None,
    tenant: str = DEFAULT_TENANT,
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
    return TurnOptions(
        voice=voice or None,
        speed=speed,
        level=checked_level,
        language=stt_language,
        learner_id=check_learner_id(learner_id),
        scenario=check_scenario(scenario),
        tenant=tenant,
    )
