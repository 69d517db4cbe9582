"""Gradient and activation telemetry: the numbers are the real ones, and they show the physics."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from runner.config import default_settings, group_option
from runner.data import load_dataset, split_dataset
from runner.model import build_model, build_optimizer
from runner.telemetry import TelemetryCallback, summarize_diagnostics
from runner.train import fit_model


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
    kernels = [layer.kernel for layer in model.layers]
    position = {id(weight): index for index, weight in enumerate(model.trainable_weights)}
    reference = [all_reference[position[id(kernel)]] for kernel in kernels]
    before = [kernel.numpy().copy() for kernel in kernels]

    callback = TelemetryCallback(probe=x, activation="tanh")
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    table = diagnostics_of(callback).set_index(["layer", "metric"])["value"]

    for layer, gradient, old in zip(model.layers, reference, before, strict=True):
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
    callback = TelemetryCallback(digits.x_val[:64], "relu")
    recorded = fit_model(settings, digits, 10, "recorded", telemetry=callback).history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(recorded[key], plain[key], rtol=1e-6)
    assert sorted(diagnostics_of(callback)["epoch"].unique()) == [1, 2]


def gradient_ratio(digits, **model) -> float:
    callback = TelemetryCallback(digits.x_val[:128], model.get("hidden_activation", "relu"))
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
    callback = TelemetryCallback(digits.x_val[:128], "sigmoid")
    fit_model(deep_settings(hidden_activation="sigmoid", weights_scale=3.0), digits, 10, "sat", telemetry=callback)
    table = diagnostics_of(callback)
    saturated = table[table["metric"] == "saturated_fraction"]
    assert len(saturated) == 10 and saturated["value"].between(0, 1).all()
    assert saturated["value"].mean() > 0.5  # N(0, 3) weights drive sigmoid units into saturation
    assert "dead_fraction" not in set(table["metric"])

    callback = TelemetryCallback(digits.x_val[:128], "relu")
    fit_model(deep_settings(hidden_activation="relu", bias_initializer="zeros"), digits, 10, "dead", telemetry=callback)
    dead = pd.DataFrame(callback.rows).query("metric == 'dead_fraction'")
    assert len(dead) == 10 and dead["value"].between(0, 1).all()


def test_residual_connections_skip_equal_width_layers():
    model_cfg = {**default_settings()["model"], "hidden_nodes": [16, 16, 8, 8], "residual": True}
    model = build_model(model_cfg, 4, 3)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [layer.name for layer in adds] == ["residual_2", "residual_4"]
    assert model.output_shape == (None, 3)


def test_a_reused_compiled_model_trains_exactly_like_a_fresh_one(digits):
    """A worker reuses one of its last compiled models where only the seed, the learning rate or
    the optimizer change, also after training other networks meanwhile: the histories and the
    telemetry must be those of a fresh build."""
    import runner.train

    settings = deep_settings(dropout_rate=0.2, normalization="batch")

    def train(seed, learning_rate, optimizer="adagrad", activation="relu"):  # adagrad: slots that do not start at 0
        settings["trainer"].update(seed=seed, epochs=2)
        settings["model"]["hidden_activation"] = activation
        settings["optimizer"] = {**group_option("optimizer", optimizer), "learning_rate": learning_rate}
        telemetry = TelemetryCallback(digits.x_val[:64], activation, gradients=True)
        history = fit_model(settings, digits, 10, "reuse", telemetry=telemetry)
        return history.history, telemetry.rows

    def kept():
        return [model for model, _, _ in runner.train._compiled.values()]

    runner.train._compiled.clear()
    fresh = train(seed=1, learning_rate=0.05)
    (model,) = kept()
    other = train(seed=2, learning_rate=0.01)
    assert kept() == [model]  # the same model, reused
    tanh = train(seed=1, learning_rate=0.05, activation="tanh")  # another network meanwhile
    again = train(seed=1, learning_rate=0.05)
    assert len(kept()) == 2 and kept()[-1] is model
    assert again == fresh
    adagrad_step = model.train_function
    sgd = train(seed=1, learning_rate=0.05, optimizer="sgd")  # the same network, another optimizer
    assert kept()[-2:] == [model, model] and model.train_function is not adagrad_step
    assert train(seed=1, learning_rate=0.05) == fresh and model.train_function is adagrad_step  # kept for adagrad
    assert len({str(result[0]["loss"]) for result in (fresh, other, tanh, sgd)}) == 4

    runner.train._compiled.clear()
    assert train(seed=2, learning_rate=0.01) == other  # fresh builds of what was reused
    runner.train._compiled.clear()
    assert train(seed=1, learning_rate=0.05, optimizer="sgd") == sgd


def test_networks_trained_one_after_another_are_freed(digits):
    """A worker trains network after network. Each new network's traced train step used to stay
    alive for good, held by the gradient function tf.custom_gradient registers globally
    (tensorflow/tensorflow#97697): about 5 MB a network. Traced graphs must not pile up beyond
    those of the few models a worker keeps."""
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    def graphs_alive_after(widths):
        for width in widths:
            telemetry = TelemetryCallback(None, "relu", gradients=True)
            settings = deep_settings()
            settings["model"].update(depth=2, width=width)
            fit_model(settings, digits, 10, "freed", telemetry=telemetry)
        gc.collect()
        return sum(isinstance(item, FuncGraph) for item in gc.get_objects())

    # A worker keeps its last six models (runner.train.compiled_model): more than that each time.
    before = graphs_alive_after(range(8, 15))
    assert graphs_alive_after(range(15, 22)) <= before
