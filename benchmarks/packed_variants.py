"""Sweeps packed across their variants against packed one variant at a time.

    python benchmarks/packed_variants.py [--rounds 2] [--seeds 30] [--sweeps initializer sgd_rates]

Each round runs, in alternating order, each sweep over `trainer.seed=range(0,N)` with the variants
packed together (hydra.launcher.pack_variants=true, the default) and with each variant's seeds
packed on their own (false): `initializer` (7 initializers, the base network on Iris) and
`sgd_rates` (experiment=learning_rate's 5 rates with optimizer=sgd). Prints each command's time
and, per sweep, the median ratio of the first to the second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py

SWEEPS = {"initializer": ["experiment=initializer"], "sgd_rates": ["experiment=learning_rate", "optimizer=sgd"]}


def sweep(arguments: list[str], out: Path) -> float:
    return timed([sys.executable, "-m", "runner", "-m", *arguments, f"hydra.sweep.dir={out}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--sweeps", nargs="+", choices=list(SWEEPS), default=list(SWEEPS))
    options = parser.parse_args()
    seeds = f"trainer.seed=range(0,{options.seeds})"
    cases = {"across variants": "true", "one variant at a time": "false"}
    ratios: dict[str, list[float]] = {name: [] for name in options.sweeps}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(options.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            for name in options.sweeps:
                times = {}
                for case in order:
                    out = Path(folder) / f"{round_}-{name}-{cases[case]}"
                    times[case] = sweep([*SWEEPS[name], seeds, f"hydra.launcher.pack_variants={cases[case]}"], out)
                ratios[name].append(times["across variants"] / times["one variant at a time"])
                print(f"{name}: " + ", ".join(f"{case} {seconds:.1f} s" for case, seconds in times.items()), flush=True)
    for name, values in ratios.items():
        print(
            f"{name}: packed across variants / one variant at a time: {statistics.median(values):.2f} "
            f"(rounds: {', '.join(f'{value:.2f}' for value in values)})"
        )


if __name__ == "__main__":
    main()
