"""Cost of gradient and activation telemetry: the same sweeps with it on and off, in one process.

    python benchmarks/telemetry_overhead.py [--repeats 3] [--epochs 10]

Each round trains every variant of a sweep once with telemetry off and once on (the order
alternating between rounds), writing all artifacts into a temporary folder as a real sweep does.
It prints the median wall-clock ratio on/off per sweep and overall; the target is <= 1.3.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

import runner  # noqa: F401
from runner.config import CONFIG_DIR, check_settings
from runner.data import load_dataset, split_dataset
from runner.variant import train_variant

SWEEPS = ("optimizer", "vanishing_gradients")


def sweep_settings(experiment: str, epochs: int) -> list[dict]:
    """Resolved settings of every variant of an experiment's grid sweep."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        base = compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
        params = dict(base.hydra.sweeper.params)
        axes = [[f"{key}={value}" for value in values.split(",")] for key, values in params.items()]
        variants = []
        for job in itertools.product(*axes):
            overrides = [f"experiment={experiment}", f"trainer.epochs={epochs}", *job]
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            variants.append(check_settings(cfg))
    return variants


def run_sweep(variants: list[dict], telemetry: bool, folder: Path) -> float:
    started = time.perf_counter()
    for index, settings in enumerate(variants):
        settings = {
            **settings,
            "telemetry": {**settings["telemetry"], "gradients": telemetry, "activations": telemetry},
        }
        dataset = load_dataset(settings["data"])
        split = split_dataset(dataset, settings["trainer"]["validation_split"], settings["trainer"]["seed"])
        train_variant(settings, dataset, split, folder / f"{telemetry}-{index}", swept={})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    ratios: dict[str, list[float]] = {name: [] for name in SWEEPS}
    with tempfile.TemporaryDirectory() as scratch:
        for name in SWEEPS:
            variants = sweep_settings(name, args.epochs)
            run_sweep(variants[:1], True, Path(scratch) / "warmup")  # imports and first traces
            for round_number in range(args.repeats):
                order = (False, True) if round_number % 2 == 0 else (True, False)
                seconds = {mode: run_sweep(variants, mode, Path(scratch) / f"{name}{round_number}") for mode in order}
                ratios[name].append(seconds[True] / seconds[False])
                print(
                    f"{name:20s} round {round_number + 1}: off {seconds[False]:6.2f} s, on {seconds[True]:6.2f} s, "
                    f"ratio {ratios[name][-1]:.3f}",
                    flush=True,
                )
    print()
    for name, values in ratios.items():
        print(f"{name:20s} median ratio telemetry on / off: {statistics.median(values):.3f}")
    overall = statistics.median([value for values in ratios.values() for value in values])
    print(f"{'all sweeps':20s} median ratio telemetry on / off: {overall:.3f} (target <= 1.3)")


if __name__ == "__main__":
    main()
