"""`python -m runner reproduce` end to end on two small experiments, and its report opened in a
real headless browser."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from runner.report import CLAIMS
from tests.browser import CHROMEDRIVER, CHROMIUM
from tests.conftest import run_cli

ARGUMENTS = ("experiment=normalization,gradient_clipping", "trainer.epochs=2", "trainer.seed=0,1", "results_dir=out")


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reproduce")
    done = run_cli("reproduce", *ARGUMENTS, cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done


def test_reproduce_runs_each_experiment_over_the_seeds_then_builds_the_report(reproduced):
    folder, done = reproduced
    results = folder / "out"
    summary = pd.read_csv(results / "gradient_clipping" / "reproduce" / "summary.csv")
    assert sorted(summary["variant"]) == ["Clipping-global_norm", "Clipping-none", "Clipping-norm", "Clipping-value"]
    assert set(summary["runs"]) == {2}  # seeds 0 and 1
    assert summary.set_index("variant").loc["Clipping-none", "status"] == "diverged"
    assert "=== Experiment 2/2: gradient_clipping ===" in done.stdout
    assert "[4/4]" in done.stdout and "[8/8]" in done.stdout  # progress within each experiment
    assert "All sweeps done in" in done.stdout and "Report: out/report/index.html" in done.stdout

    page = (results / "report" / "index.html").read_text()
    assert page.count('<tr class="claim">') == len(CLAIMS)
    command = "python -m runner -m experiment=gradient_clipping trainer.epochs=2 trainer.seed=0,1 results_dir=out"
    assert f"Reproduce: <code>{command}</code>" in page
    # Two epochs are not the notes' settings: shown, flagged, and kept out of the verdicts.
    assert "Not the notes' settings: this sweep ran with trainer.epochs=2. The claims do not use it." in page
    clipping = re.search(r"Gradient clipping prevents.*?</tr>", page, re.S).group(0)
    assert "no sweep of gradient_clipping with the notes&#39; settings: the one found ran with trainer.epochs=2" in (
        clipping
    )
    assert ">inconclusive<" in clipping
    assert "gradient_norms.png" in page  # the telemetry plots are in the report


def test_running_reproduce_again_skips_every_finished_variant(reproduced):
    folder, _ = reproduced
    before = (
        folder / "out" / "normalization" / "reproduce" / "model.normalization=batch,trainer.epochs=2,trainer.seed=0"
    )
    mtime = (before / "history.csv").stat().st_mtime
    plot = before.parent / "val_accuracy.png"
    plotted = plot.stat().st_mtime
    done = run_cli("reproduce", *ARGUMENTS, cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done earlier, skipped") == 12  # 4 + 8 variants, none trained again
    assert (before / "history.csv").stat().st_mtime == mtime
    assert plot.stat().st_mtime == plotted  # nothing new: the summary on disk is shown, not redrawn
    assert done.stdout.count(": ranked by final") == 2


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver: run `make browser` (the CI's `make test` does)",
)
def test_the_report_renders_in_a_headless_browser(reproduced, tmp_path):
    from tests.browser import inspect_page

    folder, _ = reproduced
    check = inspect_page(folder / "out" / "report" / "index.html", screenshot=tmp_path / "report.png")
    assert len(check.images) >= 2 * 4  # accuracy, val_accuracy, loss, val_loss per experiment at least
    assert [src for src, natural in check.images if natural == 0] == []
    assert check.claim_rows == len(CLAIMS)
    assert check.console == []
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
