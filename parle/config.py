"""PARLE's settings: one typed place, read once from `PARLE_*` environment variables.

A profile (`gpu`, `legacy`, `cpu`) fills in every model id and device that is not set
explicitly; anything can be overridden by its own variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parle.tenants import TenantConfigError, parse_api_keys

Profile = Literal["gpu", "legacy", "cpu"]

ENV_PREFIX = "PARLE_"
# The LanguageTool that scripts/languagetool.sh fetches (deploy/languagetool/pom.xml).
LANGUAGETOOL_VERSION = "6.6"

# What each profile runs (README.md, "Profiles and models"). Keys are Settings field names.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpu": {
        "stt_model": "large-v3-turbo",
        "stt_device": "cuda",
        "stt_compute_type": "float16",
        "llm_backend": "vllm",
        "llm_model": "mistralai/Ministral-3-3B-Instruct-2512-BF16",
        "tts_engine": "qwen3",
        "tts_model": "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
        "tts_voice": "pf_dora",
        "level_estimator": "mdeberta",
        "tts_device": "cuda",
        "classifier_device": "cuda",
        # Its STT and TTS batch across sessions: let as many calls and turns in as Qwen3-TTS
        # has rows.
        "compute_slots": 32,
        "max_active_turns": 32,
    },
    "legacy": {
        "stt_model": "small",
        "stt_device": "cuda",
        "stt_compute_type": "float16",
        "llm_backend": "vllm",
        "llm_model": "RedHatAI/gemma-3-4b-it-quantized.w4a16",
        "tts_engine": "kokoro",
        "tts_model": "kokoro-82m-onnx",
        "tts_voice": "pf_dora",
        "level_estimator": "mdeberta",
        "tts_device": "cuda",
        "classifier_device": "cuda",
        "compute_slots": 4,
        "max_active_turns": 8,
    },
    "cpu": {
        "stt_model": "base",
        "stt_device": "cpu",
        "stt_compute_type": "int8",
        "llm_backend": "llamacpp",
        "llm_model": "smollm2-135m-instruct",
        "tts_engine": "kokoro",
        "tts_model": "kokoro-82m-onnx",
        "tts_voice": "pf_dora",
        "level_estimator": "lexical",
        "tts_device": "cpu",
        "classifier_device": "cpu",
        "compute_slots": 1,
        "max_active_turns": 2,
    },
}


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob PARLE has. Read once (`load_settings`) and passed down, never re-read."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, frozen=True
    )

    profile: Profile = "cpu"

    # Where models are assembled and sessions of the CLI are kept.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "parle")
    # Never try the Hugging Face hub (machines without network); the cache is still used.
    offline: bool = False

    # Speech to text. `stt_model` is a local folder, a hub repo id, or a size name.
    stt_model: str = ""
    # faster-whisper (CTranslate2), or transformers (torch: runs where CTranslate2's CUDA-12
    # cuBLAS is absent, and batches concurrent sessions' utterances in one encoder pass).
    stt_backend: Literal["faster-whisper", "transformers"] = "faster-whisper"
    stt_device: str = ""
    stt_compute_type: str = ""
    stt_language: str = "pt"
    stt_beam_size: int = Field(default=1, ge=1, le=10)
    stt_threads: int = Field(default=0, ge=0)  # 0 = one per core
    stt_no_speech_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    stt_max_compression_ratio: float = Field(default=2.4, gt=0.0)
    stt_min_speech_ms: int = Field(default=250, ge=0)
    # transformers backend: how long a request waits for others to share its pass, and the most.
    stt_batch_window_ms: float = Field(default=3.0, ge=0, le=100)
    stt_max_batch: int = Field(default=16, ge=1, le=128)

    # The tutor LLM, always behind an OpenAI-compatible server.
    llm_url: str = "http://127.0.0.1:8001/v1"
    # Bearer key of a remote LLM server (vLLM's --api-key); empty for a local one.
    llm_api_key: str = ""
    llm_backend: Literal["llamacpp", "vllm", "external"] | Literal[""] = ""
    llm_model: str = ""
    # cpu profile: a local GGUF path or "repo_id/file.gguf" on the hub; empty = the shipped one.
    llm_gguf: str = ""
    llm_launch: bool = True
    llm_context: int = Field(default=4096, ge=256)
    llm_max_tokens: int = Field(default=96, ge=1, le=4096)
    # llama.cpp threads; 0 = all cores but one, which the TTS needs while the reply streams.
    llm_threads: int = Field(default=0, ge=0)
    # CPU priority of a launched llama.cpp server (0-19; higher = yields to STT/TTS).
    llm_nice: int = Field(default=10, ge=0, le=19)
    llm_temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    llm_start_timeout_s: float = Field(default=120.0, gt=0)
    llm_request_timeout_s: float = Field(default=60.0, gt=0)
    llm_gpu_memory_utilization: float = Field(default=0.55, gt=0.0, le=1.0)

    # The learner's grammar. languagetool: LanguageTool (pt-BR, its HTTP server on loopback)
    # and PARLE's own rules; rules: PARLE's rules only (no Java); off: only what the LLM's
    # reply says. Where LanguageTool cannot start, PARLE goes on with its own rules.
    grammar: Literal["languagetool", "rules", "off"] = "languagetool"
    # LanguageTool's API (`.../v2`); a server already answering there is used as it is.
    grammar_url: str = "http://127.0.0.1:8010/v2"
    # Launch LanguageTool there (java, the jars `make setup` fetched) if none answers.
    grammar_launch: bool = True
    # The folder of LanguageTool's jars; empty = cache_dir/languagetool/6.6/lib
    # (scripts/languagetool.sh).
    grammar_home: Path | None = None
    # One check may take this long, else the turn goes on without it.
    grammar_timeout_s: float = Field(default=3.0, gt=0)
    # The JVM's start (jars, Portuguese rules and the first check's warm-up) on a loaded box.
    grammar_start_timeout_s: float = Field(default=90.0, gt=0)
    # CPU priority of a launched LanguageTool (0-19): the JVM must never take the cores the
    # TTS needs on a small box.
    grammar_nice: int = Field(default=10, ge=0, le=19)
    # The JVM's heap (-Xmx), in MB.
    grammar_memory_mb: int = Field(default=512, ge=128, le=65_536)

    # Text to speech.
    # kokoro: ONNX Runtime on the CPU; kokoro-torch: the reference torch model (GPU); qwen3:
    # Qwen3-TTS 12 Hz CustomVoice, streamed (GPU; tts_voice is Kokoro's, see qwen3_speaker).
    tts_engine: Literal["kokoro", "kokoro-torch", "qwen3"] | Literal[""] = ""
    tts_model: str = ""
    tts_device: str = ""  # kokoro-torch and qwen3: cuda or cpu
    tts_voice: str = ""
    # Used when the configured voice is not in the voices file (offline: shipped styles only).
    tts_fallback_voice: str = "jm_kumo"
    tts_lang: str = "pt-br"
    tts_speed: float = Field(default=1.0, ge=0.5, le=2.0)
    tts_threads: int = Field(default=0, ge=0)
    # qwen3 (Qwen3-TTS 12 Hz CustomVoice): a built-in speaker and the language to speak.
    qwen3_speaker: str = "serena"
    qwen3_language: str = "portuguese"
    # Streams that share each decode step (each holds a KV-cache row of qwen3_max_positions).
    qwen3_max_streams: int = Field(default=32, ge=1, le=256)
    qwen3_max_positions: int = Field(default=768, ge=64, le=8192)
    # Frames (80 ms each) before a piece's first audio leaves, and per later chunk.
    qwen3_first_chunk_frames: int = Field(default=2, ge=1, le=64)
    qwen3_chunk_frames: int = Field(default=8, ge=1, le=64)
    # On CUDA, each batch size's decode step is captured once as a CUDA graph and replayed
    # per frame (~5x faster than issuing its kernels); off: the same step, eagerly.
    qwen3_cuda_graphs: bool = True

    level_estimator: Literal["lexical", "mdeberta"] | Literal[""] = ""
    # The CEFR classifier of the gpu/legacy profiles: a hub id or a local folder.
    classifier_model: str = "marcosremar2/cefr-classifier-pt-mdeberta-v3-enem"
    classifier_device: str = ""
    # Brazilian (BR) or European (PT) Portuguese: vocabulary and the reminder.
    region: Literal["BR", "PT"] = "BR"

    # Tutor and turns.
    language: str = "pt-BR"
    level: Literal["A1", "A2", "B1", "B2", "C1", "C2"] = "A2"
    history_turns: int = Field(default=12, ge=0, le=200)
    max_sessions: int = Field(default=1000, ge=1)
    # The first spoken piece may end at a clause this long, or after this many words.
    first_piece_min_chars: int = Field(default=18, ge=1)
    first_piece_max_words: int = Field(default=3, ge=0)

    # The PARLE server (`parle serve`); the LiveKit agent reaches it at `server_url`.
    server_url: str = "http://127.0.0.1:8000"
    # The key the agent presents to the server (empty: the first of `agent_api_keys`, else of
    # `api_keys`, if any).
    server_api_key: str = ""
    # LiveKit, for `POST /api/token` (the worker reads LiveKit's own LIVEKIT_* variables).
    livekit_url: str = Field(default="", validation_alias="LIVEKIT_URL")
    livekit_api_key: str = Field(default="", validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: str = Field(default="", validation_alias="LIVEKIT_API_SECRET")
    token_ttl_s: int = Field(default=600, ge=30, le=86_400)
    # Whether `/api/token` signs the `room` and `identity` a caller names. Only for a trusted
    # app backend that holds an API key and chooses them itself: otherwise any key holder
    # could join a learner's room or take a learner's identity. Off: the server names both.
    token_trust_client_names: bool = False
    # Let the agent start the LLM reply before the learner's turn is confirmed.
    agent_preemptive_generation: bool = True
    # The agent's STT streams the room's audio to `/v1/realtime` (transcripts while the learner
    # speaks); off: each utterance, cut by the agent's VAD, is uploaded whole.
    agent_streaming_stt: bool = True
    # Where the LiveKit worker answers its health checks (0 = any free port).
    agent_health_host: str = "127.0.0.1"
    agent_health_port: int = Field(default=8081, ge=0, le=65535)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Comma-separated `KEY` or `NAME:KEY`; each key is a tenant (named NAME, or after the
    # key), which sees only the learners it created (parle/tenants.py). Empty = no keys: one
    # tenant, `default`, for a laptop; `parle serve` then stays on loopback unless
    # `insecure_no_keys` says otherwise.
    api_keys: str = ""
    # Those of the keys that LiveKit workers use (also listed in `api_keys`): only they may
    # write a learner's record for a room (`/api/agent/*`), for the tenant the room's token
    # was made for; each room the worker names is its own client for the per-client limits.
    agent_api_keys: str = ""
    # Comma-separated origins allowed by CORS and on the WebSockets; empty = same origin only.
    cors_origins: str = ""
    # Without keys: the `Host` names a request may carry besides the loopback ones and the
    # address served (a page on another site renamed to this address, DNS rebinding, is
    # refused). Comma-separated host names.
    allowed_hosts: str = ""
    # Serve without keys on a non-loopback address (anyone who reaches it reads and erases
    # every learner). Only for a network that is private by other means.
    insecure_no_keys: bool = False
    # Turns the engines serve at once (0 = the profile's: 2 on cpu, 8 on legacy, 32 on gpu).
    max_active_turns: int = Field(default=0, ge=0)
    # STT/TTS calls run at once across sessions, most urgent first (0 = the profile's: 1 on
    # cpu, where parallel calls only fight for the cores; 4 on legacy's GPU; 32 on gpu, whose
    # engines batch across sessions).
    compute_slots: int = Field(default=0, ge=0)
    max_queued_turns: int = Field(default=16, ge=0)  # waiting beyond this answers "busy"
    client_max_turns: int = Field(default=2, ge=1)  # concurrent turns per client
    client_turns_per_minute: int = Field(default=60, ge=1)
    turn_timeout_s: float = Field(default=120.0, gt=0)
    stt_timeout_s: float = Field(default=30.0, gt=0)
    # The speech API (`/v1/audio/speech`, the LiveKit agent's TTS): one request's text, and
    # how long its synthesis may hold a compute slot.
    speech_max_chars: int = Field(default=1000, ge=1, le=100_000)
    speech_timeout_s: float = Field(default=60.0, gt=0)
    session_idle_s: float = Field(default=1800.0, gt=0)
    # The realtime door (`/v1/realtime`): the silence after speech at which a reply is started
    # speculatively (before the turn's end is confirmed); how much new speech between two
    # partial transcripts; the client events a connection may send a second (bursts of twice).
    realtime_speculation_ms: int = Field(default=200, ge=32, le=5000)
    realtime_partial_interval_ms: int = Field(default=600, ge=100, le=10_000)
    realtime_events_per_s: int = Field(default=200, ge=10, le=10_000)

    # The learner store (parle/store): `sqlite:///PATH` or `postgresql://USER:PASS@HOST/DB`;
    # empty = SQLite at cache_dir/parle.db. Data older than `retention_days` is deleted
    # (0 = kept until the learner is erased); `store_queue` turns wait to be written at most.
    database_url: str = ""
    retention_days: float = Field(default=365.0, ge=0)
    store_queue: int = Field(default=1000, ge=1, le=1_000_000)
    # A phone caller's learner id is a keyed hash (HMAC-SHA256) of their number: set a secret
    # so that ids cannot be turned back into numbers by hashing every number (empty = plain).
    phone_hash_key: str = ""

    # Rented boxes (TensorDock): stop this instance after this many minutes with no one served
    # (0 = never). Only with both TensorDock variables set.
    idle_stop_minutes: float = Field(default=30.0, ge=0)
    tensordock_api_token: str = Field(default="", validation_alias="TENSORDOCK_API_TOKEN")
    tensordock_instance_id: str = Field(default="", validation_alias="TENSORDOCK_INSTANCE_ID")
    tensordock_api_url: str = "https://dashboard.tensordock.com/api/v2"

    # Limits on what a client may send.
    max_audio_seconds: float = Field(default=60.0, gt=0)
    min_audio_seconds: float = Field(default=0.2, ge=0)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Slow clients (slowloris): a request's line and headers must arrive within
    # `header_timeout_s` of the connection (or of the next request's first byte); its body
    # may keep the server waiting `body_timeout_s` in all. HTTP connections beyond
    # `max_connections` are answered 503, and WebSockets beyond it refused (`too_many_
    # connections`); each counts on its own, so open sockets never make /ready answer 503.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)

    @field_validator("grammar_home", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _fill_profile_defaults(self) -> Settings:
        for name, value in PROFILE_DEFAULTS[self.profile].items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        if self.min_audio_seconds >= self.max_audio_seconds:
            raise ValueError("PARLE_MIN_AUDIO_SECONDS must be below PARLE_MAX_AUDIO_SECONDS")
        try:
            parse_api_keys(self.api_keys)
        except TenantConfigError as exc:
            raise ValueError(str(exc)) from None
        if not self.llm_url.startswith(("http://", "https://")):
            raise ValueError("PARLE_LLM_URL must be an http(s) URL, e.g. http://127.0.0.1:8001/v1")
        if not self.grammar_url.startswith(("http://", "https://")):
            raise ValueError(
                "PARLE_GRAMMAR_URL must be an http(s) URL, e.g. http://127.0.0.1:8010/v2"
            )
        return self

    @property
    def api_key_list(self) -> list[str]:
        return list(self.api_key_tenants)

    @property
    def api_key_tenants(self) -> dict[str, str]:
        """Each API key's tenant (`parle.tenants.parse_api_keys`)."""
        return parse_api_keys(self.api_keys)

    @property
    def allowed_host_list(self) -> list[str]:
        return [host.strip().lower() for host in self.allowed_hosts.split(",") if host.strip()]

    @property
    def agent_key_list(self) -> list[str]:
        return list(parse_api_keys(self.agent_api_keys))  # an entry may be as in api_keys

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def livekit_configured(self) -> bool:
        return bool(self.livekit_url and self.livekit_api_key and self.livekit_api_secret)

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def sessions_dir(self) -> Path:
        return self.cache_dir / "sessions"

    @property
    def grammar_lib(self) -> Path:
        """The folder of LanguageTool's jars (`PARLE_GRAMMAR_HOME`, else the fetched ones)."""
        if self.grammar_home is not None:
            return self.grammar_home
        return self.cache_dir / "languagetool" / LANGUAGETOOL_VERSION / "lib"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; bad values raise `ConfigError` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: " if err["loc"] else ""
            problems.append(where + str(err["msg"]).removeprefix("Value error, "))
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
