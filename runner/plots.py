"""The comparison plots of a sweep: one line per variant over epochs, and the telemetry's gradient
profile. matplotlib only, drawn to files (never a window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, never a display
    import matplotlib.pyplot as plt

    return plt


MARKERS = "osD^vP<>Xph*"  # one per variant, so that curves on top of each other stay told apart


def plot_metric(
    histories: pd.DataFrame, runs: pd.DataFrame, metric: str, title: str, path: Path, ylabel: str | None = None
) -> Path:
    """One line per variant (mean over seeds, its 95% confidence band); diverged and pruned (a search's
    trial stopped early) dashed, failed noted, and
    variants whose curves lie on top of each other named in a note."""
    plt = _pyplot()
    variants = list(dict.fromkeys(runs["variant"]))
    colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    figure, axes = plt.subplots(figsize=(8, 5))
    data = histories[histories["metric"] == metric]
    epochs = int(data["epoch"].max()) if not data.empty else 1
    failed, unfinite, drawn, hidden = [], [], {}, {}
    for index, variant in enumerate(variants):
        statuses = set(runs.loc[runs["variant"] == variant, "status"])
        curves = data[data["variant"] == variant].pivot_table(
            index="epoch", columns="run", values="value", dropna=False
        )
        curves = curves.replace([np.inf, -np.inf], np.nan)
        if curves.empty or curves.isna().all().all():
            if "failed" in statuses:
                failed.append(variant)
            elif not curves.empty:
                unfinite.append(variant)
            continue
        color = colors(index % colors.N)
        diverged = "diverged" in statuses
        pruned = "pruned" in statuses
        label = variant + "".join(f" ({status})" for status in ("diverged", "pruned", "failed") if status in statuses)
        mean = curves.mean(axis=1)
        same = next((other for other, line in drawn.items() if line.index.equals(mean.index) and np.allclose(
            line.values, mean.values, equal_nan=True)), None)  # fmt: skip
        if same is not None:
            hidden.setdefault(same, []).append(variant)
        drawn[variant] = mean
        axes.plot(
            mean.index,
            mean.values,
            color=color,
            linestyle="--" if diverged or pruned else "-",
            label=label,
            linewidth=1.8,
            marker=MARKERS[index % len(MARKERS)],
            markersize=6 if epochs == 1 else 4,
            markevery=max(1, epochs // 15),
        )
        if curves.shape[1] > 1:
            low, high = mean_interval(curves)
            axes.fill_between(curves.index, low, high, color=color, alpha=0.15)
        if diverged:
            finite = mean.dropna()
            if not finite.empty:
                axes.plot(finite.index[-1], finite.values[-1], marker="X", markersize=10, color=color)
    values = data["value"][np.isfinite(data["value"])]
    if metric.endswith(("accuracy", "fraction")) and values.between(0, 1).all():
        axes.set_ylim(-0.02, 1.02)
    elif drawn and (values > 0).all() and not values.empty:
        axes.set_yscale("log")
    axes.set_xlabel("Epoch")
    axes.set_ylabel(ylabel or PLOTTED_METRICS.get(metric, metric))
    seeds = runs.groupby("variant").size().max()
    note = f"\n(mean of {seeds} seeds, band: its 95% confidence interval)" if seeds > 1 else ""
    axes.set_title(f"{title}{note}")
    axes.xaxis.get_major_locator().set_params(integer=True)
    if epochs == 1:
        axes.set_xlim(0.5, 1.5)
        axes.set_xticks([1])
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small", loc="best")
    notes = [f"on top of each other: {', '.join([first, *others])}" for first, others in hidden.items()]
    notes += ["failed, no history: " + ", ".join(failed)] if failed else []
    notes += ["no finite value to draw (diverged at once): " + ", ".join(unfinite)] if unfinite else []
    _note(figure, notes)
    # Fixed margins: tight_layout() measured every text box and cost a third of each plot.
    figure.subplots_adjust(left=0.1, right=0.97, top=0.86 if "\n" in axes.get_title() else 0.92, bottom=0.12)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _note(figure, notes: list[str]) -> None:
    """Notes on what a plot cannot show, at its bottom left."""
    if notes:
        figure.text(0.01, 0.01, "; ".join(notes), fontsize="small", color="firebrick", wrap=True)


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
    zero, unfinite = set(), set()  # variants with norms a log scale cannot show: zero, or NaN and inf
    for axes, epoch, name in ((panels[0], first, "first epoch"), (panels[1], last, f"last epoch ({last})")):
        for index, variant in enumerate(variants):
            if variant not in recorded:
                continue
            rows = norms[(norms["variant"] == variant) & (norms["epoch"] == min(epoch, _last_epoch(norms, variant)))]
            if rows.empty:
                continue
            profile = rows.groupby("depth")["value"].mean()
            if (profile <= 0).any():
                zero.add(variant)
            if not np.isfinite(profile).all():
                unfinite.add(variant)
            profile = profile[np.isfinite(profile) & (profile > 0)]
            if profile.empty:
                continue
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
        if axes.lines:
            axes.set_yscale("log")
        else:
            axes.text(0.5, 0.5, "every kernel gradient norm is zero", transform=axes.transAxes, ha="center",
                      color="firebrick")  # fmt: skip
        axes.set_xlabel("Layer (input → output)")
        axes.set_title(name)
        axes.grid(alpha=0.3, which="both")
    panels[0].set_ylabel("kernel gradient norm (mean over steps)")
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    notes = [f"zero gradient norms, which a log scale cannot show (layers left out): {', '.join(sorted(zero))}"]
    notes += [f"gradient norms not finite (diverged; layers left out): {', '.join(sorted(unfinite))}"]
    _note(figure, [note for note, variants in zip(notes, (zero, unfinite), strict=True) if variants])
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


def mean_interval(curves: pd.DataFrame, confidence: float = 0.95) -> tuple[pd.Series, pd.Series]:
    """Per epoch (row), the t-interval of the mean over seeds (columns); NaN where fewer than two."""
    from scipy.stats import t

    count = curves.notna().sum(axis=1)
    half = t.ppf((1 + confidence) / 2, (count - 1).clip(lower=1)) * curves.std(axis=1) / np.sqrt(count)
    half[count < 2] = np.nan
    mean = curves.mean(axis=1)
    return mean - half, mean + half
