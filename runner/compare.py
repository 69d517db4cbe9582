"""Sweep folder -> ranking, tables and comparison plots. Never imports Keras or TensorFlow.

python -m runner.compare results/optimizer/2026-11-23_10-00-00
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from runner.plots import PLOTTED_METRICS, plot_diagnostics, plot_metric
from runner.results import DIAGNOSTICS_FILE, HISTORY_FILE, METRICS_FILE, write_atomic

NUMERIC_COLUMNS = (
    "final_accuracy",
    "final_val_accuracy",
    "best_accuracy",
    "best_val_accuracy",
    "final_loss",
    "final_val_loss",
    "best_epoch",
    "seconds",
    "gradient_ratio_first_epoch",
    "gradient_ratio_last_epoch",
    "gradient_norm_max",
    "dead_fraction_final",
    "saturated_fraction_final",
)


@dataclass
class SweepSummary:
    folder: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    metric: str
    files: list[Path] = field(default_factory=list)


class CompareError(Exception):
    """The folder holds no runs to compare."""


def find_runs(folder: Path) -> list[Path]:
    """Variant folders of a sweep: the folder itself for a single run, else its subfolders."""
    if (folder / METRICS_FILE).is_file():
        return [folder]
    return sorted(path.parent for path in folder.glob(f"*/{METRICS_FILE}"))


def load_runs(folder: Path) -> pd.DataFrame:
    """One row per run: its metrics.json, flattened, with swept values as columns."""
    rows = []
    for run_dir in find_runs(folder):
        record = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
        swept = record.pop("swept", None) or {}
        row = {"run": run_dir.name if run_dir != folder else ".", **record}
        row.update({key: _cell(value) for key, value in swept.items()})
        row["swept_keys"] = tuple(swept)
        rows.append(row)
    if not rows:
        raise CompareError(
            f"No runs in {folder}: it has no {METRICS_FILE} and no subfolder with one. "
            "Give a sweep folder such as results/optimizer/<timestamp>."
        )
    runs = pd.DataFrame(rows)
    if "job" in runs:
        runs = runs.sort_values("job", kind="stable")
    runs["variant"] = _variant_names(runs)
    return runs.reset_index(drop=True)


def _cell(value):
    """Lists (e.g. hidden_nodes) become their text so they can be grouped and written."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _variant_names(runs: pd.DataFrame) -> pd.Series:
    """The run's label; where one label covers several settings, the settings are appended."""
    swept = sorted({key for keys in runs["swept_keys"] for key in keys} - {"trainer.seed"})
    text = runs[swept].map(str)  # str() of every value, None and NaN included
    settings = text.agg(",".join, axis=1) if swept else pd.Series("", index=runs.index)
    names = runs["label"].map(str)
    ambiguous = settings.groupby(names).transform("nunique") > 1
    varying = [key for key in swept if text[key].nunique() > 1]
    extra = text[varying].apply(lambda row: ", ".join(f"{k}={v}" for k, v in row.items()), axis=1)
    return names.where(~ambiguous, names + " [" + extra + "]")


def _read_per_run(folder: Path, runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """One CSV file of every run, stacked, with the run's variant, folder and seed in front."""
    frames = []
    for run in runs.itertuples():
        path = (folder if run.run == "." else folder / run.run) / name
        if not path.is_file() or path.stat().st_size == 0:
            continue
        table = pd.read_csv(path)
        if table.empty:
            continue
        table.insert(0, "seed", run.seed)
        table.insert(0, "run", run.run)
        table.insert(0, "variant", run.variant)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant", "run", "seed"])


def load_histories(folder: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Every run's history.csv in long format: variant, run, seed, epoch, metric, value."""
    wide = _read_per_run(folder, runs, HISTORY_FILE)
    if wide.empty:
        return pd.DataFrame(columns=["variant", "run", "seed", "epoch", "metric", "value"])
    return wide.melt(id_vars=["variant", "run", "seed", "epoch"], var_name="metric", value_name="value")


def load_diagnostics(folder: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Every run's diagnostics.csv: variant, run, seed, epoch, layer, depth, metric, value."""
    return _read_per_run(folder, runs, DIAGNOSTICS_FILE)


def summarize_runs(runs: pd.DataFrame, metric: str, mode: str | None = None) -> pd.DataFrame:
    """One row per variant: mean and std over its seeds, ranked by the sweep's objective (its
    metric, higher or lower first as `mode` says: the runs' own where not given)."""
    if mode is None:
        mode = str(runs["mode"].dropna().iloc[0]) if "mode" in runs and runs["mode"].notna().any() else None
    lower_first = mode == "min" if mode in ("max", "min") else metric.endswith("loss")
    swept = [key for key in dict.fromkeys(k for keys in runs["swept_keys"] for k in keys) if key != "trainer.seed"]
    grouped = runs.groupby("variant", sort=False)
    summary = grouped[swept].first() if swept else pd.DataFrame(index=grouped.size().index)
    summary["runs"] = grouped.size()
    summary["status"] = grouped["status"].agg(_status_text)
    # trainer.metrics' final and best values, and trainer.evaluate_train's scores
    extra = [
        c for c in runs if c.startswith(("final_", "best_", "train_eval_", "val_eval_")) and c not in NUMERIC_COLUMNS
    ]
    for column in (column for column in [*NUMERIC_COLUMNS, "stopped_epoch", *extra] if column in runs):
        values = pd.to_numeric(runs[column], errors="coerce")
        summary[f"{column}_mean"] = values.groupby(runs["variant"], sort=False).mean()
        summary[f"{column}_std"] = values.groupby(runs["variant"], sort=False).std()
    # Ties on the metric go to the lower final validation loss (to the higher accuracy, ranking by a loss).
    # Variants whose every run failed go last, whatever their partial histories say.
    summary["_failed"] = grouped["status"].agg(lambda statuses: bool((statuses == "failed").all()))
    tiebreak = "final_val_accuracy" if lower_first else "final_val_loss"
    keys = [column for column in (f"final_{metric}_mean", f"{tiebreak}_mean") if column in summary]
    ascending = [True, lower_first, not lower_first][: len(keys) + 1]
    summary = summary.sort_values(["_failed", *keys], ascending=ascending, na_position="last", kind="stable")
    summary = summary.drop(columns="_failed")
    summary = summary.reset_index()
    summary.insert(0, "rank", range(1, len(summary) + 1))
    return summary


def _status_text(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def rank_sweep(folder: Path) -> SweepSummary:
    """The sweep's ranking, in memory: what the console shows while the files are written."""
    runs = load_runs(Path(folder))
    metric = str(runs["metric"].iloc[0])
    return SweepSummary(folder=Path(folder), runs=runs, summary=summarize_runs(runs, metric), metric=metric)


def summarize_sweep(folder: Path) -> SweepSummary:
    """Write one plot per metric and summary.csv, runs.csv and histories.csv into `folder`; the
    tables also where a plot fails."""
    result = rank_sweep(folder)
    histories = load_histories(result.folder, result.runs)
    plots: list[Path] = []
    try:
        for group in PLOT_GROUPS:
            plots += draw_plots(result.folder, group, result.runs, histories)
    finally:
        result.files = write_tables(result, histories) + plots
    return result


PLOT_GROUPS = ("metrics", "diagnostics")  # drawn one after the other, or side by side


def draw_plots(
    folder: Path, group: str, runs: pd.DataFrame | None = None, histories: pd.DataFrame | None = None
) -> list[Path]:
    """One group of a sweep's plots: the metrics' curves, or the telemetry's."""
    folder = Path(folder)
    runs = load_runs(folder) if runs is None else runs
    title = str(runs["title"].iloc[0])
    if group == "diagnostics":
        diagnostics = load_diagnostics(folder, runs)
        return [] if diagnostics.empty else plot_diagnostics(diagnostics, runs, title, folder)
    histories = load_histories(folder, runs) if histories is None else histories
    logged = [metric for metric in dict.fromkeys(histories["metric"]) if metric not in PLOTTED_METRICS]
    labels = {**PLOTTED_METRICS, **{metric: metric.replace("val_", "validation ") for metric in logged}}
    return [
        plot_metric(histories, runs, metric, f"{title}: {label}", folder / f"{metric}.png")
        for metric, label in labels.items()
        if (histories["metric"] == metric).any()
    ]


def write_tables(result: SweepSummary, histories: pd.DataFrame | None = None) -> list[Path]:
    """histories.csv, runs.csv, then summary.csv: once the plots are drawn, since a summary.csv
    newer than every run marks the whole summary as written (see current_summary)."""
    histories = load_histories(result.folder, result.runs) if histories is None else histories
    tables = {
        "histories.csv": histories,
        "runs.csv": result.runs.drop(columns=["swept_keys"]),
        "summary.csv": result.summary,
    }
    for name, table in tables.items():
        write_atomic(result.folder / name, table.to_csv(index=False))
    return [result.folder / name for name in reversed(tables)]


def current_summary(folder: Path) -> SweepSummary | None:
    """The summary already on disk, where no variant finished after it was written (a sweep
    resumed with nothing left to run); None where it must be rebuilt."""
    folder = Path(folder)
    summary, runs = folder / "summary.csv", folder / "runs.csv"
    finished = [path.stat().st_mtime for path in folder.glob(f"*/{METRICS_FILE}")]
    if not (summary.is_file() and runs.is_file() and finished) or summary.stat().st_mtime < max(finished):
        return None
    table = pd.read_csv(summary)
    if table["runs"].sum() != len(finished):
        return None
    metric = str(pd.read_csv(runs, usecols=["metric"])["metric"].iloc[0])
    files = sorted(folder.glob("*.csv")) + sorted(folder.glob("*.png"))
    return SweepSummary(folder=folder, runs=pd.DataFrame(), summary=table, metric=metric, files=files)


def print_summary(result: SweepSummary) -> None:
    """The ranking of a sweep and where its files are, for the console."""
    print_ranking(result)
    print_files(result.folder, result.files)


def print_ranking(result: SweepSummary) -> None:
    """The ranking for the console: final val_accuracy and training accuracy of each variant, as
    mean ± standard deviation where it ran over several seeds."""
    summary = result.summary
    seeds = int(summary["runs"].max())
    table = summary[["rank", "variant", "status", "runs"]].copy()
    shown = [("val_accuracy", "final_val_accuracy"), ("accuracy", "final_accuracy")]
    if result.metric not in ("val_accuracy", "accuracy") and f"final_{result.metric}_mean" in summary:
        shown.insert(0, (result.metric, f"final_{result.metric}"))  # what the ranking is by
    for name, column in shown:
        mean, std = summary[f"{column}_mean"], summary.get(f"{column}_std")
        table[name] = [
            "n/a" if pd.isna(m) else f"{m:.3f}" + (f" ± {s:.3f}" if seeds > 1 and pd.notna(s) else "")
            for m, s in zip(mean, std if std is not None else [None] * len(mean), strict=True)
        ]
    over = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"
    print(f"\n{result.folder}: ranked by final {result.metric} ({over}; accuracy is on the training split):")
    print(table.to_string(index=False))


def print_files(folder: Path, files: list[Path]) -> None:
    print(f"\nTables and plots: {folder}/")
    print("  " + "  ".join(path.name for path in files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.compare",
        description="Rebuild a sweep's summary tables and comparison plots from its variant folders.",
    )
    parser.add_argument("folder", type=Path, help="a sweep folder, e.g. results/optimizer/<timestamp>")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(
            f"No such folder: {args.folder}. Give a sweep folder such as results/optimizer/<timestamp>.",
            file=sys.stderr,
        )
        return 2
    try:
        print_summary(summarize_sweep(args.folder))
    except CompareError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
