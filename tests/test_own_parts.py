"""A user's own model, data, optimizer, callbacks and metrics, named by `_target_` in config:
they train with telemetry, and every mistake in them is named before anything is written."""

from __future__ import annotations

import json
import textwrap

import keras
import numpy as np
import pandas as pd
import pytest

from runner.config import settings_of
from runner.data import load_dataset, split_dataset
from runner.preflight import check_build, check_targets
from tests.conftest import REPO, assert_refused
from tests.test_config import compose_config

MODELS = """
import keras


def small_cnn(input_shape, n_classes, filters=4):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax", name="output")(x))


class Tower(keras.Model):
    def __init__(self, units, n_classes):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(units, activation="tanh")
        self.out = keras.layers.Dense(n_classes, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(self.flatten(x)))


def tower(input_shape, n_classes, units=8):
    return Tower(units, n_classes)


class Unsavable(keras.Model):
    def __init__(self, head):  # a layer as an argument: Keras can't write its config
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.head = head

    def call(self, x):
        return self.head(self.flatten(x))


def unsavable(input_shape, n_classes):
    return Unsavable(keras.layers.Dense(n_classes, activation="softmax"))


def not_a_model(input_shape, n_classes):
    return "a model"


def one_output_too_many(input_shape, n_classes):
    return small_cnn(input_shape, n_classes + 1)


def logits(input_shape, n_classes):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(n_classes)(keras.layers.Flatten()(inputs)))


def raises(input_shape, n_classes):
    raise RuntimeError("my builder broke")


def no_classes(input_shape):
    return None
"""

DATA = """
import numpy as np


def images(n=120, text_labels=False):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 6, 6, 1)).astype("float32") + y[:, None, None, None]
    return x, np.array(["cat", "dog", "owl"])[y] if text_labels else y


def parts():
    x, y = images(90)
    return {"train": (x[:60], y[:60]), "validation": (x[60:], y[60:])}


def unseen_class():
    x, y = images(90)
    y = y.copy()
    y[-1] = 7
    return {"train": (x[:60], y[:60]), "validation": (x[60:], y[60:])}


def mismatched():
    return np.zeros((10, 3)), np.zeros(9)


def with_nan():
    x = np.ones((10, 3))
    x[2, 1] = np.nan
    return x, np.arange(10) % 2


def one_class():
    return np.ones((10, 3)), np.zeros(10)


def empty():
    return np.zeros((0, 3)), np.zeros(0)


def not_a_pair():
    return "data"
"""

CALLBACKS = """
import keras


class FailAfter(keras.callbacks.Callback):
    def __init__(self, epochs=1):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            raise RuntimeError("broken on purpose")
"""


def write_users_modules(folder):
    for name, text in (("my_models", MODELS), ("my_data", DATA), ("my_callbacks", CALLBACKS)):
        (folder / f"{name}.py").write_text(textwrap.dedent(text))


@pytest.fixture
def users_folder(tmp_path, monkeypatch):
    """A user's folder with their own modules, the current directory (as with `python -m runner`)."""
    write_users_modules(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


OWN = ["model=custom", "model._target_=my_models.small_cnn", "data=custom", "data._target_=my_data.images"]


def test_own_cnn_on_own_images_trains_with_telemetry_auc_and_a_saved_model(cli, users_folder):
    done = cli(
        *OWN, "+model.filters=3", "+data.text_labels=true", "trainer.epochs=2", "trainer.metrics=[accuracy,auc]",
        "objective.metric=val_auc", "trainer.save_model=true", "hydra.run.dir=out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = users_folder / "out"
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["epoch", "accuracy", "auc", "loss", "val_accuracy", "val_auc", "val_loss"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["metric"], metrics["mode"], metrics["data"]) == ("val_auc", "max", "images")  # the loader's
    assert (metrics["title"], metrics["label"]) == ("small_cnn", "small_cnn")  # the builder's name, not "Base"
    assert metrics["final_val_auc"] == pytest.approx(history["val_auc"].iloc[-1])
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    conv = diagnostics[diagnostics["layer"] == "conv"].set_index(["epoch", "metric"])["value"]
    assert conv[2, "gradient_norm"] > 0 and 0 <= conv[2, "dead_fraction"] <= 1  # a convolution's channels
    assert "_target_: my_models.small_cnn" in (out / "config.yaml").read_text()
    model = keras.saving.load_model(out / "model.keras")  # the user's own network, no runner class needed
    assert model.name != "" and model(np.zeros((2, 6, 6, 1), "float32")).shape == (2, 3)
    assert (out / "auc.png").read_bytes().startswith(b"\x89PNG")


def test_a_builders_params_sweep_with_early_stopping_and_checkpoints(cli, users_folder):
    done = cli(
        "-m", *OWN, "+model.filters=2,4", "trainer.epochs=6", "callbacks=[early_stopping,checkpoint]",
        "trainer.metrics=[accuracy,auc]", "objective.metric=val_auc",
        "callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=1.0", "hydra.sweep.dir=sweep",
        "trainer.evaluate_train=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(users_folder / "sweep" / "runs.csv").set_index("model.filters")
    # Both splits scored with the weights training ended with, every compiled metric too.
    assert runs["train_eval_auc"].between(0, 1).all() and runs["train_eval_loss"].notna().all()
    np.testing.assert_allclose(runs["val_eval_accuracy"], runs["final_val_accuracy"], atol=1e-6)
    summary = pd.read_csv(users_folder / "sweep" / "summary.csv")
    assert summary["train_eval_accuracy_mean"].notna().all() and "val_eval_auc_mean" in summary
    assert sorted(runs.index) == [2, 4]
    assert (runs["epochs_run"] == 2).all() and (runs["stopped_epoch"] == 2).all()  # no gain of 1.0: stop at 2
    assert (runs["metric"] == "val_auc").all() and runs["final_val_auc"].between(0, 1).all()  # AUC in every job
    assert "completed, val_auc 0." in done.stdout  # each progress line shows the objective
    assert set(summary["status"]) == {"completed"}
    import runner.telemetry  # noqa: F401  (registers the telemetry model the checkpoint saved)

    for folder in (users_folder / "sweep").glob("*model.filters=*"):
        best = keras.saving.load_model(folder / "model.keras")  # the best epoch's, in the variant's folder
        assert best(np.zeros((1, 6, 6, 1), "float32")).shape == (1, 3)


def test_a_subclassed_model_gets_gradient_telemetry(users_folder):
    from runner.fitting import fit_model
    from runner.telemetry import TelemetryCallback

    settings = settings_of(compose_config(*OWN[2:], "model=custom", "model._target_=my_models.tower"))
    settings["trainer"].update(epochs=1)
    split = split_dataset(load_dataset(settings["data"]), 0.2, 0)
    telemetry = TelemetryCallback(split.x_val[:16])
    history = fit_model(settings, split, 3, "tower", telemetry=telemetry, reuse=False)
    table = pd.DataFrame(telemetry.rows)
    norms = table[(table["metric"] == "gradient_norm") & (table["depth"] > 0)]
    assert len(norms) == 2 and (norms["value"] > 0).all()  # both Dense layers inside the subclassed model
    assert len(history.history["loss"]) == 1


def test_a_loaders_own_validation_part_is_used_as_given(users_folder):
    dataset = load_dataset({"_target_": "my_data.parts", "name": "parts"})
    split = split_dataset(dataset, validation_split=0.5, seed=0)
    assert (len(split.x_train), len(split.x_val)) == (60, 30)
    assert split.x_train.shape[1:] == (6, 6, 1)
    assert split.x_train.mean() != pytest.approx(0, abs=1e-3)  # images are not standardized by default


def test_class_weight_balanced_and_an_optimizer_with_a_schedule_train(users_folder):
    from runner.fitting import class_weights, fit_model

    assert class_weights("balanced", np.array([0, 0, 0, 1]), 2) == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    assert class_weights({1: 5.0}, np.array([0, 1]), 3) == {0: 1.0, 1: 5.0, 2: 1.0}
    settings = settings_of(
        compose_config(
            "trainer.class_weight=balanced", "optimizer=custom", "optimizer._target_=keras.optimizers.Lion",
            "optimizer.learning_rate={_target_:keras.optimizers.schedules.CosineDecay,"
            "initial_learning_rate:0.001,decay_steps:20}",
            "trainer.epochs=2",
        )
    )  # fmt: skip
    check_targets(settings)
    split = split_dataset(load_dataset(settings["data"]), 0.2, 0)
    check_build(settings, load_dataset(settings["data"]))
    history = fit_model(settings, split, 3, "lion", reuse=False)
    assert type(history.model.optimizer).__name__ == "Lion"
    assert np.isfinite(history.history["loss"]).all()


BAD_TARGETS = [
    (["model._target_=nowhere.build"], "model._target_=nowhere.build can't be imported: No module named 'nowhere'"),
    (["model._target_=my_models.smal_cnn"], "my_models has no 'smal_cnn'. Did you mean my_models.small_cnn?"),
    (["model._target_=my_models.raises"], "can't be built: RuntimeError: my builder broke"),
    (["model._target_=my_models.not_a_model"], "returned a str, not a keras.Model"),
    (["model._target_=my_models.one_output_too_many"], "runner needs one output per class: (2, 3)"),
    (["model._target_=my_models.no_classes"], "must take input_shape and n_classes"),
    (["model._target_=my_models.logits"], "gives outputs that are not probabilities"),
    (["model._target_=my_models.unsavable", "callbacks=checkpoint"], "the checkpoint callback needs a model Keras"),
    (["model._target_=my_models.unsavable", "trainer.save_model=true"], "can't be saved: NotImplementedError"),
    (
        ["model._target_=my_models.small_cnn", "model.filters=4"],
        "a new argument is added with a +, e.g. `+model.filters",
    ),
    (["data._target_=my_data.unseen_class"], "class '7' is in the validation part but not in the train part"),
    (["callbacks=[early_stopping,checkpont]"], "Unknown callbacks 'checkpont'. Did you mean callbacks=checkpoint?"),
    (["model._target_=my_models.small_cnn", "+model.filterz=4"], "takes no argument 'filterz'"),
    (["data._target_=my_data.mismatched"], "10 samples of features but 9 labels"),
    (["data._target_=my_data.with_nan"], "1 samples have NaN or infinite features"),
    (["data._target_=my_data.one_class"], "returned one class only (0.0)"),
    (["data._target_=my_data.empty"], "the data set is empty"),
    (["data._target_=my_data.not_a_pair"], "is a str, not a pair (x, y)"),
    (["trainer.metrics=[accuracy,aucc]"], "trainer.metrics can't be built: ValueError: Could not interpret metric"),
    (["trainer.metrics=[accuracy,{_target_:keras.metrics.F1Score}]"], "F1Score with average=None reports one value"),
    (
        ["data._target_=my_data.images", "+data.text_labels=true", "trainer.class_weight={cat:2.0}"],
        "Invalid trainer.class_weight key 'cat': give each class by its index, here 0=cat, 1=dog, 2=owl",
    ),
    (["trainer.loss=no_such_loss"], "trainer.loss=no_such_loss can't be built"),
    (["objective.metric=val_auc"], "Invalid objective.metric='val_auc': training logs no such metric"),
    (["optimizer._target_=keras.optimizers.Lion"], "Argument(s) not recognized: {'rho'"),
    (["callbacks=early_stoping"], "Unknown callbacks 'early_stoping'. Did you mean callbacks=early_stopping?"),
    (["+callbacks.x._target_=keras.callbacks.Nope"], "keras.callbacks has no 'Nope'"),
    (["callbacks=early_stopping", "+callbacks.early_stopping.patiense=2"], "takes no argument 'patiense'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_TARGETS, ids=[" ".join(a) for a, _ in BAD_TARGETS])
def test_a_bad_target_is_named_before_anything_is_written(refused_ahead, args, message):
    def command(params, folder):
        write_users_modules(folder)
        args = params["args"]
        base = ["model=custom", "data=custom", "data._target_=my_data.images"] if args[0].startswith("model") else []
        if args[0].startswith("data"):
            base = ["data=custom"]
        return [*base, *args, "trainer.epochs=1"]

    done, folder = refused_ahead(command)
    assert_refused(done, message, folder)


def test_the_digits_cnn_experiment_runs_end_to_end_at_tiny_size(tmp_path):
    from tests.conftest import run_cli

    done = run_cli(
        "-m", "experiment=digits_cnn", "trainer.epochs=2", "data.n_samples=300", "model.filters=2",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sweep = tmp_path / "sweep"
    summary = pd.read_csv(sweep / "summary.csv")
    assert sorted(summary["variant"]) == ["BatchNorm-False", "BatchNorm-True"]
    assert summary["final_val_auc_mean"].between(0, 1).all()
    for plot in ("val_auc.png", "gradient_norms.png", "dead_units.png"):
        assert (sweep / plot).read_bytes().startswith(b"\x89PNG")
    diagnostics = pd.read_csv(next(sweep.glob("*batch_norm=True*")) / "diagnostics.csv")
    assert {"conv_1", "conv_2", "dense", "output"} <= set(diagnostics["layer"])


@pytest.mark.slow
def test_the_digits_cnn_experiment_learns_the_digits(tmp_path):
    from tests.conftest import run_cli

    done = run_cli("-m", "experiment=digits_cnn", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=REPO)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert (summary["final_val_accuracy_mean"] > 0.9).all()
