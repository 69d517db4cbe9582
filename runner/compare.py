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

from runner.train import DIAGNOSTICS_FILE, HISTORY_FILE, METRICS_FILE, write_atomic

PLOTTED_METRICS = {
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "loss": "training loss",
    "val_loss": "validation loss",
}
# Telemetry plots over epochs: file name -> (diagnostics metric, axis label).
DIAGNOSTIC_PLOTS = {
    "grad_norm_history.png": ("gradient_norm", "global gradient norm (mean over steps)"),
    "dead_units.png": ("dead_fraction", "dead units (fraction of hidden units)"),
    "saturation.png": ("saturated_fraction", "saturated activations (fraction)"),
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


def summarize_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per variant: mean and std over its seeds, ranked by the sweep's metric."""
    swept = [key for key in dict.fromkeys(k for keys in runs["swept_keys"] for k in keys) if key != "trainer.seed"]
    grouped = runs.groupby("variant", sort=False)
    summary = grouped[swept].first() if swept else pd.DataFrame(index=grouped.size().index)
    summary["runs"] = grouped.size()
    summary["status"] = grouped["status"].agg(_status_text)
    for column in (column for column in NUMERIC_COLUMNS if column in runs):
        values = pd.to_numeric(runs[column], errors="coerce")
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, never a display
    import matplotlib.pyplot as plt

    return plt


def plot_metric(
    histories: pd.DataFrame, runs: pd.DataFrame, metric: str, title: str, path: Path, ylabel: str | None = None
) -> Path:
    """One line per variant (mean over seeds, min-max band); diverged dashed, failed noted."""
    plt = _pyplot()

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
            if "failed" in statuses:
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
    if metric.endswith(("accuracy", "fraction")):
        axes.set_ylim(-0.02, 1.02)
    elif (data["value"].dropna() > 0).all() and not data.empty:
        axes.set_yscale("log")
    axes.set_xlabel("Epoch")
    axes.set_ylabel(ylabel or PLOTTED_METRICS.get(metric, metric))
    seeds = runs.groupby("variant").size().max()
    note = f"\n(mean of {seeds} seeds, band: min to max)" if seeds > 1 else ""
    axes.set_title(f"{title}{note}")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small", loc="best")
    if failed:
        figure.text(0.01, 0.01, "failed, no history: " + ", ".join(failed), fontsize="small", color="firebrick")
    # Fixed margins: tight_layout() measured every text box and cost a third of each plot.
    figure.subplots_adjust(left=0.1, right=0.97, top=0.86 if "\n" in axes.get_title() else 0.92, bottom=0.12)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_gradient_profile(diagnostics: pd.DataFrame, runs: pd.DataFrame, title: str, path: Path) -> Path:
    """Gradient norm per layer, input to output, at the first and the last epoch: a vanishing
    gradient is a line that falls towards the input, an exploding one a line that rises."""
    plt = _pyplot()
    norms = diagnostics[(diagnostics["metric"] == "gradient_norm") & (diagnostics["depth"] > 0)]
    variants = list(dict.fromkeys(runs["variant"]))
    colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    legend_rows = -(-len(variants) // 3)
    height = 5 + 0.22 * legend_rows
    figure, panels = plt.subplots(1, 2, figsize=(12, height), sharey=True)
    first = int(norms["epoch"].min())
    last = int(norms["epoch"].max())
    recorded = set(norms["variant"])  # a failed variant may have recorded none
    for axes, epoch, name in ((panels[0], first, "first epoch"), (panels[1], last, f"last epoch ({last})")):
        for index, variant in enumerate(variants):
            if variant not in recorded:
                continue
            rows = norms[(norms["variant"] == variant) & (norms["epoch"] == min(epoch, _last_epoch(norms, variant)))]
            if rows.empty:
                continue
            profile = rows.groupby("depth")["value"].mean()
            profile = profile[profile > 0]
            diverged = "diverged" in set(runs.loc[runs["variant"] == variant, "status"])
            axes.plot(
                profile.index,
                profile.values,
                marker="o",
                markersize=4,
                color=colors(index % colors.N),
                linestyle="--" if diverged else "-",
                label=variant + (" (diverged)" if diverged else ""),
            )
        depths = sorted(norms["depth"].unique())
        axes.set_xticks(depths, [str(d) for d in depths[:-1]] + ["out"])
        axes.set_yscale("log")
        axes.set_xlabel("Layer (input → output)")
        axes.set_title(name)
        axes.grid(alpha=0.3, which="both")
    panels[0].set_ylabel("kernel gradient norm (mean over steps)")
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    bottom = (0.25 + 0.22 * legend_rows) / height
    figure.suptitle(f"{title}: gradient norm per layer")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=bottom + 0.08, wspace=0.06)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _last_epoch(norms: pd.DataFrame, variant: str) -> int:
    return int(norms.loc[norms["variant"] == variant, "epoch"].max())


def plot_diagnostics(diagnostics: pd.DataFrame, runs: pd.DataFrame, title: str, folder: Path) -> list[Path]:
    """gradient_norms.png, grad_norm_history.png, dead_units.png and saturation.png, where recorded."""
    files = []
    if (diagnostics["metric"] == "gradient_norm").any():
        files.append(plot_gradient_profile(diagnostics, runs, title, folder / "gradient_norms.png"))
    for name, (metric, label) in DIAGNOSTIC_PLOTS.items():
        rows = diagnostics[diagnostics["metric"] == metric]
        rows = rows[rows["depth"] == 0] if metric == "gradient_norm" else rows[rows["depth"] > 0]
        if rows.empty:
            continue
        # Fractions are averaged over the hidden layers, per run and epoch.
        curves = rows.groupby(["variant", "run", "epoch"], as_index=False)["value"].mean().assign(metric=metric)
        files.append(plot_metric(curves, runs, metric, f"{title}: {label}", folder / name, ylabel=label))
    return files


def rank_sweep(folder: Path) -> SweepSummary:
    """The sweep's ranking, in memory: what the console shows while the files are written."""
    runs = load_runs(Path(folder))
    metric = str(runs["metric"].iloc[0])
    return SweepSummary(folder=Path(folder), runs=runs, summary=summarize_runs(runs, metric), metric=metric)


def summarize_sweep(folder: Path) -> SweepSummary:
    """Write one plot per metric and summary.csv, runs.csv and histories.csv into `folder`."""
    result = rank_sweep(folder)
    histories = load_histories(result.folder, result.runs)
    plots = [file for group in PLOT_GROUPS for file in draw_plots(result.folder, group, result.runs, histories)]
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
    return [
        plot_metric(histories, runs, metric, f"{title}: {label}", folder / f"{metric}.png")
        for metric, label in PLOTTED_METRICS.items()
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
    metric = result.metric
    columns = ["rank", "variant", "status", "runs", "final_accuracy_mean", "final_val_accuracy_mean"]
    table = result.summary[columns].rename(
        columns={"final_accuracy_mean": "accuracy", "final_val_accuracy_mean": "val_accuracy"}
    )
    seeds = int(result.summary["runs"].max())
    print(f"\n{result.folder}: ranked by final {metric} (mean over {seeds} seed(s) per variant):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


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
