"""Config tests: every experiment composes in-process and sweeps what the notes compare."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runner.config import CONFIG_DIR, ConfigError, default_settings, validate

EXPERIMENTS = {
    "normalization": ("model.normalization", "none,batch", "Normalization-batch"),
    "optimizer": ("optimizer", "sgd,rmsprop,adam,adagrad", "Optimizer-sgd"),
    "learning_rate": ("optimizer.learning_rate", "0.001,0.005,0.01,0.1,0.5", "Learning-Rate-0.01"),
    "activation": ("model.hidden_activation", "relu,sigmoid,tanh,leaky_relu,elu,selu", "Activation-relu"),
    "initializer": (
        "model.weights_initializer",
        "random_normal,zeros,ones,random_uniform,glorot_uniform,he_normal,lecun_normal",
        "Initializer-zeros",
    ),
    "batch_size": ("trainer.batch_size", "16,32,48,64,80,96,112", "Batch-Size-16"),
    "layers": ("model.depth", "1,2,3,4,5", "Layers-1"),
    "nodes": ("model.width", "8,16,24,32", "Nodes-8"),
    "regularizer": ("model.regularizer", "l1,l2,l1l2", "Regularizer-l1"),
    "dropout": ("model.dropout_rate", "0.0,0.1,0.2,0.5", "Dropout-0.0"),
}


def compose_config(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def settings(cfg) -> dict:
    return {
        key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in cfg
    }


def test_every_experiment_file_is_covered():
    assert sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")) == sorted(EXPERIMENTS)


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_composes_and_sweeps_the_notes_values(experiment):
    key, values, _ = EXPERIMENTS[experiment]
    cfg = compose_config(f"experiment={experiment}", hydra=True)
    assert cfg.name == experiment
    assert cfg.title.startswith("Compare ")
    assert dict(cfg.hydra.sweeper.params) == {key: values}
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_\n# ")
    assert f"python -m runner -m experiment={experiment}" in text


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_every_variant_of_every_experiment_is_valid(experiment):
    key, values, example_label = EXPERIMENTS[experiment]
    labels = []
    for value in values.split(","):
        cfg = compose_config(f"experiment={experiment}", f"{key}={value}")
        resolved = settings(cfg)
        validate(resolved)
        labels.append(resolved["label"])
    assert example_label in labels
    assert len(set(labels)) == len(labels)


def test_experiment_specific_settings():
    assert compose_config("experiment=optimizer", "optimizer=sgd").optimizer.learning_rate == 0.001
    assert compose_config("experiment=batch_size").trainer.epochs == 20
    for experiment in ("regularizer", "dropout"):
        cfg = compose_config(f"experiment={experiment}")
        assert (cfg.trainer.epochs, cfg.metric) == (25, "val_accuracy")
    assert compose_config("experiment=layers", "model.depth=3").model.width == 32
    assert compose_config("experiment=nodes", "model.width=8").model.depth == 2


def test_default_settings_match_hydra_composition():
    composed = settings(compose_config())
    assert default_settings() == {group: composed[group] for group in ("data", "model", "optimizer", "trainer")}


def test_optimizers_carry_their_own_hyperparameters():
    sgd = compose_config("optimizer=sgd").optimizer
    assert (sgd.name, sgd.learning_rate, sgd.momentum) == ("sgd", 0.01, 0.0)
    for name in ("sgd", "rmsprop", "adam", "adagrad"):
        node = compose_config(f"optimizer={name}").optimizer
        assert {"learning_rate", "clipnorm", "clipvalue"} <= set(node)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden_activation=reluu", "Choose one of: relu, sigmoid, tanh"),
        ("model.weights_initializer=xavier", "glorot_uniform"),
        ("optimizer.learning_rate=0", "optimizer.learning_rate=0: it must be a number > 0"),
        ("model.dropout_rate=1.0", "must be in [0, 1)"),
        ("trainer.validation_split=0", "must be in (0, 1)"),
        ("trainer.epochs=0", "trainer.epochs=0: it must be a whole number >= 1"),
        ("trainer.batch_size=-4", "trainer.batch_size=-4"),
        ("model.hidden_nodes=[]", "at least one hidden layer"),
        ("model.weights_initializer=he_normal model.weights_scale=1.0", "he_normal has no scale to set"),
    ],
)
def test_validation_names_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError) as error:
        validate(settings(compose_config(*override.split())))
    assert message in str(error.value)


def test_weights_scale_expresses_the_notes_standard_normal():
    validate(settings(compose_config("model.weights_initializer=random_normal", "model.weights_scale=1.0")))
