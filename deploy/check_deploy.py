"""`make deploy-check`: validate deploy/ offline, with no Docker engine.

Checks compose.yaml (services, start order on health, health checks, GPU reservations,
pinned images, every `${VAR}` listed in .env.example, no secret written in; LanguageTool: public
on the compose network only, used by parle-server and parle-agent, never waited for healthy),
livekit.yaml (at the repository root, shared with `make livekit-dev`: known keys only, so a typo
is caught; ports; redis; no keys in the file), sip.yaml, the Dockerfile (non-root, health
check, lock file, pinned base images, LanguageTool's jars fetched as scripts/languagetool.sh
fetches them) and .dockerignore (it lets in what the Dockerfile copies). When `docker compose`
is installed it also runs `docker compose config` on the file.
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

SERVICES = {
    "redis", "livekit-server", "livekit-sip", "vllm", "languagetool", "parle-server", "parle-agent"
}  # fmt: skip
# service -> the services it must wait for, healthy
START_ORDER = {
    "livekit-server": {"redis"},
    "livekit-sip": {"redis", "livekit-server"},
    "parle-server": {"vllm"},
    "parle-agent": {"parle-server", "livekit-server"},
}
GPU_SERVICES = {"vllm", "parle-server"}
# Reached only from the other containers: no port published on the host.
INTERNAL_SERVICES = {"languagetool"}
# LanguageTool, and who calls it: they may wait for it to start, never to be healthy (a grammar
# checker that is down never fails a turn, so it must never keep the tutor from starting).
GRAMMAR_SERVICE = "languagetool"
GRAMMAR_CLIENTS = {"parle-server", "parle-agent"}
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
        if name in INTERNAL_SERVICES and service.get("ports"):
            problems.append(f"compose.yaml: {name}: publishes ports; it serves the network only")
    problems += check_grammar(services)
    for name in sorted(set(VARIABLE.findall(text)) - env.keys()):
        problems.append(f"compose.yaml: ${{{name}}} is not listed in .env.example")
    return problems


def _words(value: Any) -> list[str]:
    """An entrypoint or command as its words (a string is split on spaces, as compose does)."""
    if isinstance(value, str):
        return value.split()
    return [str(word) for word in value or []]


def check_grammar(services: dict[str, Any]) -> list[str]:
    """LanguageTool listens beyond loopback on the port its clients use; parle-server and
    parle-agent call it there, launch none of their own and never wait for it to be healthy."""
    server = services.get(GRAMMAR_SERVICE)
    if server is None:
        return []  # reported as a missing service
    problems = []
    words = _words(server.get("entrypoint")) + _words(server.get("command"))
    if "--public" not in words:
        problems.append(
            f"compose.yaml: {GRAMMAR_SERVICE}: run HTTPServer with --public (else it answers"
            " only on its own loopback)"
        )
    port = words[words.index("--port") + 1] if "--port" in words[:-1] else None
    want = f"http://{GRAMMAR_SERVICE}:{port}/"
    for name in sorted(GRAMMAR_CLIENTS & services.keys()):
        service = services[name]
        environment = service.get("environment", {})
        environment = environment if isinstance(environment, dict) else {}
        if not str(environment.get("PARLE_GRAMMAR_URL", "")).startswith(want):
            problems.append(
                f"compose.yaml: {name}: PARLE_GRAMMAR_URL must be {want}v2 ({GRAMMAR_SERVICE}'s"
                " --port)"
            )
        if str(environment.get("PARLE_GRAMMAR_LAUNCH", "")).lower() != "false":
            problems.append(f'compose.yaml: {name}: set PARLE_GRAMMAR_LAUNCH: "false"')
        depends = service.get("depends_on", {})
        condition = (
            depends.get(GRAMMAR_SERVICE, {}).get("condition") if isinstance(depends, dict) else None
        )
        if condition == "service_healthy":
            problems.append(
                f"compose.yaml: {name} must not wait for {GRAMMAR_SERVICE} to be healthy"
                " (service_started: a grammar outage never holds the tutor back)"
            )
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


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def _plugin(text: str) -> str | None:
    """The maven-dependency-plugin (group:artifact:version) a fetch of LanguageTool runs."""
    found = re.search(r"org\.apache\.maven\.plugins:maven-dependency-plugin:[\w.-]+", text)
    return found.group(0) if found else None


def check_dockerfile(
    text: str, fetch_script: Path = REPO / "scripts" / "languagetool.sh"
) -> list[str]:
    problems = []
    stages: dict[str, str] = {}  # stage name -> its base image
    args: dict[str, str] = {}  # ARG name -> its default
    instructions = _instructions(text)
    for instruction in instructions:
        words = instruction.split()
        if words[0].upper() == "ARG" and len(words) > 1:
            name, _, default = words[1].partition("=")
            args.setdefault(name, default)
        if words[0].upper() != "FROM":
            continue
        image = next((w for w in words[1:] if not w.startswith("--")), "")
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), image)
        if image not in stages and (
            ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        ):
            problems.append(f"Dockerfile: pin the base image to a version ({image!r})")
        if len(words) >= 4 and words[-2].upper() == "AS":
            stages[words[-1]] = image
    if "languagetool" not in stages:
        problems.append("Dockerfile: no `languagetool` stage fetching LanguageTool's jars")
    if "deploy/languagetool/pom.xml" not in text:
        problems.append("Dockerfile: fetch LanguageTool with deploy/languagetool/pom.xml")
    plugin = _plugin(fetch_script.read_text()) if fetch_script.is_file() else None
    if _plugin(text) != plugin:
        problems.append(
            f"Dockerfile: fetch LanguageTool with {plugin}:copy-dependencies, as"
            " scripts/languagetool.sh does"
        )
    if not any(i.startswith("ENV ") and "PARLE_GRAMMAR_HOME=" in i for i in instructions):
        problems.append("Dockerfile: set PARLE_GRAMMAR_HOME to LanguageTool's jars")
    if "openjdk-17-jre-headless" not in text:
        problems.append("Dockerfile: LanguageTool needs openjdk-17-jre-headless")
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


def _dockerignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over a context path (`*` within one
    folder, `**` across folders, `?` one character)."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    regex = "".join(
        "(.*/)?" if part == "**/" else ".*" if part == "**" else "[^/]*" if part == "*"
        else "[^/]" if part == "?" else re.escape(part)
        for part in parts
    )  # fmt: skip
    return re.compile(regex)


def dockerignored(path: str, dockerignore: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last pattern matching
    it or a folder above it decides; `!` lets it in)."""
    ignored = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in dockerignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = _dockerignore_pattern(line.removeprefix("!").strip())
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            ignored = not keep
    return ignored


def check_dockerignore(dockerfile: str, dockerignore: str) -> list[str]:
    """Every file the Dockerfile COPYs from the build context is let in by .dockerignore (else
    the build stops at that COPY)."""
    problems = []
    for instruction in _instructions(dockerfile):
        words = instruction.split()
        if words[0].upper() not in ("COPY", "ADD") or any(w.startswith("--from") for w in words):
            continue
        for source in [w for w in words[1:] if not w.startswith("--")][:-1]:
            if source.startswith(("[", "<<", "http://", "https://")):
                continue
            if dockerignored(source.removeprefix("./"), dockerignore):
                problems.append(f".dockerignore: keeps out {source}, which the Dockerfile copies")
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
    deploy: Path = DEPLOY,
    dockerfile: Path = REPO / "Dockerfile",
    livekit: Path = LIVEKIT_YAML,
    dockerignore: Path = REPO / ".dockerignore",
) -> list[str]:
    env = env_example()
    return (
        check_compose((deploy / "compose.yaml").read_text(), env)
        + check_env_example(env)
        + check_livekit(livekit.read_text())
        + check_sip((deploy / "sip" / "sip.yaml").read_text())
        + check_dockerfile(dockerfile.read_text())
        + check_dockerignore(
            dockerfile.read_text(), dockerignore.read_text() if dockerignore.is_file() else ""
        )
        + check_lock(
            (REPO / "pyproject.toml").read_text(), (deploy / "requirements-gpu.lock").read_text()
        )
    )


def main() -> int:
    problems = run_checks() + docker_compose_config()
    for problem in problems:
        print(f"deploy-check: {problem}", file=sys.stderr)
    if not problems:
        print(
            "deploy-check: compose.yaml, livekit.yaml, sip.yaml, .env.example, Dockerfile,"
            " .dockerignore: OK"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
