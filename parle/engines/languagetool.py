"""LanguageTool (pt-BR) on loopback: the learner's grammar, checked by its HTTP server.

`LanguageToolChecker` asks the server at `PARLE_GRAMMAR_URL` (`POST /v2/check`);
`LanguageToolServer` finds that server answering, or launches one there from the jars that
`make setup` fetched (scripts/languagetool.sh), and stops only what it launched.

Every failure is a `GrammarUnavailableError` whose message is safe to show: none carries the
learner's words, and neither does anything logged here.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from parle.config import Settings
from parle.engines.base import GrammarMatch
from parle.engines.processes import end_process
from parle.errors import GrammarUnavailableError

log = logging.getLogger(__name__)

# The most text one check sends (a spoken turn is far shorter): beyond it, only the start is
# checked, so offsets still point into the learner's text.
MAX_CHECK_CHARS = 2000
# Suggestions kept per match, best first.
MAX_REPLACEMENTS = 5
# The first check after the JVM starts loads the Portuguese rules (about 6-10 s); made once at
# start-up so that no learner waits for it.
WARM_UP_TEXT = "Eu tem vinte anos."
SERVER_CLASS = "org.languagetool.server.HTTPServer"
# LanguageTool's HTTP server listens on the loopback interface unless given `--public`, so
# PARLE launches it only where its URL names loopback.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
INSTALL_HINT = "apt-get install default-jre-headless maven, then make setup"
# LanguageTool's own logging (logback) at WARN: at INFO it writes three lines per check, and
# its log would grow with every learner's turn for as long as PARLE runs.
LOGBACK_XML = """<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSS ZZZZ} %-5level %logger %msg%n</pattern></encoder>
  </appender>
  <root level="warn"><appender-ref ref="STDOUT"/></root>
</configuration>
"""
# PARLE's region (PARLE_REGION) as LanguageTool's variant of Portuguese.
REGION_LANGUAGES = {"BR": "pt-BR", "PT": "pt-PT"}


def _parse_matches(payload: Any) -> list[GrammarMatch]:
    """LanguageTool's `matches` as `GrammarMatch`es; `ValueError` when it is not that shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get("matches"), list):
        raise ValueError("no matches list")
    matches = []
    for item in payload["matches"]:
        if not isinstance(item, dict):
            raise ValueError("a match is not an object")
        offset, length = item.get("offset"), item.get("length")
        rule = item.get("rule")
        if (
            not isinstance(offset, int)
            or not isinstance(length, int)
            or offset < 0
            or length < 0
            or not isinstance(rule, dict)
        ):
            raise ValueError("a match without offset, length or rule")
        category = rule.get("category")
        replacements = item.get("replacements") or []
        if not isinstance(replacements, list):
            raise ValueError("replacements is not a list")
        values = [
            r["value"]
            for r in replacements
            if isinstance(r, dict) and isinstance(r.get("value"), str)
        ]
        matches.append(
            GrammarMatch(
                offset=offset,
                length=length,
                replacements=tuple(values[:MAX_REPLACEMENTS]),
                message=str(item.get("message") or ""),
                rule=str(rule.get("id") or ""),
                category=str(category.get("id") or "") if isinstance(category, dict) else "",
            )
        )
    return matches


class LanguageToolChecker:
    """`GrammarChecker` over LanguageTool's HTTP API at `url` (e.g. http://127.0.0.1:8010/v2).

    One `httpx.AsyncClient` (made at the first check) for every check; a check that takes
    longer than `timeout_s` in all, or fails in any way, is a `GrammarUnavailableError`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        language: str = "pt-BR",
        max_chars: int = MAX_CHECK_CHARS,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.language = language
        self.max_chars = max_chars
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def check(self, text: str) -> list[GrammarMatch]:
        if not text.strip():
            return []
        form = {"text": text[: self.max_chars], "language": self.language}
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._http().post(f"{self.url}/check", data=form)
        except (TimeoutError, httpx.TimeoutException):
            raise GrammarUnavailableError(
                f"LanguageTool did not answer within {self.timeout_s:g} s."
            ) from None
        except httpx.HTTPError as exc:
            raise GrammarUnavailableError(
                f"LanguageTool at {self.url} cannot be reached ({type(exc).__name__})."
            ) from None
        if response.status_code != 200:
            raise GrammarUnavailableError(
                f"LanguageTool answered HTTP {response.status_code} to a check."
            )
        try:
            return _parse_matches(response.json())
        except ValueError:  # bad JSON (json.JSONDecodeError is one) or not LanguageTool's shape
            raise GrammarUnavailableError(
                "LanguageTool answered something that is not a check result."
            ) from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class LanguageToolServer:
    """Makes sure LanguageTool answers at `settings.grammar_url`.

    A server already answering is used as it is. Otherwise, when `grammar_launch` allows it
    and Java and the jars are there, PARLE launches `HTTPServer` on that loopback port (niced,
    its heap capped, its output in cache_dir/languagetool.log), waits until it answers and
    makes one warm-up check; `stop()` ends it. Never launched twice; nothing is done until
    `start()`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.grammar_url.rstrip("/")
        self.launched = False
        self._process: asyncio.subprocess.Process | None = None
        self._stopped = False
        self._log_path = settings.cache_dir / "languagetool.log"
        self._logback_path = settings.cache_dir / "languagetool-logback.xml"
        self.language = REGION_LANGUAGES.get(settings.region, "pt-BR")

    @property
    def pid(self) -> int | None:
        """The launched server's process id while it runs (None: none launched)."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)

    def command(self, java: str = "java") -> list[str]:
        """The JVM running LanguageTool's HTTP server on the URL's port, loopback only."""
        _, port = self.host_port()
        # Absolute: the JVM runs in cache_dir, and either path may be given relative to here.
        lib: Path = self.settings.grammar_lib.absolute()
        command = [
            java,
            f"-Xmx{self.settings.grammar_memory_mb}m",
            "-Dfile.encoding=UTF-8",
            f"-Dlogback.configurationFile={self._logback_path.absolute()}",
            "-cp",
            f"{lib}/*",
            SERVER_CLASS,
            "--port",
            str(port),
            # No --public (it would listen on every interface), no --verbose (it would log the
            # texts of failed checks).
        ]
        nice = shutil.which("nice")
        if self.settings.grammar_nice and nice:
            # `nice` execs the JVM in the same process, so every thread it starts inherits the
            # priority (a preexec_fn would not be safe while models load in threads).
            command = [nice, "-n", str(self.settings.grammar_nice), *command]
        return command

    async def is_answering(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"{self.url}/languages")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    @property
    def external(self) -> bool:
        """LanguageTool is another's to run (PARLE_GRAMMAR_LAUNCH off, or not on loopback):
        PARLE never launches it, and it may come up after PARLE does."""
        host, _ = self.host_port()
        loopback = urlsplit(self.url).scheme == "http" and host in LOOPBACK_HOSTS
        return not (self.settings.grammar_launch and loopback)

    def _launch_problem(self) -> str | None:
        """Why LanguageTool cannot be launched here, or None."""
        where = f"No LanguageTool answers at PARLE_GRAMMAR_URL={self.url}"
        if not self.settings.grammar_launch:
            return f"{where} and PARLE_GRAMMAR_LAUNCH is off."
        if self.external:
            return f"{where}; PARLE launches LanguageTool only on http://127.0.0.1."
        if shutil.which("java") is None:
            return f"{where} and Java is not installed ({INSTALL_HINT})."
        lib = self.settings.grammar_lib
        if not any(lib.glob("languagetool-server-*.jar")):
            return (
                f"{where} and LanguageTool's jars are not in {lib} "
                "(make setup fetches them, or set PARLE_GRAMMAR_HOME)."
            )
        return None

    async def start(self, *, warm_up: bool = True) -> None:
        """Use the server at `grammar_url`, or launch one; then one warm-up check."""
        self._stopped = False
        deadline = time.monotonic() + self.settings.grammar_start_timeout_s
        if self._process is None and not await self.is_answering():
            await self._launch(deadline)
        if warm_up:
            await self._warm_up(deadline)

    async def _launch(self, deadline: float) -> None:
        problem = self._launch_problem()
        if problem is not None:
            raise GrammarUnavailableError(problem)
        java = shutil.which("java") or "java"
        log.info("launching languagetool", extra={"url": self.url})
        try:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._logback_path.write_text(LOGBACK_XML, encoding="utf-8")
        except OSError as exc:
            raise GrammarUnavailableError(
                f"LanguageTool's log cannot be written in {self.settings.cache_dir} "
                f"({exc.strerror or exc})."
            ) from None
        with self._log_path.open("ab") as log_file:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command(java),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.settings.cache_dir,
                )
            except OSError as exc:
                raise GrammarUnavailableError(
                    f"LanguageTool could not be started ({exc.strerror or exc})."
                ) from None
        self._process = process
        self.launched = True
        while time.monotonic() < deadline:
            if self._stopped or self._process is not process:
                # stop() came while it started (PARLE's start-up failed elsewhere).
                await self.stop()
                raise GrammarUnavailableError("LanguageTool was stopped during start-up.")
            if process.returncode is not None:
                self._process = None
                raise GrammarUnavailableError(
                    f"LanguageTool exited during start-up (code {process.returncode}); "
                    f"see {self._log_path}."
                )
            if await self.is_answering():
                return
            await asyncio.sleep(0.25)
        await self.stop()
        raise GrammarUnavailableError(
            f"LanguageTool did not answer within {self.settings.grammar_start_timeout_s:g} s; "
            f"see {self._log_path}."
        )

    async def _warm_up(self, deadline: float) -> None:
        """One check, so that the JVM's first-call cost is paid before any learner speaks."""
        checker = LanguageToolChecker(
            self.url,
            timeout_s=max(1.0, deadline - time.monotonic()),
            language=self.language,
        )
        try:
            await checker.check(WARM_UP_TEXT)
        except GrammarUnavailableError:
            await self.stop()
            raise
        finally:
            await checker.aclose()

    def checker(self) -> LanguageToolChecker:
        """A checker of this server with the configured limit per check."""
        return LanguageToolChecker(
            self.url, timeout_s=self.settings.grammar_timeout_s, language=self.language
        )

    async def stop(self) -> None:
        """Stop the server if PARLE launched it; one found running is left alone. A start
        still in progress ends what it launched."""
        self._stopped = True
        process, self._process = self._process, None
        if process is not None:
            await end_process(process)
