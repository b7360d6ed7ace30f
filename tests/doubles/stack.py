"""A scripted LLM, instant engines, the lexical level estimator, and the PARLE app on real
uvicorn: the server with every byte known."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

from bridge.app import EngineSet, create_app
from harness.scripted_llm import ScriptedLlmServer
from harness.uvicorn_thread import UvicornThread
from parle.config import Settings, load_settings
from parle.engines.base import GrammarChecker
from parle.engines.chat import OpenAIChatModel
from parle.testing import InstantSynthesizer, InstantTranscriber
from parle.tutor.levels import LexicalLevelEstimator

REPLY = ["Muito bem", ", Ana!", " De onde", " você é?", " Eu moro", " no Brasil."]


class Stack:
    """A scripted LLM, instant engines, the lexical level estimator, and the PARLE app on
    uvicorn."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm_delay: float = 0.0,
        tts_delay: float = 0.0,
        grammar: GrammarChecker | None = None,
    ):
        self.llm = ScriptedLlmServer(REPLY, delay_s=llm_delay).start()
        self.tts = InstantSynthesizer(delay_s=tts_delay)
        self.stt = InstantTranscriber("Olá, meu nome é Ana.")
        estimator = LexicalLevelEstimator()
        estimator.load()
        engines = EngineSet(
            self.stt, OpenAIChatModel(self.llm.url), self.tts, estimator=estimator, grammar=grammar
        )
        self.server = UvicornThread(create_app(settings, engines=engines)).start()
        self.url = self.server.base_url
        self.ws_url = self.url.replace("http", "ws") + "/ws/stream"

    def close(self) -> None:
        self.server.stop()
        self.llm.stop()


@contextlib.contextmanager
def make_stack(**overrides: Any) -> Iterator[Stack]:
    llm_delay = overrides.pop("llm_delay", 0.0)
    tts_delay = overrides.pop("tts_delay", 0.0)
    grammar = overrides.pop("grammar_checker", None)
    with tempfile.TemporaryDirectory(prefix="parle-stack-") as folder:
        # The learner store in a throwaway file, never the user's ~/.cache/parle/parle.db;
        # its journal (an unreachable database's turns) too.
        overrides.setdefault("database_url", f"sqlite:///{folder}/parle.db")
        overrides.setdefault("cache_dir", folder)
        settings = load_settings(**overrides)
        stack = Stack(settings, llm_delay=llm_delay, tts_delay=tts_delay, grammar=grammar)
        try:
            yield stack
        finally:
            stack.close()
