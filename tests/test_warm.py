"""The warm server (runner.warm): a process that keeps the workers' imports between commands and
forks each command's workers in its working directory, environment and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runner.warm import SERVING, Server
from tests.conftest import WARM_ROOT, run_cli

# Preloaded by the servers these tests start themselves, in place of TensorFlow: quick to import.
MODULE = """
import os, sys
VALUE = {value}

def start(alive):
    os.close(alive)

def job(number):
    print(f"job {{number}} says hello", flush=True)
    if number == "raise":
        raise ValueError("a job's own mistake")
    if number == "die":
        os.kill(os.getpid(), 9)
    return os.getpid(), os.getcwd(), os.environ.get("CASE"), number, VALUE
"""

CLIENT = """
import json, os, sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
import warmtest_module
from runner.warm import Server, WarmPool

server = Server(Path(sys.argv[1]))
print("held", server.hold(float(sys.argv[2])), flush=True)
reader, writer = os.pipe()
pool = WarmPool(server, 2, warmtest_module.start, tuple, reader, recycle_after=2)
results = [future.result() for future in [pool.submit(warmtest_module.job, n) for n in range(6)]]
raised = pool.submit(warmtest_module.job, "raise").exception()
died = pool.submit(warmtest_module.job, "die").exception()
after = pool.submit(warmtest_module.job, 7).exception()
pool.shutdown()
print(json.dumps({"results": results, "raised": repr(raised), "died": type(died).__name__,
                  "after": type(after).__name__, "pid": os.getpid()}), flush=True)
"""


def _start_server(folder: Path, keep_warm: float = 600, value: int = 1) -> tuple[subprocess.Popen, Path, dict]:
    """A server preloading warmtest_module (from folder/modules), started as runner starts one; the
    environment its clients share; waits until it listens."""
    modules = folder / "modules"
    modules.mkdir(exist_ok=True)
    (modules / "warmtest_module.py").write_text(MODULE.format(value=value))
    (folder / "client.py").write_text(CLIENT)
    env = {**os.environ, "PYTHONPATH": str(modules)}
    path = folder / "server.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "runner.warm", str(path), "warmtest_module", "", str(keep_warm)],
        cwd=folder,
        env={**env, SERVING: "1"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), "the server did not start listening"
    return process, path, env


def _client(folder: Path, path: Path, env: dict, keep_warm: float = 600, **extra: str):
    # client.py runs from `folder`, so its import path is the server's (python -m puts the folder first)
    return subprocess.run(
        [sys.executable, "client.py", str(path), str(keep_warm)],
        cwd=folder,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ended_within(process: subprocess.Popen, seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _check(path: Path, folder: Path, env: dict) -> tuple[str, object]:
    """What the server answers a command of this folder and environment: ("ok", None) where the
    command would import what it loaded, ("ok", the difference) where not, or ("stale", the file)."""
    code = (
        "import sys; from pathlib import Path; from runner.warm import Server, imports_differ\n"
        "answer, detail = Server(Path(sys.argv[1])).ask('check', {})\n"
        "print(repr((answer, imports_differ(detail) if answer == 'ok' else detail)))\n"
    )
    (folder / "check.py").write_text(code)
    done = subprocess.run([sys.executable, "check.py", str(path)], cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip())  # a tuple's repr


def test_workers_run_in_the_commands_folder_environment_and_output_and_are_replaced(tmp_path):
    process, path, env = _start_server(tmp_path)
    try:
        done = _client(tmp_path, path, env, CASE="mine")
        assert done.returncode == 0, done.stderr
        assert "held True" in done.stdout
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        results = seen["results"]
        assert [number for _, _, _, number, _ in results] == list(range(6))
        assert {(cwd, case, value) for _, cwd, case, _, value in results} == {(str(tmp_path), "mine", 1)}
        pids = [pid for pid, *_ in results]
        assert process.pid not in pids and seen["pid"] not in pids  # forked by the server
        assert max(pids.count(pid) for pid in pids) <= 2 and len(set(pids)) >= 3  # replaced after 2 jobs
        assert all(f"job {number} says hello" in done.stdout for number in range(6))  # the command's output
        assert seen["raised"] == 'ValueError("a job\'s own mistake")'
        assert seen["died"] == "BrokenProcessPool" and seen["after"] == "BrokenProcessPool"
        assert process.poll() is None  # it waits for the next command
        assert os.getsid(process.pid) == process.pid  # in a session of its own: the terminal's Ctrl-C is not its
    finally:
        process.kill()


def test_a_server_whose_imported_files_changed_retires(tmp_path):
    process, path, env = _start_server(tmp_path)
    try:
        assert _check(path, tmp_path, env) == ("ok", None)
        (tmp_path / "modules" / "warmtest_module.py").write_text(MODULE.format(value=22))  # an edit, an upgrade
        answer, changed = _check(path, tmp_path, env)
        assert answer == "stale" and changed.endswith("warmtest_module.py")
        assert _ended_within(process, 15) and not path.exists()  # no command was using it
    finally:
        process.kill()


def test_a_command_whose_folder_would_import_other_modules_does_not_use_it(tmp_path):
    process, path, env = _start_server(tmp_path)
    try:
        assert _check(path, tmp_path, env) == ("ok", None)
        other = tmp_path / "elsewhere"  # a folder of the user's, without modules of its own
        other.mkdir()
        assert _check(path, other, env) == ("ok", None)
        (other / "warmtest_module.py").write_text(MODULE.format(value=3))  # its own, first on its path
        answer, differ = _check(path, other, env)
        assert answer == "ok" and differ.startswith(f"warmtest_module would be imported from {other}")
        assert process.poll() is None  # the server goes on for the commands it fits
    finally:
        process.kill()


def test_a_server_ends_once_idle_for_keep_warm_seconds_after_its_last_command(tmp_path):
    process, path, env = _start_server(tmp_path, keep_warm=1)
    try:
        (tmp_path / "hold.py").write_text(f"{CLIENT.split('reader, writer')[0]}\nimport time; time.sleep(4)")
        holding = subprocess.Popen([sys.executable, "hold.py", str(path), "1"], cwd=tmp_path, env=env, text=True)
        time.sleep(3)
        assert process.poll() is None, "it ended while a command held it"
        holding.wait(timeout=60)
        assert _ended_within(process, 15), "it outlived keep_warm"
        assert not path.exists() and not path.with_suffix(".pid").exists()
    finally:
        process.kill()


SWEEP = ["-m", "experiment=optimizer", "optimizer=sgd,adam", "trainer.epochs=2", "hydra.sweep.dir=sweep"]


def _histories(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.glob("sweep/*/history.csv"))}


def test_a_second_command_forks_its_workers_from_the_first_ones_server_with_the_same_results(tmp_path):
    """As a user types commands one after another: the first starts a server (it imports TensorFlow
    once), the next forks its workers from it; the files are those of a command's own fork server."""
    case = {"RUNNER_TEST_CASE": uuid.uuid4().hex}  # a server of this test's own
    before = set(WARM_ROOT.glob("runner-warm-*/*.log"))
    folders = [tmp_path / name for name in ("first", "second", "own")]
    for folder, extra in zip(folders, ([], [], ["hydra.launcher.keep_warm=0"]), strict=True):
        folder.mkdir()
        done = run_cli(*SWEEP, *extra, cwd=folder, env=case)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    logs = set(WARM_ROOT.glob("runner-warm-*/*.log")) - before
    assert len(logs) == 1, "one server for the two commands"
    log = logs.pop()
    forked = log.read_text()
    assert f"for {folders[0]}" in forked and f"for {folders[1]}" in forked
    assert f"for {folders[2]}" not in forked  # keep_warm=0: its own fork server
    server = int(log.with_suffix(".pid").read_text())
    os.kill(server, 0)  # still running, for the next command
    histories = [_histories(folder) for folder in folders]
    assert len(histories[0]) == 2 and histories[0] == histories[1] == histories[2]
    Server(log.with_suffix(".sock")).ask("stop", {})


@pytest.mark.parametrize(("flag", "status"), [("--cfg", 2), ("--help", 0)])
def test_commands_that_train_nothing_start_no_server(tmp_path, flag, status):
    """--help shows the options, -m with --cfg is refused as a mistake: neither trains."""
    before = set(WARM_ROOT.glob("runner-warm-*/*.log"))
    done = run_cli("-m", "experiment=optimizer", flag, *(["job"] if flag == "--cfg" else []), cwd=tmp_path,
                   env={"RUNNER_TEST_CASE": uuid.uuid4().hex})  # fmt: skip
    assert done.returncode == status, done.stderr
    assert set(WARM_ROOT.glob("runner-warm-*/*.log")) == before


def test_stop_ends_a_server_that_is_still_importing(tmp_path):
    """`python -m runner.warm stop` right after a command: its server, importing still, has no
    socket yet and serves no command; it ends at once."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "slow_module.py").write_text("import time\ntime.sleep(120)\n")
    folder = tmp_path / f"runner-warm-{os.getuid()}"
    folder.mkdir(mode=0o700)
    path = folder / "0123456789abcdef.sock"
    env = {**os.environ, "PYTHONPATH": str(modules), "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner.warm", str(path), "slow_module", "", "600"],
        env={**env, SERVING: "1"},
        start_new_session=True,
    )
    try:
        path.with_suffix(".pid").write_text(str(process.pid))  # as the command that starts it writes it
        time.sleep(1)
        done = subprocess.run([sys.executable, "-m", "runner.warm", "stop"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"Stopped 1 warm server(s) in {folder}." in done.stdout
        assert _ended_within(process, 15) and not path.with_suffix(".pid").exists()
    finally:
        process.kill()
