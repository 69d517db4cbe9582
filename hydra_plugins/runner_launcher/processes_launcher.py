"""Hydra launcher: a sweep's jobs in worker processes forked from one that imported TensorFlow
once (runner.processes), run as Hydra's joblib launcher runs them, each with the config the
pre-flight check composed for it. On Hydra's public plugin interface."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from runner.processes import KEEP_WARM, PRELOAD


@dataclass
class ProcessesLauncherConf:
    _target_: str = "hydra_plugins.runner_launcher.processes_launcher.ProcessesLauncher"
    # Worker processes: -1 is one per core (per GPU where there are GPUs), -2 all but one, or a number.
    n_jobs: int = -1
    # Jobs a worker runs before a fresh one replaces it (TensorFlow keeps a few MB of each new network).
    recycle_after: int = 10
    # Modules imported once, before the workers are forked, so that each starts with them loaded.
    preload: list[str] = field(default_factory=lambda: list(PRELOAD))
    # Train the seeds of a variant of the built-in network as one packed model (runner.packing).
    pack_seeds: bool = True
    # The most seeds in one packed model.
    pack_size: int = 100
    # Pack variants that differ only in their initial weights' settings (an initializer sweep) too.
    pack_variants: bool = True
    # Seconds a warm server (the preloaded imports) waits for the next command once this one has
    # ended, so that it skips importing TensorFlow; 0: every command imports its own (runner.warm).
    keep_warm: float = KEEP_WARM


ConfigStore.instance().store(group="hydra/launcher", name="processes", node=ProcessesLauncherConf, provider="runner")


# In a worker: Hydra's global state as last set here, and what the last sweep's jobs shared.
_state: bytes | None = None
_shared: tuple[bytes, tuple] | None = None


def _execute_jobs(payload: tuple[bytes, bytes, list[bytes], bool]) -> list[tuple[bytes, object]]:
    """In a worker: run jobs as Hydra's joblib launcher does, several of them the seeds of one
    packed model (runner.variant.packed); returns each one's pickled JobReturn and progress line.
    Hydra's state and the sweep's shared part are set only where they changed (setting the state
    discovers every plugin again), and before the job's configs are unpickled."""
    import pickle

    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    from runner import variant

    global _state, _shared
    state, shared, jobs, check = payload
    setup_globals()
    if state != _state:
        Singleton.set_state(pickle.loads(state))
        _state, _shared = state, None
    if _shared is None or _shared[0] != shared:
        _shared = shared, pickle.loads(shared)
    hydra_context, config, task_function = _shared[1]
    composed = []
    for job in jobs:
        idx, overrides, sweep_config = pickle.loads(job)
        if sweep_config is None:
            sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        composed.append(sweep_config)
    if len(composed) == 1 or (check and not _packable(composed)):
        return [_run(hydra_context, sweep_config, task_function) for sweep_config in composed]
    with variant.packed(composed):
        return [_run(hydra_context, sweep_config, task_function) for sweep_config in composed]


def _packable(composed: list[DictConfig]) -> bool:
    """Whether jobs sent together unplanned (a search trial's seeds) can train as one pack."""
    import logging

    from omegaconf import OmegaConf

    from runner.packs import unpackable, variant_key

    keys = {variant_key(config) for config in composed}
    reason = "their configs differ" if len(keys) != 1 or None in keys else None
    reason = reason or unpackable(OmegaConf.to_container(composed[0], resolve=False))
    if reason is not None:
        logging.getLogger(__name__).info("Seeds %s run one by one: %s", [c.trainer.seed for c in composed], reason)
    return reason is None


def _run(hydra_context, sweep_config: DictConfig, task_function) -> tuple[bytes, object]:
    import cloudpickle
    from hydra.core.utils import run_job

    from runner import progress

    job_return = run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    return cloudpickle.dumps(job_return), progress.take_last()


class ProcessesLauncher(Launcher):
    def __init__(
        self,
        n_jobs: int = -1,
        recycle_after: int = 10,
        preload: Sequence[str] = (),
        pack_seeds: bool = True,
        pack_size: int = 100,
        pack_variants: bool = True,
        keep_warm: float = KEEP_WARM,
    ) -> None:
        from runner.devices import worker_count
        from runner.processes import launcher_mistake

        mistake = launcher_mistake(n_jobs, pack_size)  # the sweep's check refused it already, where it ran
        if mistake is not None:
            raise ValueError(mistake)
        self.workers = worker_count(n_jobs)
        self.pack_seeds, self.pack_size, self.pack_variants = pack_seeds, pack_size, pack_variants
        self.recycle_after = recycle_after if recycle_after and recycle_after > 0 else None
        self.preload = list(preload)
        self.keep_warm = keep_warm
        # Set by a sweeper that reads no job's result before its next launch (runner's grid sweeper):
        # within runner.processes.queued_sweeps, its jobs are then queued rather than waited for.
        self.may_queue = False
        self.logging_set = False
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self._launch(job_overrides, initial_job_idx, together=False)

    def launch_together(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run these jobs (seeds of one variant) in one worker, as one packed model where they can
        be packed; safe to call from several threads at once (runner's search sweeper does)."""
        return self._launch(job_overrides, initial_job_idx, together=self.pack_seeds)

    def _launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, together: bool
    ) -> Sequence[JobReturn]:
        import logging

        import cloudpickle
        from hydra.core.singleton import Singleton
        from hydra.core.utils import configure_log, filter_overrides, setup_globals

        from runner.composition import PrecomposedConfigLoader
        from runner.packs import plan_packs
        from runner.processes import job_returns, submit_jobs, worker_pool

        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        setup_globals()
        if not self.logging_set:  # once: a search sweeper's threads launch at the same time
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            self.logging_set = True
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log = logging.getLogger(__name__)
        log.debug(  # each job's progress line says what it ran (hydra.verbose=true shows these)
            f"Launching {len(job_overrides)} jobs on {self.workers} worker processes, sweep output dir: {sweep_dir}"
        )
        for idx, overrides in enumerate(job_overrides):
            log.debug(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")

        loader = self.hydra_context.config_loader
        pool = worker_pool(self.workers, self.preload, self.recycle_after, self.keep_warm)
        state = cloudpickle.dumps(Singleton.get_state())
        shared = cloudpickle.dumps((self.hydra_context, self.config, self.task_function))
        precomposed = isinstance(loader, PrecomposedConfigLoader)
        composed = [loader.precomposed(self.config, overrides) if precomposed else None for overrides in job_overrides]
        packs = [[idx] for idx in range(len(job_overrides))]
        if together:
            packs = [list(range(len(job_overrides)))]
        elif self.pack_seeds:
            packs = plan_packs(composed, self.workers, self.pack_size, self.pack_variants)
        payloads = [
            (
                state,
                shared,
                [cloudpickle.dumps((initial_job_idx + idx, job_overrides[idx], composed[idx])) for idx in pack],
                together,
            )
            for pack in packs
        ]
        futures = submit_jobs(str(sweep_dir), pool, _execute_jobs, payloads, queue=self.may_queue)
        if futures is None:
            # Queued (runner.processes.queued_sweeps): the results are checked once the jobs are done.
            return [JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED) for overrides in job_overrides]
        return job_returns(futures)
