"""`make bench-gpu-smoke`: the GPU box's one-run benchmark on the CPU with the tiny models
produces every row (the device run is the same script; a run cut short keeps its rows)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "bench_gpu.py"


def test_the_gpu_benchmark_smoke_run_measures_every_section(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = {(row["section"], row["name"]): row for row in json.loads(out.read_text())["rows"]}
    assert {
        ("tts", "load"), ("tts", "alone, first piece"), ("tts", "alone, sentence"),
        ("tts", "1 sessions"), ("tts", "2 sessions"), ("stt", "5s utterance"),
        ("stt", "2 at once"), ("turn", "1 sessions"), ("turn", "2 sessions"),
    } <= set(rows)  # fmt: skip
    assert rows[("tts", "load")]["cuda_graphs"] is False  # the CPU: the same step, eagerly
    assert rows[("tts", "2 sessions")]["slowest_x_realtime"] > 0
    assert rows[("stt", "2 at once")]["utterances_per_s"] > 0
    assert rows[("turn", "1 sessions")]["ttfa_p50_ms"] > 0
    # Each row is printed too (flushed as measured), not only written to the JSON.
    assert run.stdout.count("\n| ") + run.stdout.startswith("| ") >= len(rows)
