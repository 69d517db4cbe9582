"""Config -> keras.Model and keras.optimizers.Optimizer."""

from __future__ import annotations

from typing import Any

import keras

from runner.config import OPTIMIZERS, hidden_layer_sizes

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


def build_model(model: dict[str, Any], n_features: int, n_classes: int, name: str | None = None) -> keras.Sequential:
    """The notes' network: Dense hidden layers with normalization and dropout between them."""
    sizes = hidden_layer_sizes(model)
    layers: list[keras.layers.Layer] = [keras.Input(shape=(n_features,))]
    for index, units in enumerate(sizes):
        if index > 0:
            if model["normalization"] == "batch":
                layers.append(keras.layers.BatchNormalization())
            elif model["normalization"] == "layer":
                layers.append(keras.layers.LayerNormalization())
            if model["dropout_rate"] > 0:
                layers.append(keras.layers.Dropout(model["dropout_rate"]))
        layers.append(
            keras.layers.Dense(
                units,
                activation=model["hidden_activation"],
                kernel_initializer=build_initializer(model["weights_initializer"], model["weights_scale"]),
                bias_initializer=build_initializer(model["bias_initializer"]),
                kernel_regularizer=build_regularizer(model),
                name=f"hidden_{index + 1}",
            )
        )
    layers.append(keras.layers.Dense(n_classes, activation=model["output_activation"], name="output"))
    return keras.Sequential(layers, name=_model_name(name))


def _model_name(name: str | None) -> str | None:
    """Keras rejects '/' in names; the notes' labels like 'Learning-Rate-0.01' are fine."""
    return None if name is None else name.replace("/", "_")


def build_optimizer(optimizer: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The named Keras optimizer with every hyperparameter of its config node (nulls left out)."""
    options = {key: value for key, value in optimizer.items() if key != "name" and value is not None}
    return getattr(keras.optimizers, OPTIMIZERS[optimizer["name"]])(**options)
