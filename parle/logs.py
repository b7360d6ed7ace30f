"""Structured (JSON lines) logging. A learner's words are only ever logged at DEBUG.

Every line on stderr is one JSON object: PARLE's own loggers and uvicorn's (`uvicorn.error`,
`uvicorn.access`) go through the same formatter (`logging_config`, which `parle serve` hands
to uvicorn). API keys a client put in a URL (`?api_key=`) are blanked out of every line.
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


def redact(text: str) -> str:
    """`text` with the value of every `api_key=` query parameter blanked out."""
    return _API_KEY_IN_URL.sub(r"\g<1>" + REDACTED, text)


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
                entry[key] = redact(value) if isinstance(value, str) else value
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
