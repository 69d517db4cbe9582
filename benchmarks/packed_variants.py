"""An initializer sweep packed across its variants against packed one variant at a time.

    python benchmarks/packed_variants.py [--rounds 2] [--seeds 30]

Each round runs, in alternating order, `python -m runner -m experiment=initializer
trainer.seed=range(0,N)` (7 initializers, the base network on Iris) with the variants packed
together (hydra.launcher.pack_variants=true, the default) and with each variant's seeds packed
on their own (false). Prints each command's time and the median ratio of the first to the second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py


def sweep(arguments: list[str], out: Path) -> float:
    return timed([sys.executable, "-m", "runner", "-m", "experiment=initializer", *arguments, f"hydra.sweep.dir={out}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=30)
    options = parser.parse_args()
    seeds = f"trainer.seed=range(0,{options.seeds})"
    cases = {"across variants": "true", "one variant at a time": "false"}
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(options.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            times = {}
            for name in order:
                out = Path(folder) / f"{round_}-{cases[name]}"
                times[name] = sweep([seeds, f"hydra.launcher.pack_variants={cases[name]}"], out)
            ratios.append(times["across variants"] / times["one variant at a time"])
            print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()), flush=True)
    print(f"packed across variants / one variant at a time: {statistics.median(ratios):.2f} (median of {len(ratios)})")


if __name__ == "__main__":
    main()
