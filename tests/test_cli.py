"""CLI tests: the real `python -m runner` in a subprocess, with tiny overrides into tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, assert_refused


def no_training_happened(tmp_path) -> bool:
    return not list(tmp_path.rglob("history.csv"))


def test_a_sweep_writes_histories_summary_and_plots(cli, tmp_path):
    done = cli("-m", "experiment=optimizer", "trainer.epochs=2", "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr
    sweep = tmp_path / "sweep"
    summary = pd.read_csv(sweep / "summary.csv")
    assert sorted(summary["variant"]) == ["Optimizer-adagrad", "Optimizer-adam", "Optimizer-rmsprop", "Optimizer-sgd"]
    assert set(summary["status"]) == {"completed"}
    assert summary["final_accuracy_mean"].between(0, 1).all()
    for plot in ("accuracy.png", "val_accuracy.png", "loss.png"):
        assert (sweep / plot).read_bytes().startswith(b"\x89PNG")

    variant = sweep / "optimizer=adam,trainer.epochs=2"
    history = pd.read_csv(variant / "history.csv")
    assert list(history.columns) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert list(history["epoch"]) == [1, 2]
    metrics = json.loads((variant / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["swept"] == {"optimizer": "adam"}
    assert metrics["final_val_accuracy"] == pytest.approx(history["val_accuracy"].iloc[-1])
    assert metrics["seed"] == 42 and metrics["best_epoch"] in (1, 2) and metrics["seconds"] > 0
    assert "learning_rate: 0.001" in (variant / "config.yaml").read_text()
    assert "Optimizer-adam" in done.stdout and "Tables and plots:" in done.stdout

    diagnostics = pd.read_csv(variant / "diagnostics.csv")
    assert list(diagnostics.columns) == ["epoch", "layer", "depth", "metric", "value"]
    norms = diagnostics[(diagnostics["metric"] == "gradient_norm") & (diagnostics["epoch"] == 2)]
    assert list(norms["layer"]) == ["hidden_1", "hidden_2", "output", "all"]
    assert (norms["value"] > 0).all()
    assert {"update_ratio", "weight_norm", "activation_mean", "activation_std", "dead_fraction"} <= set(
        diagnostics["metric"]
    )
    assert summary["gradient_ratio_first_epoch_mean"].gt(0).all()
    assert summary["dead_fraction_final_mean"].between(0, 1).all()
    for plot in ("gradient_norms.png", "grad_norm_history.png", "dead_units.png"):
        assert (sweep / plot).read_bytes().startswith(b"\x89PNG")
    assert not (sweep / "saturation.png").exists()  # ReLU units do not saturate


def test_default_sweep_folder_is_results_experiment_timestamp(cli, tmp_path):
    done = cli("-m", "experiment=normalization", "trainer.epochs=1", "trainer.seed=0,1")
    assert done.returncode == 0, done.stderr
    (sweep,) = (tmp_path / "results" / "normalization").iterdir()
    assert len(sweep.name) == len("2026-01-01_00-00-00")
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["runs"]) == [2, 2]
    assert summary["final_accuracy_std"].notna().all()


def test_same_config_and_seed_give_identical_history(cli, tmp_path):
    for folder in ("first", "second"):
        done = cli("trainer.epochs=3", "model.normalization=batch", f"hydra.run.dir={folder}")
        assert done.returncode == 0, done.stderr
    first = (tmp_path / "first" / "history.csv").read_text()
    assert first == (tmp_path / "second" / "history.csv").read_text()
    assert len(first.splitlines()) == 4


def test_diverged_and_failed_variants_do_not_stop_the_sweep(cli, tmp_path):
    (tmp_path / "faulty.py").write_text(
        "import keras\n\n\nclass FailAfter(keras.callbacks.Callback):\n"
        "    def __init__(self, epochs=1):\n        super().__init__()\n        self.epochs = epochs\n\n"
        "    def on_epoch_end(self, epoch, logs=None):\n        if epoch + 1 >= self.epochs:\n"
        "            raise RuntimeError('broken on purpose')\n"
    )
    done = cli(
        "-m",
        "optimizer=sgd",
        "optimizer.learning_rate=0.01,100",
        "+callbacks.fail._target_=faulty.FailAfter",
        "+callbacks.fail.epochs=99,1",
        "trainer.epochs=3",
        "hydra.sweep.dir=sweep",
    )
    assert done.returncode == 1, done.stderr  # some failed
    runs = pd.read_csv(tmp_path / "sweep" / "runs.csv")
    statuses = runs.set_index(["optimizer.learning_rate", "callbacks.fail.epochs"])["status"]
    assert statuses[0.01, 99] == "completed"
    assert statuses[100, 99] == "diverged"
    assert statuses[0.01, 1] == "failed"
    assert statuses[100, 1] == "failed"
    diverged = runs[runs["status"] == "diverged"].iloc[0]
    assert 1 <= diverged["diverged_epoch"] == diverged["epochs_run"] < 3  # stopped at the NaN epoch
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert "broken on purpose" in failed["error"]
    assert len(pd.read_csv(tmp_path / "sweep" / "summary.csv")) == 4
    assert (tmp_path / "sweep" / "gradient_norms.png").is_file()
    # Each failure says why and where its traceback is, as it happens and at the end.
    line = next(line for line in done.stdout.splitlines() if "callbacks.fail.epochs=1, seed 42): failed" in line)
    assert "failed: RuntimeError: broken on purpose" in line
    traceback = re.search(r"\(traceback: (\S+/error\.txt)\)", line).group(1)
    assert traceback.startswith(str(tmp_path / "sweep")) and "broken on purpose" in Path(traceback).read_text()
    assert "Variants that failed, so the command exits with status 1:" in done.stderr and "Traceback" not in done.stderr


BAD_INPUTS = [
    (["model.hiden_nodes=[8]"], "Did you mean model.hidden_nodes?"),
    (["model.hidden_activation=reluu"], "Choose one of: relu, sigmoid, tanh, leaky_relu"),
    (["model.weights_initializer=xavier"], "Invalid model.weights_initializer='xavier'"),
    (["optimizer=adamm"], "Unknown optimizer 'adamm'. Did you mean optimizer=adam? Choose one of: adagrad, adam,"),
    (["data=iriss"], "Unknown data 'iriss'. Did you mean data=iris? Choose one of: breast_cancer, csv, custom, digits"),
    (["experiment=optimiser"], "Unknown experiment 'optimiser'. Did you mean experiment=optimizer?"),
    (["optimizer.learning_rate=0"], "Invalid optimizer.learning_rate=0: it must be a number > 0"),
    (["optimizer.learning_rate=-0.1"], "it must be a number > 0"),
    (["model.dropout_rate=1.5"], "Invalid model.dropout_rate=1.5: it must be in [0, 1)"),
    (["trainer.validation_split=1.0"], "it must be in (0, 1)"),
    (["trainer.epochs=0"], "Invalid trainer.epochs=0"),
    (["trainer.batch_size=0"], "Invalid trainer.batch_size=0"),
    (["model.hidden_nodes=[]"], "one or more hidden layers"),
    (["data=csv"], "data=csv needs data.path"),
    (["data=csv", "data.path=nowhere.csv", "data.target=label"], "no such file"),
    (["data.path=x.csv"], "data.path is a setting of data=csv, not of the data chosen here"),
    (["data=synthetic", "data.n_classes=1"], "Invalid data.n_classes=1: it must be a whole number >= 2"),
    (["+trainer.epoch=5"], "Unknown setting trainer.epoch: the trainer has no epoch. Did you mean trainer.epochs?"),
    (
        ["trainer.metrics=[auc]"],
        "read accuracy, which it leaves out. Keep accuracy first, e.g. trainer.metrics=[accuracy,auc]",
    ),
    (["optimizer.name=adam"], "optimizer.name=adam keeps the settings of optimizer=rmsprop (keras.optimizers.RMSprop)"),
    (
        ["+optimizer.beta_1=0.8"],
        "rmsprop has no beta_1. adam, adamw and nadam have it: choose the option with optimizer=adam",
    ),
    (["resume=latest"], "resume=latest continues a sweep, and this command runs a single variant: add -m"),
    (["-m", "optimizer.learning_rate=0.01,-1"], "Invalid optimizer.learning_rate=-1"),
    # Every job's settings are checked before any data is read: the second job's rate, not the file.
    (["-m", "data=csv", "data.path=nowhere.csv", "data.target=y", "optimizer.learning_rate=0.01,-1"], "=-1: it must"),
    (["-m", "optimizer=adamm"], "Unknown optimizer 'adamm'"),
    (["-m", "hydra.launcher.pack_size=0"], "Invalid hydra.launcher.pack_size=0: it packs no seed. Give the most seeds"),
    (["-m", "hydra.launcher.n_jobs=0"], "Invalid hydra.launcher.n_jobs=0: it runs nothing. Give a number of workers"),
    (["-m", "--cfg", "job", "experiment=dropout"], "--cfg and --info show one composed config and train nothing"),
    (["optimizer=sgd", "optimizer.nesterov=maybe"], "Invalid optimizer.nesterov='maybe': it must be true or false"),
    (["trainer.evaluate_train=null"], "Invalid trainer.evaluate_train=null: it must be true or false"),
    (["optimizer.momentum=-1"], "Invalid optimizer.momentum=-1: it must be in [0, 1)"),
    (["optimizer=adam", "optimizer.beta_1=2"], "Invalid optimizer.beta_1=2: it must be in [0, 1)"),
    (["optimizer.rho=abc"], "Invalid optimizer.rho='abc'"),
    (["metric=val_loss"], "metric is now objective.metric: `objective.metric=val_loss`"),
    (["model.residual=true"], "a skip connection goes around a hidden layer whose input has its width, and [32, 64]"),
    (["model.width=128"], "model.width is set, but the network takes its layers from model.hidden_nodes ([32, 64])"),
    (["-m", "model.width=16,64"], "while model.depth is null, so every width would train the same network"),
    (["~model.l1"], "model.l1 is missing (removed with ~model.l1?), and runner reads it"),
    (["optimizer=adam,sgd"], "optimizer=adam,sgd gives several values, which only a sweep runs: add -m"),
    (["data.delimiter=;"], "quote a value with characters such as ; , [ ] or spaces, e.g. \"data.delimiter=';'\"."),
    (["-m", "experiment=optimizer", "optimizer.momentum=0.9"], "optimizer.momentum is a setting of optimizer=rmsprop"),
    (["-m", "experiment=normalization", "label=X-${optimizer.nope}"], "Interpolation key 'optimizer.nope' not found"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_fails_clearly_before_training(refused_ahead, args, message):
    def command(params, folder):
        flags = [arg for arg in params["args"] if arg.startswith("-") or arg == "job"]
        return [*flags, "trainer.epochs=1", *(arg for arg in params["args"] if arg not in flags)]

    done, folder = refused_ahead(command)
    assert_refused(done, message, folder)


CSV_CASES = {
    "no_column": ("a,b,label\n1,2,x\n", "target=klass", "no such column in table.csv. Its columns are: a, b, label"),
    "text_feature": ("a,b,label\n1,hi,x\n2,3,y\n", "target=label", "non-numeric feature columns: b"),
    "missing": ("a,b,label\n1,,x\n2,3,y\n", "target=label", "missing values in columns: b (1)"),
    "one_class": ("a,b,label\n1,2,x\n2,3,x\n", "target=label", "has only one class"),
    "infinite": ("a,b,label\n1,inf,x\n2,3,y\n", "target=label", "has infinite values (inf, -inf) in columns: b"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv_fails_clearly(cli, tmp_path, case):
    content, target, message = CSV_CASES[case]
    (tmp_path / "table.csv").write_text(content)
    done = cli("data=csv", "data.path=table.csv", f"data.{target}")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert no_training_happened(tmp_path)


def test_own_csv_with_bom_crlf_and_string_labels_trains(cli, tmp_path):
    rows = "".join(f"{i % 7},{(i * 3) % 5},{['setosa', 'virginica'][i % 2]}\r\n" for i in range(40))
    (tmp_path / "mine.csv").write_bytes(("\ufefflength,width,species\r\n" + rows).encode())
    done = cli("data=csv", "data.path=mine.csv", "data.target=species", "trainer.epochs=1", "hydra.run.dir=out")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["data"] == "mine"


def test_the_readme_experiment_example_runs_from_a_users_folder(cli, tmp_path):
    readme = (REPO / "README.md").read_text()
    example = readme.split("Ten lines of YAML in `conf/experiment/<name>.yaml`:\n\n```yaml\n")[1].split("```")[0]
    assert len(example.strip().splitlines()) <= 12
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment" / "momentum.yaml").write_text(example)
    done = cli("-m", "--config-dir", "my_conf", "experiment=momentum", "trainer.epochs=1", "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert sorted(summary["variant"]) == ["Momentum-0.0", "Momentum-0.5", "Momentum-0.9"]
    metrics = json.loads((tmp_path / "sweep" / "optimizer.momentum=0.9,trainer.epochs=1" / "metrics.json").read_text())
    assert metrics["title"] == "Compare SGD Momentum" and "optimizer.momentum" in metrics["swept"]


def test_clipping_keeps_the_exploding_baseline_from_diverging(cli, tmp_path):
    done = cli("-m", "experiment=gradient_clipping", "clipping=none,norm", "trainer.epochs=2", "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv").set_index("variant")
    assert summary.loc["Clipping-none", "status"] == "diverged"
    assert summary.loc["Clipping-norm", "status"] == "completed"
    runs = pd.read_csv(tmp_path / "sweep" / "runs.csv").set_index("label")
    assert runs.loc["Clipping-none", "diverged_epoch"] == 1
    assert runs.loc["Clipping-norm", "gradient_norm_max"] > 1e3  # the raw gradients still explode


EXPERIMENT_FILES = sorted(p.stem for p in (REPO / "runner" / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENT_FILES)
def test_every_experiment_runs_end_to_end(cli, tmp_path, experiment):
    done = cli("-m", f"experiment={experiment}", "trainer.epochs=1", "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(tmp_path / "sweep" / "runs.csv")
    assert len(runs) >= 2 and "failed" not in set(runs["status"])
    assert (tmp_path / "sweep" / "accuracy.png").is_file()


def test_parallel_and_sequential_sweeps_give_identical_histories(cli, tmp_path):
    # runner's default launcher (workers forked with TensorFlow loaded), Hydra's joblib one, one by one.
    for launcher in ("processes", "joblib", "basic"):
        done = cli(
            "-m",
            "experiment=optimizer",
            "trainer.epochs=2",
            f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={launcher}",
        )
        assert done.returncode == 0, done.stderr
    sequential = sorted((tmp_path / "basic").glob("*/history.csv"))
    assert len(sequential) == 4
    for path in sequential:
        for launcher in ("processes", "joblib"):
            assert (tmp_path / launcher / path.parent.name / "history.csv").read_text() == path.read_text()
        assert (tmp_path / "processes" / path.parent.name / "diagnostics.csv").read_text() == (
            path.parent / "diagnostics.csv"
        ).read_text()


def test_sweeping_experiments_runs_each_experiments_own_sweep(cli, tmp_path):
    # keep_warm=0: a fork server of the command's own, whose import delays the first variant
    done = cli("-m", "experiment=normalization,optimizer", "trainer.epochs=1", "hydra.launcher.keep_warm=0")
    assert done.returncode == 0, done.stderr
    (normalization,) = (tmp_path / "results" / "normalization").iterdir()
    (optimizer,) = (tmp_path / "results" / "optimizer").iterdir()
    assert len(pd.read_csv(normalization / "summary.csv")) == 2
    assert len(pd.read_csv(optimizer / "summary.csv")) == 4
    assert "[4/4] Optimizer-" in done.stdout
    # Both sweeps are checked and queued before the first variant ends (the workers import
    # TensorFlow first); each header comes with its sweep's first line, each ranking as soon as
    # its sweep ends, in order; plots are drawn while the next trains, and the command ends once
    # every sweep's files are written.
    first_finished = min(path.stat().st_mtime for path in normalization.glob("*/metrics.json"))
    assert (optimizer / ".sweep.json").stat().st_mtime < first_finished
    header_1, header_2 = (done.stdout.index(f"=== Experiment {i}/2: {name} ===") for i, name in
                          ((1, "normalization"), (2, "optimizer")))  # fmt: skip
    assert header_1 < done.stdout.index("[1/2] Normalization-") < header_2 < done.stdout.index("[1/4] Optimizer-")
    first_ranking = done.stdout.index(f"{normalization.relative_to(tmp_path)}: ranked by final val_accuracy")
    assert first_ranking < done.stdout.index(f"{optimizer.relative_to(tmp_path)}: ranked by final val_accuracy")
    assert done.stdout.index("Normalization-batch completed") > first_ranking
    for sweep in (normalization, optimizer):
        assert f"Tables and plots: {sweep.relative_to(tmp_path)}/" in done.stdout
        for name in ("accuracy.png", "val_loss.png", "gradient_norms.png", "dead_units.png"):
            assert (sweep / name).read_bytes().startswith(b"\x89PNG")


def test_a_users_experiment_sweeps_beside_a_built_in_one(cli, tmp_path):
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment" / "momentum.yaml").write_text(
        "# @package _global_\nname: momentum\ntitle: Momentum\nlabel: M-${optimizer.momentum}\n"
        "defaults:\n  - override /optimizer: sgd\nhydra:\n  sweeper:\n    params:\n      optimizer.momentum: 0.0,0.9\n"
    )
    done = cli("-m", "--config-dir", "my_conf", "experiment=momentum,normalization", "trainer.epochs=1")
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(next((tmp_path / "results" / "momentum").iterdir()) / "summary.csv")) == 2
    assert len(pd.read_csv(next((tmp_path / "results" / "normalization").iterdir()) / "summary.csv")) == 2
    done = cli("-m", "--config-dir", "my_conf", "experiment=glob(mom*)", "trainer.epochs=1")
    assert done.returncode == 0 and "=== Experiment 1/1: momentum ===" in done.stdout


def test_a_sweep_prints_none_of_tensorflows_start_up_lines(cli, tmp_path):
    done = cli("-m", "experiment=normalization", "trainer.epochs=1")
    assert done.returncode == 0, done.stderr
    for noise in ("cuInit", "oneDNN", "absl::InitializeLog", "cuda drivers", "E0000", "I0000"):
        assert noise not in done.stderr and noise not in done.stdout
    runs = pd.read_csv(next((tmp_path / "results" / "normalization").iterdir()) / "runs.csv")
    assert set(runs["threads"]) == {max(1, os.cpu_count() // 2)}  # its two variants side by side share the cores


def test_a_single_run_uses_every_core(cli, tmp_path):
    done = cli("trainer.epochs=1", "hydra.run.dir=one")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["threads"] == os.cpu_count()
    assert "cuInit" not in done.stderr and "oneDNN" not in done.stderr


def test_a_typo_in_an_experiments_sweep_is_named_before_anything_is_written(cli, tmp_path):
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment" / "momentum.yaml").write_text(
        "# @package _global_\nname: momentum\nlabel: M\ndefaults:\n  - override /optimizer: sgd\n"
        "hydra:\n  sweeper:\n    params:\n      optimizer.momentom: 0.0,0.9\n"
    )
    done = cli("-m", "--config-dir", "my_conf", "experiment=momentum", "trainer.epochs=1")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "In the sweep of experiment=momentum (hydra.sweeper.params): Unknown config key 'optimizer.momentom' in "
        "'optimizer.momentom=0.0,0.9'. Did you mean optimizer.momentum? Valid keys under optimizer: _target_, amsgrad, "
        "beta_1, beta_2, clipnorm, clipvalue, epsilon, global_clipnorm, initial_accumulator_value, learning_rate, "
        "momentum, name, nesterov, rho, weight_decay."
    )
    assert "Launching" not in done.stdout and not (tmp_path / "results").exists()


def test_a_sweep_over_no_value_is_refused_before_anything_is_written(cli, tmp_path):
    done = cli("-m", "trainer.seed=range(0,0)")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("trainer.seed=range(0,0) has no value, so the sweep would run nothing")
    assert not (tmp_path / "results").exists()


def test_unknown_experiment_in_a_sweep_is_named(cli, tmp_path):
    done = cli("-m", "experiment=optimizer,optimiser")
    assert done.returncode == 2
    assert "Unknown experiment(s) 'optimiser'. Choose from: activation" in done.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("arguments", [["--help"], ["--cfg", "job"]])
def test_help_and_config_printing_do_not_import_tensorflow(arguments):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runner", *arguments], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "tensorflow" not in imported and "keras" not in imported
    assert "runner" in imported


def test_zero_gradients_still_get_their_tables_and_plots(cli, tmp_path):
    """All-zero kernels give all-zero kernel gradients, which a log scale cannot show: the plot
    says so, and the tables are written."""
    done = cli("model.weights_initializer=zeros", "trainer.epochs=2", "hydra.run.dir=zeros")
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    for name in ("summary.csv", "runs.csv", "histories.csv", "gradient_norms.png", "grad_norm_history.png"):
        assert (tmp_path / "zeros" / name).stat().st_size > 0


def test_result_files_get_the_mode_the_umask_gives(tmp_path):
    """Written through a temporary file and renamed, they end up as a plain open() leaves them."""
    code = "import os, runpy, sys; os.umask(0o022); sys.argv = ['runner', 'trainer.epochs=1', 'hydra.run.dir=one']; "
    code += "runpy.run_module('runner', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = ["summary.csv", "runs.csv", "histories.csv", "metrics.json", "config.yaml", "history.csv",
             "diagnostics.csv", "accuracy.png"]  # fmt: skip
    assert {name: oct((tmp_path / "one" / name).stat().st_mode & 0o777) for name in names} == dict.fromkeys(
        names, "0o644"
    )


def test_progress_counts_each_variant_once_with_its_values_and_seed(cli, tmp_path):
    done = cli("-m", "experiment=normalization", "trainer.seed=0,1", "trainer.epochs=1", "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    starts = ("[1/4] Normalization-none (model.normalization=none, seed ",
              "[1/4] Normalization-batch (model.normalization=batch, seed ")  # fmt: skip
    assert any(line.startswith(starts) for line in lines)
    assert {line.split("seed ")[1][0] for line in lines} == {"0", "1"}
    again = cli("-m", "experiment=normalization", "trainer.seed=0,1", "trainer.epochs=1", "hydra.sweep.dir=sweep",
                "resume=sweep")  # fmt: skip
    skipped = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in skipped] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert all(line.endswith("done earlier, skipped") for line in skipped)


def test_the_ranking_is_by_validation_accuracy_with_the_spread_over_seeds(cli, tmp_path):
    done = cli("-m", "experiment=normalization", "trainer.seed=0,1", "trainer.epochs=1", "hydra.sweep.dir=sweep")
    assert "sweep: ranked by final val_accuracy (mean ± std over 2 seeds; accuracy is on the training split):" in (
        done.stdout
    )
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert list(summary["final_val_accuracy_mean"]) == sorted(summary["final_val_accuracy_mean"], reverse=True)
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("1 "))
    assert row.count(" ± ") == 2


def test_help_names_runners_commands_and_where_results_go(cli):
    done = cli("--help")
    assert done.returncode == 0
    for text in ("python -m runner -m experiment=optimizer", "python -m runner reproduce", "resume=latest",
                 "python -m runner report results", "python -m runner.compare", "results/<experiment>/<timestamp>/",
                 "Exit status: 0", "experiment: activation, activations_deep"):  # fmt: skip
        assert text in done.stdout
    assert "powered by Hydra" not in done.stdout


def test_a_run_folder_holds_its_results_and_no_empty_log(cli, tmp_path):
    done = cli("trainer.epochs=1", "hydra.run.dir=one")
    assert done.returncode == 0, done.stderr
    names = {path.name for path in (tmp_path / "one").iterdir()}
    assert {"history.csv", "metrics.json", "config.yaml", "diagnostics.csv", "summary.csv"} <= names
    assert "runner.log" not in names


def test_a_single_run_that_fails_says_why(cli, tmp_path):
    (tmp_path / "faulty.py").write_text(
        "import keras\n\n\nclass Fail(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n        raise RuntimeError('broken on purpose')\n"
    )
    done = cli("+callbacks.fail._target_=faulty.Fail", "trainer.epochs=1", "hydra.run.dir=one")
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if line.startswith("Base (seed 42): failed"))
    assert "RuntimeError: broken on purpose" in line
    assert f"(traceback: {tmp_path / 'one'}/error.txt)" in line


def test_a_sweep_whose_variants_all_diverge_draws_what_it_can(cli, tmp_path):
    done = cli("-m", "optimizer=sgd", "optimizer.learning_rate=30,100", "model.weights_scale=2", "trainer.epochs=2",
               "hydra.sweep.dir=sweep")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(pd.read_csv(tmp_path / "sweep" / "runs.csv")["status"]) == {"diverged"}
    for name in ("summary.csv", "loss.png", "grad_norm_history.png", "gradient_norms.png"):
        assert (tmp_path / "sweep" / name).stat().st_size > 0


def test_commands_started_in_the_same_second_get_a_sweep_folder_each(tmp_path):
    from runner.config import sweep_dir

    folders = {sweep_dir(None, str(tmp_path / "results" / "optimizer"), "2026-01-01_00-00-00") for _ in range(3)}
    assert sorted(Path(folder).name for folder in folders) == [
        "2026-01-01_00-00-00", "2026-01-01_00-00-00-2", "2026-01-01_00-00-00-3"]  # fmt: skip
