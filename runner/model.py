"""Config -> keras.Model and keras.optimizers.Optimizer."""

from __future__ import annotations

import re
from typing import Any

import keras

from runner.config import hidden_layer_sizes

# The `weights_scale` knob names a different argument for each initializer.
_SCALE_ARGUMENT = {
    "random_normal": ("RandomNormal", "stddev"),
    "truncated_normal": ("TruncatedNormal", "stddev"),
    "orthogonal": ("Orthogonal", "gain"),
}


def build_initializer(name: str, scale: float | None = None) -> keras.initializers.Initializer:
    """A fresh initializer per layer: Keras warns that a reused unseeded one repeats its values."""
    if scale is None:
        return keras.initializers.get(name)
    if name == "random_uniform":
        return keras.initializers.RandomUniform(minval=-scale, maxval=scale)
    class_name, argument = _SCALE_ARGUMENT[name]
    return getattr(keras.initializers, class_name)(**{argument: scale})


def build_regularizer(model: dict[str, Any]) -> keras.regularizers.Regularizer | None:
    """The kernel penalty with explicit factors (Keras' own L1L2() defaults to no penalty)."""
    kind = model["regularizer"]
    if kind is None or kind == "none":
        return None
    if not isinstance(kind, str):
        return kind  # a Keras regularizer object from the course API
    if kind == "l1":
        return keras.regularizers.L1(l1=model["l1"])
    if kind == "l2":
        return keras.regularizers.L2(l2=model["l2"])
    return keras.regularizers.L1L2(l1=model["l1"], l2=model["l2"])


def build_model(
    model: dict[str, Any], n_features: int, n_classes: int, name: str | None = None, telemetry: bool = False
) -> keras.Model:
    """The notes' network: Dense hidden layers with normalization and dropout between them.

    A Sequential model as in the notes; a functional one when `residual` adds skip
    connections (F(x) + x) around the hidden layers whose input has their width. With
    `telemetry` the model's train_step records per-layer gradient statistics.
    """
    from runner import telemetry as recorder

    inputs = keras.Input(shape=(n_features,))
    blocks: list[list[keras.layers.Layer]] = []
    for index, units in enumerate(hidden_layer_sizes(model)):
        block = []
        if index > 0:
            if model["normalization"] == "batch":
                block.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
            elif model["normalization"] == "layer":
                block.append(keras.layers.LayerNormalization(name=f"layer_norm_{index}"))
            if model["dropout_rate"] > 0:
                block.append(keras.layers.Dropout(model["dropout_rate"], name=f"dropout_{index}"))
        block.append(
            keras.layers.Dense(
                units,
                activation=model["hidden_activation"],
                kernel_initializer=build_initializer(model["weights_initializer"], model["weights_scale"]),
                bias_initializer=build_initializer(model["bias_initializer"]),
                kernel_regularizer=build_regularizer(model),
                name=f"hidden_{index + 1}",
            )
        )
        blocks.append(block)
    output = keras.layers.Dense(n_classes, activation=model["output_activation"], name="output")

    if not model.get("residual"):
        cls = recorder.TelemetrySequential if telemetry else keras.Sequential
        return cls([inputs, *(layer for block in blocks for layer in block), output], name=_model_name(name))
    hidden = inputs
    for index, block in enumerate(blocks):
        skip = hidden
        for layer in block:
            hidden = layer(hidden)
        if index > 0 and skip.shape[-1] == hidden.shape[-1]:
            hidden = keras.layers.Add(name=f"residual_{index + 1}")([skip, hidden])
    cls = recorder.TelemetryModel if telemetry else keras.Model
    return cls(inputs=inputs, outputs=output(hidden), name=_model_name(name))


def _model_name(name: str | None) -> str | None:
    """A Keras-safe model name: labels such as 'relu, N(0,1)' become 'relu__N_0_1_'."""
    if name is None:
        return None
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).lstrip("_-") or "model"


def build_optimizer(optimizer: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The Keras optimizer of that name, with every hyperparameter of its config node (nulls left
    out). Whole numbers become floats: `optimizer.learning_rate=10` is a rate; Keras rejects ints."""
    options = {
        key: float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for key, value in optimizer.items()
        if key != "name" and value is not None
    }
    return keras.optimizers.get({"class_name": optimizer["name"], "config": options})
