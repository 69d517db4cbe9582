"""A regular (non-editable) install ships conf/ and runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_ships_the_configs_and_runs_outside_the_repo(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("keras_runner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    experiments = {p.name for p in (REPO / "runner" / "conf" / "experiment").glob("*.yaml")}
    assert {f"runner/conf/experiment/{name}" for name in experiments} <= names
    assert {"runner/conf/config.yaml", "runner/conf/model/base.yaml", "runner/conf/optimizer/sgd.yaml"} <= names
    assert "hydra_plugins/runner_sweeper/grid_sweeper.py" in names  # the sweeper conf/config.yaml names
    assert "hydra_plugins/runner_launcher/processes_launcher.py" in names  # and its launcher

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy is importable: the repository is not on the path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import runner, sys; print(runner.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(site)), where.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "runner", "experiment=optimizer", "optimizer=adam", "--cfg", "job"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "title: Compare Optimizers" in shown.stdout and "name: adam" in shown.stdout
