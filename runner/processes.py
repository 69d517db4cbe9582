"""Worker processes forked from a process that imported TensorFlow once (importing starts no
runtime, so each worker starts its own): the warm server kept between commands (runner.warm), else
the standard library's fork server (spawned where there is none, on Windows); and the queue of a
command's sweeps."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from multiprocessing.context import BaseContext

from runner import warm

# What runner's launcher preloads by default (hydra.launcher.preload): everything a job needs.
PRELOAD = ("runner.preload",)
# Seconds the warm server waits for the next command (hydra.launcher.keep_warm; 0: none).
KEEP_WARM = 600
# What a warm server imports besides the launcher's preload, once it serves: the plots' modules.
PLOTTING = ["runner.compare", "matplotlib.pyplot"]
NOT_SWEEPING = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"}


def launcher_mistake(n_jobs: object, pack_size: object) -> str | None:
    """What is wrong with runner's launcher's n_jobs and pack_size, or None: the sweep's check
    refuses it as a user's mistake, the launcher itself where no check ran."""
    if n_jobs == 0:
        return (
            "Invalid hydra.launcher.n_jobs=0: it runs nothing. Give a number of workers, -1 for one per core "
            "(per GPU on a GPU machine) or -2 for all but one."
        )
    if not isinstance(pack_size, int) or pack_size < 1:
        return (
            f"Invalid hydra.launcher.pack_size={pack_size}: it packs no seed. Give the most seeds one packed model "
            "may hold (100 by default), or hydra.launcher.pack_seeds=false to train each seed on its own."
        )
    return None


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


def start_fork_server_early(arguments: Sequence[str]) -> None:
    """For a sweep (`-m`), find the warm server or start it (else the fork server) as the command
    starts, so that it imports what the workers need while this process loads Hydra and checks the
    sweep; under another launcher, the fork server for the summaries' plotting processes. Nothing
    here imports Hydra: it would delay it."""
    if not {"-m", "--multirun"} & set(arguments):
        return
    launcher, preload, keep_warm = "processes", list(PRELOAD), KEEP_WARM
    for argument in arguments:
        key, _, value = argument.partition("=")
        if key == "hydra/launcher":
            launcher = value
        elif key in ("hydra.launcher.preload", "hydra.launcher.keep_warm"):
            import yaml

            with contextlib.suppress(yaml.YAMLError):
                if key.endswith("preload"):
                    preload = yaml.safe_load(value)
                else:
                    keep_warm = yaml.safe_load(value)  # the sweep's check refuses what is not a number
    if launcher == "processes" and isinstance(preload, list):
        warm_wanted = isinstance(keep_warm, (int, float)) and keep_warm > 0 and not NOT_SWEEPING & set(arguments)
        if warm_wanted and warm.find_or_start(list(map(str, preload)), keep_warm, later=PLOTTING) is not None:
            return
    start_fork_server(preload if launcher == "processes" else ["runner.compare"])


class WorkerPool:
    """`workers` processes from the fork server, replaced after `recycle_after` jobs each (TensorFlow
    keeps every traced network until its process ends), once their jobs are done. Not
    max_tasks_per_child: it deadlocks on Python 3.11 to 3.13 (cpython#115634)."""

    def __init__(self, workers: int, preload: Sequence[str], recycle_after: int | None, gpus: Sequence[str] = ()):
        self.workers = workers
        self.preload = list(preload)
        self.recycle_after = recycle_after
        self.gpus = list(gpus)
        self._executor: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        self._lock = threading.Lock()
        self._slots = None  # the next GPU slot, shared by the workers

    def submit(self, function: Callable, payload: object) -> Future:
        with self._lock:
            full = self.recycle_after and len(self._futures) >= self.workers * self.recycle_after
            if self._executor is not None and full:
                wait_for(self._futures)
                self._executor.shutdown(wait=True)
                self._executor = None
            if self._executor is None:
                context = start_fork_server(self.preload)
                if self.gpus and self._slots is None:
                    self._slots = context.Value("i", 0)
                self._executor = ProcessPoolExecutor(
                    self.workers, context, initializer=start_worker, initargs=(self._slots, self.gpus, command_alive())
                )
                self._futures = []
            future = self._executor.submit(function, payload)
            self._futures.append(future)
            return future

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor, self._futures = None, []


_alive: dict[str, tuple] = {}  # this command's pipes (reader, writer) by kind of worker: they end when it closes


def command_alive(kind: str = "jobs"):
    """The read end of a pipe that only this process writes to, for its `kind` of workers to watch
    (watch_command): it closes when the command ends, however it ends (SIGTERM, SIGKILL)."""
    if kind not in _alive:
        _alive[kind] = multiprocessing.Pipe(duplex=False)
    return _alive[kind][0]


def end_job_workers() -> None:
    """End the job workers at once (those that watch the "jobs" pipe), as Ctrl-C ends them."""
    if "jobs" in _alive:
        _alive.pop("jobs")[1].close()


def watch_command(alive) -> None:
    """In a worker: end it once the command has ended. An orphaned worker would wait for jobs
    forever and keep the fork server (and its memory) alive."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):  # nothing is ever sent: it ends once the command closes its end
            os.read(alive, 1) if isinstance(alive, int) else alive.recv()
        os._exit(1)

    threading.Thread(target=watch, name="watch-command", daemon=True).start()


def start_worker(slots, gpus: Sequence[str], alive=None) -> None:
    """A fork server's job worker's start: its GPU, taken in turn, then start_job_worker."""
    from runner import devices

    environment = {}
    if gpus:
        with slots.get_lock():
            slot, slots.value = slots.value, slots.value + 1
        environment = devices.gpu_settings(slot, gpus)
    start_job_worker(alive, environment)


def start_job_worker(alive, environment: dict[str, str]) -> None:
    """A job worker's start: it ends with the command; Ctrl-C, which the terminal sends to every
    process of the command, ends it at once and quietly (the command says what was kept and how
    to resume); then its GPU settings (`environment`) and TensorFlow's devices, found quietly."""
    import signal

    from runner import devices, progress

    if alive is not None:
        watch_command(alive)
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(128 + signum))
    progress.mark_worker()
    devices.prepare_tensorflow(environment)


def finish_at_interrupt(alive=None) -> None:
    """A summary worker's start: Ctrl-C leaves it to finish the plots of the sweeps that ended (the
    command waits for them); it ends with the command."""
    import signal

    if alive is not None:
        watch_command(alive)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_pool: WorkerPool | None = None  # a command's sweeps share it
_pool_lock = threading.Lock()  # a search sweeper's threads launch at once


def worker_pool(
    workers: int, preload: Sequence[str], recycle_after: int | None = None, keep_warm: float | None = None
) -> WorkerPool | warm.WarmPool:
    """The command's pool of `workers` processes, made on first use: forked by the warm server
    where the command found or started one for `preload`, else by its own fork server."""
    global _pool
    with _pool_lock:
        if _pool is not None and (_pool.workers, _pool.recycle_after) != (workers, recycle_after):
            _pool.shutdown()  # another sweep of the command asks for more or fewer
            _pool = None
        if _pool is None:
            from runner.devices import visible_gpus

            gpus = visible_gpus()
            server = warm.server()
            if server is not None and server.preload == [*preload, *PLOTTING] and server.hold(keep_warm):
                _pool = warm.WarmPool(
                    server, workers, start_job_worker, _gpu_turns(gpus), command_alive().fileno(), recycle_after
                )
            else:
                _pool = WorkerPool(workers, preload, recycle_after, gpus=gpus)
        return _pool


def run_aside(function: Callable, *args: object) -> object:
    """`function(*args)` in a worker of the command's warm server, which has TensorFlow and the
    data libraries loaded, where the command has one; else here."""
    from concurrent.futures.process import BrokenProcessPool

    server = warm.server()
    if server is None or not server.hold(wait=False):  # one still importing: here, meanwhile
        return function(*args)
    pool = warm.WarmPool(server, 1, start_job_worker, lambda: ({},), command_alive().fileno())
    try:
        return pool.submit(function, *args).result()
    except BrokenProcessPool:
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        return function(*args)
    finally:
        pool.shutdown()


def _gpu_turns(gpus: Sequence[str]) -> Callable[[], tuple]:
    """Each new warm worker's start arguments: the settings of the next GPU slot, in turn."""
    from itertools import count

    from runner import devices

    slots = count()
    return lambda: (devices.gpu_settings(next(slots), list(gpus)) if gpus else {},)


def stop_workers() -> None:
    """Stop the pool's workers (every command does, once its sweeps are done). The fork server
    ends with the command (runner.preload watches for that while it imports)."""
    global _pool
    if _pool is not None:
        _pool.shutdown()
        _pool = None


_joblib = False  # whether a sweep of this command ran on Hydra's joblib launcher


def note_launcher(target: str) -> None:
    global _joblib
    _joblib = _joblib or "joblib" in target


def used_joblib() -> bool:
    return _joblib


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
    """Within this block a grid sweep's launch only queues its jobs (a thread hands them to the pool),
    so the next sweep is composed and checked while they train; each sweep's follow-ups
    (`after_sweep`) run once its jobs are done, in launch order, and leaving waits for all."""
    from concurrent.futures import ThreadPoolExecutor

    global _queue, _dispatcher
    _queue, _dispatcher = {}, ThreadPoolExecutor(max_workers=1, thread_name_prefix="queued-jobs")
    try:
        yield
        collect_sweeps(wait=True)
    finally:
        _dispatcher.shutdown(cancel_futures=True)
        _queue, _dispatcher = None, None


def submit_jobs(
    sweep_dir: str, pool: WorkerPool, function: Callable, payloads: list, queue: bool
) -> list[Future] | None:
    """`function(payload)` for each payload on `pool`, each job's progress line reported here as it
    ends. Within `queued_sweeps`, where `queue`, they are handed over by its thread and collected
    later: None."""

    def submit(payload: object) -> Future:
        future = pool.submit(function, payload)
        future.add_done_callback(lambda done: _report_progress(sweep_dir, done))
        return future

    if queue and _queue is not None:
        futures = [_dispatcher.submit(submit, payload) for payload in payloads]
        _queue.setdefault(sweep_dir, _QueuedSweep()).futures.extend(futures)
        return None
    return [submit(payload) for payload in payloads]


def _report_progress(sweep_dir: str, future: Future) -> None:
    from runner import progress

    if future.cancelled() or future.exception() is not None:
        return
    for _, line in future.result():
        if line is not None:
            progress.report(sweep_dir, line)


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
        check_jobs(sweep_dir, job_returns(sweep.futures))
        del _queue[sweep_dir]
        for then in sweep.then:
            then()


def check_jobs(sweep_dir: str, returns: Sequence) -> None:
    """Stop with status 1 where a job raised (a variant that fails records itself instead: this is
    what it could not record), as Hydra's sweepers re-raise it."""
    for job in returns:
        try:
            _ = job.return_value  # raises what the job raised
        except Exception as error:
            sys.stderr.write(
                f"A job of the sweep in {sweep_dir} stopped with {type(error).__name__}: {error} "
                f"(its folder: {job.working_dir}).\n"
            )
            sys.exit(1)


interrupted = threading.Event()  # set by the command's Ctrl-C handler (runner.cli)


def job_returns(futures: list[Future]) -> list:
    """The Hydra JobReturns of jobs run on the worker pool (each future's list of them, sent back
    by cloudpickle with its progress line), from their futures or from futures of those (queued
    jobs); where a worker died midway, a message that
    says how to go on, and exit status 1."""
    from concurrent.futures.process import BrokenProcessPool

    returns = []
    try:
        for future in futures:
            result = future.result()
            for job_return, _ in result.result() if isinstance(result, Future) else result:
                returns.append(pickle.loads(job_return))
    except BrokenProcessPool:
        stop_workers()
        # Ctrl-C ends the workers too, perhaps before the command's own handler has run: wait for it.
        if interrupted.wait(timeout=1.0):
            sys.exit(130)
        sys.stderr.write(
            "A worker process ended abruptly while it trained a variant (killed, perhaps for lack of "
            "memory). The variants that finished are saved; run the same command with resume=latest to "
            "train the rest (add hydra.launcher.n_jobs=1 to train one variant at a time).\n"
        )
        sys.exit(1)
    return returns
