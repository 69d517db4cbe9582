"""Packed seeds: member i of a pack trains as a separate run with seed i does (split, initial
weights, sample order, loss, optimizer, normalization, telemetry), a diverging member poisons no
other, and a packed sweep writes the files an unpacked one writes."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import stats

from runner import packing
from runner.config import default_settings, group_option
from runner.data import load_dataset, split_dataset
from runner.fitting import fit_model, forget_models
from runner.model import build_model
from runner.telemetry import TelemetryCallback

SEEDS = [0, 1, 2]
LOSS_TOLERANCE = 1e-4  # relative, per epoch: float rounding of a batched matmul against one matmul


def settings_for(optimizer="rmsprop", epochs=3, batch_size=16, **model):
    settings = default_settings()
    settings["model"].update(model)
    settings["optimizer"] = {**group_option("optimizer", optimizer), **settings.get("clipping", {})}
    settings["trainer"].update(epochs=epochs, batch_size=batch_size)
    settings["telemetry"] = {"gradients": True, "activations": True, "probe_size": 256}
    return settings


def separate_run(settings, dataset, seed, probe=True):
    settings = {**settings, "trainer": {**settings["trainer"], "seed": seed}}
    split = split_dataset(dataset, settings["trainer"]["validation_split"], seed)
    telemetry = TelemetryCallback(split.x_val[:256] if probe else None, gradients=True)
    history = fit_model(settings, split, dataset.n_classes, "separate", telemetry=telemetry)
    return history.history, telemetry.rows


@pytest.fixture(scope="module")
def iris():
    return load_dataset({"_target_": "sklearn.datasets.load_iris", "name": "iris"})


@pytest.mark.parametrize(
    "optimizer, model",
    [
        ("adam", {"normalization": "batch", "regularizer": "l2"}),
        ("sgd", {"normalization": "layer", "regularizer": "l1l2", "residual": True, "depth": 3, "width": 16}),
        ("nadam", {"hidden_activation": "sigmoid", "bias_initializer": "glorot_uniform"}),
        ("sgd-clipnorm", {"depth": 4, "width": 16}),
        ("adam-global_clipnorm", {}),
    ],
)
def test_each_member_trains_as_a_separate_run_with_its_seed(iris, optimizer, model):
    optimizer, _, clipping = optimizer.partition("-")
    settings = settings_for(optimizer, **model)
    if optimizer == "sgd":
        settings["optimizer"]["momentum"] = 0.9
    if clipping:  # small enough to clip most steps; at lr 0.1 one seed is chaotic (rounding grows 1e4-fold)
        settings["optimizer"].update({clipping: 0.05, "learning_rate": 0.02})
    members = packing.train_pack(settings, iris, SEEDS)
    for seed, member in zip(SEEDS, members, strict=True):
        history, rows = separate_run(settings, iris, seed)
        assert member.members == 3 and member.nonfinite_epoch is None
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(member.history[key], history[key], rtol=LOSS_TOLERANCE)
        for key in ("accuracy", "val_accuracy"):  # one sample's flip would move it by 1/30 at least
            np.testing.assert_allclose(member.history[key], history[key], atol=1e-6)
        ours, theirs = pd.DataFrame(member.rows), pd.DataFrame(rows)
        joined = ours.merge(theirs, on=["epoch", "layer", "depth", "metric"], how="outer", indicator=True)
        assert (joined["_merge"] == "both").all(), "the same telemetry rows"
        np.testing.assert_allclose(joined["value_x"], joined["value_y"], rtol=1e-3, atol=1e-6)


def test_a_members_scores_after_training_are_a_separate_runs(iris):
    """trainer.evaluate_train: member i's loss and accuracy on its own training and validation
    splits, scored after training, equal a separate run's; the training accuracy equals its
    predictions' share of hits, the validation scores its last epoch's."""
    from runner.fitting import split_scores

    settings = settings_for("adam", epochs=3, dropout_rate=0.0, depth=2, width=16)
    settings["trainer"]["evaluate_train"] = True
    members = packing.train_pack(settings, iris, SEEDS)
    for seed, member in zip(SEEDS, members, strict=True):
        split = split_dataset(iris, settings["trainer"]["validation_split"], seed)
        seeded = {**settings, "trainer": {**settings["trainer"], "seed": seed}}
        history = fit_model(seeded, split, iris.n_classes, "separate", reuse=False)
        scores = split_scores(history.model, split, iris.n_classes, settings["trainer"]["batch_size"])
        hits = np.argmax(history.model.predict(split.x_train, verbose=0), axis=1) == split.y_train
        assert scores["train_eval_accuracy"] == pytest.approx(hits.mean(), abs=1e-6)
        assert scores["val_eval_accuracy"] == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)
        assert scores["val_eval_loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
        for key, value in scores.items():
            assert member.scores[key] == pytest.approx(value, rel=LOSS_TOLERANCE, abs=1e-6), key


def test_a_members_gradient_norms_are_its_own_as_a_gradient_tape_measures_them(iris):
    """One step per epoch (a batch larger than the training split): epoch 1's gradient norm of each
    layer is the norm of the gradient at the initial weights, measured here independently."""
    settings = settings_for("sgd", epochs=1, batch_size=1000, hidden_nodes=[8, 16])
    members = packing.train_pack(settings, iris, SEEDS)
    seed = SEEDS[1]
    split = split_dataset(iris, 0.2, seed)
    keras.utils.set_random_seed(seed)
    network = build_model(settings["model"], 4, 3)
    x, y = tf.constant(split.x_train), tf.one_hot(split.y_train, 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, network(x, training=True)))
    kernels = [layer.kernel for layer in network.layers if hasattr(layer, "kernel")]
    expected = [float(tf.norm(gradient)) for gradient in tape.gradient(loss, kernels)]
    rows = pd.DataFrame(members[1].rows)
    measured = rows[(rows.metric == "gradient_norm") & (rows.depth > 0)].sort_values("depth")["value"]
    np.testing.assert_allclose(measured, expected, rtol=1e-4)
    other = pd.DataFrame(members[0].rows)
    other = other[(other.metric == "gradient_norm") & (other.depth > 0)].sort_values("depth")["value"]
    assert not np.allclose(other, expected, rtol=1e-2), "member 0 has gradients of its own"


def test_a_diverging_member_stops_alone_and_poisons_no_other(iris, monkeypatch):
    settings = settings_for("adam", epochs=3)
    clean = packing.train_pack(settings, iris, SEEDS)
    build = packing.packed_network

    def poisoned(*args, **kwargs):
        model = build(*args, **kwargs)
        kernel = model.kernels[0].kernel
        kernel.assign(tf.tensor_scatter_nd_update(kernel, [[1, 0, 0]], [np.nan]))  # member 1 only
        return model

    monkeypatch.setattr(packing, "packed_network", poisoned)
    members = packing.train_pack(settings, iris, SEEDS)
    assert members[1].nonfinite_epoch == 1 and len(members[1].history["loss"]) == 1
    assert not np.isfinite(members[1].history["loss"][0])
    for index in (0, 2):
        assert members[index].nonfinite_epoch is None
        np.testing.assert_allclose(members[index].history["loss"], clean[index].history["loss"], rtol=1e-6)
        assert len(members[index].rows) == len(clean[index].rows)


def test_a_pack_that_reuses_a_kept_network_trains_as_a_fresh_one(iris, monkeypatch):
    """Another learning rate, initializer and seeds: the kept network's traced steps serve again,
    with the fresh network's weights and a fresh optimizer's state assigned."""
    first = settings_for("adam", epochs=2, normalization="batch")
    second = settings_for("adam", epochs=2, normalization="batch", weights_initializer="he_normal")
    second["optimizer"]["learning_rate"] = 0.01
    forget_models()
    fresh = packing.train_pack(second, iris, [5, 6, 7])
    forget_models()
    reused = []
    take = packing.take_kept
    monkeypatch.setattr(packing, "take_kept", lambda signature: reused.append(take(signature)) or reused[-1])
    packing.train_pack(first, iris, SEEDS)
    again = packing.train_pack(second, iris, [5, 6, 7])
    assert reused[0] is None and reused[1] is not None, "the second pack reused the first's network"
    for ours, theirs in zip(again, fresh, strict=True):
        for key in ("loss", "val_loss", "accuracy"):
            np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=1e-6)
        # The same rows; values to float32 rounding (a global norm's multi-threaded sum may differ by an ulp).
        ours_rows, theirs_rows = pd.DataFrame(ours.rows), pd.DataFrame(theirs.rows)
        assert ours_rows.drop(columns="value").equals(theirs_rows.drop(columns="value"))
        np.testing.assert_allclose(ours_rows["value"], theirs_rows["value"], rtol=1e-6)


def test_an_exploding_network_diverges_packed_as_it_does_alone(iris):
    """N(0, 1) weights, 10 ReLU layers, SGD: the softmax saturates at once. Alone, Keras computes
    the cross-entropy from the logits and the weights overflow in epoch 1; a packed member must too,
    not sit at the clipped loss of saturated probabilities with zero gradients."""
    settings = settings_for("sgd", epochs=2, depth=10, width=32, weights_scale=1.0)
    settings["optimizer"]["learning_rate"] = 0.01
    members = packing.train_pack(settings, iris, SEEDS[:2])
    for seed, member in zip(SEEDS[:2], members, strict=True):
        history, _ = separate_run(settings, iris, seed)
        assert len(history["loss"]) == 1, "alone, training stops in epoch 1 of 2"
        assert member.nonfinite_epoch == 1 and not np.isfinite(member.history["loss"][0])


def test_with_dropout_members_and_separate_runs_are_statistically_indistinguishable(iris):
    """Dropout's masks differ (a pack draws them for all members at once), so equality is not
    expected; the 20 members' final val_loss and 20 separate runs' come from one distribution:
    a two-sided Mann-Whitney test does not reject it at the 1% level, and the means are within
    one standard deviation."""
    seeds = list(range(20))
    settings = settings_for("adam", epochs=4, dropout_rate=0.3, depth=3, width=32)
    settings["telemetry"] = {"gradients": False, "activations": False, "probe_size": 0}
    packed = [member.history["val_loss"][-1] for member in packing.train_pack(settings, iris, seeds)]
    separate = []
    for seed in seeds:
        split = split_dataset(iris, 0.2, seed)
        separate.append(
            fit_model({**settings, "trainer": {**settings["trainer"], "seed": seed}}, split, 3, "d").history[
                "val_loss"
            ][-1]
        )
    forget_models()
    assert packed != separate
    assert stats.mannwhitneyu(packed, separate).pvalue > 0.01
    assert abs(np.mean(packed) - np.mean(separate)) < np.std(separate)


def test_a_packed_sweep_writes_what_an_unpacked_one_writes(cli, tmp_path):
    common = [
        "-m",
        "trainer.seed=0,1,2",
        "trainer.epochs=2",
        "model.normalization=batch",
        "trainer.evaluate_train=true",
    ]
    packed = cli(*common, "results_dir=packed")
    separate = cli(*common, "results_dir=separate", "hydra.launcher.pack_seeds=false")
    assert packed.returncode == 0 and separate.returncode == 0, packed.stderr + separate.stderr
    (ours,), (theirs,) = (list((tmp_path / root / "default").iterdir()) for root in ("packed", "separate"))
    folders = sorted(folder.name for folder in ours.iterdir() if folder.is_dir())
    assert folders == sorted(folder.name for folder in theirs.iterdir() if folder.is_dir()) and len(folders) == 3
    packs = []
    for name in folders:
        for file in ("history.csv", "diagnostics.csv", "config.yaml", "metrics.json", ".hydra/overrides.yaml"):
            assert (ours / name / file).is_file() and (theirs / name / file).is_file()
        a, b = (pd.read_csv(root / name / "history.csv") for root in (ours, theirs))
        assert list(a.columns) == list(b.columns)
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=LOSS_TOLERANCE)
        configs = [
            (root / name / "config.yaml").read_text().replace(f"results_dir: {root.parent.parent.name}", "")
            for root in (ours, theirs)
        ]
        assert configs[0] == configs[1]
        record, alone = (json.loads((root / name / "metrics.json").read_text()) for root in (ours, theirs))
        assert record["status"] == "completed"
        packs.append(record["packed"])
        assert alone["packed"] is None
        for key in ("train_eval_accuracy", "val_eval_accuracy"):
            assert record[key] == pytest.approx(alone[key], abs=1e-6)
        assert record["train_eval_loss"] == pytest.approx(alone["train_eval_loss"], rel=LOSS_TOLERANCE)
    assert sum(size is not None and size >= 2 for size in packs) >= 2  # one pack, or one per worker
    summary = pd.read_csv(ours / "summary.csv")
    assert summary["runs"].tolist() == [3]
    np.testing.assert_allclose(
        summary["final_val_accuracy_mean"], pd.read_csv(theirs / "summary.csv")["final_val_accuracy_mean"], atol=1e-6
    )


def composed(*overrides):
    from hydra import compose, initialize_config_dir

    from runner.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return [compose("config", overrides=[f"trainer.seed={seed}", *overrides]) for seed in range(6)]


def test_the_launcher_packs_seeds_of_a_variant_and_says_why_it_does_not(caplog):
    from runner.packs import plan_packs

    assert plan_packs(composed(), workers=2, size=100) == [[0, 1, 2], [3, 4, 5]]  # a pack per worker
    assert plan_packs(composed(), workers=1, size=4) == [[0, 1, 2, 3], [4, 5]]
    with caplog.at_level("INFO", logger="runner.packs"):
        assert plan_packs(composed("callbacks=early_stopping"), workers=2, size=100) == [[i] for i in range(6)]
        assert plan_packs(composed("model=custom", "model._target_=my.net"), workers=2, size=100) == [
            [i] for i in range(6)
        ]
    assert "callbacks (they would stop or change every seed at once)" in caplog.text
    assert "a custom model" in caplog.text
    # A setting that reads the seed makes each seed a variant of its own: its data differ.
    seeded = composed("data=synthetic", "data.seed=${trainer.seed}")
    assert plan_packs(seeded, workers=2, size=100) == [[i] for i in range(6)]


def test_with_dropout_a_member_trains_the_same_in_any_pack(iris):
    """Each member's dropout masks come from its own seed: seed 1 alone with seed 0, or among
    four seeds in another order, has the same history."""
    settings = settings_for("adam", epochs=3, dropout_rate=0.5, depth=3, width=16)
    small = packing.train_pack(settings, iris, [0, 1])
    large = packing.train_pack(settings, iris, [3, 1, 2, 0])
    assert small[1].history == large[1].history and small[0].history == large[3].history
    assert small[0].history != small[1].history


def test_a_fresh_pack_traces_its_train_step_once(iris, monkeypatch):
    """The optimizer's variables exist before fit: TensorFlow traces a step that creates variables
    twice. Fails loudly should Keras change that."""
    traced = []
    original = packing.PackedModel.train_step

    def counted(self, data):
        traced.append(1)  # Python runs here only while TensorFlow traces the step
        return original(self, data)

    monkeypatch.setattr(packing.PackedModel, "train_step", counted)
    forget_models()
    packing.train_pack(settings_for("adam", epochs=2), iris, SEEDS)
    assert len(traced) == 1


def test_variants_that_differ_only_in_initial_weights_share_a_pack():
    from runner.packs import plan_packs

    glorot, he = composed("model.weights_initializer=glorot_uniform"), composed("model.weights_initializer=he_normal")
    deeper = composed("model.weights_initializer=he_normal", "model.depth=3")
    jobs = [*glorot, *he, *deeper]  # 6 seeds each
    assert plan_packs(jobs, workers=2, size=100) == [list(range(12)), list(range(12, 18))]  # a pack per worker
    assert plan_packs(jobs, workers=1, size=8) == [list(range(8)), list(range(8, 12)), list(range(12, 18))]
    assert plan_packs(jobs, workers=1, size=100, across_variants=False) == [
        list(range(6)), list(range(6, 12)), list(range(12, 18))
    ]  # fmt: skip


def test_sgd_learning_rates_share_a_pack_where_each_members_update_stays_its_own():
    from runner.packs import plan_packs

    def sweep(*overrides):
        return [job for rate in (0.01, 0.1) for job in composed(f"optimizer.learning_rate={rate}", *overrides)]

    assert plan_packs(sweep("optimizer=sgd", "optimizer.momentum=0.9"), workers=1, size=100) == [list(range(12))]
    apart = [
        ["optimizer=adam"],
        ["optimizer=sgd", "optimizer.clipvalue=0.5"],
        ["optimizer=sgd", "+optimizer.weight_decay=0.1"],
    ]
    for other in apart:
        assert plan_packs(sweep(*other), workers=1, size=100) == [list(range(6)), list(range(6, 12))], other


@pytest.mark.parametrize("nesterov, clipnorm", [(False, None), (True, 0.05)])
def test_members_with_their_own_sgd_learning_rates_train_as_separate_runs(iris, nesterov, clipnorm):
    """Each member's gradient (clipped where asked) times its own rate, under a rate of 1: SGD's
    update, momentum too, is the separate run's; telemetry sees the unscaled gradient, as there."""
    settings = settings_for("sgd", epochs=3, depth=3, width=16, normalization="batch")
    settings["optimizer"].update(momentum=0.9, nesterov=nesterov, clipnorm=clipnorm)
    rates = [0.01, 0.1, 0.05]
    members = packing.train_pack(settings, iris, SEEDS, learning_rates=rates)
    for seed, rate, member in zip(SEEDS, rates, members, strict=True):
        history, rows = separate_run(
            {**settings, "optimizer": {**settings["optimizer"], "learning_rate": rate}}, iris, seed
        )
        np.testing.assert_allclose(member.history["loss"], history["loss"], rtol=LOSS_TOLERANCE)
        np.testing.assert_allclose(member.history["val_accuracy"], history["val_accuracy"], atol=1e-6)
        ours, theirs = pd.DataFrame(member.rows), pd.DataFrame(rows)
        joined = ours.merge(theirs, on=["epoch", "layer", "depth", "metric"], how="inner")
        assert len(joined) == len(theirs)
        np.testing.assert_allclose(joined["value_x"], joined["value_y"], rtol=1e-3, atol=1e-6)
    assert not np.allclose(members[0].history["loss"], members[1].history["loss"])


def test_an_initializer_and_sgd_rate_sweep_packed_across_variants_trains_as_separate_runs(cli, tmp_path):
    common = [
        "-m", "model.weights_initializer=glorot_uniform,he_normal", "model.weights_scale=null", "trainer.seed=0,1",
        "optimizer=sgd", "optimizer.learning_rate=0.05,0.1", "trainer.epochs=3", "hydra.launcher.n_jobs=1",
    ]  # fmt: skip
    packed = cli(*common, "hydra.sweep.dir=packed")
    separate = cli(*common, "hydra.sweep.dir=separate", "hydra.launcher.pack_seeds=false")
    assert packed.returncode == 0 and separate.returncode == 0, packed.stderr + separate.stderr
    folders = sorted(path.parent.name for path in (tmp_path / "packed").glob("*/metrics.json"))
    assert len(folders) == 8
    for name in folders:
        record = json.loads((tmp_path / "packed" / name / "metrics.json").read_text())
        assert record["packed"] == 8  # both initializers' and rates' two seeds in one model
        a, b = (pd.read_csv(tmp_path / root / name / "history.csv") for root in ("packed", "separate"))
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=LOSS_TOLERANCE)
        np.testing.assert_allclose(a["val_accuracy"], b["val_accuracy"], atol=1e-6)
    losses = {name: pd.read_csv(tmp_path / "packed" / name / "history.csv")["loss"] for name in folders}
    glorot, faster, he = (folders[0], folders[2], folders[4])  # seed 0: glorot at 0.05 and 0.1, he at 0.05
    assert "glorot" in glorot and "learning_rate=0.1," in faster and "he_normal" in he
    assert not np.allclose(losses[glorot], losses[he])  # each member drew its own initializer's weights
    assert not np.allclose(losses[glorot], losses[faster])  # and stepped at its own rate
