"""CEFR level from a fine-tuned mDeBERTa-v3 classifier through transformers (the `gpu` and
`legacy` profiles: `marcosremar2/cefr-classifier-pt-mdeberta-v3-enem`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from parle.tutor.levels import LEVELS, LevelEstimate


def label_to_level(label: str, index: int, count: int) -> str:
    """A1..C2 from a classifier label ("B1", "LABEL_2", "level_b1"...); labels that name no
    level are read as the levels in order."""
    match = re.search(r"\b([ABC][12])\b", label.upper().replace("_", " "))
    if match:
        return match.group(1)
    return LEVELS[min(index * len(LEVELS) // max(count, 1), len(LEVELS) - 1)]


class MdebertaLevelEstimator:
    """AutoTokenizer + AutoModelForSequenceClassification; scores are the softmax over the
    classifier's labels, mapped to A1..C2."""

    def __init__(self, model_path: Path | str, *, device: str = "cpu", max_length: int = 256):
        self.model_path = str(model_path)
        self.device = device
        self.max_length = max_length
        self._tokenizer: Any = None
        self._model: Any = None
        self._levels: list[str] = []

    def load(self) -> None:
        """Load tokenizer and model, then classify one sentence (warm-up)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_path)
        self._model = model.to(self.device).eval()
        positions = getattr(model.config, "max_position_embeddings", self.max_length)
        self.max_length = min(self.max_length, int(positions))
        labels = model.config.id2label
        count = len(labels)
        self._levels = [label_to_level(str(labels[i]), i, count) for i in range(count)]
        with torch.inference_mode():
            self.estimate("Olá, tudo bem?")

    def estimate(self, text: str) -> LevelEstimate:
        import torch

        if self._model is None:
            raise RuntimeError("MdebertaLevelEstimator.load() was not called")
        inputs = self._tokenizer(
            text, return_tensors="pt", truncation=True, max_length=self.max_length
        ).to(self.device)
        with torch.inference_mode():
            probabilities = torch.softmax(self._model(**inputs).logits[0].float(), dim=-1)
        scores = dict.fromkeys(LEVELS, 0.0)
        for level, p in zip(self._levels, probabilities.tolist(), strict=True):
            scores[level] += float(p)
        value = sum(LEVELS.index(level) * p for level, p in scores.items())
        best = max(scores, key=lambda level: scores[level])
        return LevelEstimate(best, round(value, 3), {k: round(v, 4) for k, v in scores.items()})
