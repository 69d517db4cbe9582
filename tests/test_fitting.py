"""Fitting: a kept compiled model is reused only where it trains exactly like a fresh build, and a
fresh build traces its train step once."""

from __future__ import annotations

import pytest

import runner.fitting
from runner.config import default_settings, group_option
from runner.data import load_dataset, split_dataset
from runner.fitting import fit_model
from runner.telemetry import TelemetryCallback


@pytest.fixture(scope="module")
def digits():
    return split_dataset(load_dataset({"name": "digits"}), validation_split=0.2, seed=0)


def deep_settings(**model):
    settings = default_settings()
    settings["model"].update({"depth": 4, "width": 32, **model})
    settings["trainer"].update(epochs=2, batch_size=32)
    return settings


def kept_models():
    return list(runner.fitting._kept.values())


def test_a_reused_compiled_model_trains_exactly_like_a_fresh_one(digits):
    """A worker reuses one of its last compiled models where only the seed or the learning rate
    change, also after training other networks meanwhile: the histories and the telemetry must be
    those of a fresh build (dropout: seed generators; batch normalization: moving statistics;
    Adagrad: slots that do not start at zero)."""
    settings = deep_settings(dropout_rate=0.2, normalization="batch")

    def train(seed, learning_rate, optimizer="adagrad", activation="relu"):
        settings["trainer"]["seed"] = seed
        settings["model"]["hidden_activation"] = activation
        settings["optimizer"] = {**group_option("optimizer", optimizer), "learning_rate": learning_rate}
        telemetry = TelemetryCallback(digits.x_val[:64], gradients=True)
        history = fit_model(settings, digits, 10, "reuse", telemetry=telemetry)
        return history.history, telemetry.rows

    runner.fitting.forget_models()
    fresh = train(seed=1, learning_rate=0.05)
    (model,) = kept_models()
    other = train(seed=2, learning_rate=0.01)
    assert kept_models() == [model]  # the same model, reused
    tanh = train(seed=1, learning_rate=0.05, activation="tanh")  # another network meanwhile
    sgd = train(seed=1, learning_rate=0.05, optimizer="sgd")  # the same network, another optimizer: its own model
    assert len(kept_models()) == 3 and model not in kept_models()[1:]
    again = train(seed=1, learning_rate=0.05)
    assert kept_models()[-1] is model and again == fresh
    assert len({str(result[0]["loss"]) for result in (fresh, other, tanh, sgd)}) == 4

    runner.fitting.forget_models()
    assert train(seed=2, learning_rate=0.01) == other  # fresh builds of what was reused
    runner.fitting.forget_models()
    assert train(seed=1, learning_rate=0.05, optimizer="sgd") == sgd


def test_a_fresh_model_traces_its_train_step_once(digits, monkeypatch):
    """The optimizer's, loss's and metrics' variables exist before fit (runner.fitting.build_state):
    TensorFlow traces a step that creates variables twice. Fails loudly should Keras change that."""
    from runner import telemetry

    traced = []
    original = telemetry.TelemetryMixin.train_step

    def counted(self, data):
        traced.append(1)  # Python runs here only while TensorFlow traces the step
        return original(self, data)

    monkeypatch.setattr(telemetry.TelemetryMixin, "train_step", counted)
    runner.fitting.forget_models()
    fit_model(deep_settings(width=24), digits, 10, "once", telemetry=TelemetryCallback(None))
    assert len(traced) == 1


def test_a_callback_of_the_users_still_sees_every_batch(digits):
    """A fit runs a whole epoch per call of its compiled step only where nothing acts per batch;
    with a callback of the user's, each batch ends on its own, and the history is the same."""
    import keras

    class Batches(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = 0

        def on_train_batch_end(self, batch, logs=None):
            self.ends += 1

    settings = deep_settings()
    runner.fitting.forget_models()
    whole_epochs = fit_model(settings, digits, 10, "plain").history
    batches = Batches()
    per_batch = fit_model(settings, digits, 10, "counted", callbacks=[batches]).history
    steps = -(-len(digits.x_train) // settings["trainer"]["batch_size"])
    assert batches.ends == steps * settings["trainer"]["epochs"]
    assert per_batch == whole_epochs
