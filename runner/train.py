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
from collections import OrderedDict
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
    """Resolve and validate a composed config (the data set is checked when it is loaded)."""
    settings = settings_of(cfg)
    validate(settings)
    check_metric(settings["metric"])
    if (settings.get("logger") or {}).get("name", "none") != "none":
        from runner.loggers import check_logger

        check_logger(settings["logger"])
    return settings


def run(cfg: DictConfig) -> float | None:
    """Hydra task body: train the variant `cfg` describes into Hydra's output folder."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    sweep = read_sweep_file(hydra_cfg)
    settings = check_settings(cfg)
    output_dir = Path(hydra_cfg.runtime.output_dir)
    fingerprint = config_fingerprint(settings)
    done = finished_record(output_dir, fingerprint)
    if done is not None:
        log.debug("%s: %s earlier, skipped (same config in %s)", settings["label"], done["status"], output_dir)
        report_progress(hydra_cfg, sweep, settings["label"], done, note="done earlier, skipped")
        return objective(done)

    freeze_imported_objects()
    dataset = load_dataset(settings["data"])
    split = split_dataset(dataset, settings["trainer"]["validation_split"], settings["trainer"]["seed"])
    configure_threads(settings["trainer"]["threads"] or parallel_share_of_cores(hydra_cfg))
    write_atomic(output_dir / CONFIG_FILE, OmegaConf.to_yaml(settings))
    record = train_variant(
        settings,
        dataset,
        split,
        output_dir,
        swept=swept_values(cfg, sweep),
        job=hydra_cfg.job.get("num"),
        fingerprint=fingerprint,
        sweep=sweep,
    )
    report_progress(hydra_cfg, sweep, settings["label"], record)
    return objective(record)


def objective(record: dict[str, Any]) -> float:
    """What the task returns to a sweeper that optimizes (Optuna): the final val_accuracy, or
    NaN where there is none (a failed variant), which Optuna records as a failed trial."""
    value = record.get("final_val_accuracy")
    return float("nan") if value is None else float(value)


# Knobs that change how a run is shown or logged, not what it computes.
_NOT_FINGERPRINTED = {"label", "title", "metric", "results_dir", "resume", "logger"}


def config_fingerprint(settings: dict[str, Any]) -> str:
    """A hash of everything that determines a variant's result."""
    import hashlib

    relevant = {key: value for key, value in settings.items() if key not in _NOT_FINGERPRINTED}
    relevant["trainer"] = {k: v for k, v in settings["trainer"].items() if k not in ("verbose", "threads")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_record(output_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The metrics.json of an earlier run of the same config that finished (completed or
    diverged, both results); None where it is missing, unreadable, failed or differently set."""
    try:
        record = json.loads((output_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") == fingerprint and record.get("status") in ("completed", "diverged"):
        return record
    return None


SWEEP_FILE = ".sweep.json"


def read_sweep_file(hydra_cfg) -> dict[str, Any]:
    """The sweep's shared facts written by its pre-flight check (see callbacks.check_sweep);
    empty for a single run."""
    from hydra.types import RunMode

    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    try:
        return json.loads((Path(hydra_cfg.sweep.dir) / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def report_progress(hydra_cfg, sweep: dict[str, Any], label: str, record: dict[str, Any], note: str = "") -> None:
    """One line per finished variant: done/total, its status and val_accuracy, elapsed, ETA.
    The total and the start time come from the file the sweep's pre-flight check wrote; time
    counts from its first variant's start (its config.yaml), as a queued sweep waits for the
    sweeps before it."""
    if not sweep.get("total"):
        return  # a single run, or a sweeper whose number of jobs is not known up front
    sweep_dir = Path(hydra_cfg.sweep.dir)
    finished = [path.stat().st_mtime for path in sweep_dir.glob(f"*/{METRICS_FILE}")]
    done = min(len(finished), sweep["total"])
    begun = (path.stat().st_mtime for path in sweep_dir.glob(f"*/{CONFIG_FILE}"))
    elapsed = time.time() - min((mtime for mtime in begun if mtime >= sweep["started"]), default=sweep["started"])
    this_session = sum(mtime >= sweep["started"] for mtime in finished)
    left = sweep["total"] - done
    eta = f", about {_duration(elapsed / this_session * left)} left" if this_session and left else ""
    note = f"; {note}" if note else ""
    print(
        f"[{done}/{sweep['total']}] {label}: {record['status']}, val_accuracy "
        f"{_format(record['final_val_accuracy'])} ({_duration(elapsed)} elapsed{eta}{note})",
        flush=True,
    )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def parallel_share_of_cores(hydra_cfg) -> int | None:
    """Threads per job under a parallel launcher (cores / workers), so workers don't fight;
    None (TensorFlow's default, every core) when jobs run one at a time."""
    from runner.processes import worker_count

    n_jobs = hydra_cfg.launcher.get("n_jobs")
    if not isinstance(n_jobs, int) or n_jobs in (0, 1):
        return None
    return max(1, (os.cpu_count() or 1) // worker_count(n_jobs))


def configure_threads(threads: int | None) -> None:
    """Size TensorFlow's thread pools, once per process (a reused worker keeps its setting)."""
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow is already running in this process


def swept_values(cfg: DictConfig, sweep: dict[str, Any]) -> dict[str, Any]:
    """The values this job sets for the sweep's swept keys (empty for a single run)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    parser = OverridesParser.create()
    swept = set(hydra_cfg.sweeper.get("params") or {}) | set(sweep.get("swept", []))
    values = {}
    for override in parser.parse_overrides(list(hydra_cfg.overrides.task)):
        key = override.get_key_element().lstrip("+~")
        if key in swept:
            # A config group (optimizer=adam, init=he_normal) is recorded by its option's name.
            values[key] = override.value() if key in hydra_cfg.runtime.choices else OmegaConf.select(cfg, key)
    return OmegaConf.to_container(OmegaConf.create(values), resolve=True) if values else {}


def fit_model(
    settings: dict[str, Any],
    split: Split,
    n_classes: int,
    name: str | None,
    history=None,
    telemetry=None,
    callbacks: list | None = None,
    reuse: bool = True,
):
    """Seed, build, compile and fit; returns the Keras History (also on early NaN stop).

    `telemetry` is a TelemetryCallback; with one whose `gradients` is on, the model
    records per-layer gradient statistics in its train_step. `callbacks` are added to fit's.
    `reuse=False` always builds a new model (one the caller may keep, e.g. as history.model).
    """
    import keras

    trainer = settings["trainer"]
    gradients = telemetry is not None and telemetry.gradients
    model = compiled_model(settings, split.x_train.shape[1], n_classes, name, gradients, reuse=reuse)
    history = history if history is not None else keras.callbacks.History()
    train, validation = input_pipeline(split, n_classes, trainer["batch_size"], trainer["seed"])
    model.fit(
        train,
        validation_data=validation,
        epochs=trainer["epochs"],
        shuffle=False,  # the pipeline reshuffles every epoch
        verbose=trainer["verbose"],
        callbacks=[
            history,
            keras.callbacks.TerminateOnNaN(),
            *([telemetry] if telemetry is not None else []),
            *(callbacks or []),
        ],
    )
    return history


# This process's last few compiled models, by the signature of what their traced steps depend on
# (network and optimizer), the most recently used last: [model, its optimizer, its traced train
# step, where the model has since trained with another optimizer]. A few MB each.
_compiled: OrderedDict[tuple[str, str], list] = OrderedDict()
_KEEP_COMPILED = 6


def compiled_model(
    settings: dict[str, Any], n_features: int, n_classes: int, name: str | None, gradients: bool, reuse: bool = True
):
    """A compiled model in exactly the state a fresh build with this seed has.

    Where only the seed or the learning rate differ from one of the last few variants this
    process trained (a sweep's seeds, a learning-rate sweep, the base network that several of a
    command's sweeps start from), that variant's model is reused with the weights,
    random-generator states and optimizer variables of a fresh build assigned to it, so its
    traced train and test steps are reused too: tracing is most of a small variant's time.
    Where only the optimizer differs (an optimizer sweep), the network is reused with another
    optimizer: its test step is kept, and its train step is traced anew, or taken from when the
    network last trained with that optimizer. The histories are identical to a fresh build's
    (tests/test_telemetry.py compares them). `reuse=False` builds anew.
    """
    import keras
    import tensorflow as tf

    from runner.model import build_model, build_optimizer

    trainer = settings["trainer"]
    optimizer = {key: value for key, value in settings["optimizer"].items() if key != "learning_rate"}
    network = json.dumps(
        [settings["model"], trainer["loss"], trainer["metrics"], n_features, n_classes, gradients],
        sort_keys=True,
        default=str,
    )
    signature = network, json.dumps(optimizer, sort_keys=True, default=str)
    kept = _compiled.pop(signature, None) if reuse else None
    same_network = None
    if kept is None and reuse:
        same_network = next((entry for key, entry in reversed(_compiled.items()) if key[0] == network), None)
    if kept is None:
        _clear_session(keras)  # the kept models still train: their steps are traced
    keras.utils.set_random_seed(trainer["seed"])
    tf.config.experimental.enable_op_determinism()
    model = build_model(settings["model"], n_features, n_classes, name=name, telemetry=gradients)
    fresh = build_optimizer(settings["optimizer"])
    if kept is None and same_network is None:
        model.compile(optimizer=fresh, loss=trainer["loss"], metrics=list(trainer["metrics"]))
        _build_state(model, n_features, n_classes)
    else:
        reused = kept[0] if kept is not None else same_network[0]
        for target, source in zip(reused.variables, model.variables, strict=True):
            target.assign(source)
        fresh.build(reused.trainable_variables)
        if kept is not None:
            _use_optimizer(reused, kept[1], kept[2])
            if not reused.optimizer.built:
                reused.optimizer.build(reused.trainable_variables)
            for target, source in zip(reused.optimizer.variables, fresh.variables, strict=True):
                target.assign(source)
        else:
            _use_optimizer(reused, fresh, None)  # its train step is traced anew at the next fit
        model = reused
    if reuse:
        _compiled[signature] = [model, model.optimizer, None]
        while len(_compiled) > _KEEP_COMPILED:
            _compiled.popitem(last=False)
    return model


def _use_optimizer(model, optimizer, train_function) -> None:
    """Switch a kept model to another of its optimizers, with the train step traced for it (None:
    not traced yet), keeping the one it had for when a variant uses it again."""
    if model.optimizer is optimizer:
        return
    for entry in _compiled.values():
        if entry[0] is model and entry[1] is model.optimizer:
            entry[2] = model.train_function
    model.optimizer = optimizer
    model.train_function = train_function


def _build_state(model, n_features: int, n_classes: int) -> None:
    """Create the optimizer's and the metrics' variables before fit. Keras' TensorFlow trainer
    otherwise creates them while tracing the first train step, and TensorFlow then traces
    that step a second time, as it does for any function that created variables: about a
    quarter of a small variant's time. Keras builds them this way itself under a distribution strategy;
    where a Keras version lacks the method, the step is just traced twice."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        batch = (np.zeros((1, n_features), "float32"), np.zeros((1, n_classes), "float32"))
        symbolic_build(data_batch=batch)


_COLLECT_EVERY = 5
_models_since_collect = 0
_custom_gradients_before: set[str] | None = None


def _clear_session(keras) -> None:
    """Forget the previous model: keras.utils.clear_session(), with the full garbage collection it
    forces only every few models (it costs 0.2 s a time, and returns the same memory), and the
    gradient functions tf.custom_gradient registered since this process's first model.

    Those stay in TensorFlow's global gradient registry for good, each holding the whole traced
    graph it was made in (tensorflow/tensorflow#97697); Keras' optimizer sums the gradients over
    replicas through one even with a single replica, so every newly traced model kept its train
    step's graph alive, about 5 MB (benchmarks/memory_growth.py). A registered function is only
    looked up while differentiating through its op, which nothing does once the step is traced."""
    global _models_since_collect, _custom_gradients_before
    registry = _gradient_registry()
    custom = {name for name in registry if name.startswith("CustomGradient-")}
    if _custom_gradients_before is None:
        _custom_gradients_before = custom
    for name in custom - _custom_gradients_before:
        del registry[name]
    _models_since_collect += 1
    collect = _models_since_collect >= _COLLECT_EVERY
    if collect:
        _models_since_collect = 0
    keras.utils.clear_session(free_memory=collect)


_frozen = False  # set in the fork server that workers come from (runner.preload), inherited by them


def freeze_imported_objects() -> None:
    """Once per process that runs jobs (not the course API's, which is the user's own): import
    TensorFlow and Keras with the garbage collector off, then take every object alive (half a
    million, nearly all of them the loaded modules') out of its sight for good, gc.freeze().

    Its collections during those imports found next to no garbage (6,000 objects) and cost 0.6 s
    of their 3.3 s; its full collections later traversed them all, again and again, though none
    of them ever becomes garbage: 0.57 s of 7.3 s for 12 Iris variants in one process, 0.25 s
    after freezing. A flag says it is done (gc's own count of frozen objects walks them all:
    25 ms). The fork server does it once for all its workers (runner.preload), as gc.freeze's
    documentation advises before forking."""
    global _frozen
    if _frozen:
        return
    import gc

    gc.disable()
    try:
        import keras  # noqa: F401  (TensorFlow)
    finally:
        gc.freeze()
        gc.enable()
    _frozen = True


def _gradient_registry() -> dict[str, Any]:
    """TensorFlow's table of registered gradient functions by op type (private: an empty dict
    where a TensorFlow version no longer has it, and the leak is then back)."""
    from tensorflow.python.framework import ops

    table = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return table if isinstance(table, dict) else {}


def input_pipeline(split: Split, n_classes: int, batch_size: int, seed: int):
    """tf.data pipelines: the training set reshuffled every epoch (as fit(shuffle=True) does with
    arrays), the validation set batched once and cached. Their batch dimension is unknown, so the
    last, smaller batch reuses the traced step instead of tracing a second one."""
    import tensorflow as tf

    train = (
        tf.data.Dataset.from_tensor_slices((split.x_train, one_hot(split.y_train, n_classes)))
        .shuffle(len(split.x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )
    validation = tf.data.Dataset.from_tensor_slices((split.x_val, one_hot(split.y_val, n_classes)))
    return train, validation.batch(batch_size).cache()


def train_variant(
    settings: dict[str, Any],
    dataset: Dataset,
    split: Split,
    output_dir: Path,
    swept: dict[str, Any],
    job: int | None = None,
    fingerprint: str | None = None,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one variant and write history.csv and metrics.json into `output_dir` (and to the
    experiment tracker, where `logger` names one)."""
    import keras

    from runner.telemetry import TelemetryCallback, summarize_diagnostics

    tracker = None
    if (settings.get("logger") or {}).get("name", "none") != "none":
        from runner.loggers import open_logger

        tracker = open_logger(settings, output_dir, swept, sweep or {})

    history = keras.callbacks.History()
    options = settings.get("telemetry") or {}
    telemetry = None
    if options.get("gradients") or options.get("activations"):
        probe = split.x_val[: options["probe_size"]] if options["activations"] else None
        telemetry = TelemetryCallback(probe, settings["model"]["hidden_activation"], gradients=options["gradients"])
    error = None
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
        )
    except Exception as exc:  # a failed variant is data, not a crash
        _compiled.clear()  # never reuse a model whose fit broke off
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
        fingerprint=fingerprint,
        error=error,
    )
    write_history(output_dir / HISTORY_FILE, epochs)
    write_atomic(output_dir / METRICS_FILE, json.dumps(_finite_or_none(record), indent=2) + "\n")
    if tracker is not None:
        try:
            tracker.finish(_finite_or_none(record), output_dir)
        except Exception as exc:  # the results are on disk; a tracker's hiccup must not lose them
            log.warning("%s: could not write to %s: %s", settings["label"], settings["logger"]["name"], exc)
    log.debug(
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
