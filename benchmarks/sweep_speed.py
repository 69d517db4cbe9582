"""runner against the notes' hand-written loop, as whole processes, imports included.

    python benchmarks/sweep_speed.py [--rounds 3]

Each round runs, in alternating order, the plain-Keras reference (benchmarks/reference_loop.py)
and runner's normalization, optimizer and learning_rate sweeps in one command, once with the
default (parallel) launcher and once forced to run sequentially in one process
(hydra/launcher=basic): the same 11 variants, 10 epochs, batch 16, Iris, 80/20 stratified split,
per-epoch validation. It prints the median wall-clock times, the median of each round's ratio
runner / reference (targets: <= 0.5 parallel, <= 0.8 sequential), the CPU time each command used with all its
processes (CPU / cores is as fast as it could go), and how long `--help` and `--cfg job` take
and whether they import TensorFlow (target: < 2 s, no TensorFlow).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWEEPS = "experiment=normalization,optimizer,learning_rate"


def timed(command: list[str], cwd: Path) -> float:
    return measured(command, cwd)[0]


def measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock seconds until the command exits, and CPU seconds (user + system) of it and of
    every process it started, including those that outlive it (runner's fork server ends just
    after the command): this process adopts them (a child subreaper) and waits for them all."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def adopt_orphans() -> None:
    """Make this process the child subreaper (Linux): processes that the measured commands
    start and that outlive them become its children, so their CPU time is counted."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError) as error:
        print(f"note: CPU time may miss processes that outlive a command (no subreaper: {error})")


def imports_tensorflow(arguments: list[str], cwd: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runner", *arguments], cwd=cwd, capture_output=True, text=True
    )
    return any(line.rstrip().endswith(("| tensorflow", "| keras")) for line in done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    adopt_orphans()

    commands = {
        "reference": lambda out: [sys.executable, str(HERE / "reference_loop.py"), str(out)],
        "runner (parallel)": lambda out: [sys.executable, "-m", "runner", "-m", SWEEPS, f"results_dir={out}"],
        "runner (sequential)": lambda out: [
            sys.executable,
            "-m",
            "runner",
            "-m",
            SWEEPS,
            "hydra/launcher=basic",
            f"results_dir={out}",
        ],  # fmt: skip
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for round_number in range(args.rounds):
            names = list(commands) if round_number % 2 == 0 else list(reversed(commands))
            for name in names:
                out = scratch / f"{name.split()[0]}-{len(seconds[name])}-{round_number}"
                wall, used = measured(commands[name](out), cwd=scratch)
                seconds[name].append(wall)
                cpu[name].append(used)
            print(
                f"round {round_number + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.1f} s" for n in commands), flush=True
            )

        reference = statistics.median(seconds["reference"])
        cores = os.cpu_count() or 1
        print(f"\ncores: {cores}, rounds: {args.rounds}, medians:")
        for name, values in seconds.items():
            median, used = statistics.median(values), statistics.median(cpu[name])
            # Each round's time over the reference's in the same round: measured side by side.
            ratios = [value / base for value, base in zip(values, seconds["reference"], strict=True)]
            print(
                f"  {name:20s} {median:6.1f} s   ratio to reference {statistics.median(ratios):.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})   CPU {used:5.1f} s "
                f"(no faster than {used / cores / reference:.2f} of the reference on {cores} cores)"
            )
        print("  targets: runner (parallel) <= 0.5, runner (sequential) <= 0.8")

        print("\nstart-up without training:")
        for arguments in (["--help"], ["--cfg", "job"]):
            median = statistics.median(timed([sys.executable, "-m", "runner", *arguments], scratch) for _ in range(3))
            imported = "imports TensorFlow" if imports_tensorflow(arguments, scratch) else "no TensorFlow"
            print(f"  python -m runner {' '.join(arguments):10s} {median:.2f} s ({imported}; target < 2 s)")


if __name__ == "__main__":
    main()
