"""A job process's share of the machine: TensorFlow's threads, its GPU, and a quiet start.

Nothing here imports TensorFlow at module level: the command line counts GPUs without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "RUNNER_VERBOSE"  # set by `--verbose` or hydra.verbose: TensorFlow's start-up lines are shown


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile: TensorFlow's C++ start-up lines (oneDNN, CUDA
    probing, "failed call to cuInit" on a machine without a GPU) ignore its own log level."""
    if os.environ.get(VERBOSE_ENV):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def visible_gpus() -> list[str]:
    """The NVIDIA GPUs this process may use (CUDA_VISIBLE_DEVICES, else nvidia-smi's list), by id."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.replace(" ", "").split(",") if gpu and not gpu.startswith("-")]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(index) for index, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]


def worker_count(n_jobs: int, gpus: int | None = None) -> int:
    """Workers for `n_jobs`, counted as joblib counts them (-1 all, -2 all but one), of the GPUs
    where the machine has any, else of the cores."""
    if n_jobs == 0:
        raise ValueError("hydra.launcher.n_jobs=0 runs nothing: give a number of workers, or -1 for one per core.")
    if n_jobs > 0:
        return n_jobs
    gpus = len(visible_gpus()) if gpus is None else gpus
    units = gpus or os.cpu_count() or 1
    return max(1, units + 1 + n_jobs)


def gpu_settings(slot: int, gpus: list[str]) -> dict[str, str]:
    """The environment a worker in `slot` starts TensorFlow with: one GPU of its own, taken in turn."""
    return {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]} if gpus else {}


_imported = False  # set in the fork server that workers come from (runner.preload), inherited by them


def import_tensorflow() -> None:
    """Once per process that runs jobs (not the course API's, which is the user's own): import
    TensorFlow and Keras quietly, with the garbage collector off, then take every object alive
    (nearly all of them the loaded modules') out of its sight for good: gc.freeze()."""
    global _imported
    if _imported:
        return
    import gc

    gc.disable()
    try:
        with quiet_stderr():
            import keras  # noqa: F401  (TensorFlow)
    finally:
        gc.freeze()
        gc.enable()
    _imported = True


_prepared = False


def prepare_tensorflow(environment: dict[str, str] | None = None) -> None:
    """Once per process, before its first TensorFlow op: apply `environment` (a worker's GPU), let
    every visible GPU's memory grow as needed (workers that share a GPU would otherwise each
    reserve all of it), and find the devices quietly."""
    global _prepared
    if _prepared:
        return
    os.environ.update(environment or {})
    with quiet_stderr():
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    if not os.environ.get(VERBOSE_ENV):
        tf.get_logger().setLevel("ERROR")  # not its advice on retracing, which a process of many networks earns
    _prepared = True


def job_threads(threads: int | None, parallel_workers: int | None) -> int | None:
    """TensorFlow threads for a job: `threads` where set; cores / workers when jobs run side by side
    on this machine; None (TensorFlow's default, every core) for a single run or one at a time."""
    if threads is not None:
        return threads
    if not parallel_workers or parallel_workers <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // parallel_workers)


def configure_threads(threads: int | None) -> None:
    """Size TensorFlow's thread pools, once per process (a reused worker keeps its setting)."""
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow is already running in this process
