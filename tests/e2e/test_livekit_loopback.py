"""livekit-server as the real-room tests and `make livekit-dev` run it (`LiveKitServer`, the
repository's livekit.yaml through `loopback_config`) opens sockets on loopback only: its
listeners, and the UDP sockets ICE binds for each peer connection, read from the kernel's
socket tables (/proc/net/{tcp,tcp6,udp,udp6}) for the sockets the process holds. Two
participants join a room through LiveKit's Python SDK meanwhile, one publishing a tone: the
other hears it, so media flows over those loopback sockets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness.livekit_stack import API_KEY, API_SECRET, LiveKitServer, require_livekit_server

pytestmark = [
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net"),
    pytest.mark.timeout(120),
]

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Sock:
    proto: str  # tcp, tcp6, udp, udp6
    state: str  # the kernel's state, hex: 0A listening (TCP), 07 unconnected (UDP)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    @property
    def loopback(self) -> bool:
        mapped = getattr(self.address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
        return self.address.is_loopback or (mapped is not None and mapped.is_loopback)

    def __str__(self) -> str:
        return f"{self.proto} {self.address}:{self.port} (state {self.state})"


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)  # in 32-bit words, each in the host's byte order
    words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    native = b"".join(int.from_bytes(w, sys.byteorder).to_bytes(4, "big") for w in words)
    if len(native) == 4:
        return ipaddress.IPv4Address(native)
    return ipaddress.IPv6Address(native)


def sockets_of(pid: int) -> list[Sock]:
    """The TCP and UDP sockets (IPv4 and IPv6) process `pid` holds, with their local address."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                address, port = fields[1].split(":")
                found.append(Sock(proto, fields[3], _address(address), int(port, 16)))
    return found


def test_proc_addresses_are_read_in_network_order() -> None:
    assert _address("0100007F") == ipaddress.IPv4Address("127.0.0.1")
    assert _address("00000000000000000000000001000000") == ipaddress.IPv6Address("::1")
    assert _address("0000000000000000FFFF00000100007F") == ipaddress.IPv6Address("::ffff:127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        mine = Sock("udp", "07", ipaddress.IPv4Address("127.0.0.1"), sock.getsockname()[1])
        assert mine in sockets_of(os.getpid())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    require_livekit_server()
    server = LiveKitServer(tmp_path_factory.mktemp("livekit-loopback"))
    yield server
    server.process.stop()


def test_livekit_server_listens_on_loopback_only(server: LiveKitServer) -> None:
    socks = sockets_of(server.process.popen.pid)
    listening = {(s.address, s.port) for s in socks if s.state == TCP_LISTEN}
    localhost = ipaddress.IPv4Address("127.0.0.1")
    # Signalling and metrics, and no ICE-over-TCP listener (it would be on every address).
    assert listening == {(localhost, server.port), (localhost, server.metrics_port)}, [
        str(s) for s in socks
    ]
    assert all(s.loopback for s in socks), [str(s) for s in socks]


async def test_media_flows_over_loopback_sockets_only(server: LiveKitServer) -> None:
    from livekit import api, rtc

    def token(identity: str) -> str:
        grant = api.VideoGrants(room_join=True, room="loopback")
        access = api.AccessToken(API_KEY, API_SECRET).with_identity(identity)
        return access.with_grants(grant).to_jwt()

    heard: list[float] = []

    async def listen(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=48_000, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            heard.append(float(np.sqrt(np.mean((samples / 32768) ** 2))) if samples.size else 0)

    tasks: list[asyncio.Task[None]] = []
    listener, speaker = rtc.Room(), rtc.Room()
    listener.on(
        "track_subscribed", lambda track, *_: tasks.append(asyncio.create_task(listen(track)))
    )
    try:
        await listener.connect(server.url, token("listener"))
        await speaker.connect(server.url, token("speaker"))
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await speaker.local_participant.publish_track(track, options)
        t = np.arange(480) / 48_000
        for i in range(300):  # 3 s of a 440 Hz tone, in real time
            tone = 0.25 * np.sin(2 * np.pi * 440 * (t + i * 0.01))
            frame = (tone * 32767).astype(np.int16).tobytes()
            await source.capture_frame(rtc.AudioFrame(frame, 48_000, 1, 480))
        await asyncio.sleep(0.3)
        socks = sockets_of(server.process.popen.pid)  # while both peer connections are up
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await speaker.disconnect()
        await listener.disconnect()

    # The tone arrived (over 1 s of it; RMS 0.18 sent, codec loss aside)...
    assert sum(level > 0.05 for level in heard) >= 100, (len(heard), server.process.log())
    # ...through UDP sockets ICE bound on loopback, and nothing else is off loopback.
    udp = [s for s in socks if s.proto.startswith("udp")]
    assert udp, socks
    assert all(s.loopback for s in socks), [str(s) for s in socks]
