"""The course notes' API: their loops run unchanged and give real Keras histories."""

from __future__ import annotations

import pytest

from runner import base_model_config, create_and_run_model, get_data, plot_accuracy, plot_graph
from runner.config import ConfigError


def test_base_model_config_has_the_notes_keys_and_defaults():
    assert base_model_config() == {
        "HIDDEN_NODES": [32, 64],
        "HIDDEN_ACTIVATION": "relu",
        "OUTPUT_NODES": 3,
        "OUTPUT_ACTIVATION": "softmax",
        "WEIGHTS_INITIALIZER": "random_normal",
        "BIAS_INITIALIZER": "zeros",
        "NORMALIZATION": "none",
        "OPTIMIZER": "rmsprop",
        "LEARNING_RATE": 0.001,
        "REGULARIZER": None,
        "DROPOUT_RATE": 0.0,
        "EPOCHS": 10,
        "BATCH_SIZE": 16,
        "VALIDATION_SPLIT": 0.2,
        "VERBOSE": 0,
        "LOSS_FUNCTION": "categorical_crossentropy",
        "METRICS": ["accuracy"],
    }
    first = base_model_config()
    first["HIDDEN_NODES"].append(8)
    assert base_model_config()["HIDDEN_NODES"] == [32, 64]  # a fresh dict every time


def test_the_notes_optimizer_loop_runs_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    accuracy_measures = {}
    optimizers = {}
    for optimizer in ["sgd", "rmsprop", "adam", "adagrad"]:
        model_config = base_model_config()
        X, Y = get_data()
        model_config["OPTIMIZER"] = optimizer
        history = create_and_run_model(model_config, X, Y, "Optimizer-" + optimizer)
        accuracy_measures["Optimizer-" + optimizer] = history.history["accuracy"]
        optimizers[optimizer] = type(history.model.optimizer).__name__
        assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(history.history)
        assert len(history.history["val_accuracy"]) == 10
    path = plot_graph(accuracy_measures, "Compare Optimizers")
    assert optimizers == {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adagrad": "Adagrad"}
    assert path.resolve() == tmp_path / "results" / "compare-optimizers.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert max(accuracy_measures["Optimizer-adam"]) > 0.6  # it really learned
    assert plot_accuracy(accuracy_measures).name == "accuracy.png"


def test_notes_knobs_reach_the_model():
    model_config = base_model_config()
    X, Y = get_data()
    model_config.update(NORMALIZATION="batch", DROPOUT_RATE=0.1, REGULARIZER="l2", EPOCHS=1, HIDDEN_NODES=[8, 8])
    history = create_and_run_model(model_config, X, Y, "Knobs")
    kinds = [type(layer).__name__ for layer in history.model.layers]
    assert kinds == ["Dense", "BatchNormalization", "Dropout", "Dense", "Dense"]
    assert float(history.model.layers[0].kernel_regularizer.l2) == pytest.approx(0.01)
    assert len(history.history["accuracy"]) == 1

    model_config["LEARNING_RATE"] = 0.01  # the same network again: the notes keep both models
    again = create_and_run_model(model_config, X, Y, "Knobs-0.01")
    assert again.model is not history.model
    assert float(history.model.optimizer.learning_rate) == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"OPTIMIZER": "adamax2"}, "Invalid OPTIMIZER='adamax2': not a known optimizer. Choose one of: adagrad, adam"),
        ({"HIDDEN_ACTIVATOIN": "relu"}, "Unknown key(s) in model_config: 'HIDDEN_ACTIVATOIN'"),
        ({"DROPOUT_RATE": 1.0}, "Invalid DROPOUT_RATE=1.0: it must be in [0, 1)"),
        ({"LEARNING_RATE": 0}, "Invalid LEARNING_RATE=0"),
        ({"OUTPUT_NODES": 4}, "Y has 3 classes"),
        ({"EPOCHS": 0}, "Invalid EPOCHS=0: it must be a whole number >= 1. Set e.g. model_config['EPOCHS'] = 1."),
        ({"HIDDEN_NODES": []}, "Give layer sizes, e.g. model_config['HIDDEN_NODES'] = [32, 64]"),
        ({"HIDDEN_ACTIVATION": "reluu"}, "e.g. model_config['HIDDEN_ACTIVATION'] = 'relu'."),
    ],
)
def test_course_mistakes_name_the_notes_key(change, message):
    model_config = base_model_config()
    model_config.update(change)
    X, Y = get_data()
    with pytest.raises(ConfigError) as error:
        create_and_run_model(model_config, X, Y, "bad")
    assert message in str(error.value)


def test_get_data_speaks_the_apis_own_names():
    with pytest.raises(ConfigError) as error:
        get_data("irs")
    assert str(error.value).startswith(
        "get_data('irs'): no such data set. Did you mean get_data('iris')? Choose one of:"
    )
    assert "data=" not in str(error.value)
    with pytest.raises(ConfigError) as error:
        get_data("synthetic", n_classes=1)
    assert (
        str(error.value)
        == "Invalid n_classes=1: it must be a whole number >= 2. Set e.g. get_data('synthetic', n_classes=2)."
    )


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        (
            "NORMALIZATION",
            None,
            lambda model: "BatchNormalization" not in {type(layer).__name__ for layer in model.layers},
        ),
        ("WEIGHTS_INITIALIZER", "he_uniform", lambda model: True),
        ("HIDDEN_ACTIVATION", "elu", lambda model: model.layers[0].activation.__name__ == "elu"),
        ("REGULARIZER", None, lambda model: model.layers[0].kernel_regularizer is None),
    ],
)
def test_the_course_helpers_values_are_accepted(key, value, check):
    """The course's cells, pasted unchanged: its last chapter builds a "base minimal model" with
    NORMALIZATION = None, and its helper handed initializers, activations and regularizers to Keras."""
    model_config = base_model_config()
    model_config.update({key: value, "EPOCHS": 1})
    X, Y = get_data()
    assert check(create_and_run_model(model_config, X, Y, "pasted").model)


def test_the_course_helper_takes_keras_objects_as_well_as_names():
    import keras

    model_config = base_model_config()
    model_config.update(
        EPOCHS=1,
        WEIGHTS_INITIALIZER=keras.initializers.HeNormal(seed=1),
        HIDDEN_ACTIVATION=keras.activations.tanh,
        REGULARIZER=keras.regularizers.L2(0.001),
    )
    X, Y = get_data()
    model = create_and_run_model(model_config, X, Y, "objects").model
    assert model.layers[0].activation is keras.activations.tanh
    assert isinstance(model.layers[0].kernel_initializer, keras.initializers.HeNormal)
    assert float(model.layers[0].kernel_regularizer.l2) == pytest.approx(0.001)


def test_plot_graph_labels_and_scales_the_axis_from_what_is_plotted(tmp_path, monkeypatch):
    import matplotlib.figure

    seen = {}

    def save(figure, path, **kwargs):
        axes = figure.axes[0]
        seen[path.name] = (axes.get_ylabel(), axes.get_ylim(), axes.get_yscale())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", save)
    plot_graph({"a": [0.4, 0.8]}, "Compare Accuracy", folder=tmp_path)
    plot_graph({"a": [1.09, 0.6, 0.3]}, "Compare Loss", folder=tmp_path)
    plot_graph({"a": [3.0, 2.0]}, "Something Else", folder=tmp_path)
    assert seen["compare-accuracy.png"][0] == "accuracy" and seen["compare-accuracy.png"][1] == (-0.02, 1.02)
    label, (low, high), scale = seen["compare-loss.png"]
    assert label == "loss" and low <= 0.3 and high >= 1.09 and scale == "log"
    assert seen["something-else.png"][0] == "value"
