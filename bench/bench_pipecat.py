"""PARLE against pipecat: the same engines on the same clips, both warm, interleaved.

    make bench-pipecat                       (creates .venv-pipecat first if it is missing)
    .venv/bin/python bench/bench_pipecat.py [--runs 3] [--clips u01,u05,u07,u09,u10]
                                            [--vad-stop-secs 0.5]

This process runs PARLE's server on the real `cpu` engines (uvicorn thread, as
bench/bench_realtime.py does) and starts pipecat's pipeline (bench/pipecat/pipeline.py) in a
subprocess of `.venv-pipecat`'s Python, pointed at what PARLE resolved: the same
faster-whisper folder, the same Kokoro ONNX file and voice style, the llama.cpp server PARLE
launched (same URL, same model alias) and PARLE's system prompt, reply length and speech speed
for level A2. For every clip and run, alternately (PARLE first on even runs, pipecat first on
odd ones):

(i)   PARLE `/v1/realtime`: the clip at real time in 20 ms appends, then silence, server VAD
      with 500 ms of silence; last speech sample sent -> first `response.output_audio.delta`
      (bench_realtime.realtime_ttfa).
(ii)  pipecat live: the same clip at real time in 20 ms frames into pipecat's input transport,
      then silence; Silero VAD (`--vad-stop-secs`, 0.5 s by default to match PARLE; pipecat's
      own default is 0.2 s) and pipecat's default turn strategies (smart-turn v3 ends the turn);
      last speech frame pushed -> first TTS audio chunk written to the output transport.
(iii) PARLE SSE `/api/stream-audio`: the whole recording; request -> first `audio` event
      (bench_realtime.sse_ttfa).
(iv)  pipecat blob: the same recording (0.3 s lead, the clip, 0.5 s of silence) pushed into the
      pipeline at ten times real time; end of the push -> first TTS audio chunk.

Writes bench/results/pipecat_cpu.json (medians, the ratios PARLE/pipecat, every row with
pipecat's stage times) and pipecat's log to bench/results/pipecat_cpu.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_realtime import pcm, realtime_ttfa, speech_only, sse_ttfa  # noqa: E402

from bridge.app import create_app  # noqa: E402
from harness.uvicorn_thread import UvicornThread, free_port  # noqa: E402
from parle.config import Settings, load_settings  # noqa: E402
from parle.engines.kokoro import KokoroSynthesizer, load_voices  # noqa: E402
from parle.engines.whisper import WhisperTranscriber  # noqa: E402
from parle.tutor.policy import TutorPolicy  # noqa: E402

RESULTS = REPO / "bench" / "results"
PIPECAT_PYTHON = REPO / ".venv-pipecat" / "bin" / "python"
PIPELINE = REPO / "bench" / "pipecat" / "pipeline.py"
LEAD_S = 0.3


class Pipecat:
    """pipecat's pipeline in its own virtualenv, one JSON line per command and per answer."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(PIPECAT_PYTHON),
                str(PIPELINE),
                str(self.config_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        self.ready = await asyncio.wait_for(self._answer(), 240)
        return self.ready

    async def _answer(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"pipecat's pipeline exited; see {self.log_path}")
            if line.startswith(b"{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    async def turn(self, pcm_path: Path, mode: str) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        command = {"cmd": "turn", "pcm": str(pcm_path), "mode": mode, "lead_s": LEAD_S}
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._answer(), 120)

    async def close(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write(b'{"cmd": "quit"}\n')
            await process.stdin.drain()
            await asyncio.wait_for(process.wait(), 30)
        except (TimeoutError, ConnectionError):
            process.kill()
            await process.wait()


async def pipecat_config(
    app: Any, settings: Settings, workdir: Path, vad_stop_secs: float
) -> dict[str, Any]:
    """What PARLE's loaded engines are, for pipecat to load the same ones."""
    pipeline = app.state.services.require_pipeline()
    transcriber, synthesizer = pipeline.transcriber, pipeline.synthesizer
    if not isinstance(transcriber, WhisperTranscriber) or not isinstance(
        synthesizer, KokoroSynthesizer
    ):
        raise SystemExit("the `cpu` profile should run faster-whisper and Kokoro ONNX")
    # The one voice style PARLE speaks with, in an archive of its own (kokoro-onnx's format).
    voices = workdir / "voices.npz"
    styles = load_voices(synthesizer.voices_paths)
    np.savez(voices, **{synthesizer.voice: styles[synthesizer.voice]})
    turn = TutorPolicy(region=settings.region).settings(settings.level)
    return {
        "stt_model": transcriber.model_path,
        "stt_compute_type": transcriber.compute_type,
        "llm_url": settings.llm_url,
        "llm_model": await pipeline.chat.served_model(),
        "llm_max_tokens": turn.max_tokens,
        "llm_temperature": settings.llm_temperature,
        "system_prompt": turn.system_prompt,
        "kokoro_model": str(synthesizer.model_path),
        "kokoro_voices": str(voices),
        "voice": synthesizer.voice,
        "tts_speed": turn.tts_speed,
        "vad_stop_secs": vad_stop_secs,
        "level": turn.level,
    }


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


async def bench(runs: int, clips: list[str], vad_stop_secs: float) -> dict[str, Any]:
    started = time.perf_counter()
    info = machine()
    settings = load_settings(profile="cpu", llm_url=f"http://127.0.0.1:{free_port()}/v1")
    app = create_app(settings)
    thread = UvicornThread(app, ws_max_size=settings.max_upload_bytes + 65536)
    base = thread.start().wait_ready()
    speech = {name: speech_only(name) for name in clips}
    workdir = Path(tempfile.mkdtemp(prefix="parle-pipecat-"))
    pcm_paths = {}
    for name, clip in speech.items():
        pcm_paths[name] = workdir / f"{name}.pcm"
        pcm_paths[name].write_bytes(pcm(clip, 16_000))
    config = await pipecat_config(app, settings, workdir, vad_stop_secs)
    (workdir / "config.json").write_text(json.dumps(config, ensure_ascii=False))
    RESULTS.mkdir(parents=True, exist_ok=True)
    pipecat = Pipecat(workdir / "config.json", RESULTS / "pipecat_cpu.log")
    rows: list[dict[str, Any]] = []

    def blob(clip: np.ndarray) -> np.ndarray:  # what bench_realtime's SSE side sends
        lead, tail = np.zeros(int(LEAD_S * 16_000), np.float32), np.zeros(8000, np.float32)
        return np.concatenate([lead, clip, tail])

    try:
        ready = await pipecat.start()
        print(json.dumps({"pipecat": ready}), flush=True)
        first = clips[0]  # warm-up: one turn of each kind on each side
        await sse_ttfa(base, blob(speech[first]))
        await realtime_ttfa(base, speech[first], LEAD_S)
        await pipecat.turn(pcm_paths[first], "live")
        await pipecat.turn(pcm_paths[first], "blob")
        for run in range(runs):
            for name in clips:
                clip = speech[name]
                row: dict[str, Any] = {"run": run, "clip": name}

                async def parle(clip: np.ndarray = clip, row: dict[str, Any] = row) -> None:
                    live = await realtime_ttfa(base, clip, LEAD_S)
                    row["parle_realtime_ms"] = live["ttfa_ms"]
                    row["parle_realtime_server"] = live["server"]
                    row["parle_sse_ms"] = await sse_ttfa(base, blob(clip))

                async def other(name: str = name, row: dict[str, Any] = row) -> None:
                    live = await pipecat.turn(pcm_paths[name], "live")
                    row["pipecat_live_ms"] = live.pop("ttfa_ms")
                    row["pipecat_live"] = live
                    whole = await pipecat.turn(pcm_paths[name], "blob")
                    row["pipecat_blob_ms"] = whole.pop("ttfa_ms")
                    row["pipecat_blob"] = whole

                for side in (parle, other) if run % 2 == 0 else (other, parle):
                    await side()
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    finally:
        await pipecat.close()
        thread.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary: dict[str, Any] = {
        "runs": runs,
        "clips": clips,
        "versions": {"pipecat-ai": ready.get("pipecat"), "parle_python": info["python"]},
        "pipecat_setup": {k: v for k, v in config.items() if k != "system_prompt"},
        "machine": info | {"loadavg_end": os.getloadavg()},
    }
    medians = {
        key: median(rows, key)
        for key in ("parle_realtime_ms", "pipecat_live_ms", "parle_sse_ms", "pipecat_blob_ms")
    }
    summary["medians_ms"] = medians

    def ratio(a: str, b: str) -> dict[str, float | None]:
        pairs = [r[a] / r[b] for r in rows if r.get(a) is not None and r.get(b)]
        return {
            "of_medians": round(medians[a] / medians[b], 3) if medians[a] and medians[b] else None,
            "median_per_pair": round(statistics.median(pairs), 3) if pairs else None,
        }

    summary["ratio_live"] = ratio("parle_realtime_ms", "pipecat_live_ms")
    summary["ratio_blob"] = ratio("parle_sse_ms", "pipecat_blob_ms")
    # Where pipecat's time goes: each stage's first frame after the last speech sample, ms.
    for mode in ("live", "blob"):
        stages: dict[str, list[float]] = {}
        for r in rows:
            for stage, ms in r[f"pipecat_{mode}"]["marks_ms"].items():
                stages.setdefault(stage, []).append(ms)
        summary[f"pipecat_{mode}_stages_median_ms"] = {
            stage: round(statistics.median(v), 1)
            for stage, v in sorted(stages.items(), key=lambda kv: statistics.median(kv[1]))
        }
    server: dict[str, list[float]] = {}
    for r in rows:
        for key, ms in (r.get("parle_realtime_server") or {}).items():
            if isinstance(ms, int | float):
                server.setdefault(key, []).append(ms)
    summary["parle_realtime_server_median_ms"] = {
        k: round(statistics.median(v), 1) for k, v in server.items()
    }
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    summary["rows"] = rows
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", default="u01,u05,u07,u09,u10")
    parser.add_argument(
        "--vad-stop-secs",
        type=float,
        default=0.5,
        help="pipecat's Silero VAD stop_secs (0.5 = PARLE's silence; pipecat's default: 0.2)",
    )
    parser.add_argument("--out", default=str(RESULTS / "pipecat_cpu.json"))
    args = parser.parse_args()
    if not PIPECAT_PYTHON.exists():
        raise SystemExit("no .venv-pipecat: run `make bench-pipecat` (it creates it)")
    summary = asyncio.run(bench(args.runs, args.clips.split(","), args.vad_stop_secs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
