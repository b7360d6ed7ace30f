"""`make deploy-check`: validate deploy/ offline, with no Docker engine.

Checks compose.yaml (services, start order on health, health checks, GPU reservations,
pinned images, every `${VAR}` listed in .env.example, no secret written in), livekit.yaml (at
the repository root, shared with `make livekit-dev`: known keys only, so a typo is caught;
ports; redis; no keys in the file), sip.yaml, and the Dockerfile (non-root, health check, lock
file). When `docker compose` is installed it also runs `docker compose config` on the file.
Exit 1 with one line per problem.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
LIVEKIT_YAML = REPO / "livekit.yaml"  # compose mounts ../livekit.yaml

SERVICES = {"redis", "livekit-server", "livekit-sip", "vllm", "parle-server", "parle-agent"}
# service -> the services it must wait for, healthy
START_ORDER = {
    "livekit-server": {"redis"},
    "livekit-sip": {"redis", "livekit-server"},
    "parle-server": {"vllm"},
    "parle-agent": {"parle-server", "livekit-server"},
}
GPU_SERVICES = {"vllm", "parle-server"}
SECRET_NAMES = re.compile(r"(^|_)(SECRET|TOKEN|PASSWORD|KEYS?)($|_)")
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(?::?[-?])[^}]*)?\}")

# livekit-server's configuration keys (a subset of its schema: what PARLE may set).
LIVEKIT_KEYS: dict[str, set[str] | None] = {
    "port": None,
    "bind_addresses": None,
    "log_level": None,
    "logging": None,
    "development": None,
    "rtc": {
        "tcp_port", "udp_port", "port_range_start", "port_range_end", "use_external_ip",
        "node_ip", "stun_servers", "turn_servers", "interfaces", "ips", "enable_loopback_candidate",
        "use_ice_lite", "congestion_control", "allow_tcp_fallback",
    },
    "redis": {
        "address", "username", "password", "db", "use_tls", "sentinel_master_name",
        "sentinel_addresses", "cluster_addresses",
    },
    "room": {
        "auto_create", "empty_timeout", "departure_timeout", "max_participants", "enabled_codecs",
        "max_metadata_size", "playout_delay", "sync_streams",
    },
    "turn": {"enabled", "domain", "tls_port", "udp_port", "cert_file", "key_file", "external_tls",
             "relay_range_start", "relay_range_end"},
    "webhook": {"api_key", "urls"},
    "keys": None,
    "key_file": None,
    "limit": None,
    "node_selector": None,
    "region": None,
    "prometheus_port": None,
    "audio": None,
    "video": None,
    "ingress": None,
    "signal_relay": None,
}  # fmt: skip


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def check_compose(text: str, env: dict[str, str]) -> list[str]:
    problems = []
    compose = yaml.safe_load(text)
    services: dict[str, Any] = compose.get("services", {})
    if missing := SERVICES - services.keys():
        problems.append(f"compose.yaml: services missing: {', '.join(sorted(missing))}")
    for name, service in services.items():
        image = str(service.get("image", ""))
        if "build" not in service and (":" not in image or image.endswith(":latest")):
            problems.append(f"compose.yaml: {name}: pin the image to a version ({image!r})")
        if "healthcheck" not in service and name not in ("livekit-sip", "parle-server"):
            problems.append(f"compose.yaml: {name}: no healthcheck")
        depends = service.get("depends_on", {})
        for needed in START_ORDER.get(name, set()):
            condition = (
                depends.get(needed, {}).get("condition") if isinstance(depends, dict) else None
            )
            if condition != "service_healthy":
                problems.append(f"compose.yaml: {name} must wait for {needed} to be healthy")
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        has_gpu = any("gpu" in d.get("capabilities", []) for d in devices.get("devices", []))
        if name in GPU_SERVICES and not has_gpu:
            problems.append(f"compose.yaml: {name}: no GPU reservation")
        environment = service.get("environment", {})
        if isinstance(environment, dict):
            for key, value in environment.items():
                if SECRET_NAMES.search(key) and value and "${" not in str(value):
                    problems.append(f"compose.yaml: {name}: {key} is written in; use ${{{key}}}")
    for name in sorted(set(VARIABLE.findall(text)) - env.keys()):
        problems.append(f"compose.yaml: ${{{name}}} is not listed in .env.example")
    return problems


def check_env_example(env: dict[str, str]) -> list[str]:
    return [
        f".env.example: {name} has a value; secrets stay empty in the example"
        for name, value in env.items()
        if SECRET_NAMES.search(name) and value
    ]


def check_livekit(text: str) -> list[str]:
    problems = []
    config = yaml.safe_load(text) or {}
    for key, value in config.items():
        if key not in LIVEKIT_KEYS:
            problems.append(f"livekit.yaml: unknown key {key!r}")
            continue
        known = LIVEKIT_KEYS[key]
        if known is not None and isinstance(value, dict):
            problems += [f"livekit.yaml: unknown key {key}.{k}" for k in value if k not in known]
    if "keys" in config or "key_file" in config:
        problems.append("livekit.yaml: keys belong in LIVEKIT_KEYS (environment), not the file")
    if config.get("port") != 7880:
        problems.append("livekit.yaml: signalling port must be 7880 (compose publishes it)")
    rtc = config.get("rtc", {})
    if not rtc.get("tcp_port") or not (rtc.get("port_range_start") and rtc.get("port_range_end")):
        problems.append("livekit.yaml: rtc needs tcp_port and a UDP port range")
    if not config.get("redis", {}).get("address"):
        problems.append("livekit.yaml: redis.address is required (SIP, several nodes)")
    if "empty_timeout" not in config.get("room", {}):
        problems.append("livekit.yaml: set room.empty_timeout")
    return problems


def check_sip(text: str) -> list[str]:
    config = yaml.safe_load(text)
    problems = []
    for key in ("api_key", "api_secret"):
        if not str(config.get(key, "")).startswith("${"):
            problems.append(f"sip.yaml: {key} must come from the environment")
    if not config.get("redis", {}).get("address"):
        problems.append("sip.yaml: redis.address is required")
    return problems


def check_dockerfile(text: str) -> list[str]:
    problems = []
    if not re.search(r"^USER\s+(?!root)\S+", text, re.MULTILINE):
        problems.append("Dockerfile: run as a non-root USER")
    if "HEALTHCHECK" not in text or "/ready" not in text:
        problems.append("Dockerfile: HEALTHCHECK on /ready is missing")
    if "--require-hashes" not in text:
        problems.append("Dockerfile: install dependencies from the hashed lock file")
    if re.search(r"^(ARG|ENV)\s+\S*(TOKEN|SECRET)", text, re.MULTILINE):
        problems.append("Dockerfile: a secret as ARG/ENV ends up in the image; use a secret mount")
    if not (DEPLOY / "requirements-gpu.lock").is_file():
        problems.append("deploy/requirements-gpu.lock is missing (make lock)")
    return problems


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalized (PEP 503)."""
    bare = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def check_lock(pyproject: str, lock: str) -> list[str]:
    """Every dependency the image installs (the core's, the `gpu` and `agent` extras') is
    pinned in the hashed lock: the image installs the lock with --no-deps, so a dependency
    missing there is missing at run time."""
    project = tomllib.loads(pyproject)["project"]
    wanted = list(project["dependencies"])
    for extra in ("gpu", "agent"):
        wanted += project["optional-dependencies"][extra]
    pinned = {
        _name(line.split("==")[0])
        for line in lock.splitlines()
        if "==" in line and line[:1].isalnum()
    }
    return [
        f"deploy/requirements-gpu.lock lacks {_name(r)} (make lock)"
        for r in wanted
        if _name(r) not in pinned
    ]


def docker_compose_config() -> list[str]:
    """`docker compose config` when the plugin is installed (it needs no engine)."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        # The same layout as the repository: compose.yaml points at ../livekit.yaml.
        shutil.copytree(DEPLOY, f"{tmp}/deploy", dirs_exist_ok=True)
        shutil.copy(LIVEKIT_YAML, f"{tmp}/livekit.yaml")
        shutil.copy(DEPLOY / ".env.example", f"{tmp}/deploy/.env")
        result = subprocess.run(
            [docker, "compose", "-f", f"{tmp}/deploy/compose.yaml", "--env-file",
             f"{tmp}/deploy/.env",
             "config", "--quiet"],
            capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"},
        )  # fmt: skip
    return [f"docker compose config: {result.stderr.strip()}"] if result.returncode else []


def run_checks(
    deploy: Path = DEPLOY, dockerfile: Path = REPO / "Dockerfile", livekit: Path = LIVEKIT_YAML
) -> list[str]:
    env = env_example()
    return (
        check_compose((deploy / "compose.yaml").read_text(), env)
        + check_env_example(env)
        + check_livekit(livekit.read_text())
        + check_sip((deploy / "sip" / "sip.yaml").read_text())
        + check_dockerfile(dockerfile.read_text())
        + check_lock(
            (REPO / "pyproject.toml").read_text(), (deploy / "requirements-gpu.lock").read_text()
        )
    )


def main() -> int:
    problems = run_checks() + docker_compose_config()
    for problem in problems:
        print(f"deploy-check: {problem}", file=sys.stderr)
    if not problems:
        print("deploy-check: compose.yaml, livekit.yaml, sip.yaml, .env.example, Dockerfile: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
