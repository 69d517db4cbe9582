"""A grid sweep's jobs, and each job's config composed once, by the pre-flight check, for the
launcher to run: the same config Hydra's launchers compose (tests/test_config.py compares).
Only Hydra's public interfaces."""

from __future__ import annotations

import itertools
import pickle
import re
from collections.abc import Iterator, Sequence
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError


def task_overrides(config: DictConfig) -> list[str]:
    """The command line's overrides as given (an interpolation in one stays unresolved)."""
    return [str(override) for override in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]


def sweep_overrides(config: DictConfig, loader: ConfigLoader | None = None) -> list[Override]:
    """The sweep's overrides: its experiment's `hydra.sweeper.params`, then the command line's."""
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=loader)
    return parser.parse_overrides(params + task_overrides(config))


def grid_jobs(overrides: Sequence[Override]) -> list[list[str]] | None:
    """Each job's overrides, the product of every sweep's values (a key given twice takes its last
    value, the command line's); None where a sweep is not a list of values (a range to search)."""
    axes: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():  # a value given twice (trainer.seed=0,0) runs once
            axes[key] = list(dict.fromkeys(f"{key}={value}" for value in override.sweep_string_iterator()))
        else:
            return None
    return [list(job) for job in itertools.product(*axes.values())]


def compose_jobs(
    loader: ConfigLoader, config: DictConfig, jobs: list[list[str]]
) -> Iterator[tuple[list[str], DictConfig]]:
    """Each job's overrides and config, as `loader.load_sweep_config` composes it. Jobs that differ
    only in plain values (trainer.seed=1; not optimizer=adam or +key=value) share a composition,
    on a copy of which the values and Hydra's record of them are set as Hydra sets them."""
    parser = OverridesParser.create()
    groups = set(config.hydra.runtime.choices) | set(loader.list_groups(""))  # several options chosen: not a choice

    def is_config(override: Override) -> bool:  # neither a config group's choice nor Hydra's setting
        return override.key_or_group not in groups and not override.is_hydra_override()

    def is_plain(override: Override) -> bool:
        return override.type == OverrideType.CHANGE and is_config(override)

    shared_configs: dict[tuple[str, ...], bytes] = {}
    for overrides in jobs:
        parsed = parser.parse_overrides(list(overrides))
        if any(is_config(override) and not is_plain(override) for override in parsed):
            # +key=value, ~key: Hydra applies these in order with the plain values; compose it all.
            yield overrides, loader.load_sweep_config(config, list(overrides))
            continue
        shared = tuple(override.input_line for override in parsed if not is_plain(override))
        if shared not in shared_configs:  # pickled: a copy unpickles faster than deepcopy makes it
            shared_configs[shared] = pickle.dumps(loader.load_sweep_config(config, list(shared)))
        job_config = pickle.loads(shared_configs[shared])
        for override in parsed:
            if is_plain(override):
                try:
                    OmegaConf.update(job_config, override.key_or_group, override.value(), merge=True)
                except (ConfigAttributeError, ConfigKeyError) as error:  # as Hydra reports it
                    raise ConfigCompositionException(
                        f"Could not override '{override.key_or_group}'.\nTo append to your config use "
                        f"+{override.input_line}"
                    ) from error
        task = [override for override in parsed if not override.is_hydra_override()]
        job_config.hydra.overrides.task = [override.input_line for override in task]
        job_config.hydra.job.override_dirname = override_dirname(task, job_config.hydra.job.config.override_dirname)
        yield overrides, job_config


def override_dirname(overrides: Sequence[Override], settings: DictConfig) -> str:
    """hydra.job.override_dirname of a job, written the way Hydra writes it: its overrides but the
    excluded keys, sorted, `kv_sep` for '=', joined by `item_sep`."""
    exclude = set(settings.exclude_keys)
    lines = sorted(override.input_line for override in overrides if override.key_or_group not in exclude)
    return re.sub("=", settings.kv_sep, settings.item_sep.join(lines))


_composed: dict[str, dict[tuple[str, ...], DictConfig]] = {}  # by sweep folder, then job overrides


def keep_composed(sweep_dir: str, composed: dict[tuple[str, ...], DictConfig]) -> None:
    _composed[str(sweep_dir)] = composed


def take_composed(sweep_dir: str) -> dict[tuple[str, ...], DictConfig]:
    """The configs the pre-flight check composed for the sweep in `sweep_dir`, handed over once."""
    return _composed.pop(str(sweep_dir), {})


def _plain(loader: ConfigLoader) -> ConfigLoader:
    return loader


class PrecomposedConfigLoader(ConfigLoader):
    """Hydra's config loader, except that a job's config is the one the pre-flight check composed,
    where it composed one. Pickled (for a launcher's other processes), it is the loader alone."""

    def __init__(self, loader: ConfigLoader, composed: dict[tuple[str, ...], DictConfig]) -> None:
        self.loader = loader
        self.composed = composed

    def __reduce__(self) -> tuple[Any, ...]:
        return _plain, (self.loader,)

    def precomposed(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig | None:
        """The job's composed config, or None where the check composed none; each is taken once."""
        job_config = self.composed.pop(tuple(sweep_overrides), None)
        if job_config is not None:
            # As load_sweep_config does: the sweep's values resolved so far (the sweep folder's ${now:}).
            OmegaConf.copy_cache(from_config=master_config, to_config=job_config)
        return job_config

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        job_config = self.precomposed(master_config, sweep_overrides)
        return job_config if job_config is not None else self.loader.load_sweep_config(master_config, sweep_overrides)

    def load_configuration(self, *args: Any, **kwargs: Any) -> DictConfig:
        return self.loader.load_configuration(*args, **kwargs)

    def get_search_path(self):  # noqa: ANN201
        return self.loader.get_search_path()

    def get_sources(self):  # noqa: ANN201
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.loader.get_group_options(*args, **kwargs)

    def compute_defaults_list(self, *args: Any, **kwargs: Any) -> Any:
        return self.loader.compute_defaults_list(*args, **kwargs)
