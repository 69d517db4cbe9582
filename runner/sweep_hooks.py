"""Hydra's sweep hooks (a Hydra callback): check every job of a sweep before any trains, and
summarize the sweep after."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner import progress, summaries
from runner.composition import compose_jobs, grid_jobs, keep_composed, sweep_overrides, take_composed, task_overrides
from runner.config import GROUPS, ConfigError, check_logger, check_settings, check_width_used, validate
from runner.overrides import check_override_keys, composition_error, config_search_path
from runner.results import NOT_FINGERPRINTED, write_sweep_facts


class SweepHooks(Callback):
    parent_run_id: str | None = None  # the tracker's run for the whole sweep (logger=mlflow)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from runner.processes import note_launcher

        note_launcher(str(config.hydra.launcher.get("_target_", "")))
        try:
            self.parent_run_id = check_sweep(config).get("mlflow_parent_run_id")
            if "runner_launcher" in str(config.hydra.launcher.get("_target_", "")):  # jobs in workers
                summaries.import_ahead()
        except Exception as error:  # Hydra turns a callback's exceptions into warnings: stop here
            cause = _user_error(error)
            if cause is None and isinstance(error, HydraException):
                cause = composition_error(error, task_overrides(config), config_search_path(config))
            elif cause is None and isinstance(error, OmegaConfBaseException):
                cause = f"The config can't be resolved: {str(error).splitlines()[0]}"
            if cause is None:
                sys.stderr.write(f"The sweep's check failed before any training: {type(error).__name__}: {error}\n")
                sys.exit(1)
            sys.stderr.write(f"{cause}\n")
            sys.exit(2)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        take_composed(str(sweep_dir))  # what no launcher took
        then = None
        options = _tracker_options(config)
        if options is not None and self.parent_run_id:
            from runner.loggers import finish_parent_run

            then = functools.partial(finish_parent_run, options, self.parent_run_id, sweep_dir)  # gets its files
        summarize = functools.partial(summaries.summarize, sweep_dir, summaries.in_background(), then=then)
        from runner.processes import after_sweep

        if not after_sweep(str(sweep_dir), summarize):  # queued jobs: once they are done
            summarize()

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        summaries.summarize(Path(config.hydra.runtime.output_dir))


def _user_error(error: BaseException | None) -> ConfigError | None:
    """The ConfigError behind an OmegaConf error (a resolver's, say), if there is one."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


PROCESSES_LAUNCHER = "hydra_plugins.runner_launcher.processes_launcher.ProcessesLauncher"


def check_launcher(launcher: DictConfig) -> None:
    """runner's launcher's settings, named as a user's mistake (Hydra builds the launcher after
    this check and would report its error as its own, with status 1)."""
    if launcher.get("_target_") != PROCESSES_LAUNCHER:
        return
    from runner.processes import launcher_mistake

    mistake = launcher_mistake(launcher.get("n_jobs"), launcher.get("pack_size"))
    if mistake is not None:
        raise ConfigError(mistake)


def check_sweep(config: DictConfig) -> dict[str, Any]:
    """Compose and validate every job of the sweep, and check each distinct data set once; then
    keep the composed configs for the launcher, write the facts the jobs read, and return them."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from runner.packs import variant_key
    from runner.preflight import check_datasets, check_targets
    from runner.processes import run_aside

    loader = GlobalHydra.instance().config_loader()
    params = config.hydra.sweeper.get("params") or {}
    try:
        chosen = [
            f"{group}={config.hydra.runtime.choices[group]}"
            for group in GROUPS
            if group in config.hydra.runtime.choices
        ]
        check_override_keys([*chosen, *(f"{key}={value}" for key, value in params.items())], config_search_path(config))
    except ConfigError as error:
        where = config.hydra.runtime.choices.get("experiment") or config.get("name")
        raise ConfigError(f"In the sweep of experiment={where} (hydra.sweeper.params): {error}") from None
    check_resume(config)
    check_launcher(config.hydra.launcher)
    overrides = sweep_overrides(config, loader)
    swept = sorted({o.get_key_element().lstrip("+~") for o in overrides if o.is_sweep_override()} - {"experiment"})
    given = {o.get_key_element().lstrip("+~") for o in overrides}
    jobs = grid_jobs(overrides)  # None for another sweeper that searches ranges: its trials check themselves
    if config.get("search") is not None:  # runner's search sweeper: its plan, and a job per value to check
        from runner import search

        plan = search.plan_search(config, overrides)
        jobs = search.probe_jobs(plan)
    elif jobs == []:
        empty = [o.input_line for o in overrides if o.is_sweep_override() and not list(o.sweep_string_iterator())]
        raise ConfigError(
            f"{', '.join(empty) or 'The sweep'} has no value, so the sweep would run nothing: give at least one, "
            "e.g. trainer.seed=range(0,3) (range's end is excluded)."
        )
    composed: dict[tuple[str, ...], DictConfig] = {}
    variants: dict[str, dict[str, Any]] = {}  # by the config but its seed: resolved and checked once
    checked: list[dict[str, Any]] = []
    for job_overrides, job_config in compose_jobs(loader, config, jobs or []):
        composed[tuple(job_overrides)] = job_config
        variant = variant_key(job_config)
        if variant is not None and variant in variants:
            same = variants[variant]
            settings = {**same, "trainer": {**same["trainer"], "seed": job_config.trainer.seed}}
            validate(settings)
        else:
            HydraConfig.instance().set_config(job_config)  # labels may read ${hydra:runtime.choices...}
            OmegaConf.set_readonly(job_config.hydra, False)  # as composed (set_config made it read-only)
            settings = check_settings(job_config)
            if variant is not None:
                variants[variant] = settings
            check_targets(settings)
            check_width_used(given, settings["model"])
        checked.append(settings)
    # Data and networks only once every job's settings are valid: a mistake in any is named at once;
    # in a worker of the warm server where there is one, which has the libraries they need loaded.
    run_aside(check_datasets, checked)
    HydraConfig.instance().set_config(config)
    # Only once every job is valid: the tracker's parent run, then the facts the jobs read.
    sweep_dir = Path(config.hydra.sweep.dir)  # a new sweep's folder is made here
    if config.get("search") is not None:
        search.check_resumed(plan, sweep_dir)
    keep_composed(str(sweep_dir), composed)
    total = len(jobs) if jobs and config.get("search") is None else None
    progress.start_sweep(str(sweep_dir), total)
    facts = {"swept": swept, "total": total, **_start_tracker(config, sweep_dir)}
    write_sweep_facts(sweep_dir, facts)
    return facts


def check_resume(config: DictConfig) -> None:
    """resume= continues a sweep only with the settings it ran with (what it sweeps may differ):
    results of other settings would be summarized as if they were the same experiment's."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.get("resume") is None:
        return
    folder = Path(config.hydra.sweep.dir)
    saved = folder / "multirun.yaml"
    if not saved.is_file():
        return
    parser = OverridesParser.create()

    def settings(overrides: list[str]) -> tuple[dict[str, str], set[str]]:
        """The command's settings that change results, by key, and the keys it sweeps."""
        parsed = parser.parse_overrides([str(override) for override in overrides])
        swept = {override.get_key_element() for override in parsed if override.is_sweep_override()}
        return {
            override.get_key_element(): override.input_line
            for override in parsed
            if not override.is_sweep_override()
            and override.key_or_group.split(".")[0].split("/")[0] not in NOT_FINGERPRINTED
        }, swept

    earlier_overrides = task_overrides(OmegaConf.load(saved))
    earlier, earlier_swept = settings(earlier_overrides)
    now, now_swept = settings(task_overrides(config))
    keys = (set(earlier) | set(now)) - earlier_swept - now_swept
    differ = sorted(key for key in keys if earlier.get(key) != now.get(key))
    if not differ:
        return
    ran = " ".join(earlier[key] for key in sorted(earlier)) or "the experiment's own settings"
    given = " ".join(now[key] for key in sorted(now)) or "no settings of its own"
    sources = config.hydra.runtime.config_sources
    config_dirs = [f"--config-dir {source.path}" for source in sources if source.provider == "command-line"]
    command = " ".join(
        ["python -m runner -m", *config_dirs, *(o for o in earlier_overrides if not o.startswith("resume="))]
    )
    raise ConfigError(
        f"resume={config.resume} would continue {folder}, a sweep run with {ran}; this command has {given} "
        f"({', '.join(differ)} differ). A sweep is only continued with the settings it ran with: run "
        f"`{command} resume={folder}`, or drop resume= to start a new sweep."
    )


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
    from runner.loggers import start_parent_run

    check_logger(options)
    return {"mlflow_parent_run_id": start_parent_run(options, sweep_dir, str(config.get("title")))}
