"""Worker processes that start with the heavy modules already imported.

A fresh interpreter that imports TensorFlow and Keras spends about 4 CPU-seconds on it: on a
2-core machine, as long as training one of the notes' whole sweeps. The standard library's fork
server (`multiprocessing`'s "forkserver" start method, with `preload`) imports them once, in a
process of its own, and forks every worker from it. Importing does not start TensorFlow's runtime
(no thread pool, no device), so each forked worker starts its own, as a fresh process would.

One fork server per command: the first caller's `preload` is what it imports. A sweep command
starts it before anything else (start_fork_server_early), with what runner's parallel launcher
(hydra_plugins/runner_launcher) preloads, runner.preload; the sweeps' summaries fork their
plotting processes from it too. Where the platform has no fork server
(Windows), workers are spawned and import what they need themselves.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
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


# What runner's launcher preloads by default (hydra.launcher.preload): everything a job needs.
PRELOAD = ("runner.preload",)


def start_fork_server_early(arguments: Sequence[str]) -> None:
    """For a sweep (`-m`), start the fork server now, as the command starts: while this process
    loads Hydra and composes and checks the sweep's configs (1 to 2 s), it imports what the
    workers of runner's launcher need (TensorFlow, 2.5 s), with the launcher's settings (its
    defaults, with any hydra.launcher.preload override); under any other launcher, what the
    summaries' plotting processes need (pandas, matplotlib: a second), so that the first sweep's
    summary does not wait for it. Nothing here imports Hydra: it would delay the start."""
    if not {"-m", "--multirun"} & set(arguments):
        return
    launcher, preload = "processes", list(PRELOAD)
    for argument in arguments:
        key, _, value = argument.partition("=")
        if key == "hydra/launcher":
            launcher = value
        elif key == "hydra.launcher.preload":
            import yaml

            preload = yaml.safe_load(value)
    start_fork_server(preload if launcher == "processes" else ["runner.compare"])


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
    if _pool is not None and _pool[0] != workers:  # another sweep of the command asks for more or fewer
        _pool[1].shutdown(wait=True)
        _pool = None
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


class _QueuedSweep:
    """A sweep whose jobs were queued: their futures (each a future of the worker pool's future,
    as a thread hands them to the pool), and what to do once they are all done."""

    def __init__(self) -> None:
        self.futures: list[Future] = []
        self.then: list[Callable[[], None]] = []

    def done(self) -> bool:
        return all(
            future.done() and (future.exception() is not None or future.result().done()) for future in self.futures
        )


_queue: dict[str, _QueuedSweep] | None = None  # by sweep folder, in launch order; None: launches wait
_dispatcher = None  # the thread that hands queued jobs to the worker pool


@contextmanager
def queued_sweeps():
    """Within this block, the grid sweeps that runner's parallel launcher runs are queued: a
    launch returns as soon as its jobs are queued, so the next sweep's configs are composed and
    checked while they train, and the workers never wait between sweeps. A thread hands the jobs
    to the pool, which may block for seconds: its first workers are forked only once the fork
    server has imported TensorFlow. Each sweep's follow-up (its summary, `after_sweep`) runs
    once its jobs are done, in launch order; leaving the block waits for all of them."""
    from concurrent.futures import ThreadPoolExecutor

    global _queue, _dispatcher
    _queue, _dispatcher = {}, ThreadPoolExecutor(max_workers=1, thread_name_prefix="queued-jobs")
    try:
        yield
        collect_sweeps(wait=True)
    finally:
        _dispatcher.shutdown(cancel_futures=True)
        _queue, _dispatcher = None, None


def queue_jobs(sweep_dir: str, pool: ProcessPoolExecutor, function: Callable, payloads: list) -> bool:
    """Within `queued_sweeps`, queue `function(payload)` for each payload on `pool`; False outside
    it (the caller submits and waits)."""
    if _queue is None:
        return False
    futures = [_dispatcher.submit(pool.submit, function, payload) for payload in payloads]
    _queue.setdefault(sweep_dir, _QueuedSweep()).futures.extend(futures)
    return True


def after_sweep(sweep_dir: str, then: Callable[[], None]) -> bool:
    """Run `then` once the queued sweep in `sweep_dir` is done; False where it is not queued
    (its jobs are done already)."""
    if _queue is None or sweep_dir not in _queue:
        return False
    _queue[sweep_dir].then.append(then)
    return True


def collect_sweeps(wait: bool) -> None:
    """Run the follow-ups of the queued sweeps whose jobs are done, in launch order (of all,
    waiting for each, where `wait`)."""
    while _queue:
        sweep_dir, sweep = next(iter(_queue.items()))
        if not wait and not sweep.done():
            return
        for job in job_returns(sweep.futures):
            try:
                _ = job.return_value  # raises what the job raised, as Hydra's sweeper does after a launch
            except Exception as error:
                sys.stderr.write(
                    f"A job of the sweep in {sweep_dir} stopped with {type(error).__name__}: {error} "
                    f"(its log: {job.working_dir}/runner.log).\n"
                )
                sys.exit(1)
        del _queue[sweep_dir]
        for then in sweep.then:
            then()


def job_returns(futures: list[Future]) -> list:
    """The Hydra JobReturns of jobs run by `worker_pool` (sent back by cloudpickle), from their
    futures, or from futures of those (queued jobs); where a worker died midway, a message that
    says how to go on, and exit status 1."""
    import pickle
    from concurrent.futures.process import BrokenProcessPool

    returns = []
    try:
        for future in futures:
            result = future.result()
            returns.append(pickle.loads(result.result() if isinstance(result, Future) else result))
    except BrokenProcessPool:
        stop_workers()
        sys.stderr.write(
            "A worker process ended abruptly while it trained a variant (killed, perhaps for lack of "
            "memory). The variants that finished are saved; run the same command with resume=latest to "
            "train the rest (add hydra.launcher.n_jobs=1 to train one variant at a time).\n"
        )
        sys.exit(1)
    return returns
