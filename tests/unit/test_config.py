from __future__ import annotations

import pytest

from parle.config import ConfigError, load_settings


def test_cpu_profile_is_the_default_with_embedded_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLE_PROFILE", raising=False)
    settings = load_settings()
    assert settings.profile == "cpu"
    assert (settings.stt_model, settings.stt_device, settings.stt_compute_type) == (
        "base",
        "cpu",
        "int8",
    )
    assert settings.llm_backend == "llamacpp"
    assert settings.tts_engine == "kokoro" and settings.tts_lang == "pt-br"
    assert settings.llm_url == "http://127.0.0.1:8001/v1"


@pytest.mark.parametrize(
    ("profile", "stt", "llm", "tts"),
    [
        (
            "gpu",
            "large-v3-turbo",
            "mistralai/Ministral-3-3B-Instruct-2512-BF16",
            "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
        ),
        ("legacy", "small", "RedHatAI/gemma-3-4b-it-quantized.w4a16", "kokoro-82m-onnx"),
    ],
)
def test_profiles_pick_their_models(
    monkeypatch: pytest.MonkeyPatch, profile: str, stt: str, llm: str, tts: str
) -> None:
    monkeypatch.setenv("PARLE_PROFILE", profile)
    settings = load_settings()
    assert (settings.stt_model, settings.llm_model, settings.tts_model) == (stt, llm, tts)
    assert settings.stt_device == "cuda" and settings.llm_backend == "vllm"


def test_every_value_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLE_PROFILE", "gpu")
    monkeypatch.setenv("PARLE_STT_MODEL", "/models/whisper")
    monkeypatch.setenv("PARLE_STT_COMPUTE_TYPE", "int8_float16")
    monkeypatch.setenv("PARLE_TTS_VOICE", "pm_alex")
    monkeypatch.setenv("PARLE_MAX_AUDIO_SECONDS", "30")
    settings = load_settings()
    assert settings.stt_model == "/models/whisper"
    assert settings.stt_compute_type == "int8_float16"
    assert settings.tts_voice == "pm_alex"
    assert settings.max_audio_seconds == 30.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PARLE_PROFILE", "tpu"),
        ("PARLE_TTS_SPEED", "fast"),
        ("PARLE_TTS_SPEED", "7"),
        ("PARLE_MAX_UPLOAD_BYTES", "-1"),
        ("PARLE_LLM_URL", "localhost:8001"),
        ("PARLE_LEVEL", "Z9"),
    ],
)
def test_bad_config_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()
