"""Sweep summaries from fake run folders: no Keras, just the files a sweep writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from runner.compare import CompareError, SweepSummary, rank_sweep, summarize_sweep
from tests.conftest import run_cli


def fake_run(sweep, name, label, seed, accuracy, status="completed", job=0, swept=None):
    folder = sweep / name
    folder.mkdir(parents=True)
    epochs = len(accuracy)
    loss = [1.0 / (e + 1) for e in range(epochs)]
    if status == "diverged":
        loss[-1] = float("nan")
    if accuracy:
        pd.DataFrame(
            {
                "epoch": range(1, epochs + 1),
                "accuracy": accuracy,
                "loss": loss,
                "val_accuracy": accuracy,
                "val_loss": loss,
            }
        ).to_csv(folder / "history.csv", index=False)
    record = {
        "status": status,
        "label": label,
        "title": "Compare Things",
        "metric": "val_accuracy",
        "seed": seed,
        "job": job,
        "final_accuracy": accuracy[-1] if accuracy else None,
        "final_val_accuracy": accuracy[-1] if accuracy else None,
        "best_val_accuracy": max(accuracy) if accuracy else None,
        "best_epoch": accuracy.index(max(accuracy)) + 1 if accuracy else None,
        "seconds": 1.0,
        "swept": swept or {"model.thing": label, "trainer.seed": seed},
    }
    (folder / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    folder = tmp_path / "sweep"
    fake_run(folder, "thing=b,seed=0", "Thing-b", 0, [0.5, 0.7, 0.9], job=2)
    fake_run(folder, "thing=b,seed=1", "Thing-b", 1, [0.4, 0.6, 0.7], job=3)
    fake_run(folder, "thing=a,seed=0", "Thing-a", 0, [0.3, 0.4, 0.5], job=0)
    fake_run(folder, "thing=a,seed=1", "Thing-a", 1, [0.3, 0.5, 0.6], job=1)
    fake_run(folder, "thing=c,seed=0", "Thing-c", 0, [0.3, 0.33], status="diverged", job=4)
    fake_run(folder, "thing=d,seed=0", "Thing-d", 0, [], status="failed", job=5)
    return folder


def test_summary_has_one_row_per_variant_with_mean_and_std(sweep):
    result = summarize_sweep(sweep)
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["variant"]) == ["Thing-b", "Thing-a", "Thing-c", "Thing-d"]  # ranked by val_accuracy
    b = summary.set_index("variant").loc["Thing-b"]
    assert b["runs"] == 2 and b["final_val_accuracy_mean"] == pytest.approx(0.8)
    assert b["final_val_accuracy_std"] == pytest.approx(0.141421, rel=1e-4)
    assert summary.set_index("variant").loc["Thing-c", "status"] == "diverged"
    assert summary.set_index("variant").loc["Thing-d", "status"] == "failed"
    assert result.metric == "val_accuracy"


def test_histories_are_long_format_and_runs_keep_sweep_order(sweep):
    summarize_sweep(sweep)
    histories = pd.read_csv(sweep / "histories.csv")
    assert list(histories.columns) == ["variant", "run", "seed", "epoch", "metric", "value"]
    assert len(histories) == (3 * 4 + 2) * 4  # epochs x runs x 4 metrics; the failed run has none
    runs = pd.read_csv(sweep / "runs.csv")
    assert list(runs["variant"]) == ["Thing-a", "Thing-a", "Thing-b", "Thing-b", "Thing-c", "Thing-d"]


def test_plots_are_written_for_every_metric(sweep):
    summarize_sweep(sweep)
    for metric in ("accuracy", "val_accuracy", "loss", "val_loss"):
        png = (sweep / f"{metric}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_same_label_for_different_settings_gets_the_settings_appended(tmp_path):
    folder = tmp_path / "sweep"
    fake_run(folder, "x", "Base", 0, [0.5], swept={"optimizer.learning_rate": 0.1})
    fake_run(folder, "y", "Base", 0, [0.6], swept={"optimizer.learning_rate": 0.01})
    summary = summarize_sweep(folder).summary
    assert sorted(summary["variant"]) == ["Base [optimizer.learning_rate=0.01]", "Base [optimizer.learning_rate=0.1]"]


def test_summary_csv_is_written_last(sweep):
    """A summary whose writing broke off is redone: summary.csv, the mark of a whole summary
    (current_summary), comes after every plot and table."""
    summarize_sweep(sweep)
    written = [path for path in sweep.iterdir() if path.suffix in (".png", ".csv")]
    assert max(written, key=lambda path: path.stat().st_mtime_ns).name == "summary.csv"


def test_background_summaries_write_the_files_and_explain_a_failure(sweep, tmp_path, capsys):
    from runner.summaries import BackgroundSummaries

    empty = tmp_path / "empty"
    empty.mkdir()
    background = BackgroundSummaries()
    background.submit(rank_sweep(sweep))
    background.submit(SweepSummary(folder=empty, runs=pd.DataFrame(), summary=pd.DataFrame(), metric="accuracy"))
    assert background.finish() is False
    out, err = capsys.readouterr()
    assert f"Tables and plots: {sweep}/" in out and "val_accuracy.png" in out
    assert pd.read_csv(sweep / "summary.csv")["variant"].tolist()[:2] == ["Thing-b", "Thing-a"]
    assert (sweep / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert f"Could not write all the tables and plots of {empty}: CompareError: No runs in" in err
    assert f"rebuild them with: python -m runner.compare {empty}" in err


def test_empty_folder_is_explained(tmp_path):
    with pytest.raises(CompareError, match="No runs in"):
        summarize_sweep(tmp_path)


def test_compare_cli_rebuilds_without_tensorflow(sweep, tmp_path):
    assert not (sweep / "summary.csv").exists()
    code = (
        "import sys, runner.compare as c; rc = c.main([sys.argv[1]]); "
        "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'no TF'); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(sweep)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("no TF")
    assert "Thing-b" in done.stdout and (sweep / "summary.csv").is_file()


def test_compare_cli_rejects_a_missing_folder(tmp_path):
    done = run_cli(str(tmp_path / "nowhere"), cwd=tmp_path, module="runner.compare")
    assert done.returncode == 2
    assert "No such folder" in done.stderr and "Traceback" not in done.stderr


def test_plots_name_what_they_cannot_show(tmp_path, monkeypatch):
    """Curves on top of each other are named, a single epoch gets markers and one tick, and a
    variant with zero gradient norms (no point on a log scale) is named too."""
    import matplotlib.figure

    from runner.plots import plot_gradient_profile, plot_metric

    seen = {}

    def save(figure, path, **kwargs):
        axes = figure.axes[0]
        seen[path.name] = {
            "notes": [text.get_text() for text in figure.texts],
            "markers": [line.get_marker() for line in axes.lines],
            "xticks": list(axes.get_xticks()),
            "labels": [text.get_text() for legend in [axes.get_legend() or figure.legends[0]] for text in legend.texts],
        }

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", save)
    runs = pd.DataFrame({"variant": ["relu", "elu", "selu"], "status": ["completed"] * 3})
    histories = pd.DataFrame(
        [
            {"variant": v, "run": v, "epoch": 1, "metric": "dead_fraction", "value": x}
            for v, x in (("relu", 0.3), ("elu", 0.0), ("selu", 0.0))
        ]  # fmt: skip
    )
    plot_metric(histories, runs, "dead_fraction", "Dead", tmp_path / "dead.png")
    dead = seen["dead.png"]
    assert dead["notes"] == ["on top of each other: elu, selu"]
    assert len(set(dead["markers"])) == 3 and "None" not in dead["markers"] and dead["xticks"] == [1.0]

    diagnostics = pd.DataFrame(
        [
            {"variant": v, "run": v, "epoch": 1, "layer": f"l{d}", "depth": d, "metric": "gradient_norm", "value": x}
            for v, x in (("relu", 0.5), ("zeros", 0.0))
            for d in (1, 2)
        ]  # fmt: skip
    )
    runs = pd.DataFrame({"variant": ["relu", "zeros"], "status": ["completed"] * 2})
    plot_gradient_profile(diagnostics, runs, "Profile", tmp_path / "profile.png")
    profile = seen["profile.png"]
    assert profile["labels"] == ["relu"]
    assert "zero gradient norms, which a log scale cannot show (layers left out): zeros" in profile["notes"]


def test_ties_on_the_metric_go_to_the_lower_validation_loss(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (name, loss) in enumerate((("first", 0.9), ("second", 0.4))):
        fake_run(sweep, name, name, 0, [0.8, 0.8], job=job)
        history = pd.read_csv(sweep / name / "history.csv")
        history["val_loss"] = [1.0, loss]
        history.to_csv(sweep / name / "history.csv", index=False)
        record = json.loads((sweep / name / "metrics.json").read_text())
        (sweep / name / "metrics.json").write_text(json.dumps({**record, "final_val_loss": loss}))
    assert list(summarize_sweep(sweep).summary["variant"]) == ["second", "first"]


def test_a_failed_variant_ranks_last_whatever_its_partial_history(tmp_path):
    sweep = tmp_path / "sweep"
    fake_run(sweep, "broke", "broke", 0, [0.9, 0.99], status="failed", job=0)  # trained, then failed (a save)
    fake_run(sweep, "fine", "fine", 0, [0.5, 0.6], job=1)
    assert list(summarize_sweep(sweep).summary["variant"]) == ["fine", "broke"]


def test_the_console_shows_the_metric_the_ranking_is_by(tmp_path, capsys):
    from runner.compare import print_ranking, rank_sweep

    sweep = tmp_path / "sweep"
    for job, (name, loss) in enumerate((("high", 0.9), ("low", 0.4))):
        fake_run(sweep, name, name, 0, [0.8, 0.8], job=job)
        record = json.loads((sweep / name / "metrics.json").read_text())
        record.update(metric="val_loss", mode="min", final_val_loss=loss)
        (sweep / name / "metrics.json").write_text(json.dumps(record))
    result = rank_sweep(sweep)
    assert list(result.summary["variant"]) == ["low", "high"]
    print_ranking(result)
    header, first = capsys.readouterr().out.strip().splitlines()[1:3]
    assert header.split()[4] == "val_loss" and first.split()[4] == "0.400"
