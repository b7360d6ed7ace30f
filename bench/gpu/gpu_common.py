"""What the GPU benchmarks share: the device, its memory, and where results go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class GpuMemory:
    """The memory an engine takes on the benchmark's device, from construction on (zeros when
    the device is not CUDA, e.g. the CPU smoke runs)."""

    def __init__(self, device: str) -> None:
        import torch

        self._torch = torch
        self.cuda = torch.cuda.is_available() and device.startswith("cuda")
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self._before = self._allocated()

    @property
    def device_name(self) -> str:
        return str(self._torch.cuda.get_device_name(0)) if self.cuda else "cpu"

    def _allocated(self) -> int:
        return int(self._torch.cuda.memory_allocated()) if self.cuda else 0

    def synchronize(self) -> None:
        """Wait for queued GPU work, so a timer stops when the work is done."""
        if self.cuda:
            self._torch.cuda.synchronize()

    def in_use_gb(self) -> float:
        return round((self._allocated() - self._before) / 1e9, 2)

    def peak_gb(self) -> float:
        peak = int(self._torch.cuda.max_memory_allocated()) if self.cuda else 0
        return round(max(0, peak - self._before) / 1e9, 2)


def save(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
