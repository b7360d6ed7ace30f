"""Random-weight models with the real architectures, saved as the hub ships them, so tests and
benchmarks run PARLE's own loading and inference code with real timing and nonsense words.

`python -m parle.random_models whisper DEST [--size large-v3-turbo|tiny]` writes a folder that
`HfWhisperTranscriber` loads exactly like `openai/whisper-large-v3-turbo`. The `tiny` sizes
keep every shape that the code depends on (128 mel bins, the 51866-token vocabulary, the
special tokens) and shrink the rest, so CI runs the same paths on a CPU.

`python -m parle.random_models kokoro DEST` writes Kokoro-82M (82 M parameters, from the
architecture config that kokoro-onnx ships) laid out as `hexgrad/Kokoro-82M`, with random
`pf_dora`/`pm_alex` voices, for `KokoroTorchSynthesizer`.

`python -m parle.random_models qwen3-tts DEST [--size 0.6b|tiny]` writes Qwen3-TTS 12 Hz
CustomVoice (talker, code predictor, codec decoder, the 9 speakers, the real special-token ids)
laid out as `Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice`, with a small byte-level BPE tokenizer
trained on a few Portuguese sentences, for `Qwen3TtsSynthesizer`.
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


# Qwen3-TTS 12 Hz 0.6B as published (talker 28 x 1024, code predictor 5 x 1024, codec decoder
# 8 x 1024 with a 1536-wide vocoder); `tiny` keeps the vocabularies, ids and code groups.
QWEN3_TTS_SIZES: dict[str, dict[str, Any]] = {
    "0.6b": {
        "talker": {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                   "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                   "text_hidden_size": 2048},
        "predictor": {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 5,
                      "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128},
        "decoder": {"hidden_size": 1024, "latent_dim": 1024, "intermediate_size": 3072,
                    "num_hidden_layers": 8, "num_attention_heads": 16, "num_key_value_heads": 16,
                    "decoder_dim": 1536, "codebook_dim": 512},
    },
    "tiny": {
        "talker": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
                   "text_hidden_size": 24},
        "predictor": {"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 12},
        "decoder": {"hidden_size": 32, "latent_dim": 32, "intermediate_size": 64,
                    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
                    "decoder_dim": 32, "codebook_dim": 16},
    },
}  # fmt: skip
QWEN3_TTS_SPEAKERS = {
    "serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
    "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878,
}  # fmt: skip
QWEN3_TTS_LANGUAGES = {"chinese": 2055, "english": 2050, "german": 2053, "italian": 2070,
                       "portuguese": 2071, "spanish": 2054, "japanese": 2058, "korean": 2064,
                       "french": 2061, "russian": 2069, "beijing_dialect": 2074,
                       "sichuan_dialect": 2062}  # fmt: skip
_QWEN_TEXT_SPECIALS = {"<|im_start|>": 151644, "<|im_end|>": 151645, "<|tts_pad|>": 151671,
                       "<|tts_text_bos|>": 151672, "<|tts_text_eod|>": 151673}  # fmt: skip
_PORTUGUESE_SAMPLE = [
    "Olá! Tudo bem com você? Eu sou a sua professora de português.",
    "Muito bem, vamos praticar um pouco. Como foi o seu dia hoje?",
    "Eu gosto de café com leite e pão de queijo de manhã.",
    "Você pode repetir, por favor? Não entendi a última palavra.",
]


def _mrope_sections(head_dim: int) -> list[int]:
    """Qwen's split of the rotary frequencies into time/height/width ([24, 20, 20] of 64)."""
    half = head_dim // 2
    rest = half * 5 // 16
    return [half - 2 * rest, rest, rest]


def qwen3_tts_configs(size: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config.json, speech_tokenizer/config.json) of a Qwen3-TTS of `size`."""
    shapes = QWEN3_TTS_SIZES[size]
    talker = {
        **shapes["talker"],
        "vocab_size": 3072,
        "text_vocab_size": 151936,
        "num_code_groups": 16,
        "rope_theta": 1_000_000.0,
        # Text-only prompts give mRoPE's three sections the same positions (plain RoPE).
        "rope_scaling": {"rope_type": "default", "interleaved": True,
                         "mrope_section": _mrope_sections(shapes["talker"]["head_dim"])},
        "rms_norm_eps": 1e-6,
        "codec_eos_token_id": 2150, "codec_think_id": 2154, "codec_nothink_id": 2155,
        "codec_think_bos_id": 2156, "codec_think_eos_id": 2157, "codec_pad_id": 2148,
        "codec_bos_id": 2149,
        "codec_language_id": QWEN3_TTS_LANGUAGES,
        "spk_id": {name: [i] for name, i in QWEN3_TTS_SPEAKERS.items()},
        "spk_is_dialect": {"eric": "sichuan_dialect", "dylan": "beijing_dialect"},
        "code_predictor_config": {**shapes["predictor"], "vocab_size": 2048,
                                  "num_code_groups": 16, "rope_theta": 1_000_000.0},
    }  # fmt: skip
    model = {
        "model_type": "qwen3_tts",
        "tts_model_type": "custom_voice",
        "tts_model_size": "0b6",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "im_start_token_id": 151644, "im_end_token_id": 151645, "tts_pad_token_id": 151671,
        "tts_bos_token_id": 151672, "tts_eos_token_id": 151673,
        "talker_config": talker,
    }  # fmt: skip
    decoder = {
        **shapes["decoder"],
        "codebook_size": 2048,
        "num_quantizers": 16,
        "sliding_window": 72,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "upsample_rates": [8, 5, 4, 3],
        "upsampling_ratios": [2, 2],
    }
    codec = {"model_type": "qwen3_tts_tokenizer_12hz", "decoder_config": decoder,
             "output_sample_rate": 24000, "decode_upsample_rate": 1920}  # fmt: skip
    return model, codec


def _qwen_text_tokenizer(dest: Path) -> None:
    """A byte-level BPE with Qwen's special tokens at their real ids, saved for AutoTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    hf: Any = importlib.import_module("transformers")  # partly untyped, partly lazy

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_PORTUGUESE_SAMPLE * 4, trainer)
    data = json.loads(bpe.to_str())
    for content, token_id in _QWEN_TEXT_SPECIALS.items():
        data["model"]["vocab"][content] = token_id  # so the ids stay where Qwen's are
    data["added_tokens"] = [
        {"id": token_id, "content": content, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for content, token_id in _QWEN_TEXT_SPECIALS.items()
    ]  # fmt: skip
    fast = hf.PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)))
    fast.save_pretrained(dest)


def build_qwen3_tts(dest: Path, size: str = "0.6b", *, seed: int = 0) -> Path:
    """Save a random-weight Qwen3-TTS 12 Hz CustomVoice of `size` (bf16 for 0.6b)."""
    import torch
    from safetensors.torch import save_file

    from parle.engines.qwen3_tts_model import (
        SpeechCodec,
        Talker,
        codec_decoder_config,
        talker_config,
    )

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "speech_tokenizer").mkdir(exist_ok=True)
    model_config, codec_config = qwen3_tts_configs(size)
    (dest / "config.json").write_text(json.dumps(model_config, indent=1))
    (dest / "speech_tokenizer" / "config.json").write_text(json.dumps(codec_config, indent=1))
    _qwen_text_tokenizer(dest)
    dtype = torch.float32 if size == "tiny" else torch.bfloat16
    torch.manual_seed(seed)
    talker = Talker(talker_config(model_config))
    save_file(
        {f"talker.{k}": v.to(dtype).contiguous() for k, v in talker.state_dict().items()},
        str(dest / "model.safetensors"),
    )
    del talker
    codec = SpeechCodec(codec_decoder_config(codec_config))
    with torch.no_grad():
        for quantizer in (codec.decoder.quantizer.rvq_first, codec.decoder.quantizer.rvq_rest):
            for codebook in quantizer.codebooks:  # zero codebooks would decode to silence
                codebook.embedding_sum.normal_(0.0, 1.0)
    save_file(
        {k: v.contiguous() for k, v in codec.state_dict().items()},
        str(dest / "speech_tokenizer" / "model.safetensors"),
    )
    return dest


def _is_language(token: str) -> bool:
    inner = token.removeprefix("<|").removesuffix("|>")
    return token.startswith("<|") and inner.isalpha() and inner.islower() and len(inner) <= 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=["whisper", "kokoro", "qwen3-tts"])
    parser.add_argument("dest", type=Path)
    parser.add_argument(
        "--size", default=None, help="whisper: large-v3-turbo|tiny; qwen3-tts: 0.6b|tiny"
    )
    parser.add_argument("--tokenizer-json", type=Path, default=None)
    args = parser.parse_args()
    sizes = {"whisper": WHISPER_SIZES, "qwen3-tts": QWEN3_TTS_SIZES}.get(args.model, {})
    if args.size is not None and args.size not in sizes:
        parser.error(f"--size for {args.model}: one of {', '.join(sorted(sizes)) or 'none'}")
    if args.model == "kokoro":
        print(build_kokoro(args.dest))
    elif args.model == "qwen3-tts":
        print(build_qwen3_tts(args.dest, args.size or "0.6b"))
    else:
        size = args.size or "large-v3-turbo"
        print(build_whisper(args.dest, size, tokenizer_json=args.tokenizer_json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
