"""Memory of a long-lived worker: 100 variants, one after another, in one process.

    python benchmarks/memory_growth.py [--variants 100]

Runs the base network on Iris through the same code a sweep's worker runs (train_variant,
telemetry on, artifacts written), and prints the peak resident memory after variant 10 and
after the last one, in two separate processes (peak RSS only grows, so one process per case):

- seeds: every variant a new seed and learning rate, as in a sweep's seeds or a learning-rate
  sweep; the worker reuses its compiled model (runner.train.compiled_model);
- structures: every variant a network of its own (its second hidden layer one unit wider than
  the last one's), so each needs a newly traced model, which TensorFlow kept alive through the
  gradient function tf.custom_gradient registers (tensorflow/tensorflow#97697) until runner
  dropped those (runner.train._clear_session); the worker keeps its last few models only.

TensorFlow is known to leak across models unless sessions are cleared; the target is growth
< 100 MB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_case(case: str, variants: int) -> None:
    from runner.train import train_variant

    import runner  # noqa: F401
    from runner.config import default_settings
    from runner.data import load_dataset, split_dataset

    settings = default_settings()
    settings.update(name="memory", title="Memory", label="Base", metric="accuracy",
                    telemetry={"gradients": True, "activations": True, "probe_size": 256})  # fmt: skip
    dataset = load_dataset(settings["data"])
    at_ten = None
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(1, variants + 1):
            settings["trainer"]["seed"] = number
            if case == "seeds":
                settings["optimizer"]["learning_rate"] = 0.001 * (1 + number % 5)
            else:
                settings["model"]["hidden_nodes"] = [32, 16 + number]
            split = split_dataset(dataset, settings["trainer"]["validation_split"], number)
            train_variant(settings, dataset, split, Path(scratch) / str(number), swept={})
            if number == 10:
                at_ten = peak_rss_mb()
    final = peak_rss_mb()
    print(f"{case:<10} peak RSS after variant 10: {at_ten:5.0f} MB, after variant {variants}: {final:5.0f} MB, "
          f"growth {final - at_ten:4.0f} MB ({(final - at_ten) / (variants - 10):.2f} MB per variant)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--case", choices=["seeds", "structures"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.variants)
        return
    for case in ("seeds", "structures"):
        done = subprocess.run(
            [sys.executable, __file__, "--case", case, "--variants", str(args.variants)], capture_output=True, text=True
        )
        print(done.stdout.strip() or done.stderr[-2000:], flush=True)
    print("target: growth < 100 MB")


if __name__ == "__main__":
    main()
