"""The Modal deployment (`modal/modal_parle_whisper.py`), imported with the real `modal`
package: the app, the GPU choice, the secrets and the web endpoint are declared; and the
class's own loading code serves a turn (on the `cpu` profile, with no Modal account)."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.scripted_llm import ScriptedLlmServer

MODULE = Path(__file__).resolve().parents[2] / "modal" / "modal_parle_whisper.py"


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modal_parle_whisper", MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def registered(module: ModuleType) -> tuple[Any, list[str]]:
    with warnings.catch_warnings():  # modal 1.6 marks these lookups for removal in 1.7
        warnings.simplefilter("ignore")
        function = module.app.registered_functions["ParleServer.*"]
        return function._spec_, list(module.app.registered_web_endpoints)


def test_app_gpu_secrets_and_web_endpoint_are_declared() -> None:
    module = load_module()
    assert module.app.name == "parle"
    spec, endpoints = registered(module)
    assert spec.gpus == "L4"
    assert endpoints == ["ParleServer.web"]
    assert [s.name for s in spec.secrets] == ["parle"]  # credentials only from Modal secrets
    assert list(spec.volumes) == [module.HF_CACHE]


def test_the_gpu_is_chosen_at_deploy_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLE_MODAL_GPU", "H100")
    spec, _ = registered(load_module())
    assert spec.gpus == "H100"
    monkeypatch.setenv("PARLE_MODAL_GPU", "T4")
    with pytest.raises(ValueError, match="PARLE_MODAL_GPU must be one of L4, A10G"):
        load_module()


@pytest.fixture
def llm() -> Iterator[ScriptedLlmServer]:
    server = ScriptedLlmServer(["Olá!", " Tudo bem?"]).start()
    yield server
    server.stop()


def test_the_container_loads_once_and_serves(
    monkeypatch: pytest.MonkeyPatch, llm: ScriptedLlmServer, audio_dir: Path
) -> None:
    monkeypatch.setenv("PARLE_PROFILE", "cpu")
    monkeypatch.setenv("PARLE_LLM_URL", llm.url)
    module = load_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        user_class = module.app.registered_classes["ParleServer"]._get_user_cls()
    server = user_class()
    user_class.__dict__["load_engines"]._get_raw_f()(server)  # what @modal.enter runs
    web_app = user_class.__dict__["web"]._get_raw_f()(server)
    with TestClient(web_app) as client:
        assert client.get("/ready").json()["ready"] is True  # loaded before the first request
        clip = (audio_dir / "utterances" / "u01.wav").read_bytes()
        reply = client.post("/api/stream-audio", files={"audio": ("u01.wav", clip, "audio/wav")})
        assert reply.status_code == 200
        assert "event: audio" in reply.text and "event: complete" in reply.text
