"""The command line's overrides, checked before Hydra composes anything: mistyped keys, and the
experiments a `-m experiment=a,b` sweeps, looked up on Hydra's search path (runner's conf/, a
`--config-dir`, `hydra.searchpath`) through Hydra's public config-source plugins."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence

from runner.config import CONFIG_DIR, GROUPS, ConfigError


def search_path(arguments: Sequence[str]) -> list[str]:
    """Where Hydra looks for this command's configs: runner's conf/, `--config-dir`/`-cd`, and the
    entries of a `hydra.searchpath=[...]` override."""
    paths = [f"file://{CONFIG_DIR}"]
    for index, argument in enumerate(arguments):
        if argument in ("--config-dir", "-cd") and index + 1 < len(arguments):
            paths.append(f"file://{os.path.abspath(arguments[index + 1])}")
        elif argument.startswith("--config-dir="):
            paths.append(f"file://{os.path.abspath(argument.split('=', 1)[1])}")
        elif argument.startswith("hydra.searchpath="):
            from hydra.core.override_parser.overrides_parser import OverridesParser

            entries = OverridesParser.create().parse_override(argument).value() or []
            paths += [entry if "://" in str(entry) else f"file://{os.path.abspath(entry)}" for entry in entries]
    return paths


def _sources(arguments: Sequence[str]) -> Iterator:
    from hydra.core.plugins import Plugins
    from hydra.plugins.config_source import ConfigSource

    kinds = {kind.scheme(): kind for kind in Plugins.instance().discover(ConfigSource)}
    for path in search_path(arguments):
        kind = kinds.get(path.split("://", 1)[0])
        source = kind(provider="runner", path=path) if kind is not None else None
        if source is not None and source.available():
            yield source


def group_options(group: str, arguments: Sequence[str] = ()) -> list[str]:
    """The options of a config group on the command's search path, e.g. every experiment."""
    from hydra.core.object_type import ObjectType

    options: set[str] = set()
    for source in _sources(arguments):
        if source.is_group(group):
            options.update(source.list(group, ObjectType.CONFIG))
    return sorted(options)


def group_keys(group: str, arguments: Sequence[str] = ()) -> list[str]:
    """Every key any option of a config group sets (model's, optimizer's, ...)."""
    from hydra.core.object_type import ObjectType

    keys: set[str] = set()
    for source in _sources(arguments):
        if source.is_group(group):
            for option in source.list(group, ObjectType.CONFIG):
                loaded = source.load_config(f"{group}/{option}")
                keys.update(str(key) for key in loaded.config)
    return sorted(keys)


def check_override_keys(arguments: Sequence[str]) -> None:
    """Catch a mistyped key such as `model.hiden_nodes=...` before Hydra, with the valid keys."""
    for argument in arguments:
        if argument.startswith(("-", "+", "~")) or "=" not in argument:
            continue
        key = argument.split("=", 1)[0]
        group, _, name = key.partition(".")
        if group not in GROUPS or not name:
            continue
        name = name.split(".", 1)[0]
        valid = group_keys(group, arguments)
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"Did you mean {group}.{close[0]}? " if close else ""
            raise ConfigError(
                f"Unknown config key {key!r} in {argument!r}. {hint}Valid keys under {group}: {', '.join(valid)}."
            )


def swept_experiments(arguments: Sequence[str]) -> tuple[int, list[str]] | None:
    """Where `-m experiment=a,b` (or `experiment=glob(*)`) sweeps experiments: the argument's
    index and the experiment names. Hydra alone would run one job per experiment file and
    ignore each file's own sweep; runner runs each experiment's sweep instead."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    if not {"-m", "--multirun"} & set(arguments):
        return None
    parser = OverridesParser.create()
    for index, argument in enumerate(arguments):
        if not argument.startswith("experiment="):
            continue
        override = parser.parse_override(argument)
        if not override.is_sweep_override():
            return None
        available = group_options("experiment", arguments)
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            names = override.value().filter(available)
        else:
            names = list(override.sweep_string_iterator())
        unknown = [name for name in names if name not in available]
        if unknown or not names:
            raise ConfigError(
                f"Unknown experiment(s) {', '.join(map(repr, unknown)) or 'in ' + repr(argument)}. "
                f"Choose from: {', '.join(available)}."
            )
        return index, names
    return None
