"""A job process's share of the machine: GPUs for parallel workers, threads, a quiet start."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runner import devices
from tests.conftest import REPO


@pytest.mark.parametrize(("visible", "expected"), [("0,1", ["0", "1"]), ("", []), ("-1", []), (" 2 , 5 ", ["2", "5"])])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, visible, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert devices.visible_gpus() == expected


def test_workers_follow_the_gpus_where_there_are_some(monkeypatch):
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 16)
    assert devices.worker_count(-1, gpus=0) == 16  # one per core
    assert devices.worker_count(-1, gpus=2) == 2  # one per GPU
    assert devices.worker_count(-2, gpus=4) == 3
    assert devices.worker_count(3, gpus=2) == 3  # as many as asked
    with pytest.raises(ValueError, match="n_jobs=0 runs nothing"):
        devices.worker_count(0)


def test_each_worker_takes_a_gpu_in_turn_and_lets_its_memory_grow(monkeypatch):
    assert [devices.gpu_settings(slot, ["3", "5"]) for slot in range(3)] == [
        {"CUDA_VISIBLE_DEVICES": "3"},
        {"CUDA_VISIBLE_DEVICES": "5"},
        {"CUDA_VISIBLE_DEVICES": "3"},
    ]
    assert devices.gpu_settings(0, []) == {}

    import tensorflow as tf

    grown = []
    monkeypatch.setattr(devices, "_prepared", False)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: ["gpu:0", "gpu:1"] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, grow: grown.append((gpu, grow)))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    devices.prepare_tensorflow({"CUDA_VISIBLE_DEVICES": "5"})
    assert grown == [("gpu:0", True), ("gpu:1", True)]
    assert devices.os.environ["CUDA_VISIBLE_DEVICES"] == "5"


POOL_ON_GPUS = """
import json, os
from runner.processes import WorkerPool

pool = WorkerPool(2, ["runner.devices"], recycle_after=None, gpus=["3", "5"])
job = "(__import__('os').environ.get('CUDA_VISIBLE_DEVICES'), __import__('time').sleep(0.5))"
print(json.dumps(sorted({future.result()[0] for future in [pool.submit(eval, job) for _ in range(4)]})))
pool.shutdown()
"""


def test_parallel_workers_on_a_machine_with_two_gpus_get_one_each():
    done = subprocess.run([sys.executable, "-c", POOL_ON_GPUS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["3", "5"]


def test_jobs_side_by_side_share_the_cores_and_a_single_run_gets_them_all(monkeypatch):
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 8)
    assert devices.job_threads(None, None) is None  # a single run or one job at a time: every core
    assert devices.job_threads(None, 1) is None
    assert devices.job_threads(None, 4) == 2
    assert devices.job_threads(3, 4) == 3  # trainer.threads, where set
