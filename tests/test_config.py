"""Config tests: every experiment composes in-process and sweeps what the notes compare."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from runner.config import CONFIG_DIR, ConfigError, default_settings, validate
from runner.config import settings_of as settings

EXPERIMENTS = {
    "digits_cnn": ("model.batch_norm", "false,true", "BatchNorm-True"),
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
    "regularizer": ("model.regularizer", "none,l1,l2,l1l2", "Regularizer-none"),
    "dropout": ("model.dropout_rate", "0.0,0.1,0.2,0.5", "Dropout-0.0"),
}
# The deep-network experiments: their sweep and one label each must produce.
DEEP_EXPERIMENTS = {
    "vanishing_gradients": (
        {"model.hidden_activation": "sigmoid,tanh,relu", "init": "normal_std1,glorot_uniform,he_normal"},
        "sigmoid, N(0,1)",
    ),
    "exploding_gradients": ({"init": "he_normal,normal_std1", "clipping": "none,norm"}, "N(0,1), clipnorm=1.0"),
    "dying_relu": (
        {"model.hidden_activation": "relu,leaky_relu,elu", "optimizer.learning_rate": "0.01,0.05"},
        "relu, lr=0.05",
    ),
    "activations_deep": ({"model.hidden_activation": "selu,elu,leaky_relu,relu,tanh,sigmoid"}, "selu, lecun_normal"),
    "batchnorm_deep": ({"model.normalization": "none,batch,layer"}, "Normalization-batch"),
    "residual_deep": (
        {"model.hidden_activation": "sigmoid,relu", "model.residual": "false,true"},
        "relu, residual=True",
    ),
    "gradient_clipping": ({"clipping": "none,norm,value,global_norm"}, "Clipping-global_norm"),
}


def compose_config(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # labels may read ${hydra:runtime.choices...}
    if not hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def sweep_variants(params: dict[str, str]) -> list[list[str]]:
    """The jobs a grid sweep over `params` runs, as override lists."""
    axes = [[f"{key}={value}" for value in values.split(",")] for key, values in params.items()]
    return [list(job) for job in itertools.product(*axes)]


def test_every_experiment_file_is_covered():
    covered = EXPERIMENTS | DEEP_EXPERIMENTS | {"overfitting": None, "search_digits": None}
    assert sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")) == sorted(covered)


def test_the_search_experiment_searches_a_deeper_network_on_digits():
    cfg = compose_config("experiment=search_digits", "search/pruner=hyperband", hydra=True)
    assert dict(cfg.hydra.sweeper.params) == {
        "optimizer.learning_rate": "tag(log,interval(1e-4,1e-1))",
        "model.width": "choice(32,64,128,256)",
        "model.dropout_rate": "interval(0.0,0.5)",
    }
    search = OmegaConf.to_container(cfg.search, resolve=True)
    assert search["n_trials"] == 40 and search["sampler"]["_target_"].endswith("TPESampler")
    assert search["pruner"]["max_resource"] == cfg.trainer.epochs == 30
    assert (cfg.data.name, cfg.model.depth, search["study_name"]) == ("digits", 4, "search_digits")
    assert compose_config("experiment=optimizer").get("search") is None  # a grid has no search node


def test_the_overfitting_experiment_sweeps_dropout_and_penalties_on_few_noisy_samples():
    params = {"model.dropout_rate": "0.0,0.5", "model.regularizer": "none,l2,l1l2"}
    cfg = compose_config("experiment=overfitting", hydra=True)
    assert dict(cfg.hydra.sweeper.params) == params
    labels = []
    for job in sweep_variants(params):
        resolved = settings(compose_config("experiment=overfitting", *job))
        validate(resolved)
        assert (resolved["data"]["name"], resolved["data"]["n_samples"]) == ("synthetic", 600)
        assert resolved["trainer"]["validation_split"] == 0.67 and resolved["model"]["hidden_nodes"] == [128, 128]
        labels.append(resolved["label"])
    assert "dropout=0.5, l2" in labels and len(set(labels)) == 6


@pytest.mark.parametrize("experiment", sorted(DEEP_EXPERIMENTS))
def test_deep_experiments_compose_on_digits_with_ten_layers(experiment):
    params, example_label = DEEP_EXPERIMENTS[experiment]
    cfg = compose_config(f"experiment={experiment}", hydra=True)
    assert dict(cfg.hydra.sweeper.params) == params
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_\n# ") and "Digits" in text
    labels = []
    for job in sweep_variants(params):
        resolved = settings(compose_config(f"experiment={experiment}", *job))
        validate(resolved)
        assert (resolved["data"]["name"], resolved["model"]["depth"]) == ("digits", 10)
        labels.append(resolved["label"])
    assert example_label in labels
    assert len(set(labels)) == len(labels)


def test_activations_deep_gives_each_activation_its_usual_initializer():
    chosen = {
        activation: compose_config(
            "experiment=activations_deep", f"model.hidden_activation={activation}"
        ).model.weights_initializer
        for activation in ("selu", "relu", "tanh")
    }
    assert chosen == {"selu": "lecun_normal", "relu": "he_normal", "tanh": "glorot_uniform"}


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
        assert (cfg.trainer.epochs, cfg.objective.metric) == (25, "val_accuracy")
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
        ("model.hidden_nodes=[]", "the network needs one or more hidden layers"),
        ("model.weights_initializer=he_normal model.weights_scale=1.0", "he_normal has no scale to set"),
    ],
)
def test_validation_names_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError) as error:
        validate(settings(compose_config(*override.split())))
    assert message in str(error.value)


def test_weights_scale_expresses_the_notes_standard_normal():
    validate(settings(compose_config("model.weights_initializer=random_normal", "model.weights_scale=1.0")))


@pytest.mark.parametrize(
    "experiments, extra",
    [
        ([*EXPERIMENTS, *DEEP_EXPERIMENTS], []),
        (
            ["optimizer", "gradient_clipping"],
            ["trainer.seed=0,1", "trainer.epochs=3", "data=wine,iris", "hydra.job.name=j"],
        ),
        (["learning_rate"], ["trainer.seed=0,1", "+model.note=x", "data=wine,iris"]),  # + applies in order: not shared
    ],
    ids=["every-experiment", "with-overrides", "with-additions"],
)
def test_jobs_are_composed_exactly_as_hydra_composes_them(experiments, extra):
    """Runner's launcher sends its workers the configs the pre-flight check composed, some
    sharing one composition with plain values set on a copy: each must be Hydra's own, down to
    its record of the overrides (the variant's folder name) and its flags."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from runner.composition import compose_jobs, grid_jobs, sweep_overrides

    compared = set()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        loader = GlobalHydra.instance().config_loader()
        for experiment in experiments:
            master = loader.load_configuration("config", [f"experiment={experiment}", *extra], RunMode.MULTIRUN)
            jobs = grid_jobs(sweep_overrides(master, loader))
            for overrides, composed in compose_jobs(loader, master, jobs):
                hydras = loader.load_sweep_config(master, list(overrides))
                assert OmegaConf.to_yaml(composed) == OmegaConf.to_yaml(hydras), overrides
                assert OmegaConf.is_struct(composed) and not OmegaConf.is_readonly(composed.hydra)
                compared.add((experiment, composed.hydra.job.override_dirname))
    per_experiment = 4 if extra else 1  # two seeds, two data sets
    assert len(compared) == per_experiment * sum(
        len(EXPERIMENTS[name][1].split(",")) if name in EXPERIMENTS else len(sweep_variants(DEEP_EXPERIMENTS[name][0]))
        for name in experiments
    )


def test_a_value_given_twice_runs_once():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from runner.composition import grid_jobs

    overrides = OverridesParser.create().parse_overrides(["trainer.seed=0,0,1", "optimizer=adam"])
    assert grid_jobs(overrides) == [["trainer.seed=0", "optimizer=adam"], ["trainer.seed=1", "optimizer=adam"]]


def test_what_every_keras_optimizer_takes_is_what_every_preset_accepts():
    """OPTIMIZER_COMMON is the arguments the presets' Keras optimizers all take (but the rate and
    the name): this fails when Keras adds or drops one."""
    import inspect

    from hydra.utils import get_class

    from runner.config import OPTIMIZER_COMMON, group_option, group_options

    shared = None
    for option in group_options("optimizer"):
        if option == "custom":
            continue
        parameters = set(inspect.signature(get_class(group_option("optimizer", option)["_target_"])).parameters)
        shared = parameters if shared is None else shared & parameters
    assert shared - {"learning_rate", "name", "kwargs"} == set(OPTIMIZER_COMMON)


@pytest.mark.parametrize(
    "overrides",
    [
        ["optimizer=sgd", "+optimizer.weight_decay=0.01", "+optimizer.use_ema=true"],
        ["optimizer=custom", "optimizer._target_=keras.optimizers.SGD", "+optimizer.weight_decay=0.01"],
    ],
)
def test_a_keras_optimizers_own_arguments_are_accepted(overrides):
    """SGD takes weight_decay, as every Keras optimizer does; the custom option may name SGD."""
    validate(settings(compose_config(*overrides)))
