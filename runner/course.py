"""The course notes' Python API, so their hand-written loops run unchanged::

    accuracy_measures = {}
    for optimizer in ["sgd", "rmsprop", "adam", "adagrad"]:
        model_config = base_model_config()
        X, Y = get_data()
        model_config["OPTIMIZER"] = optimizer
        history = create_and_run_model(model_config, X, Y, "Optimizer-" + optimizer)
        accuracy_measures["Optimizer-" + optimizer] = history.history["accuracy"]
    plot_graph(accuracy_measures, "Compare Optimizers")

Every default comes from `conf/`, and every model is built and fitted by the CLI's code; get_data()
standardizes over all samples, as the notes' helper did (the CLI uses the training split's statistics).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import numpy as np

from runner.config import ConfigError, default_settings, group_option, group_options, validate
from runner.data import OWN_KEYS, Split, load_dataset, one_hot, standardized, stratified_split

# The notes' keys, in the notes' order, and the config key each one stands for.
COURSE_KEYS = {
    "HIDDEN_NODES": "model.hidden_nodes",
    "HIDDEN_ACTIVATION": "model.hidden_activation",
    "OUTPUT_NODES": None,  # the number of classes of the data
    "OUTPUT_ACTIVATION": "model.output_activation",
    "WEIGHTS_INITIALIZER": "model.weights_initializer",
    "BIAS_INITIALIZER": "model.bias_initializer",
    "NORMALIZATION": "model.normalization",
    "OPTIMIZER": "optimizer.name",
    "LEARNING_RATE": "optimizer.learning_rate",
    "REGULARIZER": "model.regularizer",
    "DROPOUT_RATE": "model.dropout_rate",
    "EPOCHS": "trainer.epochs",
    "BATCH_SIZE": "trainer.batch_size",
    "VALIDATION_SPLIT": "trainer.validation_split",
    "VERBOSE": "trainer.verbose",
    "LOSS_FUNCTION": "trainer.loss",
    "METRICS": "trainer.metrics",
}
# Keys beyond the notes that create_and_run_model also accepts.
EXTRA_KEYS = {
    "SEED": "trainer.seed",
    "WEIGHTS_SCALE": "model.weights_scale",
    "L1": "model.l1",
    "L2": "model.l2",
}
_ALL_KEYS = {**COURSE_KEYS, **EXTRA_KEYS}


def _get(settings: dict[str, Any], path: str) -> Any:
    group, key = path.split(".", 1)
    return settings[group][key]


def _set(settings: dict[str, Any], path: str, value: Any) -> None:
    group, key = path.split(".", 1)
    settings[group][key] = value


def base_model_config() -> dict[str, Any]:
    """A fresh dict of the notes' keys, with the defaults of conf/ (the base network on Iris)."""
    settings = default_settings()
    config = {}
    for key, path in COURSE_KEYS.items():
        config[key] = load_dataset(settings["data"]).n_classes if path is None else _get(settings, path)
    if config["REGULARIZER"] == "none":
        config["REGULARIZER"] = None
    return config


def get_data(name: str = "iris", **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Standardized features X and one-hot labels Y of a data set (Iris: 150x4 and 150x3).

    `options` set the data set's knobs, e.g. get_data("csv", path="my.csv", target="label").
    """
    available = [option for option in group_options("data") if option != "custom"]  # the notes' API takes no loader
    if name not in available:
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f"Did you mean get_data({close[0]!r})? " if close else ""
        choices = ", ".join(map(repr, available))
        raise ConfigError(f"get_data({name!r}): no such data set. {hint}Choose one of: {choices}.")
    data = group_option("data", name)
    own = [key for key in data if key not in OWN_KEYS]
    unknown = set(options) - set(own)
    if unknown:
        raise ConfigError(
            f"get_data({name!r}) has no option {', '.join(sorted(unknown))}. "
            f"Its options are: {', '.join(own) or 'none'}."
        )
    data.update(options)
    if name in ("csv", "synthetic"):
        names = {f"data.{key}": key for key in data}
        validate({**default_settings(), "data": data}, names, example=f"get_data({name!r}, {{name}}={{value!r}})")
    dataset = load_dataset(data)
    return standardized(dataset), one_hot(dataset.labels, dataset.n_classes)


def settings_from_course(model_config: dict[str, Any]) -> dict[str, Any]:
    """Turn the notes' dict into runner's settings, with the optimizer's own defaults from conf/."""
    unknown = [key for key in model_config if key not in _ALL_KEYS]
    if unknown:
        raise ConfigError(
            f"Unknown key(s) in model_config: {', '.join(map(repr, unknown))}. "
            f"Valid keys are: {', '.join(_ALL_KEYS)}. Start from base_model_config() and change its values."
        )
    settings = default_settings()
    name = model_config.get("OPTIMIZER", settings["optimizer"]["name"])
    optimizers = group_options("optimizer")
    if name not in optimizers:
        raise ConfigError(f"Invalid OPTIMIZER={name!r}: not a known optimizer. Choose one of: {', '.join(optimizers)}.")
    settings["optimizer"] = group_option("optimizer", name)
    for key, value in model_config.items():
        path = _ALL_KEYS[key]
        if path is not None:
            # None is "none", as the notes' helper added no layer and no penalty for it.
            _set(settings, path, "none" if key in ("REGULARIZER", "NORMALIZATION") and value is None else value)
    settings.update(name="course", title="", label="course", metric="accuracy")
    validate(settings, names={path: key for key, path in _ALL_KEYS.items() if path})
    return settings


def create_and_run_model(model_config: dict[str, Any], X: Any, Y: Any, model_name: str):
    """Build, compile and fit the notes' model on a stratified split of X, Y; return the History."""
    from runner import devices

    with devices.quiet_stderr():  # not TensorFlow's start-up lines in the notebook
        from runner.fitting import fit_model
    devices.prepare_tensorflow()
    settings = settings_from_course(model_config)
    features = np.asarray(X, dtype="float32")
    targets = np.asarray(Y)
    if features.ndim != 2 or len(features) != len(targets):
        raise ConfigError(
            f"X must be a 2-D array with one row per sample and Y must have as many rows; got X {features.shape} "
            f"and Y {targets.shape}. Use X, Y = get_data()."
        )
    labels = targets.argmax(axis=1) if targets.ndim == 2 else targets.astype("int64")
    n_classes = model_config.get("OUTPUT_NODES") or int(labels.max()) + 1
    if targets.ndim == 2 and targets.shape[1] != n_classes:
        raise ConfigError(
            f"Invalid OUTPUT_NODES={n_classes}: Y has {targets.shape[1]} classes (columns). "
            f"Set model_config['OUTPUT_NODES'] = {targets.shape[1]}."
        )
    x_train, x_val, y_train, y_val = stratified_split(
        features, labels, settings["trainer"]["validation_split"], settings["trainer"]["seed"]
    )
    split = Split(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
    # A new model each call: the notes keep each history, and history.model with it.
    return fit_model(settings, split, n_classes, model_name, reuse=False)


def plot_graph(
    measures: dict[str, list[float]], title: str, folder: str | Path = "results", ylabel: str | None = None
) -> Path:
    """One line per key over epochs, saved as a PNG under `folder`; returns its path. The y axis is
    labelled `ylabel`, else "loss" where the title names it, "accuracy" where every value lies in
    [0, 1] (then the axis spans 0 to 1), and "value" otherwise."""
    import pandas as pd

    from runner.plots import plot_metric

    if not measures:
        raise ValueError("plot_graph() needs at least one series, e.g. {'Optimizer-sgd': history.history['accuracy']}.")
    values = np.asarray([value for series in measures.values() for value in series], dtype=float)
    finite = values[np.isfinite(values)]
    if ylabel is None:
        bounded = finite.size and finite.min() >= 0 and finite.max() <= 1
        ylabel = "loss" if "loss" in title.lower() else "accuracy" if bounded else "value"
    rows = [
        {"variant": label, "run": label, "epoch": epoch, "metric": ylabel, "value": float(value)}
        for label, values in measures.items()
        for epoch, value in enumerate(values, start=1)
    ]
    histories = pd.DataFrame(rows, columns=["variant", "run", "epoch", "metric", "value"])
    runs = pd.DataFrame(
        {
            "variant": list(measures),
            "status": [
                "completed" if np.isfinite(np.asarray(v, float)).all() else "diverged" for v in measures.values()
            ],
        }
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower() or "plot"
    path = plot_metric(histories, runs, ylabel, title, folder / f"{slug}.png", ylabel=ylabel)
    _show_in_notebook(path)
    return path


def plot_accuracy(measures: dict[str, list[float]], folder: str | Path = "results") -> Path:
    """plot_graph() with the default title "Accuracy"."""
    return plot_graph(measures, "Accuracy", folder)


def _show_in_notebook(path: Path) -> None:
    """Inside Jupyter, show the saved PNG inline; elsewhere do nothing (never block)."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and "IPKernelApp" in shell.config:
        display(Image(filename=str(path)))
