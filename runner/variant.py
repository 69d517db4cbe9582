"""One variant, the Hydra task: check, skip it where resume finds it done, train it, write its files.

A variant that diverges or raises is recorded (status diverged or failed) rather than stopping
the sweep; only user mistakes (ConfigError) stop the run.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from runner import devices, progress
from runner.config import check_settings, objective_mode
from runner.data import Dataset, Split, load_dataset, split_dataset
from runner.results import (
    CONFIG_FILE,
    DIAGNOSTICS_FILE,
    ERROR_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    config_fingerprint,
    finished_record,
    read_sweep_facts,
    write_atomic,
    write_history,
    write_metrics,
)

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float | None:
    """Hydra task body: train the variant `cfg` describes into Hydra's output folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep = read_sweep_facts(Path(hydra_cfg.sweep.dir)) if multirun else {}
    settings = check_settings(cfg)
    output_dir = Path(hydra_cfg.runtime.output_dir)
    fingerprint = config_fingerprint(settings)
    done = finished_record(output_dir, fingerprint)
    if done is not None:
        log.debug("%s: %s earlier, skipped (same config in %s)", settings["label"], done["status"], output_dir)
        line = progress.Finished.of(done, str(output_dir), skipped=True)
        progress.finished(hydra_cfg.sweep.dir if multirun else None, line)
        return objective(done)

    devices.import_tensorflow()
    write_atomic(output_dir / CONFIG_FILE, OmegaConf.to_yaml(settings))
    swept = swept_values(cfg, sweep) if multirun else {}
    try:
        dataset = _pack.dataset(settings) if _pack is not None else load_dataset(settings["data"])
        # A packed seed's split is made with its pack's (runner.packing.member_splits).
        trainer = settings["trainer"]
        split = split_dataset(dataset, trainer["validation_split"], trainer["seed"]) if _pack is None else None
    except Exception:  # the pre-flight check loaded it: recorded as a failed variant all the same
        record = failed_before_training(settings, output_dir, swept, hydra_cfg.job.get("num"), fingerprint)
    else:
        workers = parallel_workers(hydra_cfg, sweep.get("total")) if multirun else None
        devices.configure_threads(devices.job_threads(settings["trainer"]["threads"], workers))
        devices.prepare_tensorflow()
        record = train_variant(
            settings, dataset, split, output_dir, swept, hydra_cfg.job.get("num"), fingerprint, sweep
        )
    progress.finished(hydra_cfg.sweep.dir if multirun else None, progress.Finished.of(record, str(output_dir)))
    return objective(record)


def failed_before_training(
    settings: dict[str, Any], output_dir: Path, swept: dict[str, Any], job: int | None, fingerprint: str
) -> dict[str, Any]:
    """The record of a variant whose data could not be prepared (the exception being handled)."""
    error = traceback.format_exc()
    write_atomic(output_dir / ERROR_FILE, error)
    metric, mode = ranking(settings)
    record = summarize_history({}, metric, mode)
    record.update(
        status="failed",
        name=settings["name"],
        label=settings["label"],
        title=settings["title"],
        metric=metric,
        mode=mode,
        data=settings["data"].get("name") or str(settings["data"]["_target_"]).rsplit(".", 1)[-1],
        seed=settings["trainer"]["seed"],
        epochs=settings["trainer"]["epochs"],
        seconds=0.0,
        swept=swept,
        job=job,
        fingerprint=fingerprint,
        error=error.strip().splitlines()[-1],
    )
    write_metrics(output_dir, record)
    write_history(output_dir / HISTORY_FILE, {})
    return record


def parallel_workers(hydra_cfg, jobs: int | None) -> int | None:
    """How many jobs the sweep's launcher runs side by side on this machine, where it says: its
    workers, or the sweep's jobs where they are fewer."""
    n_jobs = hydra_cfg.launcher.get("n_jobs")
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0:
        return None
    workers = devices.worker_count(n_jobs)
    return min(workers, jobs) if jobs else workers


def objective(record: dict[str, Any]) -> float:
    """What the task returns to a sweeper that optimizes (Optuna): the final value of the
    objective's metric, or NaN where there is none (a failed variant), a failed trial to Optuna."""
    value = record.get(f"final_{record.get('metric', 'val_accuracy')}")
    return float("nan") if value is None else float(value)


def ranking(settings: dict[str, Any]) -> tuple[str, str]:
    """The objective's metric and whether more (max) or less (min) of it is better."""
    objective = settings.get("objective") or {"metric": "val_accuracy"}
    return objective["metric"], objective_mode(objective["metric"], objective.get("mode", "auto"))


def swept_values(cfg: DictConfig, sweep: dict[str, Any]) -> dict[str, Any]:
    """The values this job sets for the sweep's swept keys."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_cfg = HydraConfig.get()
    parser = OverridesParser.create()
    swept = set(hydra_cfg.sweeper.get("params") or {}) | set(sweep.get("swept", []))
    values = {}
    for override in parser.parse_overrides(list(hydra_cfg.overrides.task)):
        key = override.get_key_element().lstrip("+~")
        if key in swept:
            # A config group (optimizer=adam, init=he_normal) is recorded by its option's name.
            values[key] = override.value() if key in hydra_cfg.runtime.choices else OmegaConf.select(cfg, key)
    return OmegaConf.to_container(OmegaConf.create(values), resolve=True) if values else {}


def train_variant(
    settings: dict[str, Any],
    dataset: Dataset,
    split: Split | None,
    output_dir: Path,
    swept: dict[str, Any],
    job: int | None = None,
    fingerprint: str | None = None,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one variant and write history.csv and metrics.json into `output_dir` (and to the
    experiment tracker, where `logger` names one)."""
    import keras
    import tensorflow as tf

    from runner.fitting import fit_model, forget_models, split_scores
    from runner.objects import sparse_labels
    from runner.telemetry import TelemetryCallback, diagnostics_table, summarize_diagnostics

    tracker = None
    if (settings.get("logger") or {}).get("name", "none") != "none":
        from runner.loggers import open_logger

        tracker = open_logger(settings, output_dir, swept, sweep or {})

    options = settings.get("telemetry") or {}
    recorded = options.get("gradients") or options.get("activations")
    search = settings.get("search") or {}
    trial = None
    untrained_pack = _pack is None or _pack.outcomes is None
    if search.get("trial") is not None and untrained_pack:  # a search's trial: the pruner may stop it
        from runner.pruning import open_trial

        trial = open_trial(settings, output_dir.parent)
    outcome = _pack.outcome(settings, dataset, trial) if _pack is not None else None
    pruner = None
    if outcome is not None:  # trained with the other seeds of its pack
        epochs, rows, nonfinite_epoch, seconds, error, scores = (
            outcome.history,
            outcome.rows,
            outcome.nonfinite_epoch,
            outcome.seconds,
            outcome.error,
            outcome.scores,
        )
        if outcome.traceback:
            write_atomic(output_dir / ERROR_FILE, outcome.traceback)
    else:
        if split is None:  # a seed its pack could not train
            split = split_dataset(dataset, settings["trainer"]["validation_split"], settings["trainer"]["seed"])
        history = keras.callbacks.History()
        telemetry = None
        if recorded:
            probe = split.x_val[: options["probe_size"]] if options["activations"] else None
            telemetry = TelemetryCallback(probe, gradients=options["gradients"])
        if trial is not None and search.get("seeds", 1) == 1:
            from runner.pruning import PruningCallback, logged

            pruner = PruningCallback(trial, logged(ranking(settings)[0]))
        elif trial is not None:
            log.debug("%s: seeds of a trial trained one by one are not pruned (packed ones are)", settings["label"])
        error, scores = None, None
        started = time.perf_counter()
        try:
            fit_model(
                settings,
                split,
                dataset.n_classes,
                settings["label"],
                history=history,
                telemetry=telemetry,
                callbacks=tracker.callbacks() if tracker is not None else None,
                epoch_callbacks=[pruner] if pruner is not None else None,
            )
            trainer = settings["trainer"]
            if trainer.get("evaluate_train"):
                sparse = sparse_labels(trainer["loss"])
                scores = split_scores(history.model, split, dataset.n_classes, trainer["batch_size"], sparse)
            if trainer.get("save_model"):
                save_network(history.model, output_dir / MODEL_FILE)
        except Exception as exc:  # a failed variant is data, not a crash
            forget_models()  # never reuse a model whose fit broke off
            error = f"{type(exc).__name__}: {first_line(exc)}"
            write_atomic(output_dir / ERROR_FILE, traceback.format_exc())
        seconds = time.perf_counter() - started
        epochs = getattr(history, "history", {}) or {}
        rows = telemetry.rows if telemetry is not None else []
        nonfinite_epoch = telemetry.nonfinite_epoch if telemetry is not None else None

    metric, mode = ranking(settings)
    record = summarize_history(epochs, metric, mode)
    if recorded:
        write_atomic(output_dir / DIAGNOSTICS_FILE, diagnostics_table(rows))
        record.update(summarize_diagnostics(rows))
        if nonfinite_epoch is not None and (
            record["diverged_epoch"] is None or nonfinite_epoch < record["diverged_epoch"]
        ):
            record.update(status="diverged", diverged_epoch=nonfinite_epoch)
    record.update(scores or {})  # trainer.evaluate_train
    if error is not None:
        record["status"] = "failed"
    pruned_epoch = outcome.pruned_epoch if outcome is not None else pruner.pruned_epoch if pruner else None
    if pruned_epoch is not None and record["status"] == "completed":
        record["status"] = "pruned"  # the search's pruner stopped it: its history so far is kept
    stopped = record["status"] in ("completed", "pruned") and record["epochs_run"] < settings["trainer"]["epochs"]
    record.update(
        stopped_epoch=record["epochs_run"] if stopped else None,  # a callback ended training early
        name=settings["name"],
        label=settings["label"],
        title=settings["title"],
        metric=metric,
        mode=mode,
        data=dataset.name,
        seed=settings["trainer"]["seed"],
        epochs=settings["trainer"]["epochs"],
        seconds=round(seconds, 3),
        threads=tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        packed=outcome.members if outcome is not None else None,
        pack_seconds=round(outcome.pack_seconds, 3) if outcome is not None else None,
        swept=swept,
        job=job,
        fingerprint=fingerprint,
        error=error,
    )
    write_history(output_dir / HISTORY_FILE, epochs)
    write_metrics(output_dir, record)
    if tracker is not None:
        try:
            tracker.finish(record, output_dir)
        except Exception as exc:  # the results are on disk; a tracker's hiccup must not lose them
            log.warning("%s: could not write to %s: %s", settings["label"], settings["logger"]["name"], exc)
    log.debug(
        "%s: %s, val_accuracy %s after %d epochs (%.1f s)",
        settings["label"],
        record["status"],
        progress.number(record["final_val_accuracy"]),
        record["epochs_run"],
        seconds,
    )
    return record


def save_network(model, path: Path) -> None:
    """The trained network as a .keras file that loads with keras.saving.load_model alone: the
    user's own model, not the telemetry's wrapper of it."""
    import keras

    from runner.telemetry import TelemetryModel

    network = model
    if isinstance(model, TelemetryModel):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        wrapped = len(inner) == 1 and len(model.layers) == 2  # Input, then the user's subclassed model
        network = inner[0] if wrapped else keras.Model(model.input, model.output, name=model.name)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.keras")  # a failed save leaves no file
    try:
        network.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def first_line(error: BaseException) -> str:
    """An error's first line of text (some messages start with a newline)."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), "")


def summarize_history(epochs: dict[str, list[float]], metric: str, mode: str | None = None) -> dict[str, Any]:
    """Status, final and best values and the divergence epoch of one history."""
    losses = np.asarray(epochs.get("loss", []), dtype=float)
    bad = np.flatnonzero(~np.isfinite(losses))
    record: dict[str, Any] = {
        "status": "diverged" if bad.size else "completed",
        "diverged_epoch": int(bad[0]) + 1 if bad.size else None,
        "epochs_run": int(losses.size),
    }
    for key in dict.fromkeys(["accuracy", "val_accuracy", "loss", "val_loss", *epochs]):
        values = np.asarray(epochs.get(key, []), dtype=float)
        record[f"final_{key}"] = float(values[-1]) if values.size else None
        if key.endswith("accuracy"):
            record[f"best_{key}"] = float(np.nanmax(values)) if np.isfinite(values).any() else None
    values = np.asarray(epochs.get(metric, []), dtype=float)
    mode = mode or objective_mode(metric)
    if np.isfinite(values).any():
        best = np.nanargmin(values) if mode == "min" else np.nanargmax(values)
        record["best_epoch"] = int(best) + 1
    else:
        record["best_epoch"] = None
    return record


class _Pack:
    """The jobs a worker runs one after the other as members of one packed model (runner.packs
    planned them: their configs differ in trainer.seed, the initial weights' settings and SGD's
    learning rate alone):
    the first to train trains them all (also those a resumed sweep will skip: their results are
    not written)."""

    def __init__(self, members: list[str], configs: list[DictConfig]) -> None:
        from runner.packs import drawn_settings

        self.members = members  # runner.packs.member_key of each job
        self.seeds = [int(config.trainer.seed) for config in configs]
        self.drawn = [drawn_settings(config) for config in configs]
        self.rates = [config.optimizer.get("learning_rate") for config in configs]
        self.outcomes: dict[str, Any] | None = None
        self._dataset: tuple[str, Dataset] | None = None

    def dataset(self, settings: dict[str, Any]) -> Dataset:
        """The members' data set, loaded once."""
        key = repr(settings["data"])
        if self._dataset is None or self._dataset[0] != key:
            self._dataset = key, load_dataset(settings["data"])
        return self._dataset[1]

    def outcome(self, settings: dict[str, Any], dataset: Dataset, trial=None):
        """This job's MemberOutcome (runner.packing), the pack trained on first use (a search's
        `trial` may prune it); None where the packer cannot train it (it trains on its own then)."""
        from runner import packing
        from runner.packs import member_key

        member = member_key(settings)
        if member not in self.members:
            return None
        if self.outcomes is None:
            models = [{**settings["model"], **drawn} for drawn in self.drawn]
            try:
                rates = self.rates if len(set(map(repr, self.rates))) > 1 else None  # an SGD rate sweep's
                outcomes = packing.train_pack(settings, dataset, self.seeds, trial, models=models, learning_rates=rates)
            except packing.PackingError as reason:
                log.info("%s: its pack's members run one by one: %s", settings["label"], reason)
                outcomes = [None] * len(self.members)
            except Exception as exc:  # every member of the pack records the failure
                error, text = f"{type(exc).__name__}: {first_line(exc)}", traceback.format_exc()
                outcomes = [
                    packing.MemberOutcome(history={}, error=error, traceback=text, members=len(self.members))
                    for _ in self.members
                ]
            self.outcomes = dict(zip(self.members, outcomes, strict=True))
        return self.outcomes.get(member)


_pack: _Pack | None = None


@contextmanager
def packed(configs: list[DictConfig]):
    """Within this block the jobs `configs` (seeds of one variant) train as one packed model."""
    from runner.packs import member_key

    global _pack
    members = [member_key(config) for config in configs]
    _pack = _Pack(members, configs) if len(set(members)) == len(members) > 1 else None
    try:
        yield
    finally:
        _pack = None
