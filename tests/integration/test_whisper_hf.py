"""The transformers Whisper engine on a tiny random-weight Whisper built with large-v3-turbo's
vocabulary, special tokens and 128 mel bins, through the same loading code as the real model:
loading, the silence gate, cross-session batching (batched = unbatched), cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from parle.audio import decode_audio
from parle.engines.whisper_hf import HfWhisperTranscriber
from parle.random_models import build_whisper, whisper_config


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_whisper(tmp_path_factory.mktemp("whisper") / "tiny", "tiny")


@pytest.fixture
def transcriber(tiny_whisper: Path) -> Iterator[HfWhisperTranscriber]:
    engine = HfWhisperTranscriber(
        tiny_whisper, device="cpu", dtype="float32", max_new_tokens=12, batch_window_s=0.05
    )
    engine.load()
    yield engine


def clips(audio_dir: Path) -> list[np.ndarray]:
    names = ("u01", "u05", "u09")
    return [decode_audio((audio_dir / f"utterances/{n}.wav").read_bytes()) for n in names]


def test_large_v3_turbo_architecture() -> None:
    import torch
    from transformers import WhisperForConditionalGeneration

    config = whisper_config("large-v3-turbo")
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (1280, 32, 4)
    assert (config.encoder_attention_heads, config.num_mel_bins, config.vocab_size) == (
        20,
        128,
        51866,
    )
    with torch.device("meta"):  # the shapes only: no 3 GB of random numbers
        model = WhisperForConditionalGeneration(config)
    params = sum(p.numel() for p in model.parameters())
    assert 800e6 < params < 820e6  # large-v3-turbo has 809 M


def test_loads_like_the_hub_model_and_pins_the_language(
    transcriber: HfWhisperTranscriber, audio_dir: Path
) -> None:
    decoded = transcriber.decode_batch(clips(audio_dir)[:1], "pt")[0]
    tokenizer = transcriber._processor.tokenizer
    prompt = tokenizer.convert_ids_to_tokens(list(decoded.tokens[:4]))
    assert prompt == ["<|startoftranscript|>", "<|pt|>", "<|transcribe|>", "<|notimestamps|>"]
    assert len(decoded.tokens) <= 4 + 12
    assert 0.0 <= decoded.confidence <= 1.0


def test_batched_equals_unbatched(transcriber: HfWhisperTranscriber, audio_dir: Path) -> None:
    audios = clips(audio_dir)
    alone = [transcriber.decode_batch([a], "pt")[0].tokens for a in audios]
    together = [d.tokens for d in transcriber.decode_batch(audios, "pt")]
    assert together == alone


async def test_concurrent_sessions_share_one_pass(
    transcriber: HfWhisperTranscriber, audio_dir: Path
) -> None:
    audios = clips(audio_dir)
    transcriber.batcher.batch_sizes.clear()
    results = await asyncio.gather(*(transcriber.transcribe(a) for a in audios))
    assert list(transcriber.batcher.batch_sizes) == [3]
    expected = transcriber.decode_batch(
        [a[slice(*_region(a))] for a in audios], "pt"
    )  # the same speech regions, decoded directly
    assert [r.text for r in results] == [d.text for d in expected]


async def test_silence_costs_no_pass_and_a_cancelled_request_is_left_out(
    transcriber: HfWhisperTranscriber, audio_dir: Path
) -> None:
    transcriber.batcher.batch_sizes.clear()
    silent = await transcriber.transcribe(np.zeros(16_000, dtype=np.float32))
    assert silent.is_empty and not transcriber.batcher.batch_sizes
    speech = clips(audio_dir)[0]
    leaving = asyncio.create_task(transcriber.transcribe(speech))
    staying = asyncio.create_task(transcriber.transcribe(speech))
    await asyncio.sleep(0.01)  # both wait in the 50 ms window
    leaving.cancel()
    await staying
    assert list(transcriber.batcher.batch_sizes) == [1]
    with pytest.raises(asyncio.CancelledError):
        await leaving


def _region(audio: np.ndarray) -> tuple[int, int]:
    from parle.engines.whisper import speech_region

    region = speech_region(audio, 250)
    assert region is not None
    return region


def test_the_runtime_builds_it_from_settings(tiny_whisper: Path) -> None:
    from parle.config import load_settings
    from parle.models import stt_spec
    from parle.runtime import build_transcriber

    settings = load_settings(
        profile="cpu", stt_backend="transformers", stt_model=str(tiny_whisper),
        stt_batch_window_ms=2, stt_max_batch=8,
    )  # fmt: skip
    engine = build_transcriber(settings)
    assert isinstance(engine, HfWhisperTranscriber)
    assert (engine.device, engine.dtype, engine.model_path) == ("cpu", "float32", str(tiny_whisper))
    hub = load_settings(profile="gpu", stt_backend="transformers")
    assert stt_spec(hub).hub_repo == "openai/whisper-large-v3-turbo"


def test_the_gpu_benchmark_runs_its_smoke_size(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "gpu_stt.json"
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "bench_stt.py"
    command = [sys.executable, str(script), "--device", "cpu", "--dtype", "float32"]
    command += ["--size", "tiny", "--runs", "1", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert set(result["latency"]) == {"2s", "5s", "10s"}
    assert set(result["concurrency"]) == {"1", "8", "32"}
    for rows in result["concurrency"].values():
        assert rows["batched"]["utterances_per_s"] > 0 and rows["unbatched"]["utterances_per_s"] > 0


async def test_every_model_call_runs_on_the_engine_thread(
    transcriber: HfWhisperTranscriber, audio_dir: Path
) -> None:
    """With the static cache on CUDA, transformers' compiled decoder keeps thread-local state:
    a decode from another thread than the one that compiled it fails inside torch. The engine
    runs every call on its own thread, whoever asks."""
    import threading

    model = transcriber._model
    seen: list[str] = []
    generate = model.generate

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(threading.current_thread().name)
        return generate(*args, **kwargs)

    model.generate = recording
    audios = clips(audio_dir)
    try:
        caller = threading.Thread(target=transcriber.decode_batch, args=(audios[:1], "pt"))
        caller.start()
        caller.join()
        await asyncio.to_thread(transcriber.decode_batch, audios[:2], "pt")
        transcriber.decode_batch(audios[:1], "pt")
        await asyncio.gather(*(transcriber.transcribe(a) for a in audios))
    finally:
        del model.generate
    assert len(seen) == 4 and len(set(seen)) == 1 and seen[0].startswith("whisper-hf")


def test_batches_are_padded_to_the_prepared_sizes(
    transcriber: HfWhisperTranscriber, audio_dir: Path
) -> None:
    model = transcriber._model
    rows: list[int] = []
    generate = model.generate

    def recording(features: object, **kwargs: object) -> object:
        rows.append(features.shape[0])  # type: ignore[attr-defined]
        return generate(features, **kwargs)

    model.generate = recording
    audios = clips(audio_dir)
    try:
        three = transcriber.decode_batch(audios, "pt")
    finally:
        del model.generate
    assert transcriber.batch_sizes == [1, 2, 4, 8, 16]
    assert rows == [4] and len(three) == 3  # 3 utterances ran as 4 rows, 3 results
