"""LanguageTool (pt-BR) as PARLE runs it: the real HTTP server from the jars `make setup`
fetched, launched and stopped by `LanguageToolServer`, asked by `LanguageToolChecker`; and the
ways a check fails (a dead port, a server that never answers, a bad answer), each a
`GrammarUnavailableError` that never carries the learner's words."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from harness.scripted_llm import ScriptedLlmServer
from harness.uvicorn_thread import free_port
from parle import runtime as runtime_module
from parle.config import Settings, load_settings
from parle.engines.languagetool import (
    MAX_CHECK_CHARS,
    LanguageToolChecker,
    LanguageToolServer,
)
from parle.errors import GrammarUnavailableError
from parle.runtime import ParleRuntime
from parle.testing import InstantSynthesizer, InstantTranscriber
from tests.conftest import REPO

# Generous: the session's server is warm, but this box's 2 cores are shared.
CHECK_TIMEOUT_S = 30.0
SECRET = "Minha senha secreta é 4321."
needs_java = pytest.mark.skipif(
    shutil.which("java") is None,
    reason="needs Java for LanguageTool (Debian: apt-get install default-jre-headless maven, "
    "then make setup)",
)


@pytest.fixture
async def checker(languagetool_url: str) -> AsyncIterator[LanguageToolChecker]:
    client = LanguageToolChecker(languagetool_url, timeout_s=CHECK_TIMEOUT_S)
    yield client
    await client.aclose()


# --- the real LanguageTool ------------------------------------------------------------------


async def test_finds_the_verb_agreement_error(checker: LanguageToolChecker) -> None:
    text = "Eu tem vinte anos."
    matches = await checker.check(text)
    agreement = [m for m in matches if m.rule == "GENERAL_VERB_AGREEMENT_ERRORS"]
    assert len(agreement) == 1, matches
    match = agreement[0]
    assert match.category == "GRAMMAR"
    assert text[match.offset : match.offset + match.length] in ("Eu tem", "tem")
    assert match.replacements and match.replacements[0] in ("Eu tenho", "tenho")
    assert match.message


async def test_finds_the_redundant_mais(checker: LanguageToolChecker) -> None:
    text = "Ela é mais melhor."
    matches = await checker.check(text)
    redundant = [m for m in matches if m.rule.startswith("REDUNDANCY_MAIS")]
    assert len(redundant) == 1, matches
    match = redundant[0]
    # The offset counts characters (é is one), as Python does.
    assert text[match.offset : match.offset + match.length] == "mais melhor"
    assert "melhor" in match.replacements or "mais" in match.replacements


async def test_a_correct_sentence_has_no_grammar_match(checker: LanguageToolChecker) -> None:
    matches = await checker.check("Eu tenho vinte anos e moro no Brasil.")
    assert [m for m in matches if m.category == "GRAMMAR"] == []


async def test_an_existing_server_is_used_and_left_running(
    languagetool_server: LanguageToolServer, languagetool_url: str, tmp_path: Path
) -> None:
    running_pid = languagetool_server.pid
    assert running_pid is not None
    second = LanguageToolServer(
        load_settings(grammar_url=languagetool_url, cache_dir=tmp_path, grammar_home=tmp_path)
    )
    await second.start()  # the jars are not in tmp_path: it must not even try to launch
    assert not second.launched and second.pid is None
    assert not (tmp_path / "languagetool.log").exists()
    await second.stop()
    assert await languagetool_server.is_answering()
    assert languagetool_server.pid == running_pid and _alive(running_pid)


def _listening_addresses(pid: int) -> list[str]:
    """The local addresses (`ip:port`, hex as in /proc/net) of every TCP socket `pid` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.append(fields[1])
    return addresses


def _is_loopback(address: str) -> bool:
    ip = address.split(":")[0]
    if len(ip) == 8:  # IPv4, little-endian: 127.x.x.x ends in 7F
        return ip.endswith("7F")
    # IPv6 as four little-endian words: ::1, or ::ffff:127.x.x.x (an IPv4-mapped socket).
    return ip == "00000000000000000000000001000000" or (
        ip.startswith("0000000000000000FFFF0000") and ip.endswith("7F")
    )


def test_the_launched_server_listens_on_loopback_only(
    languagetool_server: LanguageToolServer,
) -> None:
    pid = languagetool_server.pid
    assert languagetool_server.launched and pid is not None
    addresses = _listening_addresses(pid)
    _, port = languagetool_server.host_port()
    assert any(int(address.split(":")[1], 16) == port for address in addresses), addresses
    assert all(_is_loopback(address) for address in addresses), addresses


async def test_stop_ends_only_what_it_launched(
    languagetool_server: LanguageToolServer, tmp_path: Path
) -> None:
    settings = load_settings(
        grammar_url=f"http://127.0.0.1:{free_port()}/v2",
        grammar_home=languagetool_server.settings.grammar_lib,
        cache_dir=tmp_path,
    )
    server = LanguageToolServer(settings)
    await server.start(warm_up=False)
    pid = server.pid
    assert server.launched and pid is not None and pid != languagetool_server.pid
    assert (tmp_path / "languagetool.log").stat().st_size > 0
    assert os.getpriority(os.PRIO_PROCESS, pid) >= settings.grammar_nice
    await server.stop()
    assert server.pid is None and not _alive(pid)
    assert not await server.is_answering()
    assert await languagetool_server.is_answering()
    await server.stop()  # twice is harmless


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- when it cannot start -----------------------------------------------------------------


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "grammar_url": f"http://127.0.0.1:{free_port()}/v2",
        "cache_dir": tmp_path,
        "grammar_start_timeout_s": 20.0,
    }
    values.update(overrides)
    return load_settings(**values)


@needs_java
async def test_missing_jars_say_make_setup(tmp_path: Path) -> None:
    server = LanguageToolServer(_settings(tmp_path, grammar_home=tmp_path / "nothing"))
    with pytest.raises(GrammarUnavailableError, match="make setup"):
        await server.start()
    assert not server.launched


async def test_missing_java_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    server = LanguageToolServer(_settings(tmp_path))
    with pytest.raises(GrammarUnavailableError, match="apt-get install default-jre-headless"):
        await server.start()
    assert not server.launched


async def test_launch_off_or_a_remote_url_launches_nothing(tmp_path: Path) -> None:
    off = LanguageToolServer(_settings(tmp_path, grammar_launch=False))
    with pytest.raises(GrammarUnavailableError, match="PARLE_GRAMMAR_LAUNCH is off"):
        await off.start()
    remote = LanguageToolServer(_settings(tmp_path, grammar_url="http://192.0.2.1:8010/v2"))
    remote_started = time.monotonic()
    with pytest.raises(GrammarUnavailableError, match=r"only on http://127\.0\.0\.1"):
        await remote.start()
    assert time.monotonic() - remote_started < 5
    assert not off.launched and not remote.launched


@needs_java
async def test_a_server_that_exits_at_once_is_reported(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "languagetool-server-6.6.jar").write_bytes(b"not a jar")
    server = LanguageToolServer(_settings(tmp_path, grammar_home=lib))
    with pytest.raises(GrammarUnavailableError, match="exited during start-up"):
        await server.start()
    assert server.pid is None


# --- checks that fail -----------------------------------------------------------------------


Handler = Callable[[bytes], bytes | None]


@contextlib.asynccontextmanager
async def raw_server(respond: Handler) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback HTTP/1.1 server on raw sockets: `respond(body)` gives the whole response
    (None: never answer). Yields its `/v2` URL and the bodies it received."""
    bodies: list[bytes] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length)
            bodies.append(body)
            response = respond(body)
            if response is None:
                await asyncio.Event().wait()  # never
            else:
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v2", bodies
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _http(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _expect_unavailable(checker: LanguageToolChecker, within_s: float) -> str:
    started = time.monotonic()
    with pytest.raises(GrammarUnavailableError) as caught:
        await checker.check(SECRET)
    assert time.monotonic() - started < within_s
    message = str(caught.value)
    assert "senha" not in message and "4321" not in message
    return message


async def test_a_dead_port_fails_fast(caplog: pytest.LogCaptureFixture) -> None:
    checker = LanguageToolChecker(f"http://127.0.0.1:{free_port()}/v2", timeout_s=3.0)
    with caplog.at_level(logging.DEBUG):
        await _expect_unavailable(checker, within_s=1.0)
    assert "senha" not in caplog.text
    await checker.aclose()


async def test_a_server_that_never_answers_hits_the_time_limit() -> None:
    async with raw_server(lambda body: None) as (url, bodies):
        checker = LanguageToolChecker(url, timeout_s=0.5)
        started = time.monotonic()
        message = await _expect_unavailable(checker, within_s=2.0)
        assert time.monotonic() - started >= 0.45
        assert "0.5 s" in message
        assert len(bodies) == 1
        await checker.aclose()


@pytest.mark.parametrize(
    "response",
    [
        _http("500 Internal Server Error", b"Error: internal"),
        _http("200 OK", b"<html>not json</html>", "text/html"),
        _http("200 OK", b'{"software": {}}'),
        _http("200 OK", b'{"matches": [{"offset": "zero"}]}'),
    ],
    ids=["http-500", "not-json", "no-matches", "bad-match"],
)
async def test_a_bad_answer_is_unavailable(response: bytes) -> None:
    async with raw_server(lambda body: response) as (url, _):
        checker = LanguageToolChecker(url, timeout_s=3.0)
        await _expect_unavailable(checker, within_s=3.0)
        await checker.aclose()


async def test_the_request_is_bounded_and_parsed() -> None:
    answer = (
        b'{"matches": [{"offset": 0, "length": 6, "message": "m",'
        b' "replacements": [{"value": "a"}, {"value": "b"}, {"value": "c"}, {"value": "d"},'
        b' {"value": "e"}, {"value": "f"}, {"value": "g"}],'
        b' "rule": {"id": "R", "category": {"id": "GRAMMAR"}}}]}'
    )
    async with raw_server(lambda body: _http("200 OK", answer)) as (url, bodies):
        checker = LanguageToolChecker(url, timeout_s=3.0)
        text = "Eu tem vinte anos. " + "x" * (3 * MAX_CHECK_CHARS)
        (match,) = await checker.check(text)
        assert (match.offset, match.length, match.rule, match.category) == (0, 6, "R", "GRAMMAR")
        assert match.replacements == ("a", "b", "c", "d", "e")
        form = parse_qs(bodies[0].decode())
        assert form["language"] == ["pt-BR"]
        assert form["text"] == [text[:MAX_CHECK_CHARS]]
        assert await checker.check("   ") == []  # nothing to check: no request
        assert len(bodies) == 1
        await checker.aclose()


# --- PARLE's runtime --------------------------------------------------------------------------


@dataclass
class LightRuntimes:
    """`ParleRuntime`s over instant STT/TTS and a scripted LLM: only the grammar is real. Every
    process one would launch is recorded in `launched` (and refused)."""

    llm_url: str
    cache_dir: Path
    launched: list[tuple[str, ...]] = field(default_factory=list)
    made: list[ParleRuntime] = field(default_factory=list)

    def make(self, **overrides: object) -> ParleRuntime:
        values: dict[str, object] = {
            "profile": "cpu",
            "llm_backend": "external",
            "llm_url": self.llm_url,
            "level_estimator": "lexical",
            "cache_dir": self.cache_dir,
        }
        values.update(overrides)
        runtime = ParleRuntime(load_settings(**values))
        self.made.append(runtime)
        return runtime


@pytest.fixture
async def runtimes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[LightRuntimes]:
    llm = ScriptedLlmServer(["Olá!"]).start()
    made = LightRuntimes(llm.url, tmp_path)

    async def no_subprocess(*args: str, **kwargs: object) -> None:
        made.launched.append(args)
        raise AssertionError(f"launched {args[:3]}")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_subprocess)
    monkeypatch.setattr(runtime_module, "build_transcriber", lambda s: InstantTranscriber())
    monkeypatch.setattr(runtime_module, "build_synthesizer", lambda s: InstantSynthesizer())
    yield made
    for runtime in made.made:
        await runtime.stop()
    llm.stop()


@pytest.mark.parametrize("grammar", ["rules", "off"])
async def test_rules_or_off_never_start_java(runtimes: LightRuntimes, grammar: str) -> None:
    runtime = runtimes.make(grammar=grammar, grammar_launch=True)
    pipeline = await runtime.start()
    assert runtime.grammar_server is None and runtime.grammar is None
    assert pipeline.grammar is None
    assert runtimes.launched == []


def test_the_languagetool_module_is_imported_only_when_used() -> None:
    code = (
        "import sys; from parle.config import load_settings; "
        "from parle.runtime import build_grammar_server; "
        "assert build_grammar_server(load_settings(grammar='rules')) is None; "
        "print('parle.engines.languagetool' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("external", [False, True])
async def test_an_unavailable_checker_never_fails_start_up(
    runtimes: LightRuntimes, caplog: pytest.LogCaptureFixture, tmp_path: Path, external: bool
) -> None:
    runtime = runtimes.make(
        grammar="languagetool",
        grammar_url=f"http://127.0.0.1:{free_port()}/v2",
        # PARLE's own to launch, but no jars; or another's (another container), not up yet.
        grammar_launch=not external,
        grammar_home=tmp_path / "no-jars",
    )
    with caplog.at_level(logging.WARNING, logger="parle.runtime"):
        pipeline = await runtime.start()
    warnings = [r for r in caplog.records if "grammar checker unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert runtimes.launched == []
    if not external:
        assert runtime.grammar is None and pipeline.grammar is None  # PARLE's rules only
        return
    # Another's LanguageTool may come up later: its checker stays, failing until then.
    assert isinstance(runtime.grammar, LanguageToolChecker) and pipeline.grammar is runtime.grammar
    with pytest.raises(GrammarUnavailableError):
        await runtime.grammar.check("Eu tem vinte anos.")


async def test_the_runtime_hands_languagetool_to_the_pipeline(
    languagetool_server: LanguageToolServer, languagetool_url: str, runtimes: LightRuntimes
) -> None:
    runtime = runtimes.make(grammar="languagetool", grammar_url=languagetool_url)
    pipeline = await runtime.start()
    assert isinstance(runtime.grammar, LanguageToolChecker)
    assert pipeline.grammar is runtime.grammar
    assert runtime.grammar_server is not None and not runtime.grammar_server.launched
    matches = await runtime.grammar.check("Eu tem vinte anos.")
    assert any(m.rule == "GENERAL_VERB_AGREEMENT_ERRORS" for m in matches)
    await runtime.stop()
    assert await languagetool_server.is_answering()  # not PARLE's runtime's to stop
