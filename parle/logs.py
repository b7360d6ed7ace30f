"""Structured (JSON lines) logging. A learner's words are only ever logged at DEBUG.

Every line on stderr is one JSON object: PARLE's own loggers and uvicorn's (`uvicorn.error`,
`uvicorn.access`) go through the same formatter (`logging_config`, which `parle serve` hands
to uvicorn; the agent worker's LiveKit handler gets it too). API keys a client put in a URL
(`?api_key=`) and phone numbers (a caller's number is in the room name LiveKit's SIP bridge
makes, which the framework logs) are blanked out of every line.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# uvicorn adds an ANSI-coloured copy of some messages; it says nothing the event does not.
_DROPPED = {"color_message"}
# `api_key=VALUE` in a query string (uvicorn logs request paths with their query).
_API_KEY_IN_URL = re.compile(r"(?i)(api_key=)[^&\s\"']*")
REDACTED = "[redacted]"
# A phone number as telephony writes it: 9 to 15 digits in a row, maybe after a "+" (E.164).
_PHONE_NUMBER = re.compile(r"\+?(?<!\d)\d{9,15}(?!\d)")
NUMBER_REDACTED = "[number]"
# The fields every line has; a record's extra field of the same name is renamed, not lost.
_OWN_FIELDS = ("ts", "level", "logger", "event")


def redact(text: str) -> str:
    """`text` with the value of every `api_key=` query parameter and every phone number
    blanked out."""
    return _PHONE_NUMBER.sub(NUMBER_REDACTED, _API_KEY_IN_URL.sub(r"\g<1>" + REDACTED, text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _DROPPED:
                name = f"{key}_" if key in _OWN_FIELDS else key
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a traceback spans many lines and may hold a learner's words.
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str = "WARNING") -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration: one JSON-lines handler on stderr at
    `level`, which uvicorn's loggers reach too (they keep no handler of their own)."""
    uvicorn_loggers = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {name: {"handlers": [], "propagate": True} for name in uvicorn_loggers},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def configure_logging(level: str = "WARNING") -> None:
    logging.config.dictConfig(logging_config(level))
