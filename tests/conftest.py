"""Shared helpers: run the real CLI as a subprocess, compose configs in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, module: str = "runner", timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m runner ARGS` in `cwd`, as a user would type it."""
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli(tmp_path):
    """Run the CLI inside tmp_path, so results/ lands there."""

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=tmp_path, **kwargs)

    return call


def assert_refused(done: subprocess.CompletedProcess, message: str, folder: Path) -> None:
    """A user's mistake: exit status 2, its message in one line, no traceback, nothing written."""
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, nothing of Hydra's around it
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert not list(folder.rglob("history.csv")) and not (folder / "results").exists()
