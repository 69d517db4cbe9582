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


RECYCLED = """
import json
from runner.processes import WorkerPool

pool = WorkerPool(2, ["runner.preload"], recycle_after=2)
job = "(__import__('os').getpid(), __import__('time').time(), __import__('time').sleep(0.5), __import__('time').time())"
futures = [pool.submit(eval, job) for _ in range(12)]
print(json.dumps([future.result() for future in futures]))
pool.shutdown()
"""


def test_workers_are_replaced_after_their_share_of_jobs_and_never_run_more_at_once():
    """TensorFlow keeps a few MB of every new network a process traces: the pool replaces its
    workers after `recycle_after` jobs each, without running more than `workers` jobs at once."""
    done = subprocess.run([sys.executable, "-c", RECYCLED], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    jobs = json.loads(done.stdout.strip().splitlines()[-1])
    generations = [{pid for pid, *_ in jobs[start : start + 4]} for start in range(0, 12, 4)]
    assert all(len(pids) <= 2 for pids in generations)
    assert not generations[0] & generations[1] and not generations[1] & generations[2]  # fresh workers each time
    at_once = max(sum(start <= moment < end for _, start, _, end in jobs) for _, moment, _, _ in jobs)
    assert at_once == 2
