"""Thin Hydra callback: validate every variant before a sweep, summarize it after."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config import ConfigError

if TYPE_CHECKING:
    from runner.compare import SweepSummary


class SummarizeSweep(Callback):
    parent_run_id: str | None = None  # the tracker's run for the whole sweep (logger=mlflow)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.parent_run_id = check_sweep(config).get("mlflow_parent_run_id")
        except (ConfigError, OmegaConfBaseException) as error:
            # Hydra turns exceptions in callbacks into warnings; a user mistake must stop the sweep.
            cause = _user_error(error)
            if cause is None:
                raise
            sys.stderr.write(f"{cause}\n")
            sys.exit(2)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        forget_composed_jobs(str(sweep_dir))
        then = None
        options = _tracker_options(config)
        if options is not None and self.parent_run_id:
            from runner.loggers import finish_parent_run

            then = functools.partial(finish_parent_run, options, self.parent_run_id, sweep_dir)  # gets its files
        summarize = functools.partial(_summarize, sweep_dir, _background, then=then)
        from runner.processes import after_sweep

        if not after_sweep(str(sweep_dir), summarize):  # queued jobs: once they are done
            summarize()

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        _summarize(Path(config.hydra.runtime.output_dir))


def _user_error(error: BaseException | None) -> ConfigError | None:
    """The ConfigError behind an OmegaConf error (a resolver's, say), if there is one."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def check_sweep(config: DictConfig) -> dict[str, Any]:
    """Compose and validate every job of the sweep, and load each distinct data set once; then
    write the sweep file the jobs read, and return what it holds."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from runner.data import load_dataset, stratified_split
    from runner.train import check_settings

    loader = GlobalHydra.instance().config_loader()
    swept, jobs = sweep_jobs(loader, config)
    checked_data: set[str] = set()
    composed: dict[tuple[str, ...], DictConfig] = {}
    for overrides, job_config in compose_jobs(loader, config, jobs or []):
        HydraConfig.instance().set_config(job_config)  # labels may read ${hydra:runtime.choices...}
        OmegaConf.set_readonly(job_config.hydra, False)  # as composed (set_config made it read-only)
        composed[tuple(overrides)] = job_config
        settings = check_settings(job_config)
        data_key = repr((settings["data"], settings["trainer"]["validation_split"], settings["trainer"]["seed"]))
        if data_key not in checked_data:
            dataset = load_dataset(settings["data"])
            stratified_split(
                dataset.features, dataset.labels, settings["trainer"]["validation_split"], settings["trainer"]["seed"]
            )
            checked_data.add(data_key)
    HydraConfig.instance().set_config(config)
    # Only once every job is valid: the tracker's parent run, then the file the jobs read.
    sweep_dir = Path(config.hydra.sweep.dir)
    _composed_jobs[str(sweep_dir)] = composed
    return _write_sweep_file(
        sweep_dir, swept=swept, total=len(jobs) if jobs else None, **_start_tracker(config, sweep_dir)
    )


def sweep_jobs(loader, config: DictConfig) -> tuple[list[str], list[list[str]] | None]:
    """The keys the sweep sweeps (bar `experiment`), and each job's overrides as Hydra's grid
    sweeper makes them; None for the jobs of a sweeper that is not a grid (ranges, intervals):
    its trials validate themselves."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=loader)
    overrides = parser.parse_overrides(params + list(config.hydra.overrides.task))
    swept = sorted(
        {override.get_key_element() for override in overrides if override.is_sweep_override()} - {"experiment"}
    )
    try:
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
    except HydraException:
        return swept, None
    return swept, jobs


def compose_jobs(loader, config: DictConfig, jobs: list[list[str]]):
    """Each job's overrides and config, the config exactly as Hydra's launchers compose it
    (`load_sweep_config`): runner's launcher sends these to its workers rather than composing
    every job a second time. Composing costs 0.07 s, so jobs whose overrides differ only in
    plain values (trainer.seed=1, model.dropout_rate=0.1; not optimizer=adam) share one
    composition: a copy gets the values as Hydra applies them, and its record of them
    (hydra.overrides.task, hydra.job.override_dirname) is written as Hydra writes it
    (tests/test_config.py compares both ways for every experiment)."""
    import copy

    from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    parser = OverridesParser.create()
    groups = set(config.hydra.runtime.choices)

    def is_plain(override) -> bool:  # key=value, the key neither a config group's nor Hydra's
        return override.type == OverrideType.CHANGE and is_config(override)

    def is_config(override) -> bool:  # not a choice of config group, nor a setting of Hydra's
        return override.key_or_group not in groups and not override.is_hydra_override()

    composed: dict[tuple[str, ...], DictConfig] = {}
    for overrides in jobs:
        parsed = parser.parse_overrides(list(overrides))
        plain = [override for override in parsed if is_plain(override)]
        shared = tuple(override.input_line for override in parsed if not is_plain(override))
        if any(is_config(override) and not is_plain(override) for override in parsed):
            # +key=value, ~key: Hydra applies these in order with the plain values; compose it all
            yield overrides, loader.load_sweep_config(config, list(overrides))
            continue
        if shared not in composed:
            composed[shared] = loader.load_sweep_config(config, list(shared))
        job_config = copy.deepcopy(composed[shared])
        ConfigLoaderImpl._apply_overrides_to_config(plain, job_config)
        task = [override for override in parsed if not override.is_hydra_override()]
        dirname = job_config.hydra.job.config.override_dirname
        job_config.hydra.overrides.task = [override.input_line for override in task]
        job_config.hydra.job.override_dirname = get_overrides_dirname(
            task, exclude_keys=list(dirname.exclude_keys), item_sep=dirname.item_sep, kv_sep=dirname.kv_sep
        )
        yield overrides, job_config


_composed_jobs: dict[str, dict[tuple[str, ...], DictConfig]] = {}  # by sweep folder, then job overrides


def precomposed(config: DictConfig, overrides: Sequence[str]) -> DictConfig | None:
    """The config the pre-flight check composed for the job of the sweep `config` with
    `overrides`, as Hydra's `load_sweep_config(config, overrides)` returns it at this moment (it
    is forgotten here); None where the check composed none (a sweeper that is not a grid)."""
    job_config = _composed_jobs.get(str(config.hydra.sweep.dir), {}).pop(tuple(overrides), None)
    if job_config is not None:
        # As load_sweep_config does: the sweep config's resolved values so far (the sweep
        # folder's ${now:...}, which a launch resolves) are the job's too.
        OmegaConf.copy_cache(from_config=config, to_config=job_config)
    return job_config


def forget_composed_jobs(sweep_dir: str) -> None:
    """Drop what the pre-flight check composed for the sweep in `sweep_dir` and no launcher took."""
    _composed_jobs.pop(sweep_dir, None)


def _write_sweep_file(sweep_dir: Path, swept: list[str], total: int | None, **extra: Any) -> dict[str, Any]:
    """What every job of the sweep reads: the swept keys (for metrics.json), the number of jobs
    and the start time (for the progress line), and the tracker's parent run. Launchers may run
    jobs elsewhere, so a file."""
    import json
    import time

    from runner.train import SWEEP_FILE, write_atomic

    facts = {"swept": swept, "total": total, "started": time.time(), **extra}
    write_atomic(sweep_dir / SWEEP_FILE, json.dumps(facts))
    return facts


def _tracker_options(config: DictConfig) -> dict[str, Any] | None:
    logger = config.get("logger")
    if logger is None or logger.get("name") != "mlflow":
        return None
    return OmegaConf.to_container(logger, resolve=True)


def _start_tracker(config: DictConfig, sweep_dir: Path) -> dict[str, Any]:
    """With logger=mlflow: the sweep's parent run, whose id the variants' runs point to."""
    options = _tracker_options(config)
    if options is None:
        return {}
    from runner.loggers import check_logger, start_parent_run

    check_logger(options)
    return {"mlflow_parent_run_id": start_parent_run(options, sweep_dir, str(config.get("title")))}


def _summarize(
    folder: Path, background: BackgroundSummaries | None = None, then: Callable[[], None] | None = None
) -> None:
    """Show the sweep's ranking and write its tables and plots, in `background` where given;
    then call `then` (which reads those files)."""
    from runner.compare import CompareError, current_summary, print_ranking, print_summary, rank_sweep, summarize_sweep

    try:
        result = current_summary(folder)
        if result is None and background is not None:
            ranked = rank_sweep(folder)
            print_ranking(ranked)
            background.submit(ranked, then)
            return
        result = result or summarize_sweep(folder)
    except CompareError:
        return  # nothing was trained (e.g. the run stopped on a config error)
    print_summary(result)
    if then is not None:
        then()


class BackgroundSummaries:
    """Draws sweeps' plots in two processes of their own while the next sweep trains (a sweep's
    eight plots take about a second, which the workers would otherwise wait for; the last
    sweep's, which everyone waits for, take half as long), then writes their tables."""

    def __init__(self) -> None:
        self._pool = None
        self._pending: list[tuple[SweepSummary, list[Any], Callable[[], None] | None]] = []
        self._succeeded = True

    def submit(self, ranked: SweepSummary, then: Callable[[], None] | None = None) -> None:
        """Write the plots and tables of the sweep `ranked` (compare.rank_sweep) ranks; `then`
        runs here once they are written."""
        from runner.compare import PLOT_GROUPS, draw_plots

        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            from runner.processes import finish_at_interrupt, start_fork_server

            # Forked from the fork server (the parallel launcher's, where it runs), never from this
            # process, which may hold TensorFlow's running threads (a sequential sweep).
            context = start_fork_server(["runner.compare"])
            self._pool = ProcessPoolExecutor(len(PLOT_GROUPS), context, initializer=finish_at_interrupt)
        self._collect(wait=False)  # earlier sweeps' tables, where their plots are done
        plots = [self._pool.submit(draw_plots, ranked.folder, group) for group in PLOT_GROUPS]
        self._pending.append((ranked, plots, then))

    def finish(self) -> bool:
        """Wait for every sweep's plots, write its tables and say where they are; False where
        one could not be written."""
        self._collect(wait=True)
        if self._pool is not None:
            self._pool.shutdown()
        self._pool = None
        return self._succeeded

    def _collect(self, wait: bool) -> None:
        """Write the tables of the sweeps whose plots are drawn (of all, waiting, where `wait`)."""
        waiting = []
        for ranked, plots, then in self._pending:
            if not wait and not all(future.done() for future in plots):
                waiting.append((ranked, plots, then))
                continue
            from runner.compare import print_files, write_tables

            folder = ranked.folder
            try:
                drawn = [path for future in plots for path in future.result()]
                files = write_tables(ranked) + drawn
            except Exception as error:  # the runs are on disk; say how to rebuild the rest
                self._succeeded = False
                sys.stderr.write(
                    f"Could not write the tables and plots of {folder}: {type(error).__name__}: {error}. "
                    f"Its runs are on disk; rebuild them with: python -m runner.compare {folder}\n"
                )
            else:
                print_files(folder, files)
            if then is not None:
                then()
        self._pending = waiting


_background: BackgroundSummaries | None = None


@contextmanager
def summaries_in_background():
    """Within this block, a finished sweep's tables and plots are written in the background;
    leaving it waits for them (also on an interrupt: those sweeps are done) and exits with
    status 1 where one could not be written."""
    global _background
    _background = background = BackgroundSummaries()
    try:
        yield
    finally:
        _background = None
        succeeded = background.finish()
    if not succeeded:
        sys.exit(1)
