"""Packed seeds against one seed and against unpacked seeds, whole commands, side by side.

    python benchmarks/packed_seeds.py [--rounds 2] [--seeds 30,100] [--no-unpacked]

Each round runs, in alternating order, `python -m runner -m trainer.seed=...` (the base network on
Iris, 10 epochs) with one seed, with each count of seeds packed (the default), and with the largest
count unpacked (hydra.launcher.pack_seeds=false). It prints the median ratio of each to the
one-seed command of the same round (target: 100 seeds <= 2x), and the peak memory of one packed
job of 30 and 100 members, each in a fresh process (peak RSS after training minus after imports).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py

RUNNER = [sys.executable, "-m", "runner", "-m"]

MEMORY = """
import resource, sys
import runner
from runner.config import default_settings
from runner.data import load_dataset
from runner import packing
settings = default_settings()
settings["telemetry"] = {"gradients": True, "activations": True, "probe_size": 256}
dataset = load_dataset(settings["data"])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
packing.train_pack(settings, dataset, list(range(int(sys.argv[1]))))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before // 1024, after // 1024)
"""


def sweep(arguments: list[str], out: Path) -> float:
    return timed([*RUNNER, *arguments, f"results_dir={out}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", default="30,100")
    parser.add_argument("--no-unpacked", action="store_true")
    options = parser.parse_args()
    counts = [int(count) for count in options.seeds.split(",")]
    cases = {"1 seed": ["trainer.seed=0"]}
    cases.update({f"{count} seeds packed": [f"trainer.seed=range(0,{count})"] for count in counts})
    if not options.no_unpacked:
        cases[f"{counts[-1]} seeds unpacked"] = [
            f"trainer.seed=range(0,{counts[-1]})",
            "hydra.launcher.pack_seeds=false",
        ]
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(options.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            measured = {
                name: sweep(cases[name], Path(folder) / f"{round_}-{index}") for index, name in enumerate(order)
            }
            for name, value in measured.items():
                seconds[name].append(value)
                ratios[name].append(value / measured["1 seed"])
    print(f"{'command':<22} {'median s':>9} {'ratio to 1 seed':>16}")
    for name in cases:
        print(f"{name:<22} {statistics.median(seconds[name]):>9.1f} {statistics.median(ratios[name]):>16.2f}")
    for members in (30, 100):
        done = subprocess.run([sys.executable, "-c", MEMORY, str(members)], capture_output=True, text=True, check=True)
        before, after = (int(value) for value in done.stdout.split()[-2:])
        print(f"packed job of {members} members: peak RSS {after} MB ({after - before} MB above the imports)")


if __name__ == "__main__":
    main()
