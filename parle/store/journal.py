"""The learner store's journal: the sessions and turns the writer could not put in the
database within its retry bound (`parle.store.recorder`), kept in a local file until the
database answers again, and across a restart.

One JSON object a line, appended in order, the file flushed to disk after each append. A turn
carries its session's learner, key, start and start level, all it takes to find or make the
session's row again in whichever database answers; the replay writes each turn `once`
(`LearnerStore.record_turn`), so a replay cut short and run again doubles nothing. The file
holds at most `max_bytes`: beyond that the newest records are dropped (and counted by the
caller). A line cut short by a crash is dropped when the file is opened; a line that does not
parse is skipped (counted). The file is the learner's words, like the database: readable by
its owner only. Not thread-safe: one caller at a time (the recorder's lock).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parle.recording import TurnRecord
from parle.store.store import SessionRef
from parle.tutor.corrections import Correction

JOURNAL_MAX_BYTES = 32 * 1024 * 1024  # about 30 000 turns
_VERSION = 1


@dataclass(frozen=True)
class PendingTurn:
    """A turn waiting to be written: its session, what it leaves, when it ended."""

    ref: SessionRef
    record: TurnRecord
    at: dt.datetime


Item = SessionRef | PendingTurn


def item_learner(item: Item) -> str:
    return item.learner_id if isinstance(item, SessionRef) else item.ref.learner_id


def item_time(item: Item) -> dt.datetime:
    return item.started_at if isinstance(item, SessionRef) else item.at


def _session(ref: SessionRef) -> dict[str, Any]:
    return {
        "learner_id": ref.learner_id,
        "session_key": ref.session_key,
        "started_at": ref.started_at.isoformat(),
        "start_level": ref.start_level,
    }


def encode(item: Item) -> dict[str, Any]:
    if isinstance(item, SessionRef):
        return {"v": _VERSION, "kind": "session", "session": _session(item)}
    record = item.record
    correction = record.correction
    return {
        "v": _VERSION,
        "kind": "turn",
        "session": _session(item.ref),
        "at": item.at.isoformat(),
        "record": {
            "transcript": record.transcript,
            "reply": record.reply,
            "level": record.level,
            "estimate": record.estimate,
            "speech_s": record.speech_s,
            "timings": record.timings,
            "correction": None if correction is None else correction.as_dict(),
        },
    }


def decode(data: dict[str, Any], sessions: dict[tuple[Any, ...], SessionRef]) -> Item:
    """An item again; the turns of one session share one `SessionRef` (`sessions`), so that
    its row is looked up once per replay."""
    if data.get("v") != _VERSION or data.get("kind") not in ("session", "turn"):
        raise ValueError("not a journal entry of this version")
    fields = data["session"]
    started = dt.datetime.fromisoformat(fields["started_at"])
    key = (fields["learner_id"], fields["session_key"], started)
    ref = sessions.get(key)
    if ref is None:
        ref = sessions[key] = SessionRef(
            str(fields["learner_id"]),
            None if fields["session_key"] is None else str(fields["session_key"]),
            started,
            fields["start_level"],
        )
    if data["kind"] == "session":
        return ref
    raw = data["record"]
    correction = raw["correction"]
    record = TurnRecord(
        transcript=str(raw["transcript"]),
        reply=str(raw["reply"]),
        level=str(raw["level"]),
        estimate=raw["estimate"],
        speech_s=float(raw["speech_s"]),
        timings=dict(raw["timings"]),
        correction=None if correction is None else Correction(**correction),
    )
    return PendingTurn(ref, record, dt.datetime.fromisoformat(data["at"]))


class Journal:
    """The file; see the module docstring. `items` and `size` track it."""

    def __init__(self, path: Path, max_bytes: int = JOURNAL_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.items = 0
        self.size = 0

    def open(self) -> int:
        """Take up what a previous process left; returns how many records that is."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.items = self.size = 0
            return 0
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):  # a crash mid-append: the cut line would spoil the next
            with self.path.open("r+b") as file:
                file.truncate(len(whole))
        self.size = len(whole)
        self.items = whole.count(b"\n")
        return self.items

    def append(self, items: list[Item]) -> int:
        """Add `items` at the end; returns how many did not fit (the newest)."""
        lines: list[bytes] = []
        size = self.size
        for item in items:
            line = _line(item)
            if size + len(line) > self.max_bytes:
                break
            lines.append(line)
            size += len(line)
        if lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _write(self.path, b"".join(lines), os.O_APPEND)
            self.size = size
            self.items += len(lines)
        return len(items) - len(lines)

    def _lines(self) -> list[bytes]:
        try:
            return self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []

    def load(self) -> tuple[list[Item], int]:
        """Every record, oldest first, and how many lines did not parse."""
        sessions: dict[tuple[Any, ...], SessionRef] = {}
        found: list[Item] = []
        bad = 0
        for line in self._lines():
            try:
                found.append(decode(json.loads(line), sessions))
            except (ValueError, KeyError, TypeError):
                bad += 1
        return found, bad

    def replace(self, items: list[Item]) -> None:
        """The journal becomes `items` (what is left to replay)."""
        self._rewrite([_line(item) for item in items])

    def drop_learner(self, learner_id: str) -> int:
        """Forget a learner's records (their erasure); returns how many went."""
        lines = [line + b"\n" for line in self._lines()]
        kept = [line for line in lines if _learner_in(line) != learner_id]
        if len(kept) != len(lines):
            self._rewrite(kept)
        return len(lines) - len(kept)

    def _rewrite(self, lines: list[bytes]) -> None:
        """Whole or not at all: a crash leaves the old file or the new one."""
        if not lines:
            self.clear()
            return
        data = b"".join(lines)
        temporary = self.path.with_name(self.path.name + ".tmp")
        _write(temporary, data, os.O_TRUNC)
        os.replace(temporary, self.path)
        self.size, self.items = len(data), len(lines)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.items = self.size = 0


def _line(item: Item) -> bytes:
    return json.dumps(encode(item), ensure_ascii=False).encode() + b"\n"


def _learner_in(line: bytes) -> str | None:
    try:
        return str(json.loads(line)["session"]["learner_id"])
    except (ValueError, KeyError, TypeError):
        return None  # kept: the replay counts it as unreadable


def _write(path: Path, data: bytes, mode: int) -> None:
    """`data` on disk (flushed) before this returns; a new file is its owner's only."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600), "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
