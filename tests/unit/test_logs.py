"""PARLE's JSON-lines log format: reserved fields are never overwritten by a record's extras,
API keys and phone numbers never reach a line, and the agent worker writes each record once."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from agent.worker import log_through_livekit_cli
from parle.logs import JsonFormatter, configure_logging


def line(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("agent.worker", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    entry: dict[str, object] = json.loads(JsonFormatter().format(record))
    return entry


def test_an_extra_field_named_like_a_line_field_is_kept_beside_it() -> None:
    entry = line("session starting", level="A2", event="x")
    assert entry["level"] == "info" and entry["event"] == "session starting"
    assert entry["level_"] == "A2" and entry["event_"] == "x"


def test_phone_numbers_and_api_keys_never_reach_a_line() -> None:
    entry = line(
        "received job request for %s", "parle-call-_5521987654321_rESCQFGjo25K",
        room="parle-call-_+5521987654321_x", url="/ws?api_key=secret-1&x=1",
        job_id="AJ_x7Kq", port=7880, bytes="12345678",
    )  # fmt: skip
    text = json.dumps(entry)
    assert "987654321" not in text and "secret-1" not in text
    assert entry["event"] == "received job request for parle-call-_[number]_rESCQFGjo25K"
    assert entry["room"] == "parle-call-_[number]_x"
    assert entry["bytes"] == "12345678" and entry["port"] == 7880  # short numbers stay


def test_livekit_cli_logging_writes_each_record_once_in_parle_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from livekit.agents.cli import cli

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    original = vars(cli)["setup_logging"]
    try:
        configure_logging("INFO")
        log_through_livekit_cli()
        vars(cli)["setup_logging"]("INFO", devmode=False, console=False)  # as `run_app` does
        logging.getLogger("agent.worker").info("session starting", extra={"room": "x"})
        sys.stdout.flush()
        captured = capsys.readouterr()
        lines = [
            json.loads(text)
            for text in (captured.out + captured.err).splitlines()
            if "session starting" in text
        ]
        assert len(lines) == 1 and lines[0]["level"] == "info" and lines[0]["room"] == "x"
    finally:
        vars(cli)["setup_logging"] = original
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
