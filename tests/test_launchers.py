"""Beyond runner's own launcher: a local Ray cluster (the ray extra). The search sweeper: test_search.py."""

from __future__ import annotations

import subprocess
import time

import pandas as pd
import pytest


def test_ray_launcher_runs_a_sweep_on_a_local_cluster(cli, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="needs the ray extra: pip install '.[ray]'")
    done = cli(
        "-m",
        "experiment=optimizer",
        "hydra/launcher=ray_local",
        "hydra.launcher.ray.init.num_cpus=2",
        "trainer.epochs=2",
        "hydra.sweep.dir=sweep",
    )
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert sorted(summary["variant"]) == ["Optimizer-adagrad", "Optimizer-adam", "Optimizer-rmsprop", "Optimizer-sgd"]
    assert set(summary["status"]) == {"completed"}
    # The cluster ends with the command: no Ray daemon is left behind (it may take a moment).
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-f", "raylet"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a raylet outlived the sweep"
        time.sleep(0.5)
