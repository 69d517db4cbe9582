"""Worker processes that start with the heavy modules already imported.

A fresh interpreter that imports TensorFlow and Keras spends about 4 CPU-seconds on it: on a
2-core machine, as long as training one of the notes' whole sweeps. The standard library's fork
server (`multiprocessing`'s "forkserver" start method, with `preload`) imports them once, in a
process of its own, and forks every worker from it. Importing does not start TensorFlow's runtime
(no thread pool, no device), so each forked worker starts its own, as a fresh process would.

One fork server per command: the first caller's `preload` is what it imports. runner's parallel
launcher (hydra_plugins/runner_launcher) starts it first, with the jobs' modules; the sweeps'
summaries fork their plotting processes from it too. Where the platform has no fork server
(Windows), workers are spawned and import what they need themselves.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext


def start_fork_server(preload: Sequence[str]) -> BaseContext:
    """The context workers start from: the fork server, started now unless it runs already (it
    imports `preload` while the caller goes on); spawn where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))  # no effect on a server already running
    forkserver.ensure_running()
    return context


def worker_count(n_jobs: int) -> int:
    """Workers for `n_jobs`, counted as joblib counts them: -1 is every core, -2 all but one."""
    if n_jobs == 0:
        raise ValueError("hydra.launcher.n_jobs=0 runs nothing: give a number of workers, or -1 for one per core.")
    cores = os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else n_jobs


_pool: tuple[int, ProcessPoolExecutor] | None = None  # (workers, pool): a command's sweeps share it


def worker_pool(workers: int, preload: Sequence[str]) -> ProcessPoolExecutor:
    """The command's pool of `workers` processes, made on first use."""
    global _pool
    if _pool is not None and _pool[0] != workers:
        stop_workers()
    if _pool is None:
        context = start_fork_server(preload)
        _pool = workers, ProcessPoolExecutor(workers, context, initializer=stop_at_interrupt)
    return _pool[1]


def stop_at_interrupt() -> None:
    """A job worker's start: Ctrl-C, which the terminal sends to every process of the command,
    ends it at once and quietly; the command itself says what was kept and how to resume
    (results are written atomically, so nothing half-written counts as done)."""
    import signal

    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(128 + signum))


def finish_at_interrupt() -> None:
    """A summary worker's start: Ctrl-C leaves it to finish the plots of the sweeps that ended."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers() -> None:
    """Stop the pool's worker processes, then the fork server (every command does, once its
    sweeps are done)."""
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=True, cancel_futures=True)
        _pool = None
    stop_fork_server()


def stop_fork_server() -> None:
    """End the fork server now, even midway through its imports (a sweep stopped by a mistake
    before any worker was needed): it would otherwise finish importing TensorFlow first, holding
    the command's output open for seconds. multiprocessing keeps the server's process id and its
    stop method private (its own tests use them); where a Python version lacks them, the server
    ends on its own once its imports are done."""
    import signal
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None or not hasattr(server, "_stop"):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    server._stop()  # reaps it and forgets it: a later pool starts a new one
