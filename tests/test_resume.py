"""Resume: a sweep killed mid-way and run again finishes every variant exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from tests.conftest import run_cli

SWEEP = ["-m", "experiment=learning_rate", "trainer.epochs=40", "hydra.sweep.dir=sweep"]


def test_killed_sweep_resumes_without_repeating_or_losing_variants(tmp_path):
    sweep = tmp_path / "sweep"
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *SWEEP],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers die with it
    )
    deadline = time.monotonic() + 240
    while len(list(sweep.glob("*/metrics.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {path.parent.name: path.stat().st_mtime_ns for path in sweep.glob("*/metrics.json")}
    assert 2 <= len(finished_before) < 5, "the kill should land mid-sweep"
    assert not (sweep / "summary.csv").exists()

    done = run_cli(*SWEEP, "resume=sweep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("done earlier, skipped") == len(finished_before)

    summary = pd.read_csv(sweep / "summary.csv")
    expected = [f"Learning-Rate-{rate}" for rate in ("0.001", "0.005", "0.01", "0.1", "0.5")]
    assert sorted(summary["variant"]) == sorted(expected)  # each once, none missing
    assert (summary["runs"] == 1).all()
    runs = pd.read_csv(sweep / "runs.csv")
    assert len(runs) == 5 and set(runs["status"]) <= {"completed", "diverged"}
    for folder in sweep.glob("optimizer.learning_rate=*"):
        record = json.loads((folder / "metrics.json").read_text())  # parses: not truncated
        history = pd.read_csv(folder / "history.csv")
        assert len(history) == record["epochs_run"] and list(history["epoch"])[-1] == record["epochs_run"]
        if folder.name in finished_before:  # finished variants were not trained again
            assert (folder / "metrics.json").stat().st_mtime_ns == finished_before[folder.name]
    assert not list(sweep.rglob("*.tmp"))


def test_resume_latest_needs_an_earlier_sweep(tmp_path):
    done = run_cli("-m", "experiment=optimizer", "resume=latest", cwd=tmp_path)
    assert done.returncode != 0
    assert "resume=latest: no earlier sweep in results/optimizer/" in done.stderr
    assert "Traceback" not in done.stderr
