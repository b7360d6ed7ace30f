"""The CEFR classifier's loading and inference code (`MdebertaLevelEstimator`) on a small
random-weight DeBERTa-v2 built here from the real architecture's config class: the hub (and
so the real checkpoint) is out of reach on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from parle.tutor.levels import LEVELS
from parle.tutor.mdeberta import MdebertaLevelEstimator, label_to_level

WORDS = [
    "olá",
    "meu",
    "nome",
    "é",
    "ana",
    "eu",
    "sou",
    "dos",
    "estados",
    "unidos",
    "gosto",
    "de",
    "café",
    "mas",
    "não",
    "chá",
]


def build_random_classifier(folder: Path, labels: list[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(0)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    config = DebertaV2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        pad_token_id=0,
    )
    DebertaV2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("labels", [list(LEVELS), [f"LABEL_{i}" for i in range(6)]])
def test_random_weight_classifier_loads_and_classifies(tmp_path: Path, labels: list[str]) -> None:
    folder = build_random_classifier(tmp_path / "cefr", labels)
    estimator = MdebertaLevelEstimator(folder)
    estimator.load()
    first = estimator.estimate("Olá, meu nome é Ana e eu sou dos Estados Unidos.")
    assert first.level in LEVELS
    assert set(first.scores) == set(LEVELS)
    assert sum(first.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= first.value <= 5.0
    assert estimator.estimate("Olá, meu nome é Ana e eu sou dos Estados Unidos.") == first
    long_text = " ".join(["café"] * 1000)  # truncated, not an error
    assert estimator.estimate(long_text).level in LEVELS


def test_labels_map_to_levels() -> None:
    assert label_to_level("B1", 0, 6) == "B1"
    assert label_to_level("level_c2", 0, 6) == "C2"
    assert label_to_level("LABEL_3", 3, 6) == "B2"
    assert [label_to_level(f"x{i}", i, 3) for i in range(3)] == ["A1", "B1", "C1"]
