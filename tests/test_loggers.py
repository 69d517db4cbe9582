"""logger=tensorboard and logger=mlflow on a tiny sweep, read back with each library's own reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SWEEP = ("-m", "experiment=normalization", "trainer.epochs=2", "hydra.sweep.dir=sweep")


def test_tensorboard_logs_curves_and_hparams_of_every_variant(cli, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install 'runner[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util.tensor_util import make_ndarray

    done = cli(*SWEEP, "logger=tensorboard")
    assert done.returncode == 0, done.stderr[-3000:]
    seen = {}
    for variant in sorted((tmp_path / "sweep").glob("model.normalization=*")):
        logs = EventAccumulator(str(variant / "tensorboard"))
        logs.Reload()
        (blob,) = [
            content
            for content in logs.PluginTagToContent("hparams").values()
            if plugin_data_pb2.HParamsPluginData.FromString(content).HasField("session_start_info")
        ]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(blob).session_start_info.hparams
        seen[hparams["model.normalization"].string_value] = hparams
        assert hparams["optimizer.learning_rate"].number_value == pytest.approx(0.001)
        final = logs.Tensors("hparams/final_val_accuracy")[-1]
        metrics = json.loads((variant / "metrics.json").read_text())
        assert float(make_ndarray(final.tensor_proto)) == pytest.approx(metrics["final_val_accuracy"], rel=1e-6)

        validation = EventAccumulator(str(variant / "tensorboard" / "validation"))
        validation.Reload()
        curve = [float(make_ndarray(event.tensor_proto)) for event in validation.Tensors("epoch_accuracy")]
        history = pd.read_csv(variant / "history.csv")
        assert curve == pytest.approx(list(history["val_accuracy"]), rel=1e-6)
    assert sorted(seen) == ["batch", "none"]


def test_mlflow_nests_one_run_per_variant_under_the_sweep(cli, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'runner[mlflow]'")
    from mlflow.tracking import MlflowClient

    done = cli(*SWEEP, "logger=mlflow", "trainer.seed=0,1")
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("normalization")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 == len(runs) - 1  # 2 normalizations x 2 seeds
    assert parent.info.status == "FINISHED"
    assert {"summary.csv", "val_accuracy.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    for child in children:
        params = child.data.params
        folder = Path(child.data.tags["runner.folder"])
        assert folder.parent == tmp_path / "sweep"
        assert f"model.normalization={params['model.normalization']}," in folder.name
        history = pd.read_csv(folder / "history.csv")
        curve = sorted(client.get_metric_history(child.info.run_id, "val_accuracy"), key=lambda m: m.step)
        assert [m.step for m in curve] == [1, 2]
        assert [m.value for m in curve] == pytest.approx(list(history["val_accuracy"]))
        assert child.data.tags["runner.status"] == "completed" and child.info.status == "FINISHED"
        assert "history.csv" in {a.path for a in client.list_artifacts(child.info.run_id)}


def test_trackers_are_off_by_default_and_cost_no_import(cli, tmp_path):
    code = (
        "import sys; from runner.cli import main; sys.argv = ['runner', 'trainer.epochs=1', 'hydra.run.dir=one']\n"
        "main()\n"
        "loaded = [name for name in ('mlflow', 'tensorboard', 'runner.loggers') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "one" / "history.csv").is_file()
    assert not list(tmp_path.rglob("tensorboard")) and not list(tmp_path.rglob("mlflow.db"))


def test_a_missing_tracker_package_is_a_clear_error(monkeypatch):
    import importlib.util

    from runner.config import ConfigError, check_logger

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError) as error:
        check_logger({"name": "mlflow"})
    message = str(error.value)
    assert f"logger=mlflow needs the mlflow package, which is not installed in this environment ({sys.executable})" in (
        message
    )
    assert f"`{sys.executable} -m pip install mlflow`" in message and "`make install EXTRAS=mlflow`" in message
    assert "runner[" not in message  # the index's "runner" is another project
    check_logger({"name": "none"})  # nothing to install
