"""A whole command timed for the benchmarks, side by side: its wall seconds, or its output's tail
and an exit where it fails."""

from __future__ import annotations

import subprocess
import time


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started
