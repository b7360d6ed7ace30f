"""PARLE's server on Modal: one GPU class serving the SSE, WebSocket and OpenAI-style audio
endpoints through PARLE's own ASGI app, with Whisper, the TTS and the level classifier loaded
once per container. The LLM is any OpenAI-compatible server (vLLM on Modal or elsewhere) at
`PARLE_LLM_URL`, given with the other secrets in the Modal secret `parle`.

    python3 -m modal deploy modal/modal_parle_whisper.py

Deploy-time choices (environment of the `modal deploy` command):
    PARLE_MODAL_GPU        L4 (default), A10G, A100, A100-80GB or H100
    PARLE_MODAL_PROFILE    legacy (default: whisper-small + Kokoro, fits any of them) or gpu
    PARLE_MODAL_MIN_CONTAINERS   containers kept warm (default 0: scale to zero)
    PARLE_MODAL_SCALEDOWN_S      idle seconds before a container stops (default 300)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import modal

GPUS = ("L4", "A10G", "A100", "A100-80GB", "H100")
REPO = Path(__file__).resolve().parent.parent
CUDA_IMAGE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"
HF_CACHE = "/root/.cache/huggingface"


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value


GPU = _choice("PARLE_MODAL_GPU", "L4", GPUS)
PROFILE = _choice("PARLE_MODAL_PROFILE", "legacy", ("legacy", "gpu"))
MIN_CONTAINERS = int(os.environ.get("PARLE_MODAL_MIN_CONTAINERS", "0"))
SCALEDOWN_S = int(os.environ.get("PARLE_MODAL_SCALEDOWN_S", "300"))

image = (
    modal.Image.from_registry(CUDA_IMAGE, add_python="3.12")
    # The same pinned, hashed dependencies as the Docker image.
    .pip_install_from_requirements(str(REPO / "deploy" / "requirements-gpu.lock"))
    .env(
        {
            "PARLE_PROFILE": PROFILE,
            "PARLE_LLM_LAUNCH": "false",  # the LLM server is its own deployment
            "HF_HOME": HF_CACHE,
        }
    )
    .add_local_python_source("parle", "bridge", "agent")
)

# Weights are downloaded once into this volume, not on every cold start.
hf_cache = modal.Volume.from_name("parle-hf-cache", create_if_missing=True)

app = modal.App("parle")


@app.cls(
    image=image,
    gpu=GPU,
    volumes={HF_CACHE: hf_cache},
    # PARLE_LLM_URL, PARLE_LLM_API_KEY, PARLE_API_KEYS, HF_TOKEN: never in this file.
    secrets=[modal.Secret.from_name("parle")],
    min_containers=MIN_CONTAINERS,
    scaledown_window=SCALEDOWN_S,
    timeout=3600,  # a WebSocket session may last an hour
    # The CPU-side start (imports, ONNX/CTranslate2 libraries) is restored from a snapshot.
    enable_memory_snapshot=True,
)
@modal.concurrent(max_inputs=32)  # one container serves many learners; PARLE queues turns
class ParleServer:
    """PARLE's ASGI app with its engines loaded once per container."""

    @modal.enter(snap=True)
    def import_libraries(self) -> None:
        """Before the snapshot (no GPU yet): the heavy imports."""
        import faster_whisper  # noqa: F401
        import kokoro_onnx  # noqa: F401

        import bridge.app  # noqa: F401

    @modal.enter(snap=False)
    def load_engines(self) -> None:
        """With the GPU: load STT, TTS and the level estimator, then build the app."""
        from bridge.app import EngineSet, create_app
        from parle.config import load_settings
        from parle.engines.llm_server import LlmServer
        from parle.runtime import build_chat, build_synthesizer, build_transcriber
        from parle.tutor.policy import build_estimator

        settings = load_settings(host="0.0.0.0")
        transcriber, synthesizer = build_transcriber(settings), build_synthesizer(settings)
        estimator = build_estimator(settings)
        for engine in (transcriber, synthesizer, estimator):
            engine.load()
        engines = EngineSet(
            transcriber,
            build_chat(settings),
            synthesizer,
            estimator=estimator,
            llm_ready=LlmServer(settings).is_answering,
        )
        self.web_app = create_app(settings, engines=engines)

    @modal.asgi_app()
    def web(self) -> Any:
        """`/api/stream-audio` (SSE), `/ws/stream`, `/v1/audio/*`, `/health`, `/ready`, ..."""
        return self.web_app
