"""A pruned search against the same search unpruned, whole commands, side by side.

    python benchmarks/search_pruning.py [--trials 40] [--seeds 3] [--pruners hyperband,median]

Runs `python -m runner -m experiment=search_digits` (learning rate, width and dropout of a network
of four hidden layers on digits, 30 epochs per trial) once without pruning and once with each
pruner, each trial over `--seeds` seeds (packed). Prints each study's epochs trained, wall time and
best trial (the mean over its seeds, and their standard deviation), then the targets: a pruned
study trains at most half the unpruned study's epochs, and its best is within one standard
deviation (the unpruned best's, over its seeds) of the unpruned best.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

from timing import timed  # benchmarks/timing.py


def study(pruner: str, trials: int, seeds: int, out: Path) -> dict[str, float]:
    arguments = [
        sys.executable, "-m", "runner", "-m", "experiment=search_digits", f"search/pruner={pruner}",
        f"search.n_trials={trials}", f"search.seeds={seeds}", f"hydra.sweep.dir={out / pruner}",
    ]  # fmt: skip
    wall = timed(arguments)
    with open(out / pruner / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    completed = [row for row in rows if row["status"] == "completed"]
    best = max(completed, key=lambda row: float(row["val_accuracy"]))
    return {
        "trials": len(rows),
        "pruned": sum(row["status"] == "pruned" for row in rows),
        "epochs": sum(int(row["epochs"] or 0) for row in rows),
        "wall": wall,
        "best": float(best["val_accuracy"]),
        "best_std": float(best["val_accuracy_std"] or 0.0),
        "best_trial": int(best["trial"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pruners", default="hyperband,median")
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for pruner in ["none", *options.pruners.split(",")]:
            results[pruner] = study(pruner, options.trials, options.seeds, Path(folder))
            r = results[pruner]
            print(
                f"{pruner:>10}: {r['trials']} trials ({r['pruned']} pruned), {r['epochs']} epochs, "
                f"{r['wall']:.0f} s, best val_accuracy {r['best']:.4f} +- {r['best_std']:.4f} "
                f"(trial {r['best_trial']}, mean +- std over {options.seeds} seeds)",
                flush=True,
            )
    base = results["none"]
    for pruner, r in results.items():
        if pruner == "none":
            continue
        epochs, wall = r["epochs"] / base["epochs"], r["wall"] / base["wall"]
        gap = base["best"] - r["best"]
        print(
            f"{pruner}: epochs {epochs:.2f} of unpruned (target <= 0.5: {'met' if epochs <= 0.5 else 'missed'}), "
            f"wall time {wall:.2f}, best {gap:+.4f} below unpruned (target <= one std, {base['best_std']:.4f}: "
            f"{'met' if gap <= base['best_std'] else 'missed'})"
        )


if __name__ == "__main__":
    main()
