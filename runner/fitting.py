"""Fitting one network: a compiled model (built, or one this process kept), the input pipeline,
and `model.fit`. Only Keras' and TensorFlow's public APIs."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from runner.data import Split, one_hot
from runner.model import build_model, build_optimizer
from runner.objects import build_callbacks, build_loss, build_metrics, sparse_labels

# This process's last few compiled models, by what their traced steps depend on (the network,
# the optimizer but its learning rate, loss and metrics), the most recently used last.
_kept: OrderedDict[str, keras.Model] = OrderedDict()
KEEP_MODELS = 6
_COLLECT_EVERY = 5  # keras.utils.clear_session's full garbage collection, every few new models
_new_models = 0


def fit_model(
    settings: dict[str, Any],
    split: Split,
    n_classes: int,
    name: str | None,
    history: keras.callbacks.History | None = None,
    telemetry=None,
    callbacks: list | None = None,
    reuse: bool = True,
    epoch_callbacks: list | None = None,
) -> keras.callbacks.History:
    """Seed, build, compile and fit; returns the History (also after an early stop on NaN). With a
    `telemetry` callback the train step records gradient statistics; `reuse=False` builds a model
    of the caller's own (the course API's history.model). `epoch_callbacks` act per epoch only."""
    trainer = settings["trainer"]
    gradients = telemetry is not None and telemetry.gradients
    sparse = sparse_labels(trainer["loss"])
    train, validation, steps = input_pipeline(
        split, n_classes, trainer["batch_size"], trainer["seed"], trainer["epochs"], sparse
    )
    own = [*build_callbacks(settings.get("callbacks")), *(callbacks or [])]
    # A whole epoch per call of the compiled step, unless a progress bar or a callback of the
    # user's may act per batch; runner's own callbacks act per epoch.
    per_call = 1 if trainer["verbose"] or own else steps
    model = compiled_model(settings, split.x_train.shape[1:], n_classes, name, gradients, reuse, per_call)
    history = history if history is not None else keras.callbacks.History()
    model.fit(
        train,
        validation_data=validation,
        epochs=trainer["epochs"],
        steps_per_epoch=steps,
        shuffle=False,  # the stream is in the seed's order
        verbose=trainer["verbose"],
        class_weight=class_weights(trainer.get("class_weight"), split.y_train, n_classes),
        callbacks=[
            history,
            keras.callbacks.TerminateOnNaN(),
            *([telemetry] if telemetry is not None else []),
            *(epoch_callbacks or []),
            *own,
        ],
    )
    return history


def split_scores(
    model: keras.Model, split: Split, n_classes: int, batch_size: int, sparse: bool = False
) -> dict[str, float]:
    """The trained model's loss and metrics on its training and validation splits, with the weights
    training ended with (dropout off; an early stop's restored ones, where it restored them):
    `train_eval_*` and `val_eval_*`, a train/validation gap free of dropout's noise."""
    scores = {}
    for name, x, y in (("train", split.x_train, split.y_train), ("val", split.x_val, split.y_val)):
        labels = y.astype("int64") if sparse else one_hot(y, n_classes)
        logs = model.evaluate(
            tf.data.Dataset.from_tensor_slices((x, labels)).batch(batch_size), verbose=0, return_dict=True
        )
        scores.update({f"{name}_eval_{key}": float(value) for key, value in logs.items()})
    return scores


def class_weights(setting: Any, labels: np.ndarray, n_classes: int) -> dict[int, float] | None:
    """fit's class_weight: none, `balanced` (n / (classes x count) on the training split, as
    scikit-learn computes it), or the user's {class index: weight} with 1.0 for the others."""
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.bincount(labels, minlength=n_classes)
        return {index: float(len(labels) / (n_classes * count)) for index, count in enumerate(counts) if count}
    return {index: float(setting.get(index, setting.get(str(index), 1.0))) for index in range(n_classes)}


def compiled_model(
    settings: dict[str, Any],
    input_shape: tuple[int, ...],
    n_classes: int,
    name: str | None,
    gradients: bool,
    reuse: bool = True,
    steps_per_execution: int = 1,
) -> keras.Model:
    """A compiled model in the state a fresh build with this seed has: where only the seed or the
    learning rate differ from a model this process kept, that model, with a fresh build's
    variables and optimizer variables assigned, so that its traced steps serve again."""
    trainer = settings["trainer"]
    input_shape = tuple(int(size) for size in input_shape)
    optimizer_settings = traced_settings(settings["optimizer"])
    signature = json.dumps(
        [
            settings["model"], optimizer_settings, trainer["loss"], trainer["metrics"], input_shape, n_classes,
            gradients, trainer.get("class_weight") is not None, steps_per_execution,
        ],
        sort_keys=True,
        default=str,
    )  # fmt: skip
    kept = take_kept(signature) if reuse else None
    if kept is None:
        _clear_session()
    keras.utils.set_random_seed(trainer["seed"])
    tf.config.experimental.enable_op_determinism()
    model = build_model(settings["model"], input_shape, n_classes, name=name, telemetry=gradients)
    optimizer = build_optimizer(settings["optimizer"])
    if kept is None:
        loss = build_loss(trainer["loss"])
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=build_metrics(trainer["metrics"]),
            steps_per_execution=steps_per_execution,
        )
        build_state(model, input_shape, n_classes, sparse_labels(trainer["loss"]))
    else:
        model = adopt_state(kept, model, optimizer)
    if reuse:
        keep(signature, model)
    return model


def traced_settings(optimizer: dict[str, Any]) -> dict[str, Any]:
    """The optimizer settings a traced step depends on: all but a constant learning rate (a
    variable, assigned on reuse; a schedule is traced into the step)."""
    settings = dict(optimizer)
    if isinstance(settings.get("learning_rate"), (int, float)):
        del settings["learning_rate"]
    return settings


def take_kept(signature: str) -> keras.Model | None:
    """The compiled model this process kept under `signature` (no longer kept), or None."""
    return _kept.pop(signature, None)


def keep(signature: str, model: keras.Model) -> None:
    _kept[signature] = model
    while len(_kept) > KEEP_MODELS:
        _kept.popitem(last=False)


def adopt_state(kept: keras.Model, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    """`kept` in the state of the fresh `model` and `optimizer` of the same structure: its weights
    and seed generators' states, then the optimizer's iterations, learning rate and slots."""
    for target, source in zip(kept.variables, model.variables, strict=True):
        target.assign(source)
    optimizer.build(kept.trainable_variables)
    for target, source in zip(kept.optimizer.variables, optimizer.variables, strict=True):
        target.assign(source)
    return kept


def forget_models() -> None:
    """Keep no compiled model (after a fit that broke off, say)."""
    _kept.clear()


def build_state(model: keras.Model, input_shape: tuple[int, ...], n_classes: int, sparse: bool = False) -> None:
    """Create the optimizer's, the loss's and the metrics' variables before fit, on one zero batch:
    TensorFlow traces a step that creates variables twice (tests/test_fitting.py counts)."""
    x = np.zeros((1, *input_shape), "float32")
    y = np.zeros((1,), "int64") if sparse else np.zeros((1, n_classes), "float32")
    y_pred = model(x)
    model.compute_loss(x=x, y=y, y_pred=y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()
    model.optimizer.build(model.trainable_variables)


def _clear_session() -> None:
    """keras.utils.clear_session() before a new model, with its full garbage collection only every
    few models: it returns the same memory each time and costs a fifth of a second."""
    global _new_models
    _new_models += 1
    collect = _new_models % _COLLECT_EVERY == 0
    keras.utils.clear_session(free_memory=collect)


def sample_order(seeds: list[int], size: int, epoch: int) -> np.ndarray:
    """The order of `size` training samples in one epoch for each seed, (size, seeds): drawn here
    rather than by tf.data, so that a packed member and a separate run share it."""
    return np.stack([np.random.default_rng([seed, epoch]).permutation(size) for seed in seeds], axis=-1)


def epoch_batches(seeds: list[int], size: int, epochs: int, batch_size: int) -> tf.data.Dataset:
    """Every epoch's batches of sample indexes, (batch, seeds), each epoch's order made as it
    starts (only one epoch's is held)."""

    def order(epoch):
        return sample_order(seeds, size, int(epoch)).astype("int64")

    def drawn(epoch):
        indexes = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        indexes.set_shape((size, len(seeds)))
        return tf.data.Dataset.from_tensor_slices(indexes).batch(batch_size)

    return tf.data.Dataset.range(epochs).flat_map(drawn)


def input_pipeline(
    split: Split, n_classes: int, batch_size: int, seed: int, epochs: int, sparse: bool = False
) -> tuple[tf.data.Dataset, tf.data.Dataset, int]:
    """Every epoch's training batches in one stream, in the seed's order (fit reads `steps` of
    them per epoch); the validation set batched once and cached; `steps`. Their batch dimension
    is unknown, so the last, smaller batch reuses the traced step instead of tracing another.
    Labels are one-hot, or class indexes for a sparse loss."""

    def labels(values: np.ndarray) -> np.ndarray:
        return values.astype("int64") if sparse else one_hot(values, n_classes)

    size = len(split.x_train)
    x, y = tf.constant(split.x_train), tf.constant(labels(split.y_train))
    train = epoch_batches([seed], size, epochs, batch_size).map(
        lambda indexes: (tf.gather(x, indexes[:, 0]), tf.gather(y, indexes[:, 0]))
    )
    validation = tf.data.Dataset.from_tensor_slices((split.x_val, labels(split.y_val)))
    return train, validation.batch(batch_size).cache(), -(-size // batch_size)
