"""`python -m runner reproduce` with 30 seeds per variant, packed (the default), against the same
command with 3 seeds run one by one (what it ran before packing), side by side.

    python benchmarks/reproduce_time.py [--rounds 1]

Each round runs both whole commands, in alternating order, into fresh folders, and prints their
wall times and the ratio of the 30-seed command's to the 3-seed command's (target: <= 1.25, the
issue's 5 minutes against about 4; stretch <= 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py

CASES = {
    "30 seeds, packed": [],
    "3 seeds, one by one": ["trainer.seed=range(0,3)", "hydra.launcher.pack_seeds=false"],
}


def reproduce(arguments: list[str], out: Path) -> float:
    return timed([sys.executable, "-m", "runner", "reproduce", *arguments, f"results_dir={out}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for round_number in range(options.rounds):
        order = list(CASES) if round_number % 2 == 0 else list(reversed(CASES))
        for name in order:
            with tempfile.TemporaryDirectory() as folder:
                seconds = reproduce(CASES[name], Path(folder))
            times[name].append(seconds)
            print(f"round {round_number + 1}: {name}: {seconds:.0f} s", flush=True)
    packed, reference = (statistics.median(times[name]) for name in CASES)
    ratios = [a / b for a, b in zip(*times.values(), strict=True)]
    print(f"\n30 seeds packed {packed / 60:.1f} min, 3 seeds one by one {reference / 60:.1f} min (medians)")
    print(f"ratio {statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
