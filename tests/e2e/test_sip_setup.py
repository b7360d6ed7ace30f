"""`parle sip setup` and `parle sip status` against a real livekit-server (with the Redis its
SIP APIs need): the repository's trunk and dispatch rule are created, a second run changes
nothing, a changed file updates the trunk in place, `--dry-run` only says what it would do."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import api
from livekit.protocol import sip

from harness.livekit_stack import (
    API_KEY,
    API_SECRET,
    LiveKitServer,
    RedisServer,
    require_livekit_server,
)

REPO = Path(__file__).resolve().parents[2]
TRUNK = REPO / "deploy" / "sip" / "inbound-trunk.json"
RULE = REPO / "deploy" / "sip" / "dispatch-rule.json"


@pytest.fixture(scope="module")
def livekit() -> Iterator[LiveKitServer]:
    require_livekit_server()
    if RedisServer.BINARY is None:
        pytest.skip("needs redis-server (Debian's redis-server; .ci/run installs it)")
    log_dir = Path(tempfile.mkdtemp(prefix="parle-sip-"))
    redis = RedisServer(log_dir)
    server = LiveKitServer(log_dir, redis=redis.address)
    yield server
    server.process.stop()
    redis.process.stop()


def parle_sip(livekit: LiveKitServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIVEKIT_URL": livekit.url, "LIVEKIT_API_KEY": API_KEY,
           "LIVEKIT_API_SECRET": API_SECRET}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "parle", "sip", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def on_server(
    livekit: LiveKitServer,
) -> tuple[list[sip.SIPInboundTrunkInfo], list[sip.SIPDispatchRuleInfo]]:
    async def read() -> tuple[list[sip.SIPInboundTrunkInfo], list[sip.SIPDispatchRuleInfo]]:
        async with api.LiveKitAPI(livekit.http_url, API_KEY, API_SECRET) as lk:
            trunks = await lk.sip.list_inbound_trunk(sip.ListSIPInboundTrunkRequest())
            rules = await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())
            return list(trunks.items), list(rules.items)

    return asyncio.run(read())


def test_setup_creates_then_keeps_then_updates_the_trunk_and_rule(
    livekit: LiveKitServer, tmp_path: Path
) -> None:
    dry = parle_sip(livekit, "setup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create inbound trunk 'PARLE inbound'" in dry.stdout
    assert "would create dispatch rule 'PARLE tutor: one room per call'" in dry.stdout
    assert on_server(livekit) == ([], [])  # a dry run changes nothing

    first = parle_sip(livekit, "setup")
    assert first.returncode == 0, first.stderr
    (trunk,), (rule,) = on_server(livekit)
    assert list(trunk.numbers) == ["+5511999990000"]
    assert rule.rule.dispatch_rule_individual.room_prefix == "parle-call-"
    assert [a.agent_name for a in rule.room_config.agents] == ["parle-tutor"]
    assert list(rule.trunk_ids) == [trunk.sip_trunk_id]

    again = parle_sip(livekit, "setup")
    assert again.returncode == 0 and again.stdout.count("is up to date") == 2, again.stdout
    assert on_server(livekit) == ([trunk], [rule])

    changed = json.loads(TRUNK.read_text())
    changed["trunk"]["numbers"] = ["+5511999990000", "+5521987650000"]
    (tmp_path / "trunk.json").write_text(json.dumps(changed))
    update = parle_sip(livekit, "setup", "--trunk", str(tmp_path / "trunk.json"))
    assert update.returncode == 0 and "update inbound trunk" in update.stdout, update.stdout
    (updated,), rules = on_server(livekit)
    assert updated.sip_trunk_id == trunk.sip_trunk_id  # in place: the rule still points at it
    assert list(updated.numbers) == ["+5511999990000", "+5521987650000"] and rules == [rule]

    shown = parle_sip(livekit, "status")
    assert shown.returncode == 0
    assert "inbound trunk 'PARLE inbound'" in shown.stdout
    assert "dispatch_rule_individual, agent parle-tutor" in shown.stdout


def test_bad_files_and_missing_credentials_are_one_clear_line(
    livekit: LiveKitServer, tmp_path: Path
) -> None:
    broken = tmp_path / "trunk.json"
    broken.write_text('{"trunk": {"name": "x", "numbrs": ["+1"]}}')
    bad = parle_sip(livekit, "setup", "--trunk", str(broken))
    assert bad.returncode == 2 and "numbrs" in bad.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    nothing = subprocess.run(
        [sys.executable, "-m", "parle", "sip", "status"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert nothing.returncode == 2 and "LIVEKIT_URL" in nothing.stderr
