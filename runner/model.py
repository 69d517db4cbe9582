"""Config -> keras.Model and keras.optimizers.Optimizer, through each node's `_target_`.

The notes' network is one such target (`mlp`); a user's own builder is another.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from runner.config import hidden_layer_sizes

BUILT_IN = "runner.model.mlp"

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


def mlp(
    input_shape: tuple[int, ...],
    n_classes: int,
    hidden_nodes: int | list[int] = (32, 64),
    depth: int | None = None,
    width: int = 32,
    hidden_activation: str = "relu",
    output_activation: str = "softmax",
    weights_initializer: str = "random_normal",
    weights_scale: float | None = None,
    bias_initializer: str = "zeros",
    residual: bool = False,
    normalization: str = "none",
    dropout_rate: float = 0.0,
    regularizer: str = "none",
    l1: float = 0.01,
    l2: float = 0.01,
    name: str | None = None,
) -> keras.Model:
    """The notes' network: Dense hidden layers with normalization and dropout between them.

    A Sequential model as in the notes; a functional one when `residual` adds skip connections
    (F(x) + x) around the hidden layers whose input has their width."""
    settings = dict(locals())
    inputs = keras.Input(shape=tuple(input_shape))
    blocks, output = mlp_layers(settings)

    if not residual:
        return keras.Sequential(
            [inputs, *(layer for block in blocks for layer in block), output], name=_model_name(name)
        )
    hidden = inputs
    for index, block in enumerate(blocks):
        skip = hidden
        for layer in block:
            hidden = layer(hidden)
        if index > 0 and skip.shape[-1] == hidden.shape[-1]:
            hidden = keras.layers.Add(name=f"residual_{index + 1}")([skip, hidden])
    return keras.Model(inputs=inputs, outputs=output(hidden), name=_model_name(name))


def mlp_layers(settings: dict[str, Any]) -> tuple[list[list[keras.layers.Layer]], keras.layers.Layer]:
    """The notes' network's layers, unbuilt, in the order their random seeds are drawn: a block
    per hidden layer (normalization, dropout, Dense), then the output layer."""
    blocks: list[list[keras.layers.Layer]] = []
    normalization, dropout_rate = settings.get("normalization", "none"), settings.get("dropout_rate", 0.0)
    for index, units in enumerate(hidden_layer_sizes(settings)):
        block = []
        if index > 0:
            if normalization == "batch":
                block.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
            elif normalization == "layer":
                block.append(keras.layers.LayerNormalization(name=f"layer_norm_{index}"))
            if dropout_rate > 0:
                block.append(keras.layers.Dropout(dropout_rate, name=f"dropout_{index}"))
        block.append(
            keras.layers.Dense(
                units,
                activation=settings.get("hidden_activation", "relu"),
                kernel_initializer=build_initializer(
                    settings.get("weights_initializer", "random_normal"), settings.get("weights_scale")
                ),
                bias_initializer=build_initializer(settings.get("bias_initializer", "zeros")),
                kernel_regularizer=build_regularizer(settings),
                name=f"hidden_{index + 1}",
            )
        )
        blocks.append(block)
    output = keras.layers.Dense(
        settings["n_classes"], activation=settings.get("output_activation", "softmax"), name="output"
    )
    return blocks, output


def build_network(model: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """The uncompiled network the `model` node's `_target_` builds for this input shape and these
    classes; nested nodes with a `_target_` (a regularizer, say) are built first."""
    from hydra.utils import instantiate

    params = {key: value for key, value in model.items() if key != "_target_"}
    return instantiate(
        {"_target_": model["_target_"]}, input_shape=tuple(input_shape), n_classes=n_classes, _convert_="all", **params
    )


def build_model(
    model: dict[str, Any],
    n_features: int | tuple[int, ...],
    n_classes: int,
    name: str | None = None,
    telemetry: bool = False,
) -> keras.Model:
    """The network of a `model` node, named `name` where it is the notes' own; with `telemetry`
    wrapped so that its train step records per-layer gradient statistics."""
    from runner import telemetry as recorder

    input_shape = (n_features,) if isinstance(n_features, int) else tuple(n_features)
    if model.get("_target_", BUILT_IN) == BUILT_IN:
        params = {key: value for key, value in model.items() if key != "_target_"}
        network = mlp(input_shape, n_classes, **params, name=name)
    else:
        network = build_network(model, input_shape, n_classes)
    return recorder.recording(network, input_shape) if telemetry else network


def _model_name(name: str | None) -> str | None:
    """A Keras-safe model name: labels such as 'relu, N(0,1)' become 'relu__N_0_1_'."""
    if name is None:
        return None
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).lstrip("_-") or "model"


_FLOAT_HYPERPARAMETERS = {
    "learning_rate", "momentum", "rho", "beta_1", "beta_2", "epsilon", "weight_decay", "initial_accumulator_value",
    "clipnorm", "clipvalue", "global_clipnorm", "ema_momentum",
}  # fmt: skip


def build_optimizer(optimizer: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The optimizer the node's `_target_` names, with every hyperparameter of the node (nulls left
    out); a nested node (a learning-rate schedule) is built too. Whole numbers become floats:
    `optimizer.learning_rate=10` is a rate; Keras rejects ints."""
    from hydra.utils import instantiate

    options = {
        key: float(value)
        if key in _FLOAT_HYPERPARAMETERS and isinstance(value, int) and not isinstance(value, bool)
        else value
        for key, value in optimizer.items()
        if key not in ("_target_", "name") and value is not None
    }
    return instantiate({"_target_": optimizer["_target_"]}, _convert_="all", **options)
