"""Shared helpers: run the real CLI as a subprocess, compose configs in-process."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The commands' warm servers (runner.warm) are the suite's own, in a folder of its own (a server's
# folder follows TMPDIR), and stopped when it ends; pytest's folders stay where they were.
tempfile.gettempdir()
WARM_ROOT = Path(tempfile.mkdtemp(prefix="runner-tests-"))
os.environ["TMPDIR"] = str(WARM_ROOT)


def warm_servers() -> list[Path]:
    """The sockets of the suite's warm servers that are running."""
    return sorted(WARM_ROOT.glob("runner-warm-*/*.sock"))


def pytest_sessionfinish(session, exitstatus):
    from runner.warm import Server

    for path in warm_servers():
        with contextlib.suppress(OSError, EOFError):
            Server(path).ask("stop", {})
    shutil.rmtree(WARM_ROOT, ignore_errors=True)


def run_cli(
    *args: str, cwd: Path, module: str = "runner", timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m runner ARGS` in `cwd`, as a user would type it (`env`: variables to add)."""
    env = {key: value for key, value in {**os.environ, **(env or {})}.items() if key != "HYDRA_FULL_ERROR"}
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


_started: dict[str, tuple[Future, Path]] = {}
_two_at_a_time = ThreadPoolExecutor(max_workers=2)


@pytest.fixture
def refused_ahead(request, tmp_path_factory):
    """For a parametrized test of commands that a user's mistake stops early: `run(command)` gives
    this case's `python -m runner` result and the folder it ran in. The first case to run starts
    every selected case of its test, two at a time (each spends most of its time importing, and two
    overlap well on two cores). `command(params, folder)` returns the case's arguments and writes
    any file it needs into `folder`."""

    def run(command):
        node = request.node
        if node.nodeid not in _started:
            for item in request.session.items:
                if getattr(item, "originalname", None) == node.originalname and item.module is node.module:
                    folder = tmp_path_factory.mktemp("refused")
                    arguments = command(item.callspec.params, folder)
                    _started[item.nodeid] = (_two_at_a_time.submit(run_cli, *arguments, cwd=folder), folder)
        future, folder = _started.pop(node.nodeid)
        return future.result(), folder

    return run


def assert_refused(done: subprocess.CompletedProcess, message: str, folder: Path) -> None:
    """A user's mistake: exit status 2, its message in one line, no traceback, nothing written."""
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, nothing of Hydra's around it
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert not list(folder.rglob("history.csv")) and not (folder / "results").exists()
