"""What a phone line costs the `cpu` profile's Whisper: word error rate of the learner clips
(u01-u10 and the other-voice variants, tests/data/audio) clean, through a phone line
(harness/telephone.py: 300-3400 Hz, 8 kHz, G.711 mu-law, back at 16 kHz as LiveKit's SIP
bridge hands it on) and through one that loses 2% of its 20 ms packets. Same engine, same
run, every clip in every condition.

Run: .venv/bin/python bench/bench_phone.py   (about a minute; writes bench/results/phone.json)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.telephone import telephone  # noqa: E402
from harness.wer import word_error_rate  # noqa: E402
from parle.audio import decode_audio  # noqa: E402
from parle.config import load_settings  # noqa: E402
from parle.runtime import build_transcriber  # noqa: E402

AUDIO = REPO / "tests" / "data" / "audio"
CONDITIONS = {
    "clean": lambda data: data,
    "phone line": lambda data: telephone(data),
    "phone line, 2% packets lost": lambda data: telephone(data, loss=0.02),
}


async def run() -> dict[str, Any]:
    settings = load_settings()
    transcriber = build_transcriber(settings)
    await asyncio.to_thread(transcriber.load)
    references = json.loads((AUDIO / "references.json").read_text("utf-8"))
    clips = [r for r in references if r["file"].startswith("utterances/")]
    rows: dict[str, Any] = {}
    for name, line in CONDITIONS.items():
        errors, seconds = [], []
        for clip in clips:
            audio = decode_audio(line((AUDIO / clip["file"]).read_bytes()))
            started = time.perf_counter()
            transcript = await transcriber.transcribe(audio)
            seconds.append(time.perf_counter() - started)
            errors.append(word_error_rate(clip["text"], transcript.text))
        rows[name] = {
            "clips": len(clips),
            "mean_wer": round(statistics.mean(errors), 3),
            "median_wer": round(statistics.median(errors), 3),
            "worst_wer": round(max(errors), 3),
            "stt_ms_p50": round(statistics.median(seconds) * 1000, 1),
        }
        print(name, json.dumps(rows[name]), flush=True)
    return {"model": settings.stt_model, "conditions": rows}


def main() -> int:
    result = asyncio.run(run())
    out = REPO / "bench" / "results" / "phone.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("\n| audio | clips | mean WER | median | worst | STT p50 ms |\n|---|---|---|---|---|---|")
    for name, row in result["conditions"].items():
        print(f"| {name} | {row['clips']} | {row['mean_wer']} | {row['median_wer']} | "
              f"{row['worst_wer']} | {row['stt_ms_p50']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
