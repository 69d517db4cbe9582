"""Hydra's basic grid sweeper, without composing every job again and again.

Before launching a batch, Hydra's BasicSweeper composes each job's config once more only to
see that it composes, and the launcher composes it once more to run it. runner's pre-flight
check (runner.callbacks.check_sweep) has by then composed and validated every job of the sweep,
with clearer messages, so those passes only cost time: a tenth of a second per variant, spent
while the workers wait. This sweeper skips the first; runner's own launcher sends the checked
configs to its workers, and Hydra's basic launcher (which runs the jobs in this process) is
handed them here.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext


@dataclass
class CheckedSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.runner_sweeper.checked_sweeper.CheckedSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf, provider="runner")


class CheckedSweeper(BasicSweeper):
    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if hasattr(self.launcher, "may_queue"):  # runner's launcher: a grid reads no result between launches
            self.launcher.may_queue = True
        if type(self.launcher) is BasicLauncher:  # composes each job in this process, where the checked ones are
            loader = _CheckedConfigs(hydra_context.config_loader)
            self.launcher.hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Every job was composed and validated by runner.callbacks.check_sweep."""


class _CheckedConfigs:
    """Hydra's config loader, but a job's config is the one runner's pre-flight check composed,
    where it composed one (the same config: tests/test_config.py)."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def load_sweep_config(self, master_config, sweep_overrides):
        from runner.callbacks import precomposed

        checked = precomposed(master_config, sweep_overrides)
        return checked if checked is not None else self._loader.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)
