"""The report's pages from its templates (templates/): index.html, and report.md for reading on
GitHub."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from runner.report.claims import Claim
from runner.report.load import Experiment, Sweep

VERDICT_COLORS = {"supported": "#1a7f37", "not supported": "#cf222e", "inconclusive": "#9a6700"}
PLOT_CAPTIONS = {
    "accuracy.png": "training accuracy",
    "val_accuracy.png": "validation accuracy",
    "loss.png": "training loss",
    "val_loss.png": "validation loss",
    "gradient_norms.png": "gradient norm per layer",
    "grad_norm_history.png": "global gradient norm",
    "dead_units.png": "dead units",
    "saturation.png": "saturated activations",
}
METHOD = (
    "A verdict is computed from the results below. Two variants are compared seed by seed (the same seeds, so the "
    "same splits and initial weights, on both sides): the mean difference in the claimed direction, with its 95% "
    "bootstrap confidence interval, and the probability that the first beats the second on a seed, with its "
    "interval. Whether a difference is real is decided by a paired permutation test (the signs of the per-seed "
    "differences flipped at random), and the p-values of all the report's comparisons are adjusted together "
    "(Holm), so that the chance of any false decision in the whole report stays at 5%. A comparison holds when "
    "its adjusted p-value is at most 0.05 and the difference goes the claimed way, is reversed when it goes the "
    "other way, and is a tie otherwise: 3 seeds can never decide one (their smallest p-value is 0.25), 30 can. "
    "A claim is supported when all its comparisons and tests hold, not supported when any is reversed, and "
    "inconclusive otherwise; a tie shows its interval, which says how large a difference the seeds could miss. "
    "Only sweeps run with the notes' settings of their experiment count. Curves show the mean over seeds with "
    "its 95% confidence band. Training accuracy is Keras' average over each epoch's batches, with dropout active."
)


def forest_plot(claim: Claim, path: Path) -> None:
    """One claim's comparisons: each mean difference (in the claimed direction) and its 95%
    interval, coloured by its verdict; the claim holds where all lie right of zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in claim.comparisons if row["seeds"] >= 2]
    if not rows:
        return
    figure, axes = plt.subplots(figsize=(7, 0.6 + 0.45 * len(rows)))
    colors = {"yes": VERDICT_COLORS["supported"], "no": VERDICT_COLORS["not supported"], "tie": "#57606a"}
    for index, row in enumerate(reversed(rows)):
        low, high = row["interval"]
        difference = row["difference"]
        axes.errorbar(
            [difference], [index], xerr=[[difference - low], [high - difference]], fmt="o", capsize=4,
            color=colors[row["verdict"]],
        )  # fmt: skip
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(rows)), [f"{row['comparison']} ({row['seeds']} seeds)" for row in reversed(rows)])
    axes.set_xlabel("mean difference in the claimed direction, in each row's measure (95% bootstrap interval)")
    axes.set_title(claim.text, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def intro(root: Path, experiments: dict[str, Experiment]) -> str:
    notes = [x for x in experiments.values() if x.sweep.notes_settings]
    runs = sum(len(x.runs) for x in notes)
    seeds = sorted({int(seed) for x in notes for seed in x.runs["seed"].dropna()})
    text = (
        f"{len(notes)} experiment{'s' if len(notes) != 1 else ''} with the notes' settings, {runs} runs"
        + (f" (seeds {seed_text(seeds)})" if seeds else "")
        + f", from {root}/, built {datetime.now():%Y-%m-%d %H:%M}. Tables show mean ± standard deviation over seeds."
    )
    flagged = [x.name for x in experiments.values() if not x.sweep.notes_settings]
    if flagged:
        text += f" Shown but not used by the claims, as run with other settings: {', '.join(flagged)}."
    return text


def seed_text(seeds: list[int]) -> str:
    """Seeds as a reader counts them: runs of four or more without a gap as 0-29."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    parts = [f"{run[0]}-{run[-1]}" if len(run) > 3 else ", ".join(map(str, run)) for run in runs]
    return ", ".join(parts)


def ranking(experiment: Experiment) -> str:
    text = f"Ranked by final {experiment.metric}, the experiment's metric."
    if math.isfinite(experiment.target):
        text += f" 90% of best = {experiment.target:.3f} val_accuracy."
    return text


def _environment(autoescape: bool):
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    environment.globals.update(
        caption=lambda plot: PLOT_CAPTIONS.get(plot.name, plot.stem), ranking=ranking, colors=VERDICT_COLORS
    )
    return environment


def render(
    template: str,
    root: Path,
    experiments: dict[str, Experiment],
    claims: list[Claim],
    others: list[Sweep],
    unknown: list[Path],
) -> str:
    """One page: `report.html.j2` (escaped as HTML) or `report.md.j2`."""
    page = _environment(autoescape=template.endswith(".html.j2")).get_template(template)
    return page.render(
        intro=intro(root, experiments),
        method=METHOD,
        claims=claims,
        experiments=list(experiments.values()),
        others=others,
        unknown=unknown,
    )
