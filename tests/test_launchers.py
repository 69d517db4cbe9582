"""Beyond the joblib default: a local Ray cluster and an Optuna study (extras ray and optuna)."""

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


def test_optuna_study_survives_a_diverged_trial(cli, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the optuna extra: pip install '.[optuna]'")
    done = cli(
        "-m",
        "hydra/sweeper=search",
        "hydra.sweeper.n_trials=4",
        "optimizer=sgd",
        "optimizer.learning_rate=choice(0.05,10)",
        "optimizer.momentum=choice(0.0,0.9)",
        "trainer.epochs=3",
        "hydra.sweep.dir=study",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("optimizer.learning_rate=") >= 4  # four trials launched
    runs = pd.read_csv(tmp_path / "study" / "runs.csv")
    assert 2 <= len(runs) <= 4  # a trial that repeats an earlier one's settings reuses its folder
    assert "diverged" in set(runs["status"]) and "completed" in set(runs["status"])
    assert {"optimizer.learning_rate", "optimizer.momentum"} <= set(runs.columns)
    results = (tmp_path / "study" / "optimization_results.yaml").read_text()
    assert "best_value" in results and "optimizer.learning_rate: 0.05" in results
