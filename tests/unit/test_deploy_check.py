"""`make deploy-check` passes on deploy/ as committed and catches what it is there to catch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_deploy", REPO / "deploy" / "check_deploy.py")
assert _spec and _spec.loader
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

COMPOSE = (REPO / "deploy" / "compose.yaml").read_text()
LIVEKIT = (REPO / "livekit.yaml").read_text()  # at the root, shared with `make livekit-dev`


def test_the_committed_deployment_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "check_deploy.py")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_every_compose_variable_is_documented_and_no_secret_is_written_in() -> None:
    env = check.env_example()
    assert {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "PARLE_API_KEYS", "HF_TOKEN"} <= env.keys()
    assert {"TENSORDOCK_API_TOKEN", "TENSORDOCK_INSTANCE_ID"} <= env.keys()
    leaked = COMPOSE.replace("HF_TOKEN: ${HF_TOKEN:-}", "HF_TOKEN: hf_abc123")
    assert "compose.yaml: vllm: HF_TOKEN is written in; use ${HF_TOKEN}" in check.check_compose(
        leaked, env
    )
    undocumented = COMPOSE.replace("${PARLE_LLM_CONTEXT:-4096}", "${PARLE_LLM_CTX:-4096}")
    assert check.check_compose(undocumented, env) == [
        "compose.yaml: ${PARLE_LLM_CTX} is not listed in .env.example"
    ]
    assert check.check_env_example(
        {"LIVEKIT_API_SECRET": "s3cret", "VLLM_TOKENIZER_MODE": "x"}
    ) == [".env.example: LIVEKIT_API_SECRET has a value; secrets stay empty in the example"]


def test_start_order_health_and_gpus_are_required() -> None:
    compose = yaml.safe_load(COMPOSE)
    compose["services"]["parle-agent"]["depends_on"] = ["parle-server", "livekit-server"]
    del compose["services"]["vllm"]["deploy"]
    del compose["services"]["redis"]["healthcheck"]
    problems = check.check_compose(yaml.safe_dump(compose), check.env_example())
    assert set(problems) == {
        "compose.yaml: parle-agent must wait for parle-server to be healthy",
        "compose.yaml: parle-agent must wait for livekit-server to be healthy",
        "compose.yaml: vllm: no GPU reservation",
        "compose.yaml: redis: no healthcheck",
    }


def test_livekit_yaml_typos_and_keys_are_caught() -> None:
    assert check.check_livekit(LIVEKIT) == []
    typo = LIVEKIT.replace("empty_timeout:", "empty_timout:")
    assert "livekit.yaml: unknown key room.empty_timout" in check.check_livekit(typo)
    with_keys = LIVEKIT + "\nkeys:\n  APIkey: secret\n"
    assert "livekit.yaml: keys belong in LIVEKIT_KEYS (environment), not the file" in (
        check.check_livekit(with_keys)
    )


def test_the_dockerfile_rules() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert check.check_dockerfile(dockerfile) == []
    as_root = dockerfile.replace("USER parle", "USER root")
    assert check.check_dockerfile(as_root) == ["Dockerfile: run as a non-root USER"]
    baked_secret = dockerfile + "\nARG HF_TOKEN\n"
    assert check.check_dockerfile(baked_secret) == [
        "Dockerfile: a secret as ARG/ENV ends up in the image; use a secret mount"
    ]


def test_a_dependency_missing_from_the_lock_is_caught() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    lock = (REPO / "deploy" / "requirements-gpu.lock").read_text()
    assert check.check_lock(pyproject, lock) == []
    without = "\n".join(line for line in lock.splitlines() if not line.startswith("sqlalchemy=="))
    assert check.check_lock(pyproject, without) == [
        "deploy/requirements-gpu.lock lacks sqlalchemy (make lock)"
    ]


def test_languagetool_serves_the_network_only_and_never_holds_the_tutor_back() -> None:
    env = check.env_example()
    assert check.check_compose(COMPOSE, env) == []
    compose = yaml.safe_load(COMPOSE)
    services = compose["services"]
    del services["languagetool"]["healthcheck"]
    services["languagetool"]["ports"] = ["8010:8010"]
    services["languagetool"]["entrypoint"].remove("--public")
    services["parle-server"]["depends_on"]["languagetool"]["condition"] = "service_healthy"
    del services["parle-agent"]["environment"]["PARLE_GRAMMAR_URL"]
    services["parle-agent"]["environment"]["PARLE_GRAMMAR_LAUNCH"] = "true"
    assert set(check.check_compose(yaml.safe_dump(compose), env)) == {
        "compose.yaml: languagetool: no healthcheck",
        "compose.yaml: languagetool: publishes ports; it serves the network only",
        "compose.yaml: languagetool: run HTTPServer with --public (else it answers only on its"
        " own loopback)",
        "compose.yaml: parle-server must not wait for languagetool to be healthy"
        " (service_started: a grammar outage never holds the tutor back)",
        "compose.yaml: parle-agent: PARLE_GRAMMAR_URL must be http://languagetool:8010/v2"
        " (languagetool's --port)",
        'compose.yaml: parle-agent: set PARLE_GRAMMAR_LAUNCH: "false"',
    }
    del services["languagetool"]
    assert "compose.yaml: services missing: languagetool" in check.check_compose(
        yaml.safe_dump(compose), env
    )


def test_the_image_fetches_languagetool_as_make_setup_does() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    unpinned = dockerfile.replace("maven:3.9.9-eclipse-temurin-17", "maven")
    assert check.check_dockerfile(unpinned) == [
        "Dockerfile: pin the base image to a version ('maven')"
    ]
    script = (REPO / "scripts" / "languagetool.sh").read_text()
    plugin = check._plugin(script)
    assert plugin and plugin in dockerfile
    other = dockerfile.replace(plugin, plugin.rsplit(":", 1)[0] + ":3.6.0")
    assert check.check_dockerfile(other) == [
        f"Dockerfile: fetch LanguageTool with {plugin}:copy-dependencies, as"
        " scripts/languagetool.sh does"
    ]
    no_home = dockerfile.replace("PARLE_GRAMMAR_HOME=", "PARLE_GRAMMAR_DIR=")
    assert check.check_dockerfile(no_home) == [
        "Dockerfile: set PARLE_GRAMMAR_HOME to LanguageTool's jars"
    ]


def test_dockerignore_must_let_in_what_the_dockerfile_copies() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    ignore = "*\n!deploy/requirements-gpu.lock\n!deploy/languagetool/pom.xml\n!pyproject.toml\n"
    ignore += "!README.md\n!parle/\n!bridge/\n!agent/\n**/__pycache__\n"
    assert check.check_dockerignore(dockerfile, ignore) == []
    assert check.dockerignored("parle/engines/__pycache__/x.pyc", ignore)
    assert not check.dockerignored("parle/engines/languagetool.py", ignore)
    without_pom = ignore.replace("!deploy/languagetool/pom.xml\n", "")
    assert check.check_dockerignore(dockerfile, without_pom) == [
        ".dockerignore: keeps out deploy/languagetool/pom.xml, which the Dockerfile copies"
    ]
