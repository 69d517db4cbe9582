"""Experiment trackers people already use: `logger=tensorboard` and `logger=mlflow`.

Off by default (`logger=none`): then nothing here is imported. Each logger gives the Keras
callbacks it needs during fit and writes the variant's results when it has finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Settings shown as hyperparameters (besides the swept ones) in TensorBoard's HParams dashboard.
HPARAM_KEYS = (
    "data.name",
    "model.hidden_activation",
    "model.weights_initializer",
    "model.normalization",
    "model.dropout_rate",
    "model.regularizer",
    "optimizer.name",
    "optimizer.learning_rate",
    "trainer.batch_size",
    "trainer.epochs",
    "trainer.seed",
)
FINAL_METRICS = (
    "final_accuracy",
    "final_val_accuracy",
    "best_val_accuracy",
    "final_loss",
    "final_val_loss",
    "gradient_ratio_first_epoch",
    "gradient_norm_max",
    "dead_fraction_final",
)


def open_logger(settings: dict[str, Any], output_dir: Path, swept: dict[str, Any], sweep: dict[str, Any]):
    name = (settings.get("logger") or {}).get("name", "none")
    if name == "tensorboard":
        return TensorBoardLogger(settings, output_dir, swept)
    if name == "mlflow":
        return MlflowLogger(settings, output_dir, swept, parent_run_id=sweep.get("mlflow_parent_run_id"))
    return None


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"depth": 3}} -> {"model.depth": 3}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return "none" if value is None else json.dumps(value)


class TensorBoardLogger:
    """Keras' TensorBoard callback for the per-epoch curves, then an HParams summary: the
    variant's settings as hyperparameters and its final figures as metrics, so the HParams
    dashboard of `tensorboard --logdir <sweep folder>` compares the variants."""

    def __init__(self, settings: dict[str, Any], output_dir: Path, swept: dict[str, Any]):
        self.options = settings["logger"]
        self.log_dir = output_dir / self.options.get("dir", "tensorboard")
        flat = flatten(settings)
        keys = dict.fromkeys([*HPARAM_KEYS, *swept])
        self.hparams = {
            key: _hparam_value(swept.get(key, flat.get(key))) for key in keys if key in flat or key in swept
        }
        self.trial = output_dir.name

    def callbacks(self) -> list:
        import keras

        return [
            keras.callbacks.TensorBoard(
                log_dir=str(self.log_dir),
                histogram_freq=self.options.get("histogram_freq", 0),
                write_graph=False,
            )
        ]

    def finish(self, record: dict[str, Any], output_dir: Path) -> None:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        writer = tf.summary.create_file_writer(str(self.log_dir))
        with writer.as_default():
            hp.hparams(self.hparams, trial_id=self.trial)
            for metric in FINAL_METRICS:
                if record.get(metric) is not None:
                    tf.summary.scalar(f"hparams/{metric}", record[metric], step=max(record["epochs_run"], 1))
        writer.close()


def tracking_uri(options: dict[str, Any]) -> str:
    """The configured store; else $MLFLOW_TRACKING_URI; else an SQLite file in the results folder."""
    uri = options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(options['store_dir']).resolve() / 'mlflow.db'}"


def mlflow_experiment(client, options: dict[str, Any]) -> str:
    """The id of the MLflow experiment named like the runner experiment (created if new)."""
    name = options["experiment_name"]
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = (Path(options["store_dir"]).resolve() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except Exception:  # created meanwhile by a parallel worker
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def start_parent_run(options: dict[str, Any], sweep_dir: Path, title: str) -> str:
    """One MLflow run for the whole sweep, under which each variant's run is nested."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(options))
    run = client.create_run(
        mlflow_experiment(client, options),
        run_name=f"{options['experiment_name']} sweep {sweep_dir.name}",
        tags={"runner.sweep_dir": str(sweep_dir), "runner.title": title},
    )
    return run.info.run_id


def finish_parent_run(options: dict[str, Any], run_id: str, sweep_dir: Path) -> None:
    """The sweep's summary table and comparison plots as the parent run's artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(options))
    for path in sorted(sweep_dir.glob("*.png")) + [sweep_dir / "summary.csv"]:
        if path.is_file():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status="FINISHED")


class MlflowLogger:
    """Each variant an MLflow run: its settings as params, per-epoch metrics (step = epoch), its
    final figures, and its files as artifacts; nested under the sweep's parent run."""

    def __init__(self, settings: dict[str, Any], output_dir: Path, swept: dict[str, Any], parent_run_id: str | None):
        self.options = settings["logger"]
        self.settings = settings
        self.swept = swept
        self.parent = parent_run_id

    def callbacks(self) -> list:
        return []

    def finish(self, record: dict[str, Any], output_dir: Path) -> None:
        import time

        import pandas as pd
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri(self.options))
        tags = {"runner.status": record["status"], "runner.folder": str(output_dir)}
        if self.parent:
            tags["mlflow.parentRunId"] = self.parent
        run = client.create_run(mlflow_experiment(client, self.options), run_name=self.settings["label"], tags=tags)
        run_id = run.info.run_id
        params = [Param(key, str(value)[:500]) for key, value in flatten(self.settings).items() if key != "logger.name"]
        now = int(time.time() * 1000)
        metrics = [Metric(key, record[key], now, 0) for key in FINAL_METRICS if record.get(key) is not None]
        history = output_dir / "history.csv"
        if history.is_file() and history.stat().st_size:
            for row in pd.read_csv(history).to_dict("records"):
                epoch = int(row.pop("epoch"))
                metrics += [Metric(key, float(value), now, epoch) for key, value in row.items() if pd.notna(value)]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        for name in ("history.csv", "metrics.json", "config.yaml", "diagnostics.csv"):
            if (output_dir / name).is_file():
                client.log_artifact(run_id, str(output_dir / name))
        client.set_terminated(run_id, status="FAILED" if record["status"] == "failed" else "FINISHED")
