"""In a search trial's job: report the objective to the study after every epoch and stop the
training where the pruner says so (runner.search runs the study)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras


def open_trial(settings: dict[str, Any], sweep_dir: Path | str):
    """The Optuna trial this job belongs to (search.trial), or None outside a search."""
    search = settings.get("search") or {}
    if search.get("trial") is None:
        return None
    import optuna
    from hydra.utils import instantiate

    from runner.search import open_storage

    storage = open_storage(sweep_dir)
    name = search["study_name"]
    study = optuna.load_study(study_name=name, storage=storage, pruner=instantiate(search["pruner"]))
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(name), search["trial"])
    return optuna.trial.Trial(study, trial_id)


class PruningCallback(keras.callbacks.Callback):
    """After each epoch: report `value(logs)` (the objective) at step epoch + 1 and stop the
    training where the trial should be pruned; `pruned_epoch` says when."""

    def __init__(self, trial, value: Callable[[dict[str, Any]], float]) -> None:
        super().__init__()
        self.trial, self.value = trial, value
        self.pruned_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self.value(logs or {})
        if value is None or not math.isfinite(value):
            return  # a diverged network is not pruned: it ends as diverged
        self.trial.report(float(value), epoch + 1)
        if self.trial.should_prune():
            self.pruned_epoch = epoch + 1
            self.model.stop_training = True


def logged(metric: str) -> Callable[[dict[str, Any]], float | None]:
    """The objective as the epoch's logs give it."""

    def value(logs: dict[str, Any]) -> float | None:
        return None if logs.get(metric) is None else float(logs[metric])

    return value


def members_mean(metric: str) -> Callable[[dict[str, Any]], float | None]:
    """The objective of a packed model's epoch: its members' mean (None where one is not finite)."""
    import numpy as np

    def value(logs: dict[str, Any]) -> float | None:
        if logs.get(metric) is None:
            return None
        values = np.asarray(logs[metric], dtype=float)
        return float(values.mean()) if np.isfinite(values).all() else None

    return value
