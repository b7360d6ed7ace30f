"""The phone door's LiveKit side: the SIP inbound trunk (the carrier's calls come in on it)
and the dispatch rule (each call its own `parle-call-` room, the `parle-tutor` agent in it),
created or brought up to date through LiveKit's server API (`livekit-api`), no `lk` needed.

The wanted trunk and rule are the files in `deploy/sip/` (the `lk` CLI's JSON: `{"trunk":
{...}}` and `{"dispatch_rule": {...}}`); each is found by its name, created when absent,
replaced when it differs, left alone when it matches, so `parle sip setup` can run at every
deploy. The rule is attached to the trunk it set up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from livekit import api
from livekit.protocol import sip

# Set by the server, never by the files: left out when comparing what is with what is wanted.
_SERVER_FIELDS = ("sip_trunk_id", "sip_dispatch_rule_id", "created_at", "updated_at")


class SipSetupError(ValueError):
    """A trunk or rule file cannot be used (missing, not JSON, unknown fields)."""


@dataclass(frozen=True)
class Wanted:
    trunk: sip.SIPInboundTrunkInfo
    rule: sip.SIPDispatchRuleInfo


def read_wanted(trunk_file: Path, rule_file: Path) -> Wanted:
    """The trunk and rule the files describe (the `lk` CLI's JSON)."""
    return Wanted(
        trunk=_parse(trunk_file, "trunk", sip.SIPInboundTrunkInfo()),
        rule=_parse(rule_file, "dispatch_rule", sip.SIPDispatchRuleInfo()),
    )


def _parse(path: Path, key: str, message: Any) -> Any:
    try:
        data = json.loads(path.read_text("utf-8"))
        json_format.ParseDict(data.get(key, data), message)
    except (OSError, ValueError, AttributeError, json_format.ParseError) as exc:
        raise SipSetupError(f"{path}: {exc}") from exc
    if not message.name:
        raise SipSetupError(f"{path}: the {key} needs a name (it is found again by it)")
    return message


def _content(message: Any) -> Any:
    """What a trunk or rule says, as data: without the fields the server sets, and without
    empty parts (the server stores an unset `media` as an empty one)."""

    def pruned(value: Any) -> Any:
        if isinstance(value, dict):
            kept = {key: pruned(item) for key, item in value.items()}
            return {key: item for key, item in kept.items() if item not in ({}, [], "", None)}
        return [pruned(item) for item in value] if isinstance(value, list) else value

    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return pruned({key: value for key, value in data.items() if key not in _SERVER_FIELDS})


def _same(current: Any, wanted: Any) -> bool:
    return bool(_content(current) == _content(wanted))


async def setup(lk: api.LiveKitAPI, wanted: Wanted, *, dry_run: bool = False) -> list[str]:
    """Bring the server's trunk and rule to `wanted`; what was (or, dry, would be) done."""
    done: list[str] = []
    verb = "would " if dry_run else ""
    trunks = (await lk.sip.list_inbound_trunk(sip.ListSIPInboundTrunkRequest())).items
    trunk = next((t for t in trunks if t.name == wanted.trunk.name), None)
    trunk_id = trunk.sip_trunk_id if trunk is not None else "<new trunk>"
    if trunk is None:
        done.append(f"{verb}create inbound trunk {wanted.trunk.name!r}")
        if not dry_run:
            created = await lk.sip.create_inbound_trunk(
                sip.CreateSIPInboundTrunkRequest(trunk=wanted.trunk)
            )
            trunk_id = created.sip_trunk_id
    elif not _same(trunk, wanted.trunk):
        done.append(f"{verb}update inbound trunk {wanted.trunk.name!r} ({trunk_id})")
        if not dry_run:
            await lk.sip.update_inbound_trunk(trunk_id, wanted.trunk)
    else:
        done.append(f"inbound trunk {wanted.trunk.name!r} ({trunk_id}) is up to date")

    rule = sip.SIPDispatchRuleInfo()
    rule.CopyFrom(wanted.rule)
    rule.trunk_ids[:] = [trunk_id]
    rules = (await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())).items
    current = next((r for r in rules if r.name == rule.name), None)
    if current is None:
        done.append(f"{verb}create dispatch rule {rule.name!r}")
        if not dry_run:
            await lk.sip.create_dispatch_rule(sip.CreateSIPDispatchRuleRequest(dispatch_rule=rule))
    elif not _same(current, rule):
        rule_id = current.sip_dispatch_rule_id
        done.append(f"{verb}update dispatch rule {rule.name!r} ({rule_id})")
        if not dry_run:
            await lk.sip.update_dispatch_rule(rule_id, rule)
    else:
        done.append(f"dispatch rule {rule.name!r} ({current.sip_dispatch_rule_id}) is up to date")
    return done


async def status(lk: api.LiveKitAPI) -> list[str]:
    """The server's inbound trunks and dispatch rules, a line each."""
    lines = []
    trunks = (await lk.sip.list_inbound_trunk(sip.ListSIPInboundTrunkRequest())).items
    for trunk in trunks:
        numbers = ", ".join(trunk.numbers) or "any number"
        lines.append(f"inbound trunk {trunk.name!r} ({trunk.sip_trunk_id}): {numbers}")
    rules = (await lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())).items
    for rule in rules:
        kind = rule.rule.WhichOneof("rule") or "no rule"
        agents = ", ".join(a.agent_name for a in rule.room_config.agents) or "no agent"
        trunk_ids = ", ".join(rule.trunk_ids) or "every trunk"
        lines.append(
            f"dispatch rule {rule.name!r} ({rule.sip_dispatch_rule_id}): {kind}, "
            f"agent {agents}, trunks {trunk_ids}"
        )
    return lines or ["no inbound trunk, no dispatch rule"]
