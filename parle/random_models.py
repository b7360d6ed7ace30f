"""Random-weight models with the real architectures, saved as the hub ships them, so tests and
benchmarks run PARLE's own loading and inference code with real timing and nonsense words.

`python -m parle.random_models whisper DEST [--size large-v3-turbo|tiny]` writes a folder that
`HfWhisperTranscriber` loads exactly like `openai/whisper-large-v3-turbo`. The `tiny` sizes
keep every shape that the code depends on (128 mel bins, the 51866-token vocabulary, the
special tokens) and shrink the rest, so CI runs the same paths on a CPU.

`python -m parle.random_models kokoro DEST` writes Kokoro-82M (82 M parameters, from the
architecture config that kokoro-onnx ships) laid out as `hexgrad/Kokoro-82M`, with random
`pf_dora`/`pm_alex` voices, for `KokoroTorchSynthesizer`.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from parle.config import load_settings
from parle.models import require, stt_spec

# Whisper large-v3-turbo: the published architecture (32 encoder / 4 decoder layers).
WHISPER_SIZES: dict[str, dict[str, Any]] = {
    "large-v3-turbo": {
        "d_model": 1280,
        "encoder_layers": 32,
        "decoder_layers": 4,
        "encoder_attention_heads": 20,
        "decoder_attention_heads": 20,
        "encoder_ffn_dim": 5120,
        "decoder_ffn_dim": 5120,
    },
    "tiny": {
        "d_model": 64,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
    },
}
_V3_VOCAB = 51866
_SOT, _EOT = 50258, 50257
# large-v3 added <|yue|> after the 99 older languages, which moves every later special token.
_V3_AFTER_LANGUAGES = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                       "<|nospeech|>", "<|notimestamps|>"]  # fmt: skip


def whisper_config(size: str) -> Any:
    """The `WhisperConfig` of `size` with large-v3's vocabulary and 128 mel bins."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=_V3_VOCAB,
        num_mel_bins=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=_SOT,
        bos_token_id=_EOT,
        eos_token_id=_EOT,
        pad_token_id=_EOT,
        begin_suppress_tokens=[220, _EOT],
        **WHISPER_SIZES[size],
    )


def _v3_tokenizer_json(base_tokenizer: Path) -> dict[str, Any]:
    """Whisper's multilingual BPE (shipped with the `base` model) with large-v3's special
    tokens: the same vocabulary, `<|yue|>` inserted, the task tokens one id further."""
    data: dict[str, Any] = json.loads(base_tokenizer.read_text())
    special = [t for t in data["added_tokens"] if t["id"] < 50358]  # up to the last language
    template = dict(special[-1])
    names = ["<|yue|>", *_V3_AFTER_LANGUAGES]
    special += [{**template, "id": 50358 + i, "content": name} for i, name in enumerate(names)]
    data["added_tokens"] = special
    return data


def build_whisper(
    dest: Path, size: str = "large-v3-turbo", *, seed: int = 0, tokenizer_json: Path | None = None
) -> Path:
    """Save a random-weight Whisper of `size` with its processor and generation config.

    `tokenizer_json`: Whisper's multilingual tokenizer.json (default: the one shipped with the
    `cpu` profile's Whisper base; pass a copy on a machine without those packages)."""
    import torch

    hf: Any = importlib.import_module("transformers")  # partly untyped, partly lazy
    dest.mkdir(parents=True, exist_ok=True)
    if tokenizer_json is None:
        shipped = load_settings(profile="cpu", stt_model="base")
        tokenizer_json = Path(require(stt_spec(shipped), shipped).path) / "tokenizer.json"
    tokenizer_file = dest / "tokenizer.json"
    tokenizer_file.write_text(json.dumps(_v3_tokenizer_json(tokenizer_json)))
    tokenizer = hf.WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_file),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    processor = hf.WhisperProcessor(hf.WhisperFeatureExtractor(feature_size=128), tokenizer)
    processor.save_pretrained(dest)

    torch.manual_seed(seed)
    config = whisper_config(size)
    model = hf.WhisperForConditionalGeneration(config)
    languages = [t for t in tokenizer.get_added_vocab() if _is_language(t)]
    model.generation_config = hf.GenerationConfig(
        decoder_start_token_id=_SOT,
        eos_token_id=_EOT,
        pad_token_id=_EOT,
        bos_token_id=_EOT,
        max_length=448,
        begin_suppress_tokens=[220, _EOT],
        suppress_tokens=[],
        is_multilingual=True,
        lang_to_id={t: tokenizer.convert_tokens_to_ids(t) for t in languages},
        task_to_id={"translate": 50359, "transcribe": 50360},
        no_timestamps_token_id=50364,
        prev_sot_token_id=50362,
    )
    model.save_pretrained(dest)
    return dest


# Kokoro's duration head predicts frames per phoneme as sigmoid(x).sum() over `max_dur`
# outputs; random weights would give ~25 frames (0.6 s) per phoneme. Its bias is set so a
# phoneme lasts ~3 frames (75 ms), as speech does: the audio, and so the timing, is real-sized.
_KOKORO_FRAMES_PER_PHONEME = 3.0


def build_kokoro(
    dest: Path, *, voices: tuple[str, ...] = ("pf_dora", "pm_alex"), seed: int = 0
) -> Path:
    """Save a random-weight Kokoro-82M with random voice styles."""
    import math

    import kokoro_onnx
    import torch
    from kokoro import KModel

    dest.mkdir(parents=True, exist_ok=True)
    config = json.loads((Path(kokoro_onnx.__file__).parent / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps(config))
    empty = dest / "empty.pth"
    torch.save({}, empty)  # KModel loads a checkpoint; none keeps the random initialisation
    torch.manual_seed(seed)
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=str(dest / "config.json"), model=str(empty))
    empty.unlink()
    head = model.predictor.duration_proj.linear_layer
    share = _KOKORO_FRAMES_PER_PHONEME / config["max_dur"]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(math.log(share / (1 - share)))
    parts = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
    torch.save(
        {part: getattr(model, part).state_dict() for part in parts}, dest / "kokoro-v1_0.pth"
    )
    (dest / "voices").mkdir(exist_ok=True)
    for name in voices:  # a style per token count (510 x 1 x 256), as the hub's voices are
        torch.save(torch.randn(510, 1, 256) * 0.2, dest / "voices" / f"{name}.pt")
    return dest


def _is_language(token: str) -> bool:
    inner = token.removeprefix("<|").removesuffix("|>")
    return token.startswith("<|") and inner.isalpha() and inner.islower() and len(inner) <= 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=["whisper", "kokoro"])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--size", default="large-v3-turbo", choices=sorted(WHISPER_SIZES))
    parser.add_argument("--tokenizer-json", type=Path, default=None)
    args = parser.parse_args()
    if args.model == "kokoro":
        print(build_kokoro(args.dest))
    else:
        print(build_whisper(args.dest, args.size, tokenizer_json=args.tokenizer_json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
