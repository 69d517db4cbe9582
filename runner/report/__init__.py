"""Results folder -> one report: every experiment's plots and seed statistics, and the notes'
claims with verdicts computed from the data. Never imports Keras or TensorFlow.

python -m runner report results        # writes results/report/index.html and report.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from runner.compare import CompareError
from runner.report.claims import CLAIMS, Claim, assess_claims
from runner.report.load import REPORT_DIR, find_sweeps, load_experiment
from runner.report.render import forest_plot, render
from runner.results import write_atomic

__all__ = ["CLAIMS", "Claim", "ReportError", "build_report", "main"]


class ReportError(Exception):
    """The folder holds no results to report on."""


def build_report(root: Path) -> Path:
    """Write <root>/report/index.html, report.md and claims.json from the sweeps under `root`."""
    root = Path(root)
    shown, others, unknown = find_sweeps(root)
    if not shown:
        raise ReportError(
            f"No results in {root}: no folder like {root}/<experiment>/<sweep>/ holds a sweep's finished variants. "
            "Run `python -m runner reproduce` (or a sweep) first, or give the results folder."
        )
    experiments = {}
    for name, sweep in shown.items():
        try:
            experiments[name] = load_experiment(sweep)
        except (CompareError, KeyError, ValueError) as error:  # not a runner sweep after all
            print(f"Skipped {sweep.folder}: {error}", file=sys.stderr)
    if not experiments:
        raise ReportError(f"No readable sweep in {root}: see the folders skipped above.")
    claims = assess_claims(experiments)
    out = root / REPORT_DIR
    images = out / "images"
    if images.is_dir():
        shutil.rmtree(images)
    for experiment in experiments.values():
        (images / experiment.name).mkdir(parents=True, exist_ok=True)
        for plot in experiment.plots:
            shutil.copy2(plot, images / experiment.name / plot.name)
    for index, claim in enumerate(claims, start=1):
        if any(row["seeds"] >= 2 for row in claim.comparisons):
            claim.forest = f"images/claims/claim_{index}.png"
            forest_plot(claim, out / claim.forest)
    write_atomic(out / "index.html", render("report.html.j2", root, experiments, claims, others, unknown))
    write_atomic(out / "report.md", render("report.md.j2", root, experiments, claims, others, unknown))
    write_atomic(out / "claims.json", json.dumps([claim.__dict__ for claim in claims], indent=2))
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner report",
        description="Build results/report/index.html and report.md from the results on disk (no training).",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=Path("results"), help="the results folder (default: results)"
    )
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(
            f"No such folder: {args.folder}. Give the results folder, e.g. `python -m runner report results`.",
            file=sys.stderr,
        )
        return 2
    try:
        page = build_report(args.folder)
    except (ReportError, CompareError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"Report: {page}\n        {page.with_name('report.md')}\n        {page.with_name('claims.json')}")
    return 0
