"""The command line's overrides, checked before Hydra composes anything: mistyped keys, and the
experiments a `-m experiment=a,b` sweeps, looked up on Hydra's search path (runner's conf/, a
`--config-dir`, `hydra.searchpath`) through Hydra's public config-source plugins."""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from runner.config import CONFIG_DIR, GROUPS, ConfigError

# Hydra's flags that take a value (--info's is optional: it takes no override-like word).
VALUE_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--package", "-p", "--cfg", "-c",
               "--experimental-rerun"}  # fmt: skip


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


def config_search_path(config: Any) -> list[str]:
    """The search path a composed config was composed on (its hydra.runtime.config_sources)."""
    sources = config.hydra.runtime.config_sources
    return [f"{source.schema}://{source.path}" for source in sources if source.schema in ("file", "pkg")]


def _sources(arguments: Sequence[str], paths: Sequence[str] | None = None) -> Iterator:
    from hydra.core.plugins import Plugins
    from hydra.plugins.config_source import ConfigSource

    kinds = {kind.scheme(): kind for kind in Plugins.instance().discover(ConfigSource)}
    for path in search_path(arguments) if paths is None else paths:
        kind = kinds.get(path.split("://", 1)[0])
        source = kind(provider="runner", path=path) if kind is not None else None
        if source is not None and source.available():
            yield source


def group_options(group: str, arguments: Sequence[str] = (), paths: Sequence[str] | None = None) -> list[str]:
    """The options of a config group on the command's search path (or `paths`), e.g. every experiment."""
    from hydra.core.object_type import ObjectType

    options: set[str] = set()
    for source in _sources(arguments, paths):
        if source.is_group(group):
            options.update(source.list(group, ObjectType.CONFIG))
    return sorted(options)


def group_keys(group: str, arguments: Sequence[str] = (), paths: Sequence[str] | None = None) -> list[str]:
    """Every key any option of a config group sets (model's, optimizer's, ...)."""
    return _group_keys(group, tuple(search_path(arguments) if paths is None else paths))


@functools.cache
def _group_keys(group: str, paths: tuple[str, ...]) -> list[str]:
    from hydra.core.object_type import ObjectType

    keys: set[str] = set()
    for source in _sources((), paths):
        if source.is_group(group):
            for option in source.list(group, ObjectType.CONFIG):
                loaded = source.load_config(f"{group}/{option}")
                keys.update(str(key) for key in loaded.config)
    return sorted(keys)


@functools.cache
def _experiment_keys(paths: tuple[str, ...]) -> dict[str, set[str]]:
    """The keys each experiment sets under each top-level node, every experiment read once."""
    from hydra.core.object_type import ObjectType
    from omegaconf import OmegaConf

    keys: dict[str, set[str]] = {}
    for source in _sources((), paths):
        if source.is_group("experiment"):
            for option in source.list("experiment", ObjectType.CONFIG):
                config = source.load_config(f"experiment/{option}").config
                for group, node in config.items_ex(resolve=False):
                    if OmegaConf.is_dict(node):
                        keys.setdefault(str(group), set()).update(str(key) for key in node)
    return keys


def check_override_keys(arguments: Sequence[str], paths: Sequence[str] | None = None) -> None:
    """Catch a mistyped key such as `model.hiden_nodes=...` before Hydra, with the valid keys (on
    the command's search path, or on `paths`)."""
    # A user's own builder or loader takes settings of its own (added with +, or by an experiment).
    own = {
        argument.split("=", 1)[0].split(".")[0]
        for argument in arguments
        if argument.split("=", 1)[0].endswith("._target_")
        or argument.split("=", 1)[0] in GROUPS
        and argument.split("=", 1)[1:] == ["custom"]
    }
    for argument in arguments:
        if argument.startswith(("-", "+", "~")) or "=" not in argument:
            continue
        key = argument.split("=", 1)[0]
        group, _, name = key.partition(".")
        if group not in GROUPS or not name or group in own:
            continue
        name = name.split(".", 1)[0]
        valid = group_keys(group, arguments, paths)
        if name not in valid:  # an experiment's own model or data has settings of its own
            searched = tuple(search_path(arguments) if paths is None else paths)
            valid = sorted({*valid, *_experiment_keys(searched).get(group, ())})
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"Did you mean {group}.{close[0]}? " if close else ""
            raise ConfigError(
                f"Unknown config key {key!r} in {argument!r}. {hint}Valid keys under {group}: {', '.join(valid)}."
            )


def _own_groups(arguments: Sequence[str]) -> set[str]:
    """The groups whose `_target_` the command sets, or whose custom option it chooses."""
    own = set()
    for argument in arguments:
        key, _, value = argument.lstrip("+").partition("=")
        if key.endswith("._target_"):
            own.add(key.split(".")[0])
        elif key in GROUPS and value == "custom":
            own.add(key)
    return own


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


def command_overrides(arguments: Sequence[str]) -> list[str]:
    """The overrides of a command line: its words that are neither Hydra's flags nor their values."""
    overrides, skip = [], False
    for argument in arguments:
        if skip:
            skip = False
        elif argument in VALUE_FLAGS:
            skip = True
        elif not argument.startswith("-"):
            overrides.append(argument)
    return overrides


def check_composition(arguments: Sequence[str]) -> Any:
    """Compose the command's config as Hydra will (a sweep's without its swept values, which its
    pre-flight check composes job by job) and return it; Hydra's composition errors become one
    line that says what to write instead."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, HydraException, OverrideParseException

    multirun = bool({"-m", "--multirun"} & set(arguments))
    if multirun and {"--cfg", "-c", "--info", "-i"} & set(arguments):
        raise ConfigError(
            "--cfg and --info show one composed config and train nothing, so they don't take -m: drop -m, "
            "e.g. `python -m runner --cfg job experiment=dropout`."
        )
    overrides = command_overrides(arguments)
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except (OverrideParseException, HydraException):
            key, _, value = override.partition("=")
            if re.search(r"\b(interval|range|choice)\(", value):
                raise ConfigError(
                    f"Can't read the sweep {override!r}: write interval(start,end) for a range of numbers, "
                    f"range(start,stop[,step]) for whole numbers, choice(a,b,...) for values, and quote it, e.g. "
                    f"'{key}=tag(log,interval(0.0001,0.1))'."
                ) from None
            raise ConfigError(
                f"Can't read the override {override!r}: write key=value, and quote a value with characters "
                f"such as ; , [ ] or spaces, e.g. \"{key}='{value or '...'}'\"."
            ) from None
    parsed = parser.parse_overrides(overrides)
    swept = [override.input_line for override in parsed if override.is_sweep_override()]
    if swept and not multirun and not {"--cfg", "-c"} & set(arguments):
        raise ConfigError(
            f"{swept[0]} gives several values, which only a sweep runs: add -m, e.g. `python -m runner -m {swept[0]}`."
        )
    plain = [override.input_line for override in parsed if not override.is_sweep_override()]
    extra = search_path(arguments)[1:]
    if extra and not any(line.startswith("hydra.searchpath=") for line in plain):
        plain.append(f"hydra.searchpath=[{','.join(extra)}]")
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return compose(config_name="config", overrides=plain, return_hydra_config=True)
    except ConfigCompositionException as error:
        raise ConfigError(composition_error(error, plain, search_path(arguments))) from None


def composition_error(error: Exception, overrides: Sequence[str], paths: Sequence[str]) -> str:
    """One line for Hydra's composition error: an unknown option of a group, a setting of
    another option than the one chosen, or a typo."""
    from hydra.errors import MissingConfigException

    message = str(error)
    missing = re.search(r"Could not load '([\w/]+)/([^'/]+)'", message)
    if missing and not getattr(error, "options", None):  # an option of a group chosen in a list, callbacks=[a,b]
        group, option = missing.groups()
        options = group_options(group, paths=paths)
        close = difflib.get_close_matches(option, options, n=1)
        hint = f"Did you mean {group}={close[0]}? " if close else ""
        return f"Unknown {group} {option!r}. {hint}Choose one of: {', '.join(options)}."
    if isinstance(error, MissingConfigException):
        return _missing_option(error)
    if message.startswith("Could not override '"):
        key = message.split("'")[1]
        group, _, name = key.partition(".")
        value = next((line.split("=", 1)[1] for line in overrides if line.split("=", 1)[0] == key), "...")
        owners = [option for option in group_options(group, paths=paths) if _option_sets(group, option, name, paths)]
        if key == "metric":  # renamed when the objective got its mode
            return f"metric is now objective.metric: `objective.metric={value}` (and objective.mode=max|min|auto)."
        if group in _own_groups(overrides):
            return (
                f"{key} is not a setting of your {group}._target_ yet: a new argument is added with a +, "
                f"e.g. `+{key}={value}`."
            )
        if owners:
            return (
                f"{key} is a setting of {' and '.join(f'{group}={owner}' for owner in owners)}, not of the {group} "
                f"chosen here: pick that option too, e.g. `{group}={owners[0]} {key}={value}`."
            )
        close = difflib.get_close_matches(name, group_keys(group, paths=paths), n=1) if group in GROUPS else []
        hint = f" Did you mean {group}.{close[0]}?" if close else ""
        if group in ("model", "data", "optimizer"):
            hint += f" A new argument of your own {group}._target_ is added with a +: +{key}={value}."
        return f"Unknown config key {key!r} in {key}={value}: no config sets it.{hint}"
    return message.split("\n")[0]


def _missing_option(error: Any) -> str:
    group, _, option = str(error.missing_cfg_file or "").rpartition("/")
    options = sorted(error.options or [])
    if not group or not options:
        return str(error).split("\nConfig search path:")[0].replace("\n", " ")
    close = difflib.get_close_matches(option, options, n=1)
    hint = f"Did you mean {group}={close[0]}? " if close else ""
    return f"Unknown {group} {option!r}. {hint}Choose one of: {', '.join(options)}."


def _option_sets(group: str, option: str, name: str, paths: Sequence[str]) -> bool:
    for source in _sources((), paths):
        if source.is_config(f"{group}/{option}"):
            return name in list(source.load_config(f"{group}/{option}").config)  # "???" values too: not "in" a config
    return False
