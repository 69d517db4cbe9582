"""Hydra sweeper: an Optuna study over the sweep's ranges and choices (runner.search), its trials
pruned per epoch, kept in the sweep folder's study.db. On Hydra's public plugin interface. With
runner's launcher, a worker that finishes a trial takes the next at once; others run in batches."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class SearchSweeper(Sweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.next_job = 0
        self.errors: list[str] = []
        self.failure: BaseException | None = None  # what stopped a thread (a worker died, say)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from runner import search
        from runner.composition import sweep_overrides

        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        plan = search.plan_search(self.config, sweep_overrides(self.config, self.hydra_context.config_loader))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = search.Study(plan, sweep_dir)
        parallel = hasattr(self.launcher, "launch_together")  # runner's: takes jobs from several threads
        workers = plan.settings.get("n_jobs") or getattr(self.launcher, "workers", None) or 1
        if plan.settings["seeds"] > 1 and not (parallel and getattr(self.launcher, "pack_seeds", False)):
            print(
                f"search.seeds={plan.settings['seeds']}: this launcher trains a trial's seeds one by one, so no "
                "trial is pruned; runner's own launcher (the default) trains them as one packed model.",
                flush=True,
            )
        if parallel:
            threads = [threading.Thread(target=self._trials, args=(study,), daemon=True) for _ in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.5)  # Ctrl-C reaches this thread
            if self.failure is not None:
                raise self.failure  # e.g. SystemExit(130) where Ctrl-C ended the workers first
        else:
            while self._batch(study, workers):
                pass
        for path in search.write_outputs(study):
            print(f"  {path}")
        line = search.best_line(study)
        if line:
            print(line, flush=True)
        if self.errors:
            sys.stderr.write(f"{len(self.errors)} trial job(s) raised: {self.errors[0]}\n")
            sys.exit(1)
        return []

    def _launch(self, study, trials: list[tuple[int, dict[str, Any]]]) -> None:
        """Run these trials' jobs with the launcher, then tell the study how each ended."""
        jobs, owners = [], []
        for number, values in trials:
            for job in study.plan.jobs(number, values):
                jobs.append(job)
                owners.append(number)
        with study.lock:
            first, self.next_job = self.next_job, self.next_job + len(jobs)
        launch = self.launcher.launch
        if len(trials) == 1 and len(jobs) > 1 and hasattr(self.launcher, "launch_together"):
            launch = self.launcher.launch_together
        try:
            returns = list(launch(jobs, initial_job_idx=first))
        except Exception as error:  # the launcher could not run them: the trials failed, the study goes on
            returns = [error] * len(jobs)
        for number, values in trials:
            errors = []
            for job_return, owner in zip(returns, owners, strict=True):
                if owner != number:
                    continue
                try:
                    if isinstance(job_return, Exception):
                        raise job_return
                    _ = job_return.return_value  # raises what the job raised
                except Exception as error:
                    errors.append(f"trial {number}: {type(error).__name__}: {error}")
            self.errors.extend(errors)
            study.conclude(number, study.folders(number, values), errors, launched=True)

    def _trials(self, study) -> None:
        """One thread's trials, one after the other, until the budget is spent."""
        try:
            while self.failure is None:
                trial = study.ask()
                if trial is None:
                    return
                self._launch(study, [trial])
        except BaseException as failure:  # e.g. SystemExit where a worker died: the command stops
            self.failure = self.failure or failure

    def _batch(self, study, size: int) -> bool:
        trials = [trial for trial in (study.ask() for _ in range(size)) if trial is not None]
        if trials:
            self._launch(study, trials)
        return bool(trials)
