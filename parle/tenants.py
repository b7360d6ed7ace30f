"""Whose learner is it: every learner record and every conversation in memory belongs to a
tenant, the app that created it. A tenant is named by its API key (`PARLE_API_KEYS`
entries `NAME:KEY`; a bare key is a tenant of its own); without keys (a laptop) everything
is the `default` tenant's, which is also where records made before tenants exist went.

One learner id may exist in two tenants as two learners: the store keys a learner by
`store_key(tenant, learner_id)`, and nothing outside the store sees that key.
"""

from __future__ import annotations

import hashlib
import re

DEFAULT_TENANT = "default"
# The id rule: what a session's, a learner's or a room's id may be, at every door. It has no
# "/", which a store key relies on.
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
# A tenant's name: what a `NAME:KEY` entry may call it. No "/": it separates the tenant from
# the learner in a store key, and learner ids never hold one either (the id rule).
TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TENANT = re.compile(TENANT_PATTERN)
_SEPARATOR = "/"
# A LiveKit participant's attribute naming its learner's tenant: signed into the join token
# by `/api/token`, or set by a SIP dispatch rule's `attributes` (deploy/sip/); read by the
# agent, which records the learner under that tenant. Absent: the default tenant.
TENANT_ATTRIBUTE = "parle.tenant"


class TenantConfigError(ValueError):
    """An API key entry whose tenant name breaks `TENANT_PATTERN`."""


def is_tenant(name: str) -> bool:
    return _TENANT.fullmatch(name) is not None


def key_tenant(key: str) -> str:
    """The tenant of a bare key: a name derived from the key (never the key itself, which
    would then sit in every stored row)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def parse_api_keys(value: str) -> dict[str, str]:
    """`PARLE_API_KEYS` (comma-separated `KEY` or `NAME:KEY`) as key -> tenant. A name makes
    the tenant outlive its key: rotate the key, keep the name, keep the learners."""
    keys: dict[str, str] = {}
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, key = entry.partition(":")
        if not sep:
            keys[entry] = key_tenant(entry)
            continue
        name, key = name.strip(), key.strip()
        if not key or not is_tenant(name):
            raise TenantConfigError(
                "PARLE_API_KEYS: an entry is KEY or NAME:KEY, NAME of letters, digits and . _ -"
                " (at most 64 characters)"
            )
        keys[key] = name
    return keys


def store_key(tenant: str, learner_id: str) -> str:
    """The learner's key in the store: unique across tenants."""
    return tenant + _SEPARATOR + learner_id


def learner_of(key: str) -> str:
    """The learner id a store key was made from (what a client named)."""
    return key.partition(_SEPARATOR)[2] or key
