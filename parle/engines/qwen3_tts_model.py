"""Qwen3-TTS 12 Hz (talker, code predictor, codec decoder) in plain torch, for streaming.

PARLE's own implementation of the published architecture, written so that the hub's
checkpoints load by their parameter names (`model.safetensors`: `talker.*`;
`speech_tokenizer/model.safetensors`: `decoder.*`). It exists because the official package
cannot stream (it generates every frame, then decodes) and cannot be imported beside this
project's torch build (see docs/gpu.md). Only what speaking with a built-in speaker needs is
here: no voice cloning, no speech encoder.

Shapes: the talker makes one codec frame (16 codes, 80 ms of 24 kHz audio) per step: its
head picks code 0, the small code predictor the other 15. The codec decoder turns frames
into audio (1920 samples per frame); it is causal, so a chunk of frames decoded with some
frames of left context sounds as it would inside the whole utterance.

Text-only Qwen3-TTS gives the three multimodal RoPE streams the same positions, which makes
its "interleaved mRoPE" the ordinary rotary embedding used here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 24_000


# --- configuration (read from the hub's config.json files) ---------------------------------


@dataclass(frozen=True)
class StackConfig:
    """One transformer stack's shapes."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float
    rms_norm_eps: float = 1e-6
    qk_norm: bool = True
    layer_scale: bool = False
    sliding_window: int | None = None


@dataclass(frozen=True)
class TalkerConfig:
    """The talker, its code predictor and the ids that frame a prompt."""

    stack: StackConfig
    predictor: StackConfig
    vocab_size: int
    text_vocab_size: int
    text_hidden_size: int
    num_code_groups: int
    predictor_vocab_size: int
    codec_ids: dict[str, int]
    languages: dict[str, int]
    speakers: dict[str, int]
    speaker_dialects: dict[str, str]
    text_ids: dict[str, int]


@dataclass(frozen=True)
class CodecDecoderConfig:
    """The 12 Hz codec's decoder (the speech tokenizer's `decoder_config`)."""

    stack: StackConfig
    latent_dim: int
    codebook_size: int
    codebook_dim: int
    num_quantizers: int
    decoder_dim: int
    upsample_rates: tuple[int, ...]
    upsampling_ratios: tuple[int, ...]

    @property
    def frame_samples(self) -> int:
        return math.prod(self.upsample_rates) * math.prod(self.upsampling_ratios)


def _rope_theta(raw: dict[str, Any], default: float) -> float:
    # Flat in the hub's configs; inside rope_parameters (transformers 5) or rope_scaling in
    # some exports.
    for nested in ("rope_parameters", "rope_scaling"):
        if isinstance(raw.get(nested), dict) and raw[nested].get("rope_theta"):
            return float(raw.get("rope_theta") or raw[nested]["rope_theta"])
    return float(raw.get("rope_theta") or default)


def _stack(raw: dict[str, Any], **extra: Any) -> StackConfig:
    heads = int(raw["num_attention_heads"])
    return StackConfig(
        hidden_size=int(raw["hidden_size"]),
        intermediate_size=int(raw["intermediate_size"]),
        num_layers=int(raw["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(raw.get("num_key_value_heads") or heads),
        head_dim=int(raw.get("head_dim") or raw["hidden_size"] // heads),
        rope_theta=_rope_theta(raw, 10_000.0),
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        **extra,
    )


def _first_id(value: Any) -> int:
    # The hub's configs write a speaker's id as an int or as a one-element list.
    return int(value[0]) if isinstance(value, list) else int(value)


def talker_config(raw: dict[str, Any]) -> TalkerConfig:
    """`TalkerConfig` from the model's `config.json`."""
    talker = raw["talker_config"]
    predictor = talker["code_predictor_config"]
    codec_keys = (
        "codec_eos_token_id", "codec_think_id", "codec_nothink_id", "codec_think_bos_id",
        "codec_think_eos_id", "codec_pad_id", "codec_bos_id",
    )  # fmt: skip
    text_keys = ("im_start_token_id", "im_end_token_id", "tts_pad_token_id",
                 "tts_bos_token_id", "tts_eos_token_id")  # fmt: skip
    return TalkerConfig(
        stack=_stack(talker),
        predictor=_stack(predictor),
        vocab_size=int(talker["vocab_size"]),
        text_vocab_size=int(talker["text_vocab_size"]),
        text_hidden_size=int(talker["text_hidden_size"]),
        num_code_groups=int(talker["num_code_groups"]),
        predictor_vocab_size=int(predictor["vocab_size"]),
        codec_ids={key: int(talker[key]) for key in codec_keys},
        languages={k.lower(): int(v) for k, v in (talker.get("codec_language_id") or {}).items()},
        speakers={k.lower(): _first_id(v) for k, v in (talker.get("spk_id") or {}).items()},
        speaker_dialects={
            k.lower(): str(v) for k, v in (talker.get("spk_is_dialect") or {}).items() if v
        },
        text_ids={key: int(raw[key]) for key in text_keys},
    )


def codec_decoder_config(raw: dict[str, Any]) -> CodecDecoderConfig:
    """`CodecDecoderConfig` from the speech tokenizer's `config.json`."""
    dec = raw["decoder_config"]
    stack = _stack(
        dec,
        qk_norm=False,
        layer_scale=True,
        sliding_window=int(dec.get("sliding_window") or 72),
    )
    return CodecDecoderConfig(
        stack=stack,
        latent_dim=int(dec["latent_dim"]),
        codebook_size=int(dec["codebook_size"]),
        codebook_dim=int(dec["codebook_dim"]),
        num_quantizers=int(dec["num_quantizers"]),
        decoder_dim=int(dec["decoder_dim"]),
        upsample_rates=tuple(int(r) for r in dec.get("upsample_rates", (8, 5, 4, 3))),
        upsampling_ratios=tuple(int(r) for r in dec.get("upsampling_ratios", (2, 2))),
    )


# --- the transformer stack --------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalised in float32 and rounded once to x's dtype, as Qwen's own; one fused
        # kernel instead of seven (a decode step runs ~450 of these norms).
        return self.weight * F.rms_norm(x, (x.shape[-1],), eps=self.eps)


class LayerScale(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((size,), 0.01))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class KvCache:
    """Keys and values of `rows` sequences, up to `max_len` positions each.

    Rows are independent: each is written at its own positions, which is what lets streams
    that started at different times share one decode step.
    """

    def __init__(
        self,
        cfg: StackConfig,
        rows: int,
        max_len: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        shape = (rows, cfg.num_kv_heads, max_len, cfg.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)]
        self.values = [
            torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)
        ]
        self.max_len = max_len


@dataclass
class CacheView:
    """Where one forward pass reads and writes a `KvCache`.

    `rows` picks the cache rows of the batch; `positions` (batch, steps) are each new
    token's position, which is also where its key and value are written; attention reads
    positions `[0, read_len)` (masked by the caller's mask). `leading`: `rows` are
    `0..batch-1`, so they are read as a slice of the cache (a view), not gathered (a copy).
    """

    cache: KvCache
    rows: torch.Tensor
    positions: torch.Tensor
    read_len: int
    leading: bool = False


@functools.lru_cache(maxsize=16)
def _inv_freq(head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    # Made once per stack and device, not at each of the 16 passes of every decode step.
    exponents = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim
    return 1.0 / theta**exponents


def rope(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin (batch, steps, head_dim) of the rotary embedding at `positions`:
    the sin's first half negated, so that `_rotate` needs no negation of its own."""
    freqs = positions.float()[..., None] * _inv_freq(head_dim, theta, positions.device)
    angles = torch.cat((freqs, freqs), dim=-1)
    sin = angles.sin()
    sin[..., : head_dim // 2].neg_()
    return angles.cos(), sin


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    # x·cos + (-x₂, x₁)·sin, where (x₂, x₁) is x rolled by half its width (and the sign
    # is in `signed_sin`): three kernels, computed once per layer for q and once for k.
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)


class Attention(nn.Module):
    def __init__(self, cfg: StackConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.num_heads * cfg.head_dim
        kv_width = cfg.num_kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, width, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, kv_width, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, kv_width, bias=False)
        self.o_proj = nn.Linear(width, cfg.hidden_size, bias=False)
        self.q_norm: nn.Module = (
            RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        )
        self.k_norm: nn.Module = (
            RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        )

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        layer: int,
        view: CacheView | None,
    ) -> torch.Tensor:
        batch, steps, _ = x.shape
        cfg = self.cfg
        q = self.q_norm(self.q_proj(x).view(batch, steps, cfg.num_heads, cfg.head_dim))
        k = self.k_norm(self.k_proj(x).view(batch, steps, cfg.num_kv_heads, cfg.head_dim))
        v = self.v_proj(x).view(batch, steps, cfg.num_kv_heads, cfg.head_dim)
        q = _rotate(q, cos[:, :, None], sin[:, :, None]).transpose(1, 2)
        k = _rotate(k, cos[:, :, None], sin[:, :, None]).transpose(1, 2)
        v = v.transpose(1, 2)
        if view is not None:
            keys, values = view.cache.keys[layer], view.cache.values[layer]
            rows = view.rows[:, None].expand(-1, steps)
            keys[rows, :, view.positions] = k.transpose(1, 2)
            values[rows, :, view.positions] = v.transpose(1, 2)
            if view.leading:
                k = keys[:batch, :, : view.read_len]
                v = values[:batch, :, : view.read_len]
            else:
                k = keys[view.rows, :, : view.read_len]
                v = values[view.rows, :, : view.read_len]
        # Grouped-query attention without copying keys and values per query head: the
        # query heads that share a key/value head become extra query rows of it (query
        # heads are independent rows of attention), so one fused kernel serves them. `mask`
        # comes with its rows repeated per group already (`_run_layers`).
        q = q.reshape(batch, cfg.num_kv_heads, -1, cfg.head_dim)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.reshape(batch, cfg.num_heads, steps, cfg.head_dim)
        return self.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))


class GatedMlp(nn.Module):
    def __init__(self, cfg: StackConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: StackConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = GatedMlp(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        if cfg.layer_scale:
            self.self_attn_layer_scale = LayerScale(cfg.hidden_size)
            self.mlp_layer_scale = LayerScale(cfg.hidden_size)
        self.scaled = cfg.layer_scale

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        layer: int,
        view: CacheView | None,
    ) -> torch.Tensor:
        h = self.self_attn(self.input_layernorm(x), cos, sin, mask, layer, view)
        x = x + (self.self_attn_layer_scale(h) if self.scaled else h)
        h = self.mlp(self.post_attention_layernorm(x))
        return x + (self.mlp_layer_scale(h) if self.scaled else h)


def causal_mask(steps: int, device: torch.device, window: int | None = None) -> torch.Tensor:
    """(1, steps, steps) True where query i may attend key j."""
    i = torch.arange(steps, device=device)[:, None]
    j = torch.arange(steps, device=device)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= (i - j) < window
    return allowed[None]


def blocks(cfg: StackConfig) -> nn.ModuleList:
    """`cfg.num_layers` pre-norm transformer layers (`layers.N` in the checkpoints)."""
    return nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))


# --- talker and code predictor -------------------------------------------------------------


class TextProjection(nn.Module):
    def __init__(self, size_in: int, size_out: int) -> None:
        super().__init__()
        self.linear_fc1 = nn.Linear(size_in, size_in, bias=True)
        self.linear_fc2 = nn.Linear(size_in, size_out, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_fc2(F.silu(self.linear_fc1(x)))


class TalkerBody(nn.Module):
    def __init__(self, cfg: TalkerConfig) -> None:
        super().__init__()
        self.layers = blocks(cfg.stack)
        self.norm = RMSNorm(cfg.stack.hidden_size, cfg.stack.rms_norm_eps)
        self.codec_embedding = nn.Embedding(cfg.vocab_size, cfg.stack.hidden_size)
        self.text_embedding = nn.Embedding(cfg.text_vocab_size, cfg.text_hidden_size)


class PredictorBody(nn.Module):
    def __init__(self, cfg: TalkerConfig) -> None:
        super().__init__()
        self.layers = blocks(cfg.predictor)
        self.norm = RMSNorm(cfg.predictor.hidden_size, cfg.predictor.rms_norm_eps)
        self.codec_embedding = nn.ModuleList(
            nn.Embedding(cfg.predictor_vocab_size, cfg.stack.hidden_size)
            for _ in range(cfg.num_code_groups - 1)
        )


class CodePredictor(nn.Module):
    def __init__(self, cfg: TalkerConfig) -> None:
        super().__init__()
        self.model = PredictorBody(cfg)
        self.lm_head = nn.ModuleList(
            nn.Linear(cfg.predictor.hidden_size, cfg.predictor_vocab_size, bias=False)
            for _ in range(cfg.num_code_groups - 1)
        )
        self.small_to_mtp_projection: nn.Module = (
            nn.Linear(cfg.stack.hidden_size, cfg.predictor.hidden_size, bias=True)
            if cfg.predictor.hidden_size != cfg.stack.hidden_size
            else nn.Identity()
        )


def _run_layers(
    layers: nn.ModuleList,
    norm: RMSNorm,
    cfg: StackConfig,
    x: torch.Tensor,
    positions: torch.Tensor,
    mask: torch.Tensor,
    view: CacheView | None,
) -> torch.Tensor:
    cos, sin = rope(positions, cfg.head_dim, cfg.rope_theta)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    # (batch, steps, keys) -> (batch, 1, group x steps, keys): the rows of grouped queries.
    group = cfg.num_heads // cfg.num_kv_heads
    mask = mask[:, None].repeat(1, 1, group, 1) if group > 1 else mask[:, None]
    for index, layer in enumerate(layers):
        x = layer(x, cos, sin, mask, index, view)
    return norm(x)


@dataclass(frozen=True)
class Sampling:
    """How codes are drawn: `temperature` 0 means greedy."""

    temperature: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.05
    predictor_temperature: float = 0.9
    predictor_top_k: int = 50


def sample(
    logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """One id per row of `logits` (rows, vocab)."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    # One categorical draw as an exponential race (argmax of p / Exp(1)): the same
    # distribution as `multinomial`, without its host-side checks, so a CUDA graph can hold it.
    race = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / race).argmax(-1)


class Talker(nn.Module):
    """The talker: prompt -> code 0 of each frame; with its code predictor, whole frames."""

    def __init__(self, cfg: TalkerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = TalkerBody(cfg)
        self.text_projection = TextProjection(cfg.text_hidden_size, cfg.stack.hidden_size)
        self.codec_head = nn.Linear(cfg.stack.hidden_size, cfg.vocab_size, bias=False)
        self.code_predictor = CodePredictor(cfg)
        self._suppressed: torch.Tensor | None = None

    def suppressed(self, device: torch.device) -> torch.Tensor:
        """The codec ids never sampled as code 0: the control ids, all but end-of-speech."""
        if self._suppressed is None or self._suppressed.device != device:
            mask = torch.zeros(self.cfg.vocab_size, dtype=torch.bool, device=device)
            mask[self.cfg.vocab_size - 1024 :] = True
            mask[self.cfg.codec_ids["codec_eos_token_id"]] = False
            self._suppressed = mask
        return self._suppressed

    # prompt building ------------------------------------------------------------------

    def text_embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text_projection(self.model.text_embedding(ids))

    def codec_embed(self, ids: list[int]) -> torch.Tensor:
        device = self.codec_head.weight.device
        return self.model.codec_embedding(torch.tensor(ids, device=device))

    def prompt(
        self,
        role_ids: list[int],
        body_ids: list[int],
        language: str,
        speaker: str,
        *,
        text_in_prompt: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt embeddings (steps, hidden), text to add frame by frame (n, hidden)).

        `role_ids` is the tokenized `<|im_start|>assistant\\n`, `body_ids` the text to say.
        With `text_in_prompt` the whole text is read before the first frame (the model's
        default for a built-in speaker); otherwise one text token joins each of the first
        frames, as in Qwen's streaming-text mode. Unknown speakers or languages: KeyError.
        """
        cfg, ids = self.cfg, self.cfg.codec_ids
        device = self.codec_head.weight.device
        special = self.text_embed(
            torch.tensor(
                [
                    cfg.text_ids[k]
                    for k in ("tts_bos_token_id", "tts_eos_token_id", "tts_pad_token_id")
                ],
                device=device,
            )
        )
        tts_bos, tts_eos, tts_pad = special[0:1], special[1:2], special[2:3]
        language_id = cfg.languages[language.lower()]
        dialect = cfg.speaker_dialects.get(speaker.lower())
        if dialect and language.lower() == "chinese":
            language_id = cfg.languages[dialect]
        codec = self.codec_embed([
            ids["codec_think_id"], ids["codec_think_bos_id"], language_id,
            ids["codec_think_eos_id"], cfg.speakers[speaker.lower()], ids["codec_pad_id"],
            ids["codec_bos_id"],
        ])  # fmt: skip
        role = self.text_embed(torch.tensor(role_ids, device=device))
        tags = torch.cat((tts_pad.expand(codec.shape[0] - 2, -1), tts_bos)) + codec[:-1]
        body = torch.tensor(body_ids, device=device)
        if text_in_prompt:
            text = torch.cat((self.text_embed(body), tts_eos))
            text = text + self.codec_embed([ids["codec_pad_id"]] * text.shape[0])
            start = tts_pad + codec[-1:]
            return torch.cat((role, tags, text, start)), tts_pad
        first = self.text_embed(body[:1]) + codec[-1:]
        trailing = torch.cat((self.text_embed(body[1:]), tts_eos))
        return torch.cat((role, tags, first)), trailing

    # steps -----------------------------------------------------------------------------

    def _logits(self, hidden: torch.Tensor, seen: torch.Tensor, sampling: Sampling,
                allow_eos: torch.Tensor) -> torch.Tensor:  # fmt: skip
        logits = self.codec_head(hidden).float()
        penalty = sampling.repetition_penalty
        if penalty != 1.0:
            penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
            logits = torch.where(seen, penalised, logits)
        logits = logits.masked_fill(self.suppressed(logits.device), float("-inf"))
        eos = self.cfg.codec_ids["codec_eos_token_id"]
        logits[:, eos] = torch.where(allow_eos, logits[:, eos], float("-inf"))
        return logits

    def prefill(self, embeds: torch.Tensor, cache: KvCache, row: int) -> torch.Tensor:
        """Read one prompt into cache row `row`; the last position's hidden state (1, hidden)."""
        return self.prefill_rows([embeds], cache, [row])

    def prefill_rows(
        self, prompts: list[torch.Tensor], cache: KvCache, rows: list[int]
    ) -> torch.Tensor:
        """Read several prompts (each (steps, hidden)) into cache rows `rows` in one pass,
        padded to the longest; each one's last hidden state (prompts, hidden).

        A prompt's padding writes keys and values past its end, where its first decode step
        writes before anything reads: nothing of it is ever attended to."""
        device = prompts[0].device
        sizes = [prompt.shape[0] for prompt in prompts]
        longest = max(sizes)
        lengths = torch.tensor(sizes, device=device)
        embeds = nn.utils.rnn.pad_sequence(prompts, batch_first=True)
        positions = torch.arange(longest, device=device)[None].expand(len(prompts), -1)
        keys = torch.arange(longest, device=device)
        mask = causal_mask(longest, device) & (keys < lengths[:, None])[:, None]
        view = CacheView(cache, torch.tensor(rows, device=device), positions, longest)
        hidden = _run_layers(self.model.layers, self.model.norm, self.cfg.stack,
                             embeds, positions, mask, view)  # fmt: skip
        return hidden[torch.arange(len(prompts), device=device), lengths - 1]

    def decode_step(
        self,
        embeds: torch.Tensor,
        cache: KvCache,
        rows: torch.Tensor,
        positions: torch.Tensor,
        *,
        static: bool = False,
    ) -> torch.Tensor:
        """One new position for each of `rows` (each at its own position); hidden states.

        `static`: `rows` are the cache's first rows and attention reads every cached position
        (masked past each row's own): fixed shapes and no host sync, what a CUDA graph needs.
        Otherwise it reads up to the furthest row's position (a host sync per call)."""
        read_len = cache.max_len if static else int(positions.max()) + 1
        keys = torch.arange(read_len, device=embeds.device)
        mask = (keys[None, :] <= positions[:, None])[:, None]
        view = CacheView(cache, rows, positions[:, None], read_len, leading=static)
        hidden = _run_layers(self.model.layers, self.model.norm, self.cfg.stack,
                             embeds[:, None], positions[:, None], mask, view)  # fmt: skip
        return hidden[:, -1]

    def first_codes(
        self,
        hidden: torch.Tensor,
        seen: torch.Tensor,
        allow_eos: torch.Tensor,
        sampling: Sampling,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Code 0 of the next frame of each row."""
        logits = self._logits(hidden, seen, sampling, allow_eos)
        return sample(logits, sampling.temperature, sampling.top_k, generator)

    def frame(
        self,
        hidden: torch.Tensor,
        code0: torch.Tensor,
        sampling: Sampling,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The other 15 codes of each row's frame, and the frame's embedding (the talker's
        next input, before text is added)."""
        predictor = self.code_predictor
        cfg = self.cfg.predictor
        rows = hidden.shape[0]
        device = hidden.device
        groups = self.cfg.num_code_groups
        first = self.model.codec_embedding(code0)
        cache = KvCache(cfg, rows, groups + 1, dtype=hidden.dtype, device=device)
        all_rows = torch.arange(rows, device=device)
        x = predictor.small_to_mtp_projection(torch.stack((hidden, first), dim=1))
        positions = torch.arange(2, device=device)[None].expand(rows, -1)
        mask = causal_mask(2, device).expand(rows, -1, -1)
        view = CacheView(cache, all_rows, positions, 2, leading=True)
        out = _run_layers(
            predictor.model.layers, predictor.model.norm, cfg, x, positions, mask, view
        )
        codes = [code0]
        summed = first
        for group in range(groups - 1):
            logits = predictor.lm_head[group](out[:, -1])
            code = sample(
                logits, sampling.predictor_temperature, sampling.predictor_top_k, generator
            )
            codes.append(code)
            embedded = predictor.model.codec_embedding[group](code)
            summed = summed + embedded
            if group == groups - 2:
                break
            position = group + 2
            positions = torch.full((rows, 1), position, device=device)
            mask = torch.ones(rows, 1, position + 1, dtype=torch.bool, device=device)
            view = CacheView(cache, all_rows, positions, position + 1, leading=True)
            x = predictor.small_to_mtp_projection(embedded[:, None])
            out = _run_layers(
                predictor.model.layers, predictor.model.norm, cfg, x, positions, mask, view
            )
        return torch.stack(codes, dim=1), summed

    def advance(
        self,
        state: DecodeState,
        batch: int,
        sampling: Sampling,
        generator: torch.Generator | None,
        pad: torch.Tensor,
    ) -> None:
        """One frame for rows `0..batch-1` of `state`, in place, with fixed shapes and no
        host sync (capturable as a CUDA graph). The same decisions as the one-frame steps
        above: end of speech not before 2 frames, a row stops at its end or its limit, the
        text joins frame by frame then `pad` (the text track's padding)."""
        index = torch.arange(batch, device=pad.device)
        hidden, made = state.hidden[:batch], state.made[:batch]
        done = state.done[:batch]
        code0 = self.first_codes(hidden, state.seen[:batch], made >= 2, sampling, generator)
        ended = code0 == self.cfg.codec_ids["codec_eos_token_id"]
        going = ~done & ~ended
        frames, summed = self.frame(hidden, code0, sampling, generator)
        # Rows not going write past their last frame: nothing reads there.
        state.codes[index, made] = frames
        state.seen[index, code0] = state.seen[index, code0] | going
        slot = made.clamp(max=state.text.shape[1] - 1)
        text = torch.where((made < state.text_len[:batch])[:, None], state.text[index, slot], pad)
        position = state.position[:batch]
        new_hidden = self.decode_step(summed + text, state.cache, index, position, static=True)
        state.hidden[:batch] = torch.where(going[:, None], new_hidden, hidden)
        step = going.long()
        position.add_(step)
        made.add_(step)
        done.copy_(done | ended | (made >= state.max_frames[:batch]))


class StepGraphs:
    """`run(batch)` replays a CUDA graph of `step(batch)` captured once per batch size.

    `step` must only read and write fixed buffers (`Talker.advance` on a `DecodeState`): the
    graph replays its kernels on the same memory. Every size shares one memory pool (they
    never run at once). Capturing runs `step` a few times first: the state must be in a
    harmless condition (every row `done`), and is reset by the caller afterwards.
    """

    def __init__(
        self,
        step: Callable[[int], None],
        sizes: list[int],
        generator: torch.Generator | None = None,
    ) -> None:
        self.sizes = sorted(sizes)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # lazily made buffers and kernel choices settle first
                for size in self.sizes:
                    step(size)
        torch.cuda.current_stream().wait_stream(side)
        for size in reversed(self.sizes):  # the largest first: the pool fits the others
            graph = torch.cuda.CUDAGraph()
            if generator is not None:
                graph.register_generator_state(generator)
            # thread_local: other threads' CUDA work (another engine loading) may go on.
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                step(size)
            self._graphs[size] = graph
        torch.cuda.synchronize()

    def run(self, batch: int) -> None:
        self._graphs[batch].replay()


class DecodeState:
    """Every stream's decoding state in fixed-shape device buffers, one row per stream.

    `Talker.advance` reads and writes these in place and nothing else, so one captured CUDA
    graph per batch size replays a whole frame for every row; streams join (`start`) and
    leave (`stop`) by writing their row between replays. A row that is `done` (ended, at its
    frame limit, or free) still runs through the step but changes nothing the stream owns:
    its key/value writes land past its last position, where nothing will read them.
    """

    def __init__(
        self,
        cfg: TalkerConfig,
        rows: int,
        max_positions: int,
        *,
        text_len: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        hidden = cfg.stack.hidden_size
        self.cache = KvCache(cfg.stack, rows, max_positions, dtype=dtype, device=device)
        self.hidden = torch.zeros(rows, hidden, dtype=dtype, device=device)
        self.position = torch.zeros(rows, dtype=torch.long, device=device)
        self.made = torch.zeros(rows, dtype=torch.long, device=device)
        self.max_frames = torch.zeros(rows, dtype=torch.long, device=device)
        self.done = torch.ones(rows, dtype=torch.bool, device=device)
        self.seen = torch.zeros(rows, cfg.vocab_size, dtype=torch.bool, device=device)
        # The text still to read, joining frame by frame (Qwen's streaming-text mode), then
        # the padding; one slot when the whole text is read in the prompt.
        self.text = torch.zeros(rows, text_len, hidden, dtype=dtype, device=device)
        self.text_len = torch.zeros(rows, dtype=torch.long, device=device)
        # Every frame a row has made (frames x code groups), read back chunk by chunk.
        self.codes = torch.zeros(
            rows, max_positions, cfg.num_code_groups, dtype=torch.long, device=device
        )

    def start(
        self, row: int, hidden: torch.Tensor, position: int, text: torch.Tensor, max_frames: int
    ) -> None:
        """A new stream in `row`: its prompt's last hidden state and length (its cache row
        already prefilled), the text still to read, its frame limit."""
        self.hidden[row] = hidden.reshape(-1)
        self.position[row] = position
        self.made[row] = 0
        self.max_frames[row] = max_frames
        self.seen[row] = False
        self.text[row, : text.shape[0]] = text
        self.text_len[row] = text.shape[0]
        self.done[row] = False

    def stop(self, row: int) -> None:
        self.done[row] = True

    def reset(self) -> None:
        self.done.fill_(True)
        self.made.zero_()


# --- codec decoder ---------------------------------------------------------------------------


class CausalConv(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, dilation: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, groups=groups)
        self.pad = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class CausalUpConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(c_in, c_out, kernel, stride=stride)
        self.trim = kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., : y.shape[-1] - self.trim] if self.trim else y


class ConvNeXt(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = CausalConv(dim, dim, 7, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class SnakeBeta(nn.Module):
    """x + sin²(αx)/β with log-scale α, β per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.exp()[None, :, None]
        inverse_beta = 1.0 / (self.beta.exp()[None, :, None] + 1e-9)
        # Four passes over the (large) activations instead of six: the vocoder's time is
        # mostly memory traffic through these.
        wave = (x * alpha).sin_()
        return torch.addcmul(x, wave.square_(), inverse_beta)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.act1 = SnakeBeta(dim)
        self.conv1 = CausalConv(dim, dim, 7, dilation=dilation)
        self.act2 = SnakeBeta(dim)
        self.conv2 = CausalConv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


class UpsampleBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, rate: int) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            [SnakeBeta(c_in), CausalUpConv(c_in, c_out, 2 * rate, rate)]
            + [ResidualUnit(c_out, d) for d in (1, 3, 9)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.block:
            x = layer(x)
        return x


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.cluster_usage = nn.Parameter(torch.ones(size))
        self.embedding_sum = nn.Parameter(torch.zeros(size, dim))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        table = self.embedding_sum / self.cluster_usage.clamp(min=1e-5)[:, None]
        return F.embedding(codes, table)


class _Layer(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self._codebook = Codebook(size, dim)


class _Vq(nn.Module):
    def __init__(self, count: int, size: int, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Layer(size, dim) for _ in range(count))


class ResidualQuantizer(nn.Module):
    """Sum of `count` codebooks, projected out (`vq.layers.N._codebook`, `output_proj`)."""

    def __init__(self, count: int, size: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.vq = _Vq(count, size, dim)
        self.output_proj = nn.Conv1d(dim, out_dim, 1, bias=False)

    @property
    def codebooks(self) -> list[Codebook]:
        return [cast(_Layer, layer)._codebook for layer in self.vq.layers]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (batch, count, frames) -> (batch, out_dim, frames)."""
        total = self.codebooks[0].lookup(codes[:, 0])
        for i, codebook in enumerate(self.codebooks[1:], start=1):
            total = total + codebook.lookup(codes[:, i])
        return self.output_proj(total.transpose(1, 2))


class SplitQuantizer(nn.Module):
    def __init__(self, cfg: CodecDecoderConfig) -> None:
        super().__init__()
        half = cfg.codebook_dim // 2
        self.rvq_first = ResidualQuantizer(1, cfg.codebook_size, half, cfg.codebook_dim)
        self.rvq_rest = ResidualQuantizer(
            cfg.num_quantizers - 1, cfg.codebook_size, half, cfg.codebook_dim
        )

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.rvq_first.decode(codes[:, :1]) + self.rvq_rest.decode(codes[:, 1:])


class PreTransformer(nn.Module):
    def __init__(self, cfg: CodecDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg.stack
        self.layers = blocks(cfg.stack)
        self.norm = RMSNorm(cfg.stack.hidden_size, cfg.stack.rms_norm_eps)
        self.input_proj = nn.Linear(cfg.latent_dim, cfg.stack.hidden_size)
        self.output_proj = nn.Linear(cfg.stack.hidden_size, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        positions = torch.arange(steps, device=x.device)[None]
        mask = causal_mask(steps, x.device, self.cfg.sliding_window)
        h = _run_layers(self.layers, self.norm, self.cfg, self.input_proj(x), positions, mask, None)
        return self.output_proj(h)


class CodecDecoder(nn.Module):
    """Codec frames (batch, 16, frames) -> 24 kHz audio (batch, frames * 1920)."""

    def __init__(self, cfg: CodecDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.quantizer = SplitQuantizer(cfg)
        self.pre_conv = CausalConv(cfg.codebook_dim, cfg.latent_dim, 3)
        self.pre_transformer = PreTransformer(cfg)
        self.upsample = nn.ModuleList(
            nn.ModuleList(
                [CausalUpConv(cfg.latent_dim, cfg.latent_dim, r, r), ConvNeXt(cfg.latent_dim)]
            )
            for r in cfg.upsampling_ratios
        )
        layers: list[nn.Module] = [CausalConv(cfg.latent_dim, cfg.decoder_dim, 7)]
        for i, rate in enumerate(cfg.upsample_rates):
            layers.append(
                UpsampleBlock(cfg.decoder_dim // 2**i, cfg.decoder_dim // 2 ** (i + 1), rate)
            )
        out_dim = cfg.decoder_dim // 2 ** len(cfg.upsample_rates)
        layers += [SnakeBeta(out_dim), CausalConv(out_dim, 1, 7)]
        self.decoder = nn.ModuleList(layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.pre_conv(self.quantizer.decode(codes))
        h = self.pre_transformer(h.transpose(1, 2)).transpose(1, 2)
        for stage in self.upsample:
            up, convnext = cast(nn.ModuleList, stage)
            h = convnext(up(h))
        for layer in self.decoder:
            h = layer(h)
        return h.clamp(-1.0, 1.0).squeeze(1)

    def decode_chunk(self, codes: torch.Tensor, context: int) -> torch.Tensor:
        """Audio of `codes` (batch, 16, frames) past its first `context` frames, which are
        given only so the chunk continues what came before."""
        return self(codes)[:, context * self.cfg.frame_samples :]


class SpeechCodec(nn.Module):
    """The speech tokenizer's decoding half, named as the checkpoint names it (`decoder.*`)."""

    def __init__(self, cfg: CodecDecoderConfig) -> None:
        super().__init__()
        self.decoder = CodecDecoder(cfg)
