"""Sweep folder -> tables and comparison plots. Never imports Keras or TensorFlow.

python -m runner.compare results/optimizer/2026-11-23_10-00-00
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from runner.train import HISTORY_FILE, METRICS_FILE, write_atomic

PLOTTED_METRICS = {
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "loss": "training loss",
    "val_loss": "validation loss",
}
NUMERIC_COLUMNS = (
    "final_accuracy",
    "final_val_accuracy",
    "best_accuracy",
    "best_val_accuracy",
    "final_loss",
    "final_val_loss",
    "best_epoch",
    "seconds",
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
    settings = runs[swept].astype(str).agg(",".join, axis=1) if swept else pd.Series("", index=runs.index)
    names = runs["label"].astype(str)
    ambiguous = settings.groupby(names).transform("nunique") > 1
    varying = [key for key in swept if runs[key].astype(str).nunique() > 1]
    extra = runs[varying].astype(str).apply(lambda row: ", ".join(f"{k}={v}" for k, v in row.items()), axis=1)
    return names.where(~ambiguous, names + " [" + extra + "]")


def load_histories(folder: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Every run's history.csv in long format: variant, run, seed, epoch, metric, value."""
    frames = []
    for run in runs.itertuples():
        path = (folder if run.run == "." else folder / run.run) / HISTORY_FILE
        if not path.is_file() or path.stat().st_size == 0:
            continue
        history = pd.read_csv(path)
        if history.empty:
            continue
        long = history.melt(id_vars="epoch", var_name="metric", value_name="value")
        long.insert(0, "seed", run.seed)
        long.insert(0, "run", run.run)
        long.insert(0, "variant", run.variant)
        frames.append(long)
    columns = ["variant", "run", "seed", "epoch", "metric", "value"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def summarize_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per variant: mean and std over its seeds, ranked by the sweep's metric."""
    swept = [key for key in dict.fromkeys(k for keys in runs["swept_keys"] for k in keys) if key != "trainer.seed"]
    grouped = runs.groupby("variant", sort=False)
    summary = grouped[swept].first() if swept else pd.DataFrame(index=grouped.size().index)
    summary["runs"] = grouped.size()
    summary["status"] = grouped["status"].agg(_status_text)
    for column in NUMERIC_COLUMNS:
        values = pd.to_numeric(runs[column], errors="coerce") if column in runs else pd.Series(dtype=float)
        summary[f"{column}_mean"] = values.groupby(runs["variant"], sort=False).mean()
        summary[f"{column}_std"] = values.groupby(runs["variant"], sort=False).std()
    ranked_by = f"final_{metric}_mean"
    summary = summary.sort_values(ranked_by, ascending=metric.endswith("loss"), na_position="last", kind="stable")
    summary = summary.reset_index()
    summary.insert(0, "rank", range(1, len(summary) + 1))
    return summary


def _status_text(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def plot_metric(histories: pd.DataFrame, runs: pd.DataFrame, metric: str, title: str, path: Path) -> Path:
    """One line per variant (mean over seeds, min-max band); diverged dashed, failed noted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(runs["variant"]))
    colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    figure, axes = plt.subplots(figsize=(8, 5))
    data = histories[histories["metric"] == metric]
    failed = []
    for index, variant in enumerate(variants):
        statuses = set(runs.loc[runs["variant"] == variant, "status"])
        curves = data[data["variant"] == variant].pivot_table(
            index="epoch", columns="run", values="value", dropna=False
        )
        if curves.empty or curves.isna().all().all():
            failed.append(variant)
            continue
        color = colors(index % colors.N)
        diverged = "diverged" in statuses
        label = variant + (" (diverged)" if diverged else "") + (" (failed)" if "failed" in statuses else "")
        mean = curves.mean(axis=1)
        axes.plot(mean.index, mean.values, color=color, linestyle="--" if diverged else "-", label=label, linewidth=1.8)
        if curves.shape[1] > 1:
            axes.fill_between(curves.index, curves.min(axis=1), curves.max(axis=1), color=color, alpha=0.15)
        if diverged:
            finite = mean.dropna()
            if not finite.empty:
                axes.plot(finite.index[-1], finite.values[-1], marker="X", markersize=10, color=color)
    if metric.endswith("accuracy"):
        axes.set_ylim(-0.02, 1.02)
    elif (data["value"] > 0).all() and not data.empty:
        axes.set_yscale("log")
    axes.set_xlabel("Epoch")
    axes.set_ylabel(PLOTTED_METRICS.get(metric, metric))
    seeds = runs.groupby("variant").size().max()
    note = f"\n(mean of {seeds} seeds, band: min to max)" if seeds > 1 else ""
    axes.set_title(f"{title}{note}")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small", loc="best")
    if failed:
        figure.text(0.01, 0.01, "failed, no history: " + ", ".join(failed), fontsize="small", color="firebrick")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def summarize_sweep(folder: Path) -> SweepSummary:
    """Write summary.csv, runs.csv, histories.csv and one plot per metric into `folder`."""
    folder = Path(folder)
    runs = load_runs(folder)
    metric = str(runs["metric"].iloc[0])
    title = str(runs["title"].iloc[0])
    histories = load_histories(folder, runs)
    summary = summarize_runs(runs, metric)

    result = SweepSummary(folder=folder, runs=runs, summary=summary, metric=metric)
    tables = {
        "summary.csv": summary,
        "runs.csv": runs.drop(columns=["swept_keys"]),
        "histories.csv": histories,
    }
    for name, table in tables.items():
        write_atomic(folder / name, table.to_csv(index=False))
        result.files.append(folder / name)
    for plotted in PLOTTED_METRICS:
        if (histories["metric"] == plotted).any():
            name = f"{title}: {PLOTTED_METRICS[plotted]}"
            result.files.append(plot_metric(histories, runs, plotted, name, folder / f"{plotted}.png"))
    return result


def print_summary(result: SweepSummary) -> None:
    """The ranking of a sweep and where its files are, for the console."""
    metric = result.metric
    columns = ["rank", "variant", "status", "runs", "final_accuracy_mean", "final_val_accuracy_mean"]
    table = result.summary[columns].rename(
        columns={"final_accuracy_mean": "accuracy", "final_val_accuracy_mean": "val_accuracy"}
    )
    print(f"\nRanked by final {metric} (mean over {int(result.summary['runs'].max())} seed(s) per variant):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nTables and plots: {result.folder}/")
    print("  " + "  ".join(path.name for path in result.files))


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
