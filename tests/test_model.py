"""Model building: the notes' layer layout, real optimizers, explicit penalties, initializer scales."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from runner.config import default_settings
from runner.model import build_model, build_optimizer, build_regularizer


def base_model(**changes):
    model = default_settings()["model"]
    model.update(changes)
    return model


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_base_network_matches_the_notes():
    model = build_model(base_model(), n_features=4, n_classes=3)
    assert layer_kinds(model) == ["Dense", "Dense", "Dense"]
    assert [layer.units for layer in model.layers] == [32, 64, 3]
    assert model.layers[0].activation.__name__ == "relu"
    assert model.layers[-1].activation.__name__ == "softmax"


def test_batch_normalization_and_dropout_sit_between_hidden_layers():
    model = build_model(base_model(hidden_nodes=[8, 8, 8], normalization="batch", dropout_rate=0.2), 4, 3)
    assert layer_kinds(model) == [
        "Dense", "BatchNormalization", "Dropout", "Dense", "BatchNormalization", "Dropout", "Dense", "Dense",
    ]  # fmt: skip
    layer_norm = build_model(base_model(normalization="layer"), 4, 3)
    assert layer_kinds(layer_norm) == ["Dense", "LayerNormalization", "Dense", "Dense"]


def test_depth_and_width_replace_hidden_nodes():
    model = build_model(base_model(depth=5, width=16), 4, 3)
    assert [layer.units for layer in model.layers] == [16] * 5 + [3]


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", keras.optimizers.SGD), ("rmsprop", keras.optimizers.RMSprop), ("adam", keras.optimizers.Adam),
     ("adagrad", keras.optimizers.Adagrad)],
)  # fmt: skip
def test_optimizer_names_map_to_the_real_optimizers(name, cls):
    from runner.config import group_option

    optimizer = build_optimizer({**group_option("optimizer", name), "learning_rate": 0.05, "clipnorm": 1.0})
    assert type(optimizer) is cls
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    assert optimizer.clipnorm == 1.0


def test_l1l2_regularizer_has_explicit_nonzero_factors():
    penalty = build_regularizer(base_model(regularizer="l1l2"))
    assert (float(penalty.l1), float(penalty.l2)) == pytest.approx((0.01, 0.01))
    assert float(penalty(np.ones((2, 2), "float32"))) == pytest.approx(0.01 * 4 + 0.01 * 4)
    assert build_regularizer(base_model(regularizer="none")) is None


def test_weights_scale_sets_the_standard_deviation_and_layers_differ():
    keras.utils.set_random_seed(0)
    model = build_model(base_model(hidden_nodes=[256, 256], weights_scale=1.0), 256, 3)
    first, second = (layer.kernel.numpy() for layer in model.layers[:2])
    assert first.std() == pytest.approx(1.0, rel=0.02)
    assert not np.allclose(first, second)
    default = build_model(base_model(hidden_nodes=[256]), 256, 3).layers[0].kernel.numpy()
    assert default.std() == pytest.approx(0.05, rel=0.02)  # Keras' RandomNormal default


def test_one_number_of_hidden_nodes_is_one_layer():
    from runner.config import validate

    settings = default_settings()
    settings["model"]["hidden_nodes"] = 32
    validate(settings)
    model = build_model(settings["model"], n_features=4, n_classes=3)
    assert [layer.units for layer in model.layers] == [32, 3]
