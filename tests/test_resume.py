"""Resume: a sweep killed mid-way and run again finishes every variant exactly once; an interrupted
sweep, or one that lost a worker, stops at once with a message that says how to go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import WARM_ROOT, run_cli

SWEEP = ["-m", "experiment=learning_rate", "trainer.epochs=40", "hydra.sweep.dir=sweep"]


def test_killed_sweep_resumes_without_repeating_or_losing_variants(tmp_path):
    sweep = tmp_path / "sweep"
    _start_and_interrupt(tmp_path, lambda process: os.killpg(process.pid, signal.SIGKILL), finished=2)
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


def test_resume_continues_only_a_sweep_with_the_same_settings(tmp_path):
    rows = "".join(f"{i % 7},{(i * 3) % 5},{'ab'[i % 2]}\n" for i in range(40))
    (tmp_path / "clean.csv").write_text("x,y,label\n" + rows)
    first = ("-m", "experiment=optimizer", "data=csv", "data.path=clean.csv", "data.target=label", "trainer.epochs=1",
             "trainer.seed=0,1")  # fmt: skip
    assert run_cli(*first, cwd=tmp_path).returncode == 0
    (sweep,) = (tmp_path / "results" / "optimizer").iterdir()
    before = sorted(path.name for path in sweep.iterdir())

    done = run_cli("-m", "experiment=optimizer", "resume=latest", cwd=tmp_path)
    assert done.returncode == 2
    message = done.stderr.strip()
    assert message.startswith(f"resume=latest would continue {sweep.relative_to(tmp_path)}, a sweep run with data=csv ")
    assert "(data, data.path, data.target, trainer.epochs differ)" in message
    command = " ".join(["python -m runner", *first, f"resume={sweep.relative_to(tmp_path)}"])
    assert f"`{command}`" in message and "drop resume= to start a new sweep" in message
    assert sorted(path.name for path in sweep.iterdir()) == before  # nothing trained or written there

    more_seeds = run_cli(*first, "trainer.seed=0,1,2", "resume=latest", cwd=tmp_path)  # what it sweeps may differ
    assert more_seeds.returncode == 0, more_seeds.stderr
    assert more_seeds.stdout.count("done earlier, skipped") == 8
    assert len(pd.read_csv(sweep / "runs.csv")) == 12


def test_resume_latest_takes_no_single_runs_folder(tmp_path):
    single = run_cli("experiment=optimizer", "trainer.epochs=1", cwd=tmp_path)  # -m forgotten: one variant
    assert single.returncode == 0 and "add -m to run the sweep" in single.stdout
    done = run_cli("-m", "experiment=optimizer", "trainer.epochs=1", "resume=latest", cwd=tmp_path)
    assert done.returncode == 2
    assert "resume=latest: no earlier sweep in results/optimizer/" in done.stderr


def test_resume_latest_needs_an_earlier_sweep(tmp_path):
    done = run_cli("-m", "experiment=optimizer", "resume=latest", cwd=tmp_path)
    assert done.returncode == 2
    assert "resume=latest: no earlier sweep in results/optimizer/" in done.stderr
    assert "Traceback" not in done.stderr


def _start_and_interrupt(tmp_path, kill, finished: int = 1, extra: tuple[str, ...] = ()):
    """Start the sweep in its own process group (its fork server's workers die with it), wait until
    `finished` variants are done, call `kill(process)`, and return the command's exit status and output."""
    sweep = tmp_path / "sweep"
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *SWEEP, *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while len(list(sweep.glob("*/metrics.json"))) < finished and time.monotonic() < deadline:
        time.sleep(0.05)
    kill(process)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def _processes_left(group: int) -> list[str]:
    """The command lines of the group's processes still running (not the exited ones that wait
    to be reaped, which an init-less container never does)."""
    listing = subprocess.run(["ps", "-o", "stat=,args=", "-g", str(group)], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if not line.lstrip().startswith("Z")]


def _warm_workers() -> list[int]:
    """The running workers of the suite's warm servers (runner.warm): their children."""
    workers = []
    for pid_file in WARM_ROOT.glob("runner-warm-*/*.pid"):
        children = subprocess.run(["pgrep", "-P", pid_file.read_text().strip()], capture_output=True, text=True)
        workers += [int(pid) for pid in children.stdout.split() if not _exited(int(pid))]
    return workers


def _exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def _no_warm_workers_within(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _warm_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    return _warm_workers() == []


def test_ctrl_c_stops_the_sweep_and_its_workers_at_once_without_a_traceback(tmp_path):
    group = []

    def ctrl_c(process):  # the terminal sends SIGINT to the command's whole process group
        group.append(process.pid)
        os.killpg(process.pid, signal.SIGINT)

    code, output = _start_and_interrupt(tmp_path, ctrl_c)
    assert code == 130
    assert "Interrupted. The variants that finished are saved" in output and "resume=latest" in output
    assert "Traceback" not in output
    time.sleep(0.5)
    assert _processes_left(group[0]) == [], "workers or the fork server outlived the command"
    assert _no_warm_workers_within(10), "the warm server's workers outlived the command"


def test_a_kill_of_the_command_alone_ends_its_workers_and_says_how_to_resume(tmp_path):
    """SIGTERM to the command's process only (kill PID, a scheduler's time limit): its workers and
    the fork server end with it, not orphaned waiting for jobs with their memory held."""
    group = []

    def terminate(process):
        group.append(process.pid)
        process.terminate()

    code, output = _start_and_interrupt(tmp_path, terminate)
    assert code == 143
    assert "Terminated. The variants that finished are saved" in output and "resume=latest" in output
    assert "Traceback" not in output and "leaked" not in output
    deadline = time.monotonic() + 10
    while _processes_left(group[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_left(group[0]) == [], "workers or the fork server outlived the command"
    assert _no_warm_workers_within(10), "the warm server's workers outlived the command"


@pytest.mark.parametrize("keep_warm", [600, 0], ids=["warm server", "fork server"])
def test_a_worker_killed_mid_variant_stops_the_sweep_with_a_clear_message(tmp_path, keep_warm):
    def kill_a_worker(process):  # e.g. the kernel's out-of-memory killer
        if keep_warm:
            pids = _warm_workers()
        else:  # the fork server itself and the workers forked from it carry its command line
            found = subprocess.run(
                ["pgrep", "-g", str(process.pid), "-f", "forkserver"], capture_output=True, text=True
            )
            pids = sorted(int(pid) for pid in found.stdout.split())
        os.kill(pids[-1], signal.SIGKILL)

    code, output = _start_and_interrupt(tmp_path, kill_a_worker, extra=(f"hydra.launcher.keep_warm={keep_warm}",))
    assert code == 1
    assert "A worker process ended abruptly while it trained a variant" in output
    assert "resume=latest" in output and "Traceback" not in output


def test_results_from_before_evaluate_train_existed_still_match_when_it_is_off():
    """trainer.evaluate_train off adds nothing to a variant's fingerprint (results written before
    the setting existed are not retrained on resume); on, the fingerprint changes."""
    from runner.config import default_settings
    from runner.results import config_fingerprint

    settings = default_settings()
    assert settings["trainer"]["evaluate_train"] is False
    before = {**settings, "trainer": {k: v for k, v in settings["trainer"].items() if k != "evaluate_train"}}
    assert config_fingerprint(settings) == config_fingerprint(before)
    scored = {**settings, "trainer": {**settings["trainer"], "evaluate_train": True}}
    assert config_fingerprint(scored) != config_fingerprint(settings)
