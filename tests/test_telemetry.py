"""Gradient and activation telemetry: the numbers are the real ones, and they show the physics."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from runner.config import default_settings, group_option
from runner.data import load_dataset, split_dataset
from runner.fitting import fit_model
from runner.model import build_model, build_optimizer
from runner.telemetry import TelemetryCallback, kernel_layers, summarize_diagnostics


@pytest.fixture(scope="module")
def digits():
    return split_dataset(load_dataset({"name": "digits"}), validation_split=0.2, seed=0)


def deep_settings(**model):
    settings = default_settings()
    settings["model"].update(depth=10, width=32, **model)
    settings["trainer"].update(epochs=1, batch_size=32)
    return settings


def diagnostics_of(callback) -> pd.DataFrame:
    return pd.DataFrame(callback.rows)


def test_recorded_gradient_norms_match_an_independent_gradient_tape(digits):
    keras.utils.set_random_seed(3)
    model_cfg = {**default_settings()["model"], "hidden_nodes": [16, 8], "hidden_activation": "tanh"}
    model = build_model(model_cfg, 64, 10, telemetry=True)
    model.compile(optimizer=build_optimizer({**group_option("optimizer", "sgd"), "learning_rate": 0.1}),
                  loss="categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    x = digits.x_train[:32]
    y = np.eye(10, dtype="float32")[digits.y_train[:32]]

    # The reference: the same weights, the same batch, an independent tape.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, model(x, training=True)))
    all_reference = tape.gradient(loss, model.trainable_weights)
    kernels = [layer.kernel for layer in kernel_layers(model)]
    position = {id(weight): index for index, weight in enumerate(model.trainable_weights)}
    reference = [all_reference[position[id(kernel)]] for kernel in kernels]
    before = [kernel.numpy().copy() for kernel in kernels]

    callback = TelemetryCallback(probe=x)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    table = diagnostics_of(callback).set_index(["layer", "metric"])["value"]

    for layer, gradient, old in zip(kernel_layers(model), reference, before, strict=True):
        assert table[layer.name, "gradient_norm"] == pytest.approx(float(tf.norm(gradient)), rel=1e-4)
        # One plain SGD step moves the kernel by lr * gradient.
        assert table[layer.name, "update_ratio"] == pytest.approx(
            0.1 * float(tf.norm(gradient)) / np.linalg.norm(old), rel=1e-3
        )
        assert table[layer.name, "weight_norm"] == pytest.approx(np.linalg.norm(layer.kernel.numpy()), rel=1e-5)
    assert table["all", "gradient_norm"] == pytest.approx(float(tf.linalg.global_norm(all_reference)), rel=1e-4)


def test_telemetry_does_not_change_training(digits):
    settings = deep_settings(hidden_activation="relu", weights_initializer="he_normal")
    settings["trainer"]["epochs"] = 2
    plain = fit_model(settings, digits, 10, "plain").history
    callback = TelemetryCallback(digits.x_val[:64])
    recorded = fit_model(settings, digits, 10, "recorded", telemetry=callback).history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(recorded[key], plain[key], rtol=1e-6)
    assert sorted(diagnostics_of(callback)["epoch"].unique()) == [1, 2]


def gradient_ratio(digits, **model) -> float:
    callback = TelemetryCallback(digits.x_val[:128])
    fit_model(deep_settings(**model), digits, 10, "deep", telemetry=callback)
    return summarize_diagnostics(callback.rows)["gradient_ratio_first_epoch"]


def test_the_physics_of_vanishing_gradients(digits):
    """First hidden layer's gradient norm over the output layer's, at epoch 1, 10 layers deep."""
    notes_default = gradient_ratio(digits, hidden_activation="sigmoid", weights_initializer="random_normal")
    sigmoid_n01 = gradient_ratio(digits, hidden_activation="sigmoid", weights_scale=1.0)
    relu_he = gradient_ratio(digits, hidden_activation="relu", weights_initializer="he_normal")
    assert notes_default < 1e-6  # sigmoid with Keras' N(0, 0.05): the gradient all but vanishes
    assert sigmoid_n01 < 0.1  # sigmoid with N(0, 1): saturated units shrink it layer by layer
    assert relu_he > 1e-2  # ReLU with He initialization keeps it flowing
    assert relu_he > 30 * sigmoid_n01


def test_probe_counts_dead_and_saturated_units(digits):
    callback = TelemetryCallback(digits.x_val[:128])
    fit_model(deep_settings(hidden_activation="sigmoid", weights_scale=3.0), digits, 10, "sat", telemetry=callback)
    table = diagnostics_of(callback)
    saturated = table[table["metric"] == "saturated_fraction"]
    assert len(saturated) == 10 and saturated["value"].between(0, 1).all()
    assert saturated["value"].mean() > 0.5  # N(0, 3) weights drive sigmoid units into saturation
    assert "dead_fraction" not in set(table["metric"])

    callback = TelemetryCallback(digits.x_val[:128])
    fit_model(deep_settings(hidden_activation="relu", bias_initializer="zeros"), digits, 10, "dead", telemetry=callback)
    dead = pd.DataFrame(callback.rows).query("metric == 'dead_fraction'")
    assert len(dead) == 10 and dead["value"].between(0, 1).all()


def test_residual_connections_skip_equal_width_layers():
    model_cfg = {**default_settings()["model"], "hidden_nodes": [16, 16, 8, 8], "residual": True}
    model = build_model(model_cfg, 4, 3)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [layer.name for layer in adds] == ["residual_2", "residual_4"]
    assert model.output_shape == (None, 3)
