"""The valid choices of every knob, the defaults read from `conf/`, and validation.

Validation runs before any data is loaded or TensorFlow imported, so a typo
fails in a second with a message that names the key and the valid choices.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import math
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).parent / "conf"
GROUPS = ("data", "model", "optimizer", "trainer")


@functools.cache
def choices() -> dict[str, Any]:
    """The names each knob accepts (conf/choices.yaml)."""
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "choices.yaml"))


@functools.cache
def group_options(group: str) -> list[str]:
    """The options of one of runner's own config groups, e.g. the optimizers."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


class ConfigError(CompactHydraException):
    """A user mistake in the config or the data: Hydra prints only this message."""


def variant_dir(override_dirname: str) -> str:
    """Folder name of one variant of a sweep, made from its overrides."""
    name = (override_dirname or "default").replace("/", "_")
    if len(name) > 120:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


def initializer_label(name: str, scale: float | None) -> str:
    """A short name for an initializer and its scale, e.g. N(0,1) for random_normal at 1.0."""
    if scale is None:
        return name
    if name == "random_normal":
        return f"N(0,{scale:g})"
    if name == "random_uniform":
        return f"U(-{scale:g},{scale:g})"
    return f"{name}({scale:g})"


def sweep_dir(resume: str | None, experiment_dir: str, stamp: str) -> str:
    """Where a sweep writes: a new timestamped folder of its own (made now, so that a command
    started in the same second takes the next one), or the sweep it resumes (`latest` is the
    newest sweep of this experiment; a single run's folder is no sweep)."""
    if resume is None:
        for suffix in ("", *(f"-{number}" for number in range(2, 1000))):
            try:
                Path(f"{experiment_dir}/{stamp}{suffix}").mkdir(parents=True)
                return f"{experiment_dir}/{stamp}{suffix}"
            except FileExistsError:
                continue
        raise ConfigError(f"{experiment_dir}/{stamp}: a thousand sweeps in one second. Start fewer at once.")
    if resume == "latest":
        earlier = sorted(path.parent for path in Path(experiment_dir).glob("*/multirun.yaml"))
        if not earlier:
            raise ConfigError(
                f"resume=latest: no earlier sweep in {experiment_dir}/. Run the sweep without resume first."
            )
        return str(earlier[-1])
    if not Path(resume).is_dir():
        raise ConfigError(
            f"resume={resume!r}: no such sweep folder. Give a folder such as {experiment_dir}/<timestamp>, or latest."
        )
    return str(resume)


def objective_mode(metric: str, mode: str = "auto") -> str:
    """max or min: `mode` where it says, else min for a loss or an error and max for the rest."""
    if mode in ("max", "min"):
        return mode
    base = str(metric).removeprefix("val_")
    return "min" if base.endswith(("loss", "error", "crossentropy")) else "max"


def network_name(target: str, notes_name: str) -> str:
    """The default title and label: the notes' own for their network, else the builder's name."""
    return notes_name if target in ("none", "runner.model.mlp") else str(target).rsplit(".", 1)[-1]


OmegaConf.register_new_resolver("network_name", network_name, replace=True)
OmegaConf.register_new_resolver("objective_mode", objective_mode, replace=True)
OmegaConf.register_new_resolver("variant_dir", variant_dir, replace=True)
OmegaConf.register_new_resolver("sweep_dir", sweep_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("initializer_label", initializer_label, replace=True)
OmegaConf.register_new_resolver(
    "recommended_initializer", lambda activation: choices()["recommended_initializer"].get(activation), replace=True
)


def default_settings() -> dict[str, Any]:
    """The default option of each group, read from conf/config.yaml's defaults list."""
    primary = OmegaConf.load(CONFIG_DIR / "config.yaml")
    settings: dict[str, Any] = {}
    for entry in primary.defaults:
        if not isinstance(entry, dict) and not OmegaConf.is_dict(entry):
            continue
        ((group, option),) = entry.items()
        if group in GROUPS:
            settings[group] = group_option(group, option)
    return settings


def group_option(group: str, option: str) -> dict[str, Any]:
    """One option of a config group as a plain dict of its own, e.g. group_option("optimizer", "sgd")."""
    if option not in group_options(group):
        available = group_options(group)
        raise ConfigError(
            f"Unknown {group} {option!r}. Choose one of: {', '.join(available)} (e.g. {group}={available[0]})."
        )
    return copy.deepcopy(_loaded_option(group, option))


@functools.cache
def _loaded_option(group: str, option: str) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml"), resolve=True)


def hidden_layer_sizes(model: dict[str, Any]) -> list[int]:
    """Units of each hidden layer: `depth` x `width` when depth is set, else hidden_nodes (one
    number is one layer)."""
    if model.get("depth") is not None:
        return [model["width"]] * model["depth"]
    nodes = model["hidden_nodes"]
    return [nodes] if _is_int(nodes) else list(nodes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Checker:
    """The checks of one settings dict. `names` maps config keys to the names the caller knows
    them by (the course API's model_config keys): messages and examples use those."""

    def __init__(self, settings: dict[str, Any], names: dict[str, str] | None = None, example: str | None = None):
        self.settings = settings
        self.names = names or {}
        self.example_format = example or "model_config[{name!r}] = {value!r}"

    def get(self, key: str) -> Any:
        group, name = key.split(".", 1)
        return self.settings[group][name]

    def example(self, key: str, value: Any) -> str:
        """How the caller sets `key` to `value`: trainer.epochs=1, or model_config['EPOCHS'] = 1."""
        if key in self.names:
            return self.example_format.format(name=self.names[key], value=value)
        text = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else value
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else text
        return f"{key}={text}"

    def fail(self, key: str, problem: str, fix: str) -> None:
        value = self.get(key)
        text = repr(value)  # as the caller wrote it: Python's spelling in the course API, YAML's here
        if key not in self.names and (value is None or isinstance(value, bool)):
            text = "null" if value is None else str(value).lower()
        raise ConfigError(f"Invalid {self.names.get(key, key)}={text}: {problem}. {fix}")

    def choice(self, key: str, choices: list[str], objects: bool = False) -> None:
        """One of `choices`; with `objects`, a Keras object or function is welcome too (course API)."""
        value = self.get(key)
        if value in choices or (objects and value is not None and not isinstance(value, str)):
            return
        self.fail(
            key,
            f"not a known {key.rsplit('.', 1)[-1].replace('_', ' ')}",
            f"Choose one of: {', '.join(choices)}, e.g. {self.example(key, choices[0])}.",
        )

    def integer(self, key: str, minimum: int) -> None:
        value = self.get(key)
        if not _is_int(value) or value < minimum:
            self.fail(key, f"it must be a whole number >= {minimum}", f"Set e.g. {self.example(key, max(minimum, 1))}.")

    def positive(self, key: str, optional: bool = False) -> None:
        value = self.get(key)
        if optional and value is None:
            return
        if not _is_number(value) or value <= 0:
            fix = f"Set a positive value, e.g. {self.example(key, 0.001)}" + (", or null." if optional else ".")
            self.fail(key, "it must be a number > 0", fix)

    def fraction(self, key: str, low_open: bool, example: float) -> None:
        value = self.get(key)
        low_ok = _is_number(value) and (value > 0 if low_open else value >= 0)
        if not low_ok or value >= 1:
            interval = "(0, 1)" if low_open else "[0, 1)"
            self.fail(key, f"it must be in {interval}", f"Set e.g. {self.example(key, example)}.")

    def boolean(self, key: str) -> None:
        if not isinstance(self.get(key), bool):
            self.fail(key, "it must be true or false", f"Set e.g. {self.example(key, True)}.")

    def present(self, group: str, defaults: dict[str, Any]) -> None:
        """Every setting runner reads is there (~model.l1 would have removed one); `defaults` are
        its config's."""
        missing = sorted(set(defaults) - set(self.settings[group]))
        if missing:
            key = f"{group}.{missing[0]}"
            raise ConfigError(
                f"{self.names.get(key, key)} is missing (removed with ~{key}?), and runner reads it. Keep it, "
                f"or give it another value, e.g. {self.example(key, defaults[missing[0]])}."
            )

    def known_keys(self, group: str, allowed: set[str], owner: str) -> None:
        """No setting in `group` that `owner` (its config) does not have: a typo, or another option's."""
        unknown = sorted(set(self.settings[group]) - allowed)
        if not unknown:
            return
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        others = [option for option in group_options(group) if key in group_option(group, option)]
        if others:
            listed = others[0] if len(others) == 1 else f"{', '.join(others[:-1])} and {others[-1]}"
            hint = (
                f"{listed} {'has' if len(others) == 1 else 'have'} it: choose the option with "
                f"{group}={others[0]} (it brings its own settings)."
            )
        else:
            hint = f"Did you mean {group}.{close[0]}? " if close else ""
            hint += f"Valid keys under {group}: {', '.join(sorted(allowed))}."
        raise ConfigError(f"Unknown setting {group}.{key}: {owner} has no {key}. {hint}")


BUILT_IN_MODEL = "runner.model.mlp"


def is_target(value: Any) -> bool:
    """A config node that names what to build (`_target_`)."""
    return isinstance(value, dict) and "_target_" in value


def validate(settings: dict[str, Any], names: dict[str, str] | None = None, example: str | None = None) -> None:
    """Check every knob of a resolved config; raise ConfigError naming the key and the fix. A
    caller with names of its own gives them in `names` and how a value is set in `example`.
    What a user's own `_target_` takes is checked where it is imported (runner.preflight)."""
    check = _Checker(settings, names, example)
    trainer, model, optimizer, data = (settings[group] for group in ("trainer", "model", "optimizer", "data"))
    check.known_keys("trainer", set(group_option("trainer", "default")), "the trainer")
    check.present("trainer", group_option("trainer", "default"))
    _check_trainer(check, trainer)
    for group in ("model", "optimizer", "data"):
        target = settings[group].get("_target_")
        if target in (None, "", "???"):
            option = f"{group}=custom"
            raise ConfigError(
                f"{group}._target_ is not set: {option} builds what you name there. Give your function, e.g. "
                f"`{group}._target_={_TARGET_EXAMPLES[group]}`."
            )
    if model["_target_"] == BUILT_IN_MODEL:
        _check_network(check, model)
    _check_optimizer(check, optimizer)
    telemetry = settings.get("telemetry")
    if telemetry is not None:
        check.boolean("telemetry.gradients")
        check.boolean("telemetry.activations")
        check.integer("telemetry.probe_size", 1)
    _check_data(check, data)
    if "objective" in settings:
        _check_objective(settings)
    callbacks = settings.get("callbacks") or {}
    if not isinstance(callbacks, dict):
        raise ConfigError(
            f"Invalid callbacks={callbacks!r}: give presets, e.g. 'callbacks=[early_stopping,checkpoint]', or a "
            "callback node, e.g. +callbacks.log._target_=keras.callbacks.CSVLogger."
        )
    for key, node in callbacks.items():
        if node is not None and not is_target(node):
            raise ConfigError(
                f"Invalid callbacks.{key}={node!r}: a callback is a node with _target_, e.g. "
                f"+callbacks.{key}._target_=keras.callbacks.CSVLogger (or one of the presets: "
                f"{', '.join(group_options('callbacks'))})."
            )


_TARGET_EXAMPLES = {
    "model": "my_models.small_cnn",
    "optimizer": "keras.optimizers.Lion",
    "data": "my_data.load",
}


def is_preset(group: str, node: dict[str, Any]) -> bool:
    """The node is one of runner's own options of `group` (not custom): its name and its `_target_`."""
    name = node.get("name")
    return (
        name in group_options(group) and name != "custom" and node["_target_"] == group_option(group, name)["_target_"]
    )


def _check_trainer(check: _Checker, trainer: dict[str, Any]) -> None:
    check.integer("trainer.epochs", 1)
    check.integer("trainer.batch_size", 1)
    check.fraction("trainer.validation_split", low_open=True, example=0.2)
    check.integer("trainer.seed", 0)
    if trainer.get("threads") is not None:
        check.integer("trainer.threads", 1)
    if trainer["verbose"] not in (0, 1, 2) or isinstance(trainer["verbose"], bool):
        check.fail("trainer.verbose", "it must be 0, 1 or 2", f"Set e.g. {check.example('trainer.verbose', 0)}.")
    metrics = trainer["metrics"]
    if not isinstance(metrics, list) or "accuracy" not in metrics:
        check.fail(
            "trainer.metrics",
            "runner's summaries, plots and report read accuracy, which it leaves out",
            f"Keep accuracy first, e.g. {check.example('trainer.metrics', ['accuracy', *(metrics or [])][:2])}.",
        )
    for metric in metrics:
        if not isinstance(metric, str) and not is_target(metric) and not check.names:
            check.fail(
                "trainer.metrics",
                f"{metric!r} is neither a metric's name nor a node with _target_",
                "Give names, e.g. 'trainer.metrics=[accuracy,auc]', or {_target_: keras.metrics.AUC, curve: PR}.",
            )
    loss = trainer["loss"]
    if not (isinstance(loss, str) and loss) and not is_target(loss) and not check.names:
        check.fail(
            "trainer.loss",
            "give a Keras loss by name or a node with _target_",
            "Set e.g. trainer.loss=categorical_crossentropy.",
        )
    weights = trainer.get("class_weight")
    if (
        weights is not None
        and weights != "balanced"
        and not (
            isinstance(weights, dict)
            and weights
            and all(_is_number(value) and value >= 0 for value in weights.values())
        )
    ):
        check.fail(
            "trainer.class_weight",
            "give null, balanced, or a weight >= 0 per class index",
            "Set e.g. trainer.class_weight=balanced or 'trainer.class_weight={0:1.0,1:5.0}'.",
        )
    for key in ("save_model", "evaluate_train"):
        if key in trainer:
            check.boolean(f"trainer.{key}")


def _check_network(check: _Checker, model: dict[str, Any]) -> None:
    """The notes' network: the settings runner.model.mlp takes, each valid."""
    names = check.names
    check.known_keys("model", set(group_option("model", "base")), "the network")
    check.present("model", group_option("model", "base"))
    if model.get("depth") is None:
        nodes = model["hidden_nodes"]
        if not (_is_int(nodes) and nodes >= 1) and not (
            isinstance(nodes, list) and nodes and all(_is_int(n) and n >= 1 for n in nodes)
        ):
            check.fail(
                "model.hidden_nodes",
                "the network needs one or more hidden layers, each a whole number of units >= 1",
                f"Give layer sizes, e.g. {check.example('model.hidden_nodes', [32, 64])}, or set model.depth.",
            )
    else:
        check.integer("model.depth", 1)
        check.integer("model.width", 1)
    names_of = choices()
    check.choice("model.hidden_activation", names_of["activations"], objects=bool(names))
    check.choice("model.output_activation", names_of["output_activations"], objects=bool(names))
    check.choice("model.weights_initializer", names_of["initializers"], objects=bool(names))
    check.choice("model.bias_initializer", names_of["initializers"], objects=bool(names))
    if model["weights_scale"] is not None:
        check.positive("model.weights_scale")
        if model["weights_initializer"] not in names_of["scaled_initializers"]:
            check.fail(
                "model.weights_scale",
                f"{model['weights_initializer']} has no scale to set",
                f"Use it with one of {', '.join(names_of['scaled_initializers'])}, "
                f"or set {check.example('model.weights_scale', None)}.",
            )
    check.choice("model.normalization", names_of["normalizations"])
    check.fraction("model.dropout_rate", low_open=False, example=0.2)
    check.choice("model.regularizer", names_of["regularizers"], objects=bool(names))
    for factor in ("model.l1", "model.l2"):
        value = check.get(factor)
        if not _is_number(value) or value < 0:
            check.fail(factor, "a penalty factor must be a number >= 0", f"Set e.g. {check.example(factor, 0.01)}.")
    check.boolean("model.residual")
    sizes = hidden_layer_sizes(model)
    if model["residual"] and not any(before == after for before, after in zip(sizes, sizes[1:], strict=False)):
        check.fail(
            "model.residual",
            f"a skip connection goes around a hidden layer whose input has its width, and {sizes} has none",
            f"Give equal widths, e.g. {check.example('model.hidden_nodes', [32, 32, 32])}.",
        )


# What keras.optimizers.Optimizer takes for every optimizer (tests/test_config.py compares with
# its signature): a preset's node may add these to the ones it lists.
OPTIMIZER_COMMON = (
    "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum",
    "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps",
)  # fmt: skip


def _check_optimizer(check: _Checker, optimizer: dict[str, Any]) -> None:
    """A preset's hyperparameters, each in range; another target's (or a user's own option of a
    Keras optimizer) are checked against its signature."""
    name = optimizer.get("name")
    presets = [option for option in group_options("optimizer") if option != "custom"]
    by_target = {group_option("optimizer", option)["_target_"]: option for option in presets}
    preset = by_target.get(optimizer["_target_"])
    if preset is None or (name != preset and name not in presets):  # its signature is checked
        rate = optimizer.get("learning_rate")
        if rate is not None and not is_target(rate):
            check.positive("optimizer.learning_rate")
        return
    if preset != name and "optimizer.name" not in check.names:
        raise ConfigError(
            f"optimizer.name={name} keeps the settings of optimizer={preset} "
            f"({optimizer['_target_']}). Pick the optimizer with optimizer={name}, which brings its own settings, "
            f"not optimizer.name={name}."
        )
    own = set(group_option("optimizer", name))
    check.known_keys("optimizer", own | set(OPTIMIZER_COMMON), name)
    check.present("optimizer", group_option("optimizer", name))
    if not is_target(optimizer["learning_rate"]):
        check.positive("optimizer.learning_rate")
    for key in set(optimizer) & {"nesterov", "amsgrad"}:
        check.boolean(f"optimizer.{key}")
    for key in set(optimizer) & {"momentum", "beta_1", "beta_2", "rho"}:
        check.fraction(f"optimizer.{key}", low_open=False, example=0.9)
    if "epsilon" in optimizer:
        check.positive("optimizer.epsilon")
    for key in set(optimizer) & {"weight_decay", "initial_accumulator_value"}:
        value = check.get(f"optimizer.{key}")
        if not _is_number(value) or value < 0:
            fix = f"Set e.g. {check.example(f'optimizer.{key}', 0.1)}."
            check.fail(f"optimizer.{key}", "it must be a number >= 0", fix)
    for clip in ("clipnorm", "clipvalue", "global_clipnorm"):
        if clip in optimizer:
            check.positive(f"optimizer.{clip}", optional=True)
    if sum(optimizer.get(clip) is not None for clip in ("clipnorm", "clipvalue", "global_clipnorm")) > 1:
        check.fail(
            "optimizer.clipnorm",
            "Keras allows only one of clipnorm, clipvalue and global_clipnorm",
            "Set the others to null.",
        )


def _check_data(check: _Checker, data: dict[str, Any]) -> None:
    """One of runner's own data sets: its settings; a user's loader: checked when it is called."""
    standardize = data.get("standardize", "auto")
    if standardize not in ("auto", True, False):
        check.fail("data.standardize", "it must be auto, true or false", "Set e.g. data.standardize=auto.")
    if not is_preset("data", data):
        return
    name = data["name"]
    option = group_option("data", name)
    check.known_keys("data", set(option), f"data={name}")
    check.present("data", option)
    if name == "csv":
        for key in ("path", "target"):
            if data.get(key) in (None, "", "???"):
                raise ConfigError(
                    f"data=csv needs data.{key}: give your file and its label column, e.g. "
                    "`python -m runner data=csv data.path=my.csv data.target=label`."
                )
    if name == "synthetic":
        check.integer("data.n_classes", 2)
        check.integer("data.n_samples", 2)
        check.integer("data.n_features", 1)
        check.integer("data.n_informative", 1)


DEFAULT_LOGGED = {"loss", "accuracy"}


def _check_objective(settings: dict[str, Any]) -> None:
    objective = settings["objective"]
    if not isinstance(objective, dict) or not isinstance(objective.get("metric"), str):
        raise ConfigError(
            f"Invalid objective={objective!r}: give the metric to rank by, e.g. objective.metric=val_accuracy."
        )
    if objective.get("mode", "auto") not in ("auto", "max", "min"):
        raise ConfigError(
            f"Invalid objective.mode={objective.get('mode')!r}: it must be max, min or auto (min for a loss). "
            "Set e.g. objective.mode=max."
        )
    metrics = settings["trainer"]["metrics"]
    if all(metric == "accuracy" for metric in metrics):  # other names are Keras' to resolve (runner.preflight)
        check_logged(objective["metric"], DEFAULT_LOGGED)


def check_logged(metric: str, logged: set[str]) -> None:
    """`metric` is one the training logs (each of `logged`, also with val_)."""
    names = sorted(logged | {f"val_{name}" for name in logged})
    if metric not in names:
        close = difflib.get_close_matches(metric, names, n=1)
        hint = f"Did you mean objective.metric={close[0]}? " if close else ""
        raise ConfigError(
            f"Invalid objective.metric={metric!r}: training logs no such metric. {hint}Choose one of: "
            f"{', '.join(names)} (add a metric to trainer.metrics to log it, e.g. 'trainer.metrics=[accuracy,auc]')."
        )


def settings_of(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without Hydra's own node, as plain Python containers."""
    try:
        return {
            key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in cfg
            if key != "hydra"
        }
    except OmegaConfBaseException as error:
        raise ConfigError(f"The config can't be resolved: {error}".replace("\n", " ")) from None


def check_width_used(keys: set[str], model: dict[str, Any]) -> None:
    """The notes' network reads model.width only with model.depth: set without it, every value
    would train the same network."""
    if "model.width" in keys and model.get("_target_") == BUILT_IN_MODEL and model.get("depth") is None:
        raise ConfigError(
            f"model.width is set, but the network takes its layers from model.hidden_nodes "
            f"({model.get('hidden_nodes')}) while model.depth is null, so every width would train the same network: "
            "add model.depth=2 (layers of model.width units each), or set model.hidden_nodes instead."
        )


def check_settings(cfg: DictConfig) -> dict[str, Any]:
    """Resolve and validate a composed config (the data set is checked when it is loaded)."""
    settings = settings_of(cfg)
    validate(settings)
    check_logger(settings.get("logger"))
    return settings


TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger name -> the package it needs


def check_logger(logger: dict[str, Any] | None) -> None:
    """Fail before training where the chosen tracker is not installed, saying how to install it
    into the environment runner runs in."""
    import importlib.util
    import sys

    name = (logger or {}).get("name", "none")
    package = TRACKERS.get(name)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"logger={name} needs the {package} package, which is not installed in this environment "
            f"({sys.executable}). Install it with `{sys.executable} -m pip install {package}` (in a clone of "
            f"runner: `make install EXTRAS={name}`), or drop logger={name}."
        )
