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
    "A verdict is computed from the results below: a comparison holds when the difference of the means exceeds "
    "the larger of the two standard deviations over seeds, is reversed when it falls short by more than that, "
    "and is a tie otherwise; with a single seed on either side there is no spread, and it is a tie. A claim is "
    "supported when all its comparisons hold, not supported when any is reversed, and inconclusive otherwise. "
    "Only sweeps run with the notes' settings of their experiment count. "
    "Training accuracy is Keras' average over each epoch's batches, with dropout active."
)


def intro(root: Path, experiments: dict[str, Experiment]) -> str:
    notes = [x for x in experiments.values() if x.sweep.notes_settings]
    runs = sum(len(x.runs) for x in notes)
    seeds = sorted({int(seed) for x in notes for seed in x.runs["seed"].dropna()})
    text = (
        f"{len(notes)} experiments with the notes' settings, {runs} runs"
        + (f" (seeds {', '.join(map(str, seeds))})" if seeds else "")
        + f", from {root}/, built {datetime.now():%Y-%m-%d %H:%M}. Figures are mean ± standard deviation over seeds."
    )
    flagged = [x.name for x in experiments.values() if not x.sweep.notes_settings]
    if flagged:
        text += f" Shown but not used by the claims, as run with other settings: {', '.join(flagged)}."
    return text


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
