"""Memory of a long sweep: the command's processes (main, warm server or fork server, workers) as
variants finish.

    python benchmarks/memory_growth.py [--variants 200]

Runs two sweeps of Iris variants with runner's default (parallel) launcher, telemetry on, and
samples the proportional set size (PSS: shared pages split among the processes that share them)
of all the command's processes while they train:

- networks: every variant a network of its own (its hidden layer one unit wider than the last
  one's), so every variant traces anew; TensorFlow keeps a few MB of each traced network until
  its process ends, and runner replaces each worker after `hydra.launcher.recycle_after` jobs;
- seeds: every variant a new seed of the same network, which a worker reuses.

Each sweep starts with no warm server running; the one it starts (runner.warm) and its workers
count as the command's. Prints the peak PSS until the 10th, the 100th and the last variant
finished (not the plots drawn after). Targets: growth
< 100 MB from the 10th to the 100th, < 20 MB from the 100th to the 200th. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CASES = {
    "networks": lambda count: ["model.depth=1", f"model.width=range(8,{8 + count})"],
    "seeds": lambda count: [f"trainer.seed=range(0,{count})"],
}


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def warm_servers(folder: Path) -> list[int]:
    """The process ids of the warm servers whose files are in `folder` (the sweep's TMPDIR)."""
    pids = []
    for pid_file in folder.glob("runner-warm-*/*.pid"):
        try:
            pids.append(int(pid_file.read_text()))
        except (OSError, ValueError):
            continue
    return pids


def run_case(case: str, variants: int, epochs: int) -> dict[int, float]:
    """The peak PSS so far, by the number of finished variants."""
    with tempfile.TemporaryDirectory() as scratch:
        sweep = Path(scratch) / "sweep"
        command = [sys.executable, "-m", "runner", "-m", *CASES[case](variants), f"trainer.epochs={epochs}",
                   f"hydra.sweep.dir={sweep}", "hydra.launcher.keep_warm=1"]  # fmt: skip
        env = {**os.environ, "TMPDIR": scratch}  # a warm server of its own, which ends a second after it
        process = subprocess.Popen(
            command, cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))
        reader.start()
        peaks: dict[int, float] = {}
        peak = 0.0
        while process.poll() is None:
            finished = len(list(sweep.glob("*/metrics.json")))
            if finished < variants:  # while variants train; then the sweep's plots are drawn
                pids = descendants(process.pid) + [
                    pid for server in warm_servers(Path(scratch)) for pid in descendants(server)
                ]
                peak = max(peak, pss_mb(pids))
                peaks[finished + 1] = peak  # the peak until the next variant finishes
            time.sleep(0.2)
        reader.join()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{errors[0][-3000:]}")
    return peaks


def peak_at(peaks: dict[int, float], count: int) -> float:
    return max(value for finished, value in peaks.items() if finished <= count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    marks = [10, 100, args.variants] if args.variants > 100 else [10, args.variants]
    for case in CASES:
        peaks = run_case(case, args.variants, args.epochs)
        values = [peak_at(peaks, mark) for mark in marks]
        text = ", ".join(f"after {mark}: {value:5.0f} MB" for mark, value in zip(marks, values, strict=True))
        growth = ", ".join(
            f"{marks[index - 1]}->{marks[index]}: {values[index] - values[index - 1]:+.0f} MB"
            for index in range(1, len(marks))
        )
        print(f"{case:<9} peak PSS of all the command's processes {text}; growth {growth}", flush=True)
    print("targets: growth < 100 MB from 10 to 100 variants, < 20 MB from 100 to 200")


if __name__ == "__main__":
    main()
