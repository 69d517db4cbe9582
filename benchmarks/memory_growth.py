"""Memory of a long-lived worker: 100 variants, one after another, in one process.

    python benchmarks/memory_growth.py [--variants 100]

Runs the base network on Iris through the same code a sweep's worker runs (train_variant,
telemetry on, artifacts written), and prints the peak resident memory after variant 10 and
after the last one. TensorFlow is known to leak across models unless sessions are cleared;
the target is growth < 100 MB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import runner  # noqa: F401
from runner.config import default_settings
from runner.data import load_dataset, split_dataset
from runner.train import train_variant


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100)
    args = parser.parse_args()

    settings = default_settings()
    settings.update(name="memory", title="Memory", label="Base", metric="accuracy",
                    telemetry={"gradients": True, "activations": True, "probe_size": 256})  # fmt: skip
    dataset = load_dataset(settings["data"])
    at_ten = None
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(1, args.variants + 1):
            settings["trainer"]["seed"] = number
            split = split_dataset(dataset, settings["trainer"]["validation_split"], number)
            train_variant(settings, dataset, split, Path(scratch) / str(number), swept={})
            if number == 10:
                at_ten = peak_rss_mb()
                print(f"peak RSS after variant 10: {at_ten:.0f} MB", flush=True)
    final = peak_rss_mb()
    print(f"peak RSS after variant {args.variants}: {final:.0f} MB")
    print(f"growth from variant 10 to {args.variants}: {final - at_ten:.0f} MB (target < 100 MB)")


if __name__ == "__main__":
    main()
