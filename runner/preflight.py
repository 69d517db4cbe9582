"""Before any training: every `_target_` of a config imports, takes the settings it is given, and
builds what runner needs (a keras.Model with one output per class, the metric the objective ranks
by). Runner's own targets need no Keras here; a user's own ones are built once per command."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from typing import Any

from runner import devices
from runner.config import BUILT_IN_MODEL, ConfigError, check_logged, group_option, is_preset, is_target
from runner.data import OWN_KEYS, Dataset

# Arguments runner itself passes to a target, by config node.
SUPPLIED = {"model": {"input_shape", "n_classes"}}


def target_nodes(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any], set[str]]]:
    """Every node with a `_target_`, by its key, with the keys that are runner's, not arguments."""
    trainer, optimizer = settings["trainer"], settings["optimizer"]
    nodes = [
        ("model", settings["model"], set()),
        ("data", settings["data"], set(OWN_KEYS)),
        ("optimizer", optimizer, {"name"}),
    ]
    if is_target(optimizer.get("learning_rate")):
        nodes.append(("optimizer.learning_rate", optimizer["learning_rate"], set()))
    if is_target(trainer["loss"]):
        nodes.append(("trainer.loss", trainer["loss"], set()))
    nodes += [
        (f"trainer.metrics[{index}]", metric, set())
        for index, metric in enumerate(trainer["metrics"])
        if is_target(metric)
    ]
    nodes += [(f"callbacks.{key}", node, set()) for key, node in (settings.get("callbacks") or {}).items() if node]
    return nodes


def built_in(key: str, node: dict[str, Any]) -> bool:
    """Runner's own network, or a preset of its optimizers or data sets, as conf/ gives it."""
    if key == "model":
        return node["_target_"] == BUILT_IN_MODEL
    return key in ("optimizer", "data") and is_preset(key, node)


def check_targets(settings: dict[str, Any]) -> None:
    """Each `_target_` of the user's own imports and takes the settings given to it (where its
    signature says); runner's own are known to."""
    for key, node, own in target_nodes(settings):
        if built_in(key, node):
            continue
        target = import_target(key, node["_target_"])
        given = {name for name, value in node.items() if name not in own and name != "_target_" and value is not None}
        check_arguments(key, node["_target_"], target, given, SUPPLIED.get(key, set()))


def import_target(key: str, target: Any) -> Any:
    """The object `target` names (module.attribute), or a one-line error naming the key."""
    parts = str(target).split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"{key}._target_={target!r} is not a module path: give module.function, e.g. "
            f"{key}._target_=my_module.{parts[-1] or 'build'}, with my_module.py in the current directory."
        )
    missing = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            with devices.quiet_stderr():  # a module that imports TensorFlow
                found = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                missing = missing or error
                continue
            raise ConfigError(f"{key}._target_={target}: importing {module_name} failed: {error}.") from None
        except Exception as error:
            raise ConfigError(
                f"{key}._target_={target}: importing {module_name} raised {type(error).__name__}: {error}. "
                f"Fix {module_name}."
            ) from None
        for index, attribute in enumerate(parts[cut:], start=cut):
            if not hasattr(found, attribute):
                owner = ".".join(parts[:index])
                public = [name for name in dir(found) if not name.startswith("_")]
                close = difflib.get_close_matches(attribute, public, n=1)
                hint = f" Did you mean {owner}.{close[0]}?" if close else ""
                raise ConfigError(f"{key}._target_={target}: {owner} has no {attribute!r}.{hint}")
            found = getattr(found, attribute)
        if not callable(found):
            raise ConfigError(f"{key}._target_={target} is a {type(found).__name__}, not a function or class.")
        return found
    raise ConfigError(
        f"{key}._target_={target} can't be imported: {missing}. Put {parts[0]}.py in the current directory "
        f"({os.getcwd()}) or add its folder to PYTHONPATH."
    )


def check_arguments(key: str, target: str, function: Any, given: set[str], supplied: set[str]) -> None:
    """The settings given are arguments `function` takes, and it gets every one it requires."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature: instantiate will say
        return
    kinds = {parameter.kind for parameter in parameters.values()}
    named = {
        name
        for name, parameter in parameters.items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        lacking = sorted(supplied - named)
        if lacking:
            raise ConfigError(
                f"{key}._target_={target} must take {' and '.join(sorted(supplied))}, which runner passes it: "
                f"define it as `def {target.rsplit('.', 1)[-1]}(input_shape, n_classes, **params)`."
            )
        unknown = sorted(given - named)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(named - supplied), n=1)
            hint = f"Did you mean {key}.{close[0]}? " if close else ""
            takes = ", ".join(sorted(named - supplied)) or "nothing else"
            raise ConfigError(
                f"{key}._target_={target} takes no argument {unknown[0]!r} ({key}.{unknown[0]}). {hint}"
                f"It takes: {takes}."
            )
    required = [
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in given | supplied
        and name != "self"
    ]
    if required:
        raise ConfigError(
            f"{key}._target_={target} requires {', '.join(required)}, which the config does not give: add "
            f"{' '.join(f'+{key}.{name}=...' for name in required)}."
        )


def needs_keras(settings: dict[str, Any]) -> bool:
    """Whether the config names Keras objects runner must build to check (a user's own)."""
    trainer, optimizer = settings["trainer"], settings["optimizer"]
    return (
        not built_in("model", settings["model"])
        or not built_in("optimizer", optimizer)
        or is_target(optimizer.get("learning_rate"))
        or any(metric != "accuracy" for metric in trainer["metrics"])
        or trainer["loss"] != group_option("trainer", "default")["loss"]
        or bool(settings.get("callbacks"))
        or bool(trainer.get("save_model"))
    )


def build_key(settings: dict[str, Any]) -> str:
    """What check_build depends on: two jobs with the same key build the same things."""
    import json

    parts = [settings[key] for key in ("model", "optimizer", "callbacks", "objective") if key in settings]
    parts += [settings["data"], settings["trainer"]["loss"], settings["trainer"]["metrics"]]
    return json.dumps(parts, sort_keys=True, default=str)


def check_datasets(checked: list[dict[str, Any]]) -> None:
    """Load each distinct data set of these jobs' settings once, split it once per split and seed,
    and build each distinct network once: what would fail before any training."""
    from runner.data import check_data

    datasets: dict[str, Dataset] = {}
    built: set[str] = set()
    split: set[str] = set()
    for settings in checked:
        data_key = repr(settings["data"])
        split_key = repr((data_key, settings["trainer"]["validation_split"], settings["trainer"]["seed"]))
        if split_key not in split:
            datasets[data_key] = check_data(settings, datasets.get(data_key))
            split.add(split_key)
        key = build_key(settings)
        if key not in built:  # each distinct network, optimizer, metrics... built once
            check_build(settings, datasets[data_key])
            built.add(key)


def check_build(settings: dict[str, Any], dataset: Dataset) -> None:
    """Build what the config names, as training will, on the data set's shape: the network, the
    optimizer, the loss, the metrics (the objective among the logged ones) and the callbacks."""
    check_class_weight(settings["trainer"].get("class_weight"), dataset)
    if not needs_keras(settings):
        return
    import numpy as np

    devices.prepare_tensorflow()  # quietly, as the workers do
    import keras

    from runner import objects
    from runner.model import build_network, build_optimizer

    keras.utils.clear_session()  # Keras numbers metrics built before: auc, auc_1...
    model, trainer = settings["model"], settings["trainer"]
    if model["_target_"] != BUILT_IN_MODEL:
        shape = tuple(int(size) for size in dataset.features.shape[1:])
        network = _built("model", model["_target_"], lambda: build_network(model, shape, dataset.n_classes))
        if not isinstance(network, keras.Model):
            raise ConfigError(
                f"model._target_={model['_target_']} returned a {type(network).__name__}, not a keras.Model. "
                "Return the model (uncompiled), e.g. `return keras.Sequential([...])`."
            )
        sample = np.zeros((2, *shape), "float32")
        output = _built("model", model["_target_"], lambda: network(sample))
        if isinstance(output, (list, tuple, dict)):
            got = f"{len(output)} outputs"
        else:
            got = f"outputs of shape {tuple(output.shape)}"
        if got != f"outputs of shape {(2, dataset.n_classes)}":
            raise ConfigError(
                f"model._target_={model['_target_']} gives {got} for a batch of 2 samples of {shape}; runner "
                f"needs one output per class: (2, {dataset.n_classes}). End the model with "
                "keras.layers.Dense(n_classes, activation='softmax')."
            )
        check_probabilities(model["_target_"], np.asarray(output), trainer["loss"])
    _built(
        "optimizer",
        settings["optimizer"]["_target_"],
        lambda: build_optimizer(settings["optimizer"]),
        hint="Another optimizer than the preset's starts from optimizer=custom, which sets only the learning rate.",
    )
    _built("trainer", "loss", lambda: objects.check_loss(trainer["loss"]), what=f"trainer.loss={trainer['loss']}")
    logged = _built(
        "trainer", "metrics", lambda: objects.logged_names(trainer["metrics"]), what="trainer.metrics",
        hint="Keras' names include auc, precision, recall, f1_score, top_k_categorical_accuracy; or give a node, "
        "e.g. {_target_: keras.metrics.AUC, curve: PR}.",
    )  # fmt: skip
    if "objective" in settings:
        check_logged(settings["objective"]["metric"], logged)
    callbacks = _built("callbacks", "", lambda: objects.build_callbacks(settings.get("callbacks")), what="callbacks")
    checkpoints = [
        callback
        for callback in callbacks
        if isinstance(callback, keras.callbacks.ModelCheckpoint) and not callback.save_weights_only
    ]
    if model["_target_"] != BUILT_IN_MODEL and (trainer.get("save_model") or checkpoints):
        why = "trainer.save_model=true" if trainer.get("save_model") else "the checkpoint callback"
        _built(
            "model", model["_target_"], network.get_config, verb="saved",
            hint=f"{why} needs a model Keras can save: give a subclassed model get_config(), or build it with "
            "the functional API.",
        )  # fmt: skip


def check_probabilities(target: str, output: Any, loss: Any) -> None:
    """A cross-entropy on probabilities (Keras' default) needs outputs that are probabilities."""
    import numpy as np

    if loss not in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        return  # a loss node (from_logits, say) or another loss: the user's choice
    rows = output.sum(axis=-1)
    if (output < -1e-6).any() or (output > 1 + 1e-6).any() or not np.allclose(rows, 1.0, atol=1e-3):
        raise ConfigError(
            f"model._target_={target} gives outputs that are not probabilities (a sample's sum to {rows[0]:.3g}), "
            f"and trainer.loss={loss} expects them, as do the metrics (accuracy, AUC...). End the model with "
            "keras.layers.Dense(n_classes, activation='softmax')."
        )


def check_class_weight(weights: Any, dataset: Dataset) -> None:
    """An explicit class_weight names classes by their index (0 is the first class name, sorted)."""
    if not isinstance(weights, dict):
        return
    valid = {str(index) for index in range(dataset.n_classes)}
    wrong = [key for key in weights if str(key) not in valid]
    if wrong:
        classes = ", ".join(f"{index}={name}" for index, name in enumerate(dataset.class_names[:12]))
        raise ConfigError(
            f"Invalid trainer.class_weight key {wrong[0]!r}: give each class by its index, here {classes}, "
            "e.g. 'trainer.class_weight={0:1.0,1:5.0}'."
        )


def _built(
    key: str,
    target: str,
    build: Any,
    what: str | None = None,
    hint: str = "Fix it before training.",
    verb: str = "built",
) -> Any:
    """build(), with what it raises as one line naming the setting."""
    try:
        return build()
    except ConfigError:
        raise
    except Exception as error:
        while error.__cause__ is not None:  # instantiate's wrapper: the builder's own error
            error = error.__cause__
        text = " ".join(str(error).split())  # Keras' messages run over several lines
        text = text if len(text) <= 240 else text[:237] + "..."
        where = what or f"{key}._target_={target}"
        raise ConfigError(f"{where} can't be {verb}: {type(error).__name__}: {text.rstrip('.')}. {hint}") from None
