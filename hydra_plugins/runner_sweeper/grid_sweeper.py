"""Hydra sweeper: every combination of the swept values, as Hydra's basic sweeper makes them, each
job handed the config runner's pre-flight check composed and validated (runner.sweep_hooks); a
config with a `search` node (an experiment's `- /search: default`) is searched instead
(search_sweeper). On Hydra's public plugin interface, as Hydra's example sweeper."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional  # noqa: UP035  (OmegaConf reads these in structured configs)

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.runner_sweeper.grid_sweeper.GridSweeper"
    max_batch_size: Optional[int] = None  # jobs launched at once; None: all of them  # noqa: UP045
    params: Optional[Dict[str, str]] = None  # an experiment's sweep: key -> comma-separated values  # noqa: UP006, UP045


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="runner")


class GridSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        self.max_batch_size = max_batch_size
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.hydra_context: HydraContext | None = None
        self.search: Sweeper | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from runner.composition import PrecomposedConfigLoader, take_composed

        if config.get("search") is not None:
            from hydra_plugins.runner_sweeper.search_sweeper import SearchSweeper

            self.search = SearchSweeper(params=self.params)
            self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)
            return

        composed = take_composed(str(config.hydra.sweep.dir))
        loader = PrecomposedConfigLoader(hydra_context.config_loader, composed)
        self.hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=task_function, config=config
        )
        if hasattr(self.launcher, "may_queue"):  # runner's launcher: a grid reads no result between launches
            self.launcher.may_queue = True

    def sweep(self, arguments: list[str]) -> Any:
        from hydra.errors import HydraException

        from runner.composition import grid_jobs, sweep_overrides
        from runner.processes import check_jobs

        if self.search is not None:
            return self.search.sweep(arguments)
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        jobs = grid_jobs(sweep_overrides(self.config, self.hydra_context.config_loader))
        if jobs is None:
            raise HydraException("runner's grid sweeper runs lists of values; search ranges with hydra/sweeper=search")
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else max(len(jobs), 1)
        returns = []
        for start in range(0, len(jobs), size):
            returns.append(self.launcher.launch(jobs[start : start + size], initial_job_idx=start))
            check_jobs(str(sweep_dir), returns[-1])
        return returns
