"""PARLE's Qwen3-TTS model code against Qwen's own (the `qwen-tts` package) on the same
random weights: the same codec frames, token for token, from the same prompt, and the same
audio from the codec decoder.

The official package cannot be imported beside this project's torch build (it imports
torchaudio, which has no wheel for it, and its generation needs transformers 5.17), so this
runs only where `qwen_tts` imports: e.g. a scratch environment with transformers 5.17,
huggingface-hub < 2 and torchaudio. It was run so when the engine was written."""

from __future__ import annotations

import pytest
import torch

qwen_tts = pytest.importorskip("qwen_tts", reason="Qwen's qwen-tts package is not importable")

from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSConfig  # noqa: E402
from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSForConditionalGeneration  # noqa: E402
from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import (  # noqa: E402
    Qwen3TTSTokenizerV2DecoderConfig,
)
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (  # noqa: E402
    Qwen3TTSTokenizerV2Decoder,
)

from parle.engines.qwen3_tts_model import (  # noqa: E402
    CodecDecoder,
    KvCache,
    Sampling,
    Talker,
    codec_decoder_config,
    talker_config,
)
from parle.random_models import qwen3_tts_configs  # noqa: E402


@pytest.mark.parametrize("text_in_prompt", [True, False])
def test_the_same_frames_as_qwens_generate(text_in_prompt: bool) -> None:
    torch.manual_seed(0)
    raw, _ = qwen3_tts_configs("tiny")
    official = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**raw)).eval()
    ours = Talker(talker_config(raw)).eval()
    weights = {
        k[len("talker.") :]: v for k, v in official.state_dict().items() if k.startswith("talker.")
    }
    assert ours.load_state_dict(weights, strict=False) == ([], [])  # every name matches
    # <|im_start|> assistant \n  text...  <|im_end|> \n <|im_start|> assistant \n
    ids = torch.tensor([[151644, 7, 8, *range(20, 32), 151645, 9, 151644, 7, 8]])
    frames = 30
    with torch.no_grad():
        expected, _ = official.generate(
            input_ids=[ids], languages=["portuguese"], speakers=["serena"],
            non_streaming_mode=text_in_prompt, max_new_tokens=frames, do_sample=False,
            subtalker_dosample=False, repetition_penalty=1.05,
        )  # fmt: skip
        got = greedy_frames(ours, ids[0].tolist(), frames, text_in_prompt)
    expected = expected[0]
    assert len(expected) > 10
    assert torch.equal(got[: len(expected)], expected)


def greedy_frames(
    talker: Talker, ids: list[int], frames: int, text_in_prompt: bool
) -> torch.Tensor:
    embeds, trailing = talker.prompt(
        ids[:3], ids[3:-5], "portuguese", "serena", text_in_prompt=text_in_prompt
    )
    pad = talker.text_embed(torch.tensor([talker.cfg.text_ids["tts_pad_token_id"]]))
    cache = KvCache(talker.cfg.stack, 1, 256, dtype=torch.float32, device="cpu")
    greedy = Sampling(temperature=0, predictor_temperature=0, repetition_penalty=1.05)
    hidden = talker.prefill(embeds, cache, 0)
    seen = torch.zeros(1, talker.cfg.vocab_size, dtype=torch.bool)
    position, made = embeds.shape[0], []
    for step in range(frames):
        code0 = talker.first_codes(hidden, seen, torch.tensor([step >= 2]), greedy, None)
        if int(code0) == talker.cfg.codec_ids["codec_eos_token_id"]:
            break
        seen[0, code0] = True
        frame, summed = talker.frame(hidden, code0, greedy, None)
        made.append(frame[0])
        text = trailing[step : step + 1] if step < trailing.shape[0] else pad
        hidden = talker.decode_step(
            summed + text, cache, torch.tensor([0]), torch.tensor([position])
        )
        position += 1
    return torch.stack(made)


def test_the_same_audio_as_qwens_codec_decoder() -> None:
    torch.manual_seed(0)
    _, codec = qwen3_tts_configs("tiny")
    official = Qwen3TTSTokenizerV2Decoder(
        Qwen3TTSTokenizerV2DecoderConfig(**codec["decoder_config"])
    ).eval()
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    ours = CodecDecoder(codec_decoder_config(codec)).eval()
    missing, unexpected = ours.load_state_dict(official.state_dict(), strict=False)
    assert missing == [] and all(".input_proj." in name for name in unexpected)  # encoder side
    codes = torch.randint(0, 2048, (2, 16, 20))
    with torch.no_grad():
        assert torch.allclose(ours(codes), official(codes).squeeze(1), atol=1e-5)
