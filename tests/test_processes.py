"""runner's parallel launcher: workers forked from one process that imported TensorFlow once."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

# Runs in a fresh interpreter: a process has one fork server, whose first user picks its imports.
POOL = """
import json, os, sys
from runner.processes import stop_workers, worker_pool

pool = worker_pool(2, ["runner.telemetry"])
checks = [
    pool.submit(eval, "(__import__('sys').modules.get('tensorflow') is not None, __import__('os').getppid())")
    for _ in range(4)
]
workers = [future.result() for future in checks]
print(json.dumps({"main": os.getpid(), "main_has_tensorflow": "tensorflow" in sys.modules, "workers": workers}))
stop_workers()
"""


def test_workers_start_with_tensorflow_imported_by_the_fork_server_not_the_command():
    done = subprocess.run([sys.executable, "-c", POOL], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert not seen["main_has_tensorflow"]  # the command itself never imports it
    assert all(loaded for loaded, _ in seen["workers"])  # a job finds it loaded before it imports anything
    parents = {parent for _, parent in seen["workers"]}
    assert len(parents) == 1 and seen["main"] not in parents  # all forked from the one fork server
