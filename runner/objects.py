"""Config -> the Keras losses, metrics and callbacks a trainer uses: a name Keras knows, or a
node with `_target_` (hydra.utils.instantiate builds it, nested nodes first)."""

from __future__ import annotations

from typing import Any

import keras

# Passed to compile as they are: Keras picks categorical or sparse accuracy from the labels.
AS_GIVEN = ("accuracy",)


# Metrics that Keras, by default, reports per class; by name they are the macro average.
PER_CLASS = {"f1_score": keras.metrics.F1Score, "fbeta_score": keras.metrics.FBetaScore}


def check_scalar(metrics: list[Any]) -> None:
    """Each metric reports one number per epoch (history.csv has a column per metric)."""
    for metric in metrics:
        if isinstance(metric, tuple(PER_CLASS.values())) and getattr(metric, "average", "") is None:
            raise ValueError(
                f"{type(metric).__name__} with average=None reports one value per class; give average: macro "
                "(or micro, weighted), or the name f1_score"
            )


def instantiated(node: dict[str, Any]) -> Any:
    from hydra.utils import instantiate

    return instantiate(node, _convert_="all")


def sparse_labels(loss: Any) -> bool:
    """Whether the loss takes class indexes (sparse_categorical_crossentropy) rather than one-hot."""
    if isinstance(loss, dict):
        name = str(loss.get("_target_", ""))
    elif isinstance(loss, str):
        name = loss
    else:
        name = type(loss).__name__ if not callable(loss) or isinstance(loss, keras.losses.Loss) else loss.__name__
    return "sparse" in name.rsplit(".", 1)[-1].lower()


def build_loss(loss: Any) -> Any:
    """A loss by name stays a name (compile looks it up); a node is built."""
    return instantiated(loss) if isinstance(loss, dict) else loss


def check_loss(loss: Any) -> Any:
    """The loss, looked up where it is a name: an unknown name raises here, not in fit."""
    built = build_loss(loss)
    return keras.losses.get(built) if isinstance(built, str) else built


def build_metric(metric: Any) -> Any:
    """One entry of trainer.metrics as compile takes it: accuracy as the name, another name as the
    Keras metric it names (so its logged name is known), a node built."""
    if isinstance(metric, dict):
        return instantiated(metric)
    if not isinstance(metric, str) or metric in AS_GIVEN:
        return metric
    if metric in PER_CLASS:  # one number per epoch, not one per class
        return PER_CLASS[metric](average="macro", name=metric)
    found = keras.metrics.get(metric)
    cls = found if isinstance(found, type) else type(found) if isinstance(found, keras.metrics.Metric) else None
    if cls is None:  # a function
        return keras.metrics.MeanMetricWrapper(found, name=metric)
    try:
        return cls(name=metric)  # logged under the name given, however many were built before
    except TypeError:
        return found


def build_metrics(metrics: list[Any]) -> list[Any]:
    return [build_metric(metric) for metric in metrics]


def logged_names(metrics: list[Any]) -> set[str]:
    """The names fit logs for these metrics (and the loss), without val_."""
    names = {"loss"}
    built = build_metrics(metrics)
    check_scalar(built)
    for metric in built:
        names.add(metric if isinstance(metric, str) else getattr(metric, "name", getattr(metric, "__name__", "")))
    return names


def build_callbacks(callbacks: dict[str, Any] | None) -> list[keras.callbacks.Callback]:
    """Fresh callbacks of the `callbacks` node, in its order; a node set to null is left out."""
    return [instantiated(node) for node in (callbacks or {}).values() if node is not None]
