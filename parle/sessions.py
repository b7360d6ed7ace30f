"""Conversation memory: one bounded history per session, never a global one."""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict, deque
from pathlib import Path

from parle.engines.base import ChatMessage
from parle.tenants import DEFAULT_TENANT
from parle.tutor.lesson import Lesson
from parle.tutor.levels import LevelTracker


class SessionMemory:
    """The last `max_turns` exchanges of one session (a turn is a user + assistant pair)."""

    def __init__(self, max_turns: int = 12) -> None:
        self.max_turns = max_turns
        self._messages: deque[ChatMessage] = deque(maxlen=max(2 * max_turns, 0))
        self.last_used = time.monotonic()
        self.level: LevelTracker | None = None
        # What this session tells the LLM beyond the system prompt, by source ("learner": the
        # learner's profile, "scenario": the lesson's role-play), fixed for the session so the
        # LLM server's prefix cache keeps hitting (`build_messages`' `context`).
        self.notes: dict[str, str] = {}
        # The lesson: its scenario, corrections, speed steps, the last reply's speech.
        self.lesson = Lesson()
        # A correction for the next reply to make (parle.tutor.grammar.hint): the checker
        # found it after this reply was written.
        self.pending_hint: str | None = None

    @property
    def messages(self) -> list[ChatMessage]:
        return list(self._messages)

    def add_turn(self, user_text: str, assistant_text: str) -> None:
        self.last_used = time.monotonic()
        if self.max_turns == 0:
            return
        self._messages.append({"role": "user", "content": user_text})
        self._messages.append({"role": "assistant", "content": assistant_text})

    def clear(self) -> None:
        self._messages.clear()

    def to_json(self) -> str:
        return json.dumps(self.messages, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, max_turns: int) -> SessionMemory:
        memory = cls(max_turns)
        for item in json.loads(text):
            if item.get("role") in ("user", "assistant") and isinstance(item.get("content"), str):
                memory._messages.append({"role": item["role"], "content": item["content"]})
        return memory


class SessionStore:
    """Session memories by tenant and id, bounded in number (least recently used go first).
    The same session id in two tenants is two sessions (`parle.tenants`)."""

    def __init__(self, *, max_turns: int = 12, max_sessions: int = 1000) -> None:
        self.max_turns = max_turns
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[tuple[str, str], SessionMemory] = OrderedDict()

    def get(self, session_id: str, *, tenant: str = DEFAULT_TENANT) -> SessionMemory:
        key = (tenant, session_id)
        memory = self._sessions.get(key)
        if memory is not None:
            memory.last_used = time.monotonic()
        else:
            memory = self._sessions[key] = SessionMemory(self.max_turns)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(key)
        return memory

    def expire_idle(self, max_idle_s: float) -> int:
        """Forget sessions unused for `max_idle_s`; returns how many went."""
        cutoff = time.monotonic() - max_idle_s
        idle = [key for key, memory in self._sessions.items() if memory.last_used < cutoff]
        for key in idle:
            del self._sessions[key]
        return len(idle)

    def reset(self, session_id: str, *, tenant: str = DEFAULT_TENANT) -> bool:
        return self._sessions.pop((tenant, session_id), None) is not None

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        """Whether the default tenant has this session."""
        return (DEFAULT_TENANT, session_id) in self._sessions


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def session_file(folder: Path, name: str) -> Path:
    """Where the CLI keeps a named session between runs; rejects names that are not plain."""
    if not _SAFE_NAME.fullmatch(name) or name.startswith("."):
        raise ValueError("a session name uses letters, digits, '.', '_' or '-' (at most 64)")
    return folder / f"{name}.json"
