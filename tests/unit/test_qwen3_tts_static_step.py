"""The fixed-shape decode step (what the CUDA graphs capture) against the dynamic one-frame
steps it replaces, token for token, on a tiny random-weight talker: greedy, one stream and
eight, streams joining at different steps (those joining together prefilled in one padded
pass), ending (end of speech, frame limit), cancelled and their rows reused, both text
modes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from parle.engines.qwen3_tts_model import (
    DecodeState,
    KvCache,
    Sampling,
    Talker,
    talker_config,
)
from parle.microbatch import batch_sizes
from parle.random_models import qwen3_tts_configs

GREEDY = Sampling(temperature=0, predictor_temperature=0)
POSITIONS = 160


@dataclass
class Piece:
    body: list[int]
    speaker: str
    max_frames: int
    join: int = 0  # the step at which it joins
    cancel: int | None = None  # the step at which it is cancelled


@pytest.fixture(scope="module")
def talker() -> Talker:
    torch.manual_seed(0)
    return Talker(talker_config(qwen3_tts_configs("tiny")[0])).eval()


ROLE = [151644, 77091, 198]  # <|im_start|>assistant\n


def pad_embedding(talker: Talker) -> torch.Tensor:
    return talker.text_embed(torch.tensor([talker.cfg.text_ids["tts_pad_token_id"]]))[0]


def dynamic(talker: Talker, piece: Piece, text_in_prompt: bool) -> torch.Tensor:
    """The piece's frames, alone, through the one-frame steps with dynamic shapes (a host
    decision after every frame): the path the engine took before its step had fixed shapes."""
    cfg = talker.cfg
    cache = KvCache(cfg.stack, 1, POSITIONS, dtype=torch.float32, device="cpu")
    embeds, trailing = talker.prompt(
        ROLE, piece.body, "portuguese", piece.speaker, text_in_prompt=text_in_prompt
    )
    hidden = talker.prefill(embeds, cache, 0)
    seen = torch.zeros(1, cfg.vocab_size, dtype=torch.bool)
    position, frames = embeds.shape[0], []
    limit = piece.max_frames if piece.cancel is None else piece.cancel - piece.join
    while len(frames) < min(limit, piece.max_frames):
        allow_eos = torch.tensor([len(frames) >= 2])
        code0 = talker.first_codes(hidden, seen, allow_eos, GREEDY, None)
        if code0.item() == cfg.codec_ids["codec_eos_token_id"]:
            break
        frame, summed = talker.frame(hidden, code0, GREEDY, None)
        frames.append(frame[0])
        seen[0, code0] = True
        text = trailing[len(frames) - 1] if len(frames) - 1 < trailing.shape[0] else None
        text = pad_embedding(talker) if text is None else text
        hidden = talker.decode_step(
            summed + text, cache, torch.tensor([0]), torch.tensor([position])
        )
        position += 1
    return torch.stack(frames)


def fixed_shape(
    talker: Talker, pieces: list[Piece], rows: int, text_in_prompt: bool
) -> tuple[list[torch.Tensor], list[int]]:
    """Every piece's frames through `Talker.advance` on one `DecodeState`, rows assigned as
    the engine assigns them (the lowest free one), and the batch sizes each step ran at."""
    cfg = talker.cfg
    state = DecodeState(
        cfg,
        rows,
        POSITIONS,
        text_len=1 if text_in_prompt else POSITIONS,
        dtype=torch.float32,
        device="cpu",
    )
    pad = pad_embedding(talker)
    sizes = batch_sizes(rows)
    active: dict[int, int] = {}  # row -> piece
    results: dict[int, torch.Tensor] = {}
    batches: list[int] = []
    step = 0
    while len(results) < len(pieces):
        joining = [number for number, piece in enumerate(pieces) if piece.join == step]
        if joining:  # prefilled together, as the engine does with streams that arrive together
            free = sorted(set(range(rows)) - set(active))[: len(joining)]
            prompts = [
                talker.prompt(ROLE, pieces[n].body, "portuguese", pieces[n].speaker,
                              text_in_prompt=text_in_prompt)
                for n in joining
            ]  # fmt: skip
            hidden = talker.prefill_rows([embeds for embeds, _ in prompts], state.cache, free)
            for i, (number, row) in enumerate(zip(joining, free, strict=True)):
                embeds, trailing = prompts[i]
                state.start(row, hidden[i], embeds.shape[0], trailing, pieces[number].max_frames)
                active[row] = number
        for row, number in list(active.items()):
            if pieces[number].cancel == step or bool(state.done[row]):
                results[number] = state.codes[row, : int(state.made[row])].clone()
                state.stop(row)
                del active[row]
        if active:
            batch = next(size for size in sizes if size > max(active))
            talker.advance(state, batch, GREEDY, None, pad)
            batches.append(batch)
        step += 1
    return [results[n] for n in range(len(pieces))], batches


def make_end_of_speech_likely(talker: Talker, pieces: list[Piece], text_in_prompt: bool) -> None:
    """Random weights never end a piece: give end-of-speech the weights of a code the first
    piece picks after a few frames, a little stronger, so pieces end where they would have
    said that code."""
    code = int(dynamic(talker, pieces[0], text_in_prompt)[4, 0])
    with torch.no_grad():
        eos = talker.cfg.codec_ids["codec_eos_token_id"]
        talker.codec_head.weight[eos] = talker.codec_head.weight[code] * 1.05


@pytest.mark.parametrize("text_in_prompt", [True, False])
@torch.inference_mode()
def test_one_stream_makes_the_same_frames(talker: Talker, text_in_prompt: bool) -> None:
    piece = Piece(body=[1000 + i for i in range(9)], speaker="serena", max_frames=30)
    expected = dynamic(talker, piece, text_in_prompt)
    [frames], batches = fixed_shape(talker, [piece], 1, text_in_prompt)
    assert set(batches) == {1}
    assert frames.shape == (30, 16)
    assert torch.equal(frames, expected)


@pytest.mark.parametrize("text_in_prompt", [True, False])
@torch.inference_mode()
def test_eight_streams_joining_ending_and_cancelled_make_the_same_frames(
    talker: Talker, text_in_prompt: bool
) -> None:
    speakers = ["serena", "ryan", "vivian", "aiden"]
    pieces = [
        Piece(
            body=[2000 + 37 * n + i for i in range(4 + n)],
            speaker=speakers[n % 4],
            max_frames=12 + 3 * n,
            join=4 * (n // 2),  # two at a time, prompts of different lengths
        )
        for n in range(8)
    ]
    pieces[2].cancel = 9  # leaves mid-piece; its row goes to a later piece
    pieces.append(Piece(body=[3000, 3001, 3002], speaker="ryan", max_frames=20, join=11))
    original = talker.codec_head.weight.clone()
    try:
        make_end_of_speech_likely(talker, pieces, text_in_prompt)
        expected = [dynamic(talker, piece, text_in_prompt) for piece in pieces]
        got, batches = fixed_shape(talker, pieces, 8, text_in_prompt)
    finally:
        with torch.no_grad():
            talker.codec_head.weight.copy_(original)
    for number, (frames, reference) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(frames, reference), f"piece {number}"
    lengths = [len(frames) for frames in expected]
    assert any(n < p.max_frames for n, p in zip(lengths, pieces, strict=True) if p.cancel is None)
    assert any(n == p.max_frames for n, p in zip(lengths, pieces, strict=True))
    assert lengths[2] == 9 - pieces[2].join  # cancelled after its 5th step
    # The batch grew with the streams (its size: the rows up to the highest in use).
    assert batches[0] == 2 and 4 in batches and max(batches) == 8
