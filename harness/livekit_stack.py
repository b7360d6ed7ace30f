"""Real processes for the real-room tests and the LiveKit benchmark: livekit-server (the
repository's livekit.yaml, moved onto loopback: `loopback_config`), `parle serve` on the `cpu`
profile and `parle agent start`, each its own process; and `Learner`, a participant through
LiveKit's Python SDK that speaks clips in real time and hears the tutor as a client does.

One stack serves every test module of a session (`shared_stack`): the engines load once, and
the processes are stopped when the session ends, failed or not.

`python -m harness.livekit_stack OUT [--redis ADDRESS]` writes the loopback configuration for
`make livekit-dev` (scripts/livekit-dev.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from harness.llm_relay import LlmRelay
from harness.uvicorn_thread import free_port
from parle.audio import decode_audio

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools" / "bin"


def tool(name: str) -> str | None:
    """A binary built by `make tools` (.tools/bin), else one on PATH."""
    built = TOOLS / name
    return str(built) if os.access(built, os.X_OK) else shutil.which(name)


LIVEKIT_SERVER = tool("livekit-server")
NO_LIVEKIT_SERVER = (
    "needs livekit-server: `make tools` builds it with Go into .tools/bin (or put it on PATH)"
)
API_KEY, API_SECRET = "parle-tests", "parle-tests-secret-not-for-production-0123"
PHONE_HASH_KEY = "parle-tests-phone-key"  # the worker's PARLE_PHONE_HASH_KEY
SAMPLE_RATE = 48_000  # what the learner's client hears the tutor at
AUDIBLE_RMS = 0.01  # ~ -40 dBFS: Kokoro's speech is far above, silence and codec noise below


class Process:
    """A child process whose output goes to a log file (read back when a check fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        # Its own process group: the LLM server `parle serve` launches and the agent's job
        # processes are stopped with it.
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self, tail: int = 3000) -> str:
        return self.log_path.read_text("utf-8", "replace")[-tail:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Whatever is left of the group (job processes, the LLM server) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()


def wait_for(what: str, check: Callable[[], bool], within_s: float, process: Process) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if not process.alive():
            raise RuntimeError(f"{process.name} exited while {what}:\n{process.log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{process.name}: {what} took over {within_s:.0f} s:\n{process.log()}"
            )
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_udp_range(size: int) -> tuple[int, int]:
    """`size` consecutive free UDP ports: livekit-server's WebRTC media range."""
    for _ in range(200):
        start = int.from_bytes(os.urandom(2), "big") % 20_000 + 40_000
        socks: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free UDP port range")


def loopback_config(
    path: Path,
    *,
    port: int | None = None,
    udp_ports: tuple[int, int] | None = None,
    prometheus_port: int | None = None,
    redis: str | None = None,
) -> Path:
    """The repository's livekit.yaml moved onto loopback, written to `path`: every socket
    livekit-server opens is on 127.0.0.1 (or ::1), and WebRTC media flows over loopback.

    `--bind` and `--node-ip` alone are not enough: the ICE TCP listener (`rtc.tcp_port`) always
    listens on every address, and ICE gathers, and binds a UDP socket on, every interface's
    address (each address of the UDP mux that `--dev` opens on 7882 when no port range is
    set, or of the port range per peer connection). So: ICE over TCP off, candidates only from
    the loopback interface and its addresses, the loopback candidate on (ICE skips loopback
    addresses without it, and the peer connections then never connect), no STUN, no TURN.
    Ports: livekit.yaml's unless given; `redis` "" runs without one (only the SIP bridge
    needs it)."""
    config = yaml.safe_load((REPO / "livekit.yaml").read_text("utf-8"))
    config["bind_addresses"] = ["127.0.0.1"]
    if port is not None:
        config["port"] = port
    rtc = config.setdefault("rtc", {})
    rtc.update(
        node_ip="127.0.0.1",  # the address advertised in candidates and to other nodes
        use_external_ip=False,  # no public STUN lookups
        tcp_port=0,  # no ICE over TCP: its listener ignores bind_addresses
        interfaces={"includes": ["lo" if sys.platform == "linux" else "lo0"]},
        ips={"includes": ["127.0.0.0/8", "::1/128"]},
        enable_loopback_candidate=True,
    )
    if udp_ports is not None:
        rtc["port_range_start"], rtc["port_range_end"] = udp_ports
    config["turn"] = {"enabled": False}
    if prometheus_port is not None:
        config["prometheus"] = {"port": prometheus_port}
    if redis is not None:
        config["redis"] = {"address": redis}
    path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    return path


class RedisServer:
    """redis-server on a free loopback port, nothing saved: what livekit-server needs for
    several nodes and for its SIP APIs."""

    BINARY = shutil.which("redis-server")

    def __init__(self, log_dir: Path) -> None:
        assert self.BINARY is not None, "needs redis-server (Debian: redis-server)"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        argv = [self.BINARY, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no"]  # fmt: skip
        self.process = Process("redis", argv, dict(os.environ), log_dir)
        wait_for("starting", self._answers, 20, self.process)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False


class LiveKitServer:
    """livekit-server with the repository's livekit.yaml on loopback (`loopback_config`), on
    free ports, so it can run beside a developer's `make livekit-dev`."""

    def __init__(self, log_dir: Path, *, redis: str = "") -> None:
        assert LIVEKIT_SERVER is not None, NO_LIVEKIT_SERVER
        self.port, self.metrics_port = free_port(), free_port()
        config = loopback_config(
            log_dir / "livekit.yaml",
            port=self.port,
            udp_ports=free_udp_range(20),
            prometheus_port=self.metrics_port,
            redis=redis,  # empty: no redis (only the SIP bridge needs it)
        )
        argv = [
            LIVEKIT_SERVER, "--config", str(config), "--dev",
            "--keys", f"{API_KEY}: {API_SECRET}", "--log_level", "info",
        ]  # fmt: skip
        self.process = Process("livekit-server", argv, dict(os.environ), log_dir)
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.url = f"ws://127.0.0.1:{self.port}"
        wait_for("starting", lambda: _answers(self.http_url), 30, self.process)

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


class LiveKitStack:
    """livekit-server, `parle serve` (cpu profile, its own llama.cpp server) and `parle agent
    start`, whose LLM calls go through `relay` to that llama.cpp server."""

    def __init__(
        self,
        parle_env: dict[str, str] | None = None,
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.parle_env = parle_env or {}  # extra settings for `parle serve` (benchmarks, keys)
        self.worker_env = worker_env or {}  # and for `parle agent start`
        self.log_dir = Path(tempfile.mkdtemp(prefix="parle-livekit-"))
        self._processes: list[Process] = []
        self.relay: LlmRelay | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self.livekit = LiveKitServer(self.log_dir)
        self._processes.append(self.livekit.process)
        llm_port, parle_port = free_port(), free_port()
        self.parle_url = f"http://127.0.0.1:{parle_port}"
        livekit_env = {
            "LIVEKIT_URL": self.livekit.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
        }
        env = {
            **os.environ,
            **livekit_env,
            "PARLE_PROFILE": "cpu",
            "PARLE_HOST": "127.0.0.1",
            "PARLE_PORT": str(parle_port),
            "PARLE_LLM_URL": f"http://127.0.0.1:{llm_port}/v1",
            # The stack's own learner store, read by the tests (never a developer's).
            "PARLE_DATABASE_URL": f"sqlite:///{self.log_dir / 'parle.db'}",
            **self.parle_env,
        }
        self.parle = Process(
            "parle-serve", [sys.executable, "-m", "parle", "serve"], env, self.log_dir
        )
        self._processes.append(self.parle)
        self.relay = LlmRelay(f"http://127.0.0.1:{llm_port}/v1").start()
        worker_env = {
            **os.environ,
            **livekit_env,
            "PARLE_SERVER_URL": self.parle_url,
            "PARLE_LLM_URL": self.relay.url,
            # Its health check on loopback, on a port of its own: workers never collide.
            "PARLE_AGENT_HEALTH_HOST": "127.0.0.1",
            "PARLE_AGENT_HEALTH_PORT": str(free_port()),
            "PARLE_PHONE_HASH_KEY": PHONE_HASH_KEY,
            **self.worker_env,
        }
        self.worker = Process(
            "parle-agent",
            [sys.executable, "-m", "parle", "agent", "start"],
            worker_env,
            self.log_dir,
        )
        self._processes.append(self.worker)
        # Engines (Whisper, Kokoro, llama.cpp) and the worker's VAD load side by side.
        wait_for(
            "loading its engines", lambda: _answers(self.parle_url + "/ready"), 300, self.parle
        )
        wait_for(
            "registering with livekit-server",
            lambda: "registered worker" in self.worker.log(200_000),
            120,
            self.worker,
        )

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the PARLE server's Prometheus metrics (0 when absent)."""
        text = httpx.get(self.parle_url + "/metrics", timeout=5).text
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        pattern = rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? ([0-9.eE+-]+)$"
        match = re.search(pattern, text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def close(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        if self.relay is not None:
            self.relay.stop()


_shared: LiveKitStack | None = None


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None


def require_livekit_server() -> None:
    """In a test: livekit-server is here, else the test is skipped, only where it cannot be
    built: with Go here, `make setup` builds it, so its absence is a failed build."""
    if LIVEKIT_SERVER is None:
        if shutil.which("go") is not None:
            pytest.fail(NO_LIVEKIT_SERVER + " (Go is here: see `make tools`' output)")
        pytest.skip(NO_LIVEKIT_SERVER)


def shared_stack(request: pytest.FixtureRequest) -> Iterator[LiveKitStack]:
    """For a module-scoped fixture: the session's one stack, started by the first module that
    asks, stopped after the last module that uses it (so it idles through no other test), or
    when the session ends."""
    global _shared
    require_livekit_server()
    if _shared is None:
        _shared = LiveKitStack()
        request.config.add_cleanup(_close_shared)
    yield _shared
    items = request.session.items
    mine = [i for i, item in enumerate(items) if getattr(item, "module", None) is request.module]
    later = items[max(mine) + 1 :] if mine else []
    if not any(getattr(getattr(item, "module", None), "shared_stack", None) is shared_stack
               for item in later):  # fmt: skip
        _close_shared()


# --- a learner's client ----------------------------------------------------------------------


@dataclass
class Heard:
    """What the learner's client received of the tutor's audio: each frame's arrival time,
    loudness (RMS, full scale 1.0) and samples (mono, SAMPLE_RATE)."""

    times: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)
    chunks: list[np.ndarray] = field(default_factory=list)

    def first_audible(self, after: float) -> float | None:
        for t, level in zip(self.times, self.rms, strict=False):
            if t > after and level >= AUDIBLE_RMS:
                return t
        return None

    def silent_since(self, after: float, quiet_s: float) -> float | None:
        """The last audible frame after `after` that `quiet_s` of silence followed (the
        first such pause; None while none has)."""
        last: float | None = None
        for t, level in zip(self.times, self.rms, strict=False):
            if t <= after:
                continue
            if level >= AUDIBLE_RMS:
                if last is not None and t - last >= quiet_s:
                    return last
                last = t
        if last is not None and time.monotonic() - last >= quiet_s:
            return last
        return None

    def last_audible(self, after: float) -> float | None:
        audible = [
            t for t, level in zip(self.times, self.rms, strict=False)
            if t > after and level >= AUDIBLE_RMS
        ]  # fmt: skip
        return audible[-1] if audible else None

    def quiet_now(self, after: float, quiet_s: float) -> float | None:
        """The last audible frame after `after`, once nothing audible has come for `quiet_s`
        (pauses between the pieces of one reply are not its end)."""
        last = self.last_audible(after)
        return last if last is not None and time.monotonic() - last >= quiet_s else None

    def audible_seconds(self, start: float, end: float) -> float:
        frames = zip(self.times, self.rms, self.chunks, strict=False)
        return sum(
            c.size / SAMPLE_RATE
            for t, level, c in frames
            if start < t <= end and level >= AUDIBLE_RMS
        )

    def wav(self, start: float, end: float) -> bytes:
        """The received audio between two arrival times, as a 16-bit WAV."""
        picked = [c for t, c in zip(self.times, self.chunks, strict=False) if start <= t <= end]
        samples = np.concatenate(picked) if picked else np.zeros(0, dtype=np.float32)
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
        return out.getvalue()


@dataclass
class Said:
    """One streamed text the learner's client received: the `lk.transcription` of a side, or
    an event on `parle.tutor`."""

    at: float
    topic: str
    text: str
    learner: bool  # a transcription of the learner's own track


def caller_grant(livekit: LiveKitServer, number: str, **attributes: str) -> dict[str, str]:
    """A phone caller's join, as LiveKit's SIP bridge makes one for an incoming call under an
    individual dispatch rule (`parle-call-` rooms, agent `parle-tutor`): a room named after the
    number, a participant of kind SIP with the number, the trunk's number and the call's
    status as attributes (plus `attributes`, as a rule may add: `parle.level`)."""
    from livekit import api

    room = f"parle-call-_{number.lstrip('+')}_{uuid.uuid4().hex[:12]}"
    token = (
        api.AccessToken(API_KEY, API_SECRET)
        .with_identity(f"sip_{number}")
        .with_kind("sip")
        .with_attributes(
            {
                "sip.phoneNumber": number,
                "sip.trunkPhoneNumber": "+551140000000",
                "sip.callStatus": "active",
                **attributes,
            }
        )
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name="parle-tutor")])
        )
    )
    return {"url": livekit.url, "token": token.to_jwt(), "room": room}


class Learner:
    """A learner in a real room through LiveKit's Python SDK: a token from PARLE's
    `/api/token`, a microphone track fed in real time (silence between clips, as a real
    microphone sends), the tutor's audio track heard frame by frame, the text streams read."""

    FRAME = 160  # 10 ms at 16 kHz

    def __init__(self, parle_url: str) -> None:
        self.parle_url = parle_url
        self.heard = Heard()
        self.said: list[Said] = []
        self.agent_joined: float | None = None
        self._pending: list[np.ndarray] = []
        self._spoken: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.room: Any = None
        self.track_sid = ""
        self.subscribed: float | None = None  # when the tutor subscribed to the microphone

    async def join(self, level: str = "A2") -> Learner:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.parle_url}/api/token", json={"level": level})
            response.raise_for_status()
            return await self.join_with(response.json())

    async def join_with(self, grant: dict[str, str]) -> Learner:
        """Join with `grant` (`url`, `token`, `room`): a token made elsewhere, e.g. a phone
        caller's, as LiveKit's SIP bridge makes one."""
        from livekit import rtc

        self.grant = grant
        self.room = rtc.Room()
        for topic in ("lk.transcription", "parle.tutor"):
            self.room.register_text_stream_handler(topic, self._on_text)
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_participant)
        # The tutor subscribing to the microphone: what a SIP bridge waits for to answer.
        self.room.on("local_track_subscribed", self._on_subscribed)
        await self.room.connect(self.grant["url"], self.grant["token"])
        for participant in self.room.remote_participants.values():
            self._on_participant(participant)
        # A small queue keeps the frames' capture times within 50 ms of when they are sent.
        self._source = rtc.AudioSource(16_000, 1, queue_size_ms=50)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await self.room.local_participant.publish_track(track, options)
        self.track_sid = publication.sid
        self._spawn(self._microphone())
        return self

    async def leave(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.room is not None:
            await self.room.disconnect()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_subscribed(self, _track: Any) -> None:
        self.subscribed = self.subscribed or time.monotonic()

    def _on_participant(self, participant: Any) -> None:
        from livekit import rtc

        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_joined = self.agent_joined or time.monotonic()

    def _on_track(self, track: Any, _publication: Any, participant: Any) -> None:
        from livekit import rtc

        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._on_participant(participant)
            self._spawn(
                self._listen(rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1))
            )

    async def _listen(self, stream: Any) -> None:
        async for event in stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768
            self.heard.times.append(time.monotonic())
            self.heard.rms.append(float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0)
            self.heard.chunks.append(samples)

    def _on_text(self, reader: Any, _identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            attributes = reader.info.attributes or {}
            if attributes.get("lk.transcription_final") == "false" or not text.strip():
                return
            learner = attributes.get("lk.transcribed_track_id") == self.track_sid
            self.said.append(Said(time.monotonic(), reader.info.topic, text, learner))

        self._spawn(read())

    async def _microphone(self) -> None:
        from livekit import rtc

        silence = np.zeros(self.FRAME, dtype=np.int16)
        while True:
            if self._pending:
                frame = self._pending.pop(0)
                last = not self._pending
            else:
                frame, last = silence, False
            await self._source.capture_frame(rtc.AudioFrame(frame.tobytes(), 16_000, 1, self.FRAME))
            if last and self._spoken is not None:
                self._spoken.set()

    async def say(self, clip: bytes, *, trailing_silence_s: float = 0.0) -> tuple[float, float]:
        """Speak `clip` (any format PARLE decodes) in real time; returns the monotonic times
        its first and last frames were handed to WebRTC. Silence follows, as from a real
        microphone, so the agent's VAD sees the speech end."""
        audio = (decode_audio(clip) * 32767).astype(np.int16)
        audio = np.concatenate([audio, np.zeros(-audio.size % self.FRAME, dtype=np.int16)])
        self._spoken = asyncio.Event()
        self._pending = [audio[i : i + self.FRAME] for i in range(0, audio.size, self.FRAME)]
        started = time.monotonic()
        await asyncio.wait_for(self._spoken.wait(), timeout=audio.size / 16_000 + 10)
        ended = time.monotonic()
        if trailing_silence_s:
            await asyncio.sleep(trailing_silence_s)
        return started, ended

    def texts(self, topic: str, *, learner: bool | None = None, after: float = 0.0) -> list[str]:
        return [
            s.text
            for s in self.said
            if s.topic == topic and s.at > after and (learner is None or s.learner == learner)
        ]

    async def until(self, what: str, predicate: Callable[[], Any], within_s: float) -> Any:
        deadline = time.monotonic() + within_s
        while not (value := predicate()):
            assert time.monotonic() < deadline, f"{what} (within {within_s:.0f} s): {self.said}"
            await asyncio.sleep(0.05)
        return value

    async def greeted(self, within_s: float = 90.0) -> float:
        """Wait until the tutor has joined and said its greeting to the end; its audio's end."""
        await self.until("the tutor was not dispatched", lambda: self.agent_joined, within_s)
        _, end, _ = await self.reply(0.0, within_s)
        return end

    async def reply(self, after: float, within_s: float = 90.0) -> tuple[float, float, list[str]]:
        """The tutor's next spoken turn after `after`, heard to its end: its first and last
        audible frames' arrival, and its transcription (which the agent sends as it ends)."""
        start = await self.until(
            "the tutor did not speak", lambda: self.heard.first_audible(after), within_s
        )
        texts = await self.until(
            "no transcription of the tutor's speech",
            lambda: self.texts("lk.transcription", learner=False, after=after),
            within_s + 60,
        )
        end = await self.until(
            "the tutor's speech did not end", lambda: self.heard.quiet_now(start, 1.0), 60
        )
        return float(start), float(end), texts


async def transcribe(parle_url: str, wav: bytes) -> str:
    """Whisper (the PARLE server's) on audio the learner's client received."""
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            f"{parle_url}/v1/audio/transcriptions",
            files={"file": ("heard.wav", wav, "audio/wav")},
            data={"model": "whisper-1", "language": "pt"},
        )
    response.raise_for_status()
    return str(response.json()["text"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m harness.livekit_stack",
        description="Write the repository's livekit.yaml moved onto loopback (make livekit-dev).",
    )
    parser.add_argument("out", type=Path, help="the configuration file to write")
    parser.add_argument("--redis", help="redis address (default: livekit.yaml's)")
    args = parser.parse_args(argv)
    loopback_config(args.out, redis=args.redis)


if __name__ == "__main__":
    main()
