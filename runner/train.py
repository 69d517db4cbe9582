"""One variant: seed, build, compile, fit, and write its artifacts.

A variant that diverges or raises is recorded (status diverged or failed) rather
than stopping the sweep; only user mistakes (ConfigError) stop the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config import ConfigError, check_metric, validate
from runner.data import Dataset, Split, load_dataset, one_hot, split_dataset

log = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
DIAGNOSTICS_FILE = "diagnostics.csv"


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


def check_settings(cfg: DictConfig) -> dict[str, Any]:
    """Resolve and validate a composed config; load its data set to check that too."""
    settings = settings_of(cfg)
    validate(settings)
    check_metric(settings["metric"])
    return settings


def run(cfg: DictConfig) -> float | None:
    """Hydra task body: train the variant `cfg` describes into Hydra's output folder."""
    from hydra.core.hydra_config import HydraConfig

    settings = check_settings(cfg)
    dataset = load_dataset(settings["data"])
    split = split_dataset(dataset, settings["trainer"]["validation_split"], settings["trainer"]["seed"])
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    write_atomic(output_dir / CONFIG_FILE, OmegaConf.to_yaml(settings))
    record = train_variant(
        settings, dataset, split, output_dir, swept=swept_values(cfg), job=HydraConfig.get().job.get("num")
    )
    return record["final_val_accuracy"]


def swept_values(cfg: DictConfig) -> dict[str, Any]:
    """The values this job sets for the sweep's swept keys (empty for a single run)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    parser = OverridesParser.create()
    swept = set(hydra_cfg.sweeper.get("params") or {})
    multirun_file = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if multirun_file.is_file():
        original = OmegaConf.load(multirun_file).hydra.overrides.task
        swept |= {o.get_key_element() for o in parser.parse_overrides(list(original)) if o.is_sweep_override()}
    values = {}
    for override in parser.parse_overrides(list(hydra_cfg.overrides.task)):
        key = override.get_key_element().lstrip("+~")
        if key in swept:
            # A config group (optimizer=adam, init=he_normal) is recorded by its option's name.
            values[key] = override.value() if key in hydra_cfg.runtime.choices else OmegaConf.select(cfg, key)
    return OmegaConf.to_container(OmegaConf.create(values), resolve=True) if values else {}


def fit_model(settings: dict[str, Any], split: Split, n_classes: int, name: str | None, history=None, telemetry=None):
    """Seed, build, compile and fit; returns the Keras History (also on early NaN stop).

    `telemetry` is a TelemetryCallback; with one whose `gradients` is on, the model
    records per-layer gradient statistics in its train_step.
    """
    import keras
    import tensorflow as tf

    from runner.model import build_model, build_optimizer

    trainer = settings["trainer"]
    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(trainer["seed"])
    tf.config.experimental.enable_op_determinism()

    gradients = telemetry is not None and telemetry.gradients
    model = build_model(settings["model"], split.x_train.shape[1], n_classes, name=name, telemetry=gradients)
    model.compile(
        optimizer=build_optimizer(settings["optimizer"]),
        loss=trainer["loss"],
        metrics=list(trainer["metrics"]),
    )
    history = history if history is not None else keras.callbacks.History()
    model.fit(
        split.x_train,
        one_hot(split.y_train, n_classes),
        validation_data=(split.x_val, one_hot(split.y_val, n_classes)),
        epochs=trainer["epochs"],
        batch_size=trainer["batch_size"],
        verbose=trainer["verbose"],
        callbacks=[history, keras.callbacks.TerminateOnNaN(), *([telemetry] if telemetry is not None else [])],
    )
    return history


def train_variant(
    settings: dict[str, Any],
    dataset: Dataset,
    split: Split,
    output_dir: Path,
    swept: dict[str, Any],
    job: int | None = None,
) -> dict[str, Any]:
    """Train one variant and write history.csv and metrics.json into `output_dir`."""
    import keras

    from runner.telemetry import TelemetryCallback, summarize_diagnostics

    history = keras.callbacks.History()
    options = settings.get("telemetry") or {}
    telemetry = None
    if options.get("gradients") or options.get("activations"):
        probe = split.x_val[: options["probe_size"]] if options["activations"] else None
        telemetry = TelemetryCallback(probe, settings["model"]["hidden_activation"], gradients=options["gradients"])
    error = None
    started = time.perf_counter()
    try:
        fit_model(settings, split, dataset.n_classes, settings["label"], history=history, telemetry=telemetry)
    except Exception as exc:  # a failed variant is data, not a crash
        error = f"{type(exc).__name__}: {exc}"
        write_atomic(output_dir / "error.txt", traceback.format_exc())
    seconds = time.perf_counter() - started

    epochs = getattr(history, "history", {}) or {}
    record = summarize_history(epochs, settings["metric"])
    if telemetry is not None:
        write_atomic(output_dir / DIAGNOSTICS_FILE, _table(telemetry.rows).to_csv(index=False))
        record.update(summarize_diagnostics(telemetry.rows))
        if telemetry.nonfinite_epoch is not None and (
            record["diverged_epoch"] is None or telemetry.nonfinite_epoch < record["diverged_epoch"]
        ):
            record.update(status="diverged", diverged_epoch=telemetry.nonfinite_epoch)
    if error is not None:
        record["status"] = "failed"
    record.update(
        name=settings["name"],
        label=settings["label"],
        title=settings["title"],
        metric=settings["metric"],
        data=dataset.name,
        seed=settings["trainer"]["seed"],
        epochs=settings["trainer"]["epochs"],
        seconds=round(seconds, 3),
        swept=swept,
        job=job,
        error=error,
    )
    write_history(output_dir / HISTORY_FILE, epochs)
    write_atomic(output_dir / METRICS_FILE, json.dumps(_finite_or_none(record), indent=2) + "\n")
    log.info(
        "%s: %s, val_accuracy %s after %d epochs (%.1f s)",
        settings["label"],
        record["status"],
        _format(record["final_val_accuracy"]),
        record["epochs_run"],
        seconds,
    )
    return record


def summarize_history(epochs: dict[str, list[float]], metric: str) -> dict[str, Any]:
    """Status, final and best values and the divergence epoch of one history."""
    losses = np.asarray(epochs.get("loss", []), dtype=float)
    bad = np.flatnonzero(~np.isfinite(losses))
    record: dict[str, Any] = {
        "status": "diverged" if bad.size else "completed",
        "diverged_epoch": int(bad[0]) + 1 if bad.size else None,
        "epochs_run": int(losses.size),
    }
    for key in ("accuracy", "val_accuracy", "loss", "val_loss"):
        values = np.asarray(epochs.get(key, []), dtype=float)
        record[f"final_{key}"] = float(values[-1]) if values.size else None
        if key.endswith("accuracy"):
            record[f"best_{key}"] = float(np.nanmax(values)) if np.isfinite(values).any() else None
    values = np.asarray(epochs.get(metric, []), dtype=float)
    if np.isfinite(values).any():
        best = np.nanargmin(values) if metric.endswith("loss") else np.nanargmax(values)
        record["best_epoch"] = int(best) + 1
    else:
        record["best_epoch"] = None
    return record


def _table(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows, columns=["epoch", "layer", "depth", "metric", "value"])


def write_history(path: Path, epochs: dict[str, list[float]]) -> None:
    """One row per epoch (numbered from 1), one column per logged metric."""
    import pandas as pd

    frame = pd.DataFrame({key: list(map(float, values)) for key, values in sorted(epochs.items())})
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    write_atomic(path, frame.to_csv(index=False))


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: a killed job never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or Infinity: write null for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def _format(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"
