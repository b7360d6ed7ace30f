"""What cross-session micro-batching costs a lone request: `MicroBatcher.submit` vs calling the
model in a worker thread directly (what an unbatched engine does), with an instant model, same
run, interleaved; medians over many requests.

Run: .venv/bin/python bench/bench_microbatch.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parle.microbatch import MicroBatcher


def model(items: list[int]) -> list[int]:
    return items


async def run(requests: int) -> dict[str, float]:
    windows = {
        "window 3 ms": MicroBatcher(model, window_s=0.003),
        "window 0": MicroBatcher(model, window_s=0),
    }
    times: dict[str, list[float]] = {"direct thread": [], **{name: [] for name in windows}}
    for i in range(requests):
        started = time.perf_counter()
        await asyncio.to_thread(model, [i])
        times["direct thread"].append(time.perf_counter() - started)
        for name, batcher in windows.items():
            started = time.perf_counter()
            await batcher.submit(i)
            times[name].append(time.perf_counter() - started)
        await asyncio.sleep(0.002)  # lone: nothing else in flight
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    return {
        **{f"{name} ms": round(value, 3) for name, value in medians.items()},
        "added by a 3 ms window ms": round(medians["window 3 ms"] - medians["direct thread"], 3),
        "added with no window ms": round(medians["window 0"] - medians["direct thread"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    print(json.dumps(asyncio.run(run(parser.parse_args().requests)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
