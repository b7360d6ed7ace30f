"""PARLE's Qwen3-TTS model code: the published shapes, the decoding rules of code 0, and
chunked codec decoding (the basis of streaming)."""

from __future__ import annotations

import torch

from parle.engines.qwen3_tts_model import (
    CodecDecoder,
    Sampling,
    SpeechCodec,
    Talker,
    codec_decoder_config,
    talker_config,
)
from parle.random_models import QWEN3_TTS_SPEAKERS, qwen3_tts_configs

FRAME_SAMPLES = 1920  # the published codec: 24 kHz / 12.5 Hz


def params(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def test_the_0_6b_architecture_as_published() -> None:
    model, codec = qwen3_tts_configs("0.6b")
    cfg = talker_config(model)
    with torch.device("meta"):
        talker = Talker(cfg)
        decoder = SpeechCodec(codec_decoder_config(codec))
    assert (cfg.stack.num_layers, cfg.stack.hidden_size, cfg.num_code_groups) == (28, 1024, 16)
    assert cfg.languages["portuguese"] == 2071 and cfg.speakers == QWEN3_TTS_SPEAKERS
    assert len(talker.code_predictor.lm_head) == 15
    # ~0.9 B in the talker (0.31 B of it the text embedding), as the 1.8 GB bf16 checkpoint.
    assert 880 < params(talker) < 930 and 300 < params(talker.model.text_embedding) < 320
    assert 150 < params(decoder) < 250
    assert decoder.decoder.cfg.frame_samples == FRAME_SAMPLES


def test_config_variants_the_hub_and_exports_write() -> None:
    model, _ = qwen3_tts_configs("tiny")
    model["talker_config"]["spk_id"] = {"Serena": 3066, "ryan": [3061]}
    model["talker_config"].pop("rope_theta")
    model["talker_config"]["rope_parameters"] = {"rope_type": "default", "rope_theta": 5000.0}
    model["talker_config"]["code_predictor_config"].pop("rope_theta")
    model["talker_config"]["code_predictor_config"]["rope_scaling"] = {"rope_theta": 7000.0}
    cfg = talker_config(model)
    assert cfg.speakers == {"serena": 3066, "ryan": 3061}
    assert cfg.stack.rope_theta == 5000.0 and cfg.predictor.rope_theta == 7000.0


def tiny_talker() -> Talker:
    torch.manual_seed(0)
    return Talker(talker_config(qwen3_tts_configs("tiny")[0])).eval()


def test_end_of_speech_waits_for_two_frames_and_control_ids_are_never_spoken() -> None:
    talker = tiny_talker()
    eos = talker.cfg.codec_ids["codec_eos_token_id"]
    hidden = torch.zeros(2, talker.cfg.stack.hidden_size)
    hidden[:, 0] = 1.0
    with torch.no_grad():
        talker.codec_head.weight.zero_()
        talker.codec_head.weight[eos, 0] = 10.0  # end of speech is the likeliest
        talker.codec_head.weight[2500, 0] = 20.0  # a control id, likelier still
    seen = torch.zeros(2, talker.cfg.vocab_size, dtype=torch.bool)
    greedy = Sampling(temperature=0)
    codes = talker.first_codes(hidden, seen, torch.tensor([False, True]), greedy, None)
    assert codes[0] != eos and codes[0] < talker.cfg.vocab_size - 1024
    assert codes[1] == eos


def test_repeated_codes_are_penalised() -> None:
    talker = tiny_talker()
    hidden = torch.zeros(1, talker.cfg.stack.hidden_size)
    hidden[:, 0] = 1.0
    with torch.no_grad():
        talker.codec_head.weight.zero_()
        talker.codec_head.weight[7, 0] = 1.02
        talker.codec_head.weight[8, 0] = 1.0
    seen = torch.zeros(1, talker.cfg.vocab_size, dtype=torch.bool)
    allow = torch.tensor([True])
    greedy = Sampling(temperature=0, repetition_penalty=1.05)
    assert talker.first_codes(hidden, seen, allow, greedy, None).item() == 7
    seen[0, 7] = True
    assert talker.first_codes(hidden, seen, allow, greedy, None).item() == 8


def test_a_chunk_decoded_with_all_its_past_as_context_is_the_whole_decode() -> None:
    torch.manual_seed(0)
    decoder = CodecDecoder(codec_decoder_config(qwen3_tts_configs("tiny")[1])).eval()
    with torch.no_grad():
        for quantizer in (decoder.quantizer.rvq_first, decoder.quantizer.rvq_rest):
            for codebook in quantizer.codebooks:
                codebook.embedding_sum.normal_()
        codes = torch.randint(0, 2048, (1, 16, 12))
        whole = decoder(codes)
        pieces = [decoder.decode_chunk(codes[..., :end], start)
                  for start, end in ((0, 2), (2, 10), (10, 12))]  # fmt: skip
    streamed = torch.cat(pieces, dim=-1)
    assert whole.shape == (1, 12 * FRAME_SAMPLES) and streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)
    assert whole.abs().max() > 1e-3  # not silence
