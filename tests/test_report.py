"""The report from fake results folders (no Keras): tables, claims and their computed verdicts."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from runner.report import CLAIMS, build_report
from tests.conftest import REPO, run_cli


def fake_sweep(sweep, experiment, overrides=(), config_dirs=()):
    """The multirun.yaml a sweeper saves: the command's overrides, the experiment, the config dirs."""
    sources = [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"}]
    sources += [{"path": str(folder), "schema": "file", "provider": "command-line"} for folder in config_dirs]
    saved = {
        "hydra": {
            "overrides": {
                "hydra": ["hydra.mode=MULTIRUN"],
                "task": [*([f"experiment={experiment}"] if experiment else []), *overrides],
            },
            "runtime": {"choices": {"experiment": experiment}, "config_sources": sources},
        }
    }
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(json.dumps(saved))  # JSON is YAML


def fake_variant(sweep, swept, label, seed, val_accuracy, accuracy=None, status="completed", **extra):
    """One finished variant as a sweep writes it: history.csv, metrics.json, config.yaml."""
    name = ",".join(f"{key}={value}" for key, value in swept.items()) + f",trainer.seed={seed}"
    folder = sweep / name
    folder.mkdir(parents=True)
    if not (sweep / "multirun.yaml").exists():
        fake_sweep(sweep, sweep.parent.name, [f"trainer.seed={seed}"])
    accuracy = accuracy or val_accuracy
    epochs = len(val_accuracy)
    pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "accuracy": accuracy,
            "loss": [1.0 / (e + 1) for e in range(epochs)],
            "val_accuracy": val_accuracy,
            "val_loss": [1.0 / (e + 1) for e in range(epochs)],
        }
    ).to_csv(folder / "history.csv", index=False)
    record = {
        "status": status,
        "label": label,
        "title": f"Compare {sweep.parent.name}",
        "metric": "val_accuracy",
        "seed": seed,
        "epochs": epochs,
        "final_accuracy": accuracy[-1],
        "final_val_accuracy": val_accuracy[-1],
        "best_val_accuracy": max(val_accuracy),
        "best_accuracy": max(accuracy),
        "swept": {**swept, "trainer.seed": seed},
        **extra,
    }
    (folder / "metrics.json").write_text(json.dumps(record))
    (folder / "config.yaml").write_text("data:\n  name: iris\n")


def seeds_of(values):
    """The seeds of per-seed values, and the override that sweeps them."""
    return range(len(values)), f"trainer.seed={','.join(map(str, range(len(values))))}"


def normalization(results, batch, none):
    sweep = results / "normalization" / "reproduce"
    seeds, override = seeds_of(batch)
    fake_sweep(sweep, "normalization", [override])
    for seed in seeds:
        fake_variant(sweep, {"model.normalization": "batch"}, "Normalization-batch", seed, batch[seed])
        fake_variant(sweep, {"model.normalization": "none"}, "Normalization-none", seed, none[seed])


def optimizer(results, sgd, adaptive):
    sweep = results / "optimizer" / "reproduce"
    seeds, override = seeds_of(sgd)
    fake_sweep(sweep, "optimizer", [override])
    for seed in seeds:
        fake_variant(sweep, {"optimizer": "sgd"}, "Optimizer-sgd", seed, [sgd[seed]])
        for name in ("rmsprop", "adam"):
            fake_variant(sweep, {"optimizer": name}, f"Optimizer-{name}", seed, [adaptive[seed]])


def initializer(results, zeros):
    sweep = results / "initializer" / "reproduce"
    seeds, override = seeds_of(zeros)
    fake_sweep(sweep, "initializer", [override])
    for seed in seeds:
        fake_variant(sweep, {"model.weights_initializer": "zeros"}, "Initializer-zeros", seed, zeros[seed])
        fake_variant(sweep, {"model.weights_initializer": "he_normal"}, "Initializer-he_normal", seed, [0.6, 0.9])


def claims_of(results):
    build_report(results)
    return {claim["text"]: claim for claim in json.loads((results / "report" / "claims.json").read_text())}


def claim(claims, start):
    (found,) = [value for text, value in claims.items() if text.startswith(start)]
    return found


def test_verdicts_follow_the_data(tmp_path):
    """12 seeds where every seed agrees: each paired comparison's permutation p-value is 2/4096,
    small enough after Holm's adjustment over the report's 4 comparisons."""
    normalization(tmp_path, batch=[[0.7, 0.95]] * 12, none=[[0.3, 0.5], [0.35, 0.6], [0.3, 0.55]] * 4)
    optimizer(tmp_path, sgd=[0.9, 0.92, 0.91] * 4, adaptive=[0.6, 0.62, 0.58] * 4)  # sgd wins: not supported
    initializer(tmp_path, zeros=[[0.333, 0.333]] * 12)
    claims = claims_of(tmp_path)

    assert len(claims) == len(CLAIMS) == 12
    bn = claim(claims, "Batch normalization")
    assert bn["verdict"] == "supported"
    assert "batch 0.95 ± 0, none 0.55 ± 0.043" in bn["evidence"]
    assert "Epochs to 90% of best: batch 2 ± 0" in bn["evidence"]  # 0.9 x 0.95 = 0.855, reached at epoch 2
    assert "never reached in 12 of 12 seeds" in bn["evidence"]
    assert "batch vs none, final val_accuracy (12 seeds): difference +0.4 [+0.379, +0.421]" in bn["evidence"]
    assert "p=4.9e-04, Holm 0.002: holds" in bn["evidence"]
    (accuracy, epochs) = bn["comparisons"]
    assert accuracy["probability_better"] == 1 and accuracy["holm_p_value"] == pytest.approx(4 * 2 / 4096)
    assert epochs["comparison"] == "batch vs none, epochs to 90% of best" and epochs["verdict"] == "yes"
    assert (tmp_path / "report" / bn["forest"]).is_file()
    assert claim(claims, "Adaptive optimizers")["verdict"] == "not supported"
    zeros = claim(claims, "All-zeros")
    assert zeros["verdict"] == "supported" and "chance) 0.333" in zeros["evidence"]
    missing = claim(claims, "Residual connections")
    assert missing["verdict"] == "inconclusive" and "no results for residual_deep" in missing["evidence"]


def test_three_seeds_cannot_decide_a_comparison_and_the_row_says_why(tmp_path):
    """Even when all three seeds agree: 2 of the 8 sign patterns are as extreme (p = 0.25)."""
    normalization(tmp_path, batch=[[0.7, 0.95]] * 3, none=[[0.3, 0.5], [0.35, 0.6], [0.3, 0.55]])
    initializer(tmp_path, zeros=[[0.333, 0.9]] + [[0.333, 0.333]] * 2)  # one seed learned: not at chance
    claims = claims_of(tmp_path)
    bn = claim(claims, "Batch normalization")
    assert bn["verdict"] == "inconclusive"
    assert (
        "batch vs none, final val_accuracy (3 seeds): difference +0.4 [+0.35, +0.45]" in bn["evidence"]
        and "p=0.25" in bn["evidence"]
    )
    assert "undecided: 3 seeds can never decide (their smallest p is 0.25)" in bn["evidence"]
    assert "Inconclusive: 2 difference(s) whose interval excludes 0, but 3 seeds can never decide" in bn["evidence"]
    assert "run at least 6, better 30" in bn["evidence"]
    assert claim(claims, "All-zeros")["verdict"] == "not supported"


def overfitting(results, gaps, seeds=12, training=None, scored=None):
    """The overfitting sweep: final training accuracy 1 (or `training`'s), validation that minus
    the gap, per variant; `scored`: every run's training split scored after training (dropout off),
    its validation split as logged."""
    sweep = results / "overfitting" / "reproduce"
    fake_sweep(sweep, "overfitting", [f"trainer.seed=range(0,{seeds})"])
    for (rate, penalty), gap in gaps.items():
        for seed in range(seeds):
            value = gap[seed % len(gap)]
            swept = {"model.dropout_rate": rate, "model.regularizer": penalty}
            final = (training or {}).get((rate, penalty), 1.0)
            label = f"dropout={rate}, {penalty}"
            extra = (
                {"train_eval_accuracy": scored[(rate, penalty)], "val_eval_accuracy": final - value} if scored else {}
            )
            fake_variant(sweep, swept, label, seed, [0.5, final - value], accuracy=[0.6, final], **extra)


def test_the_overfitting_claim_compares_each_regularizer_alone_and_says_why_a_tie_is_one(tmp_path):
    overfitting(
        tmp_path,
        {
            ("0.0", "none"): [0.26, 0.25, 0.27],
            ("0.5", "none"): [0.20, 0.19, 0.21],  # narrower in every seed
            ("0.0", "l2"): [0.27, 0.24, 0.26],  # as wide, give or take
            ("0.5", "l2"): [0.1],  # a combination: shown in the tables, not compared
            ("0.0", "l1l2"): [0.05],  # narrower, at validation accuracy 0.5 (training 0.55)
        },
        training={("0.0", "l1l2"): 0.55},
    )
    row = claim(claims_of(tmp_path), "Where a network overfits")
    assert row["verdict"] == "inconclusive"
    comparisons = {c["comparison"].split(" vs ")[0]: c for c in row["comparisons"]}
    assert sorted(comparisons) == ["dropout=0.5", "l1l2", "l2"]
    dropout, l2 = comparisons["dropout=0.5"], comparisons["l2"]
    assert comparisons["l1l2"]["verdict"] == "yes"
    assert dropout["verdict"] == "yes" and dropout["difference"] == pytest.approx(0.06)
    assert l2["verdict"] == "tie" and l2["interval"][0] < 0 < l2["interval"][1]
    assert "final val_accuracy: neither 0.74 ± 0.0" in row["evidence"]
    assert "(l1l2 narrow(s) the gap by learning less: lower val_accuracy than neither)" in row["evidence"]
    assert "with dropout active, which narrows a dropout variant's logged gap by itself" in row["evidence"]
    assert "Inconclusive: 1 tie(s) with a 95% interval that includes 0, the widest" in row["evidence"]
    assert "(l2 vs neither, train - val accuracy gap, 12 seeds)" in row["evidence"]


def test_where_the_training_split_was_scored_the_gap_is_free_of_dropouts_noise(tmp_path):
    """Dropout's logged training accuracy (0.8) narrows its logged gap by itself; scored after
    training with dropout off (1.0, as without dropout), its gap is as wide as without."""
    gaps = {("0.0", "none"): [0.26, 0.25, 0.27], ("0.5", "none"): [0.06, 0.05, 0.07]}
    training = {("0.5", "none"): 0.8}  # validation accuracy 0.74 +- 0.01 for both
    overfitting(tmp_path / "logged", gaps, training=training)
    logged = claim(claims_of(tmp_path / "logged"), "Where a network overfits")
    overfitting(tmp_path / "scored", gaps, training=training, scored={key: 1.0 for key in gaps})
    row = claim(claims_of(tmp_path / "scored"), "Where a network overfits")

    (narrower,) = logged["comparisons"]
    assert narrower["verdict"] == "yes" and narrower["difference"] == pytest.approx(0.2)
    assert "with dropout active" in logged["evidence"]
    (dropout,) = row["comparisons"]
    assert dropout["difference"] == pytest.approx(0.0, abs=1e-9) and dropout["verdict"] == "tie"
    assert (
        "training minus validation accuracy, both scored after training (dropout off): neither 0.26" in row["evidence"]
    )
    assert "with dropout active" not in row["evidence"]


def test_float32_rounding_is_no_difference_but_a_tiny_scale_keeps_its_own():
    from runner.report.statistics import Stat, compare

    logged = pd.Series([0.82499999, 0.7, 0.91] * 4)  # 0.825 read back from float32, in one seed
    same = compare(Stat("a", logged), Stat("b", pd.Series([0.825, 0.7, 0.91] * 4)))
    assert same.difference == 0 and same.interval == (0.0, 0.0) and same.verdict == "tie"
    assert "a vs b (12 seeds): difference 0 [0, 0], P(better) 0.5 [0.5, 0.5], p=1: tie" in str(same)
    ratios = compare(Stat("a", pd.Series([2e-6, 3e-6] * 4)), Stat("b", pd.Series([1e-6, 1.5e-6] * 4)))
    assert ratios.difference == pytest.approx(1.25e-6) and ratios.verdict == "yes"  # vanishing gradients' scale
    diverged = compare(Stat("a", pd.Series([float("inf"), 0.9, 0.8] * 4)), Stat("b", pd.Series([0.5] * 12)))
    assert diverged.difference == pytest.approx(0.35)  # an infinite value sets no scale


def test_a_small_mixed_difference_is_a_tie_and_holm_adjusts_over_the_whole_report(tmp_path):
    from runner.report.statistics import Stat, compare, holm

    mixed = compare(Stat("a", pd.Series([0.9, 0.4, 0.6] * 4)), Stat("b", pd.Series([0.6] * 12)))
    assert mixed.verdict == "tie" and mixed.interval[0] < 0 < mixed.interval[1]
    clear = compare(Stat("a", pd.Series([0.9 + i / 100 for i in range(8)])), Stat("b", pd.Series([0.5] * 8)))
    assert clear.p_value == pytest.approx(2 / 256) and clear.verdict == "yes"  # alone: holds
    others = [compare(Stat("c", pd.Series([0.6, 0.7] * 4)), Stat("d", pd.Series([0.7, 0.6] * 4))) for _ in range(9)]
    holm([clear, *others])
    assert clear.adjusted == pytest.approx(10 * 2 / 256) and clear.verdict == "tie"  # one of 10: a tie


def test_report_pages_hold_claims_tables_and_plots(tmp_path):
    normalization(tmp_path, batch=[[0.7, 0.95]] * 2 + [[0.6, float("nan")]], none=[[0.3, 0.5]] * 3)
    bad = tmp_path / "normalization" / "reproduce" / "model.normalization=batch,trainer.seed=2" / "metrics.json"
    bad.write_text(bad.read_text().replace('"completed"', '"diverged"'))
    page = build_report(tmp_path)

    text = page.read_text()
    assert text.count('<tr class="claim">') == len(CLAIMS)
    assert '<section id="normalization">' in text
    assert "python -m runner -m experiment=normalization trainer.seed=0,1,2" in text
    assert 'class="flag">completed 2/3, DIVERGED 1/3' in text or 'class="flag">DIVERGED 1/3, completed 2/3' in text
    images = re.findall(r'<img src="([^"]+)"', text)
    assert "images/normalization/val_accuracy.png" in images
    for image in images:
        assert (page.parent / image).read_bytes().startswith(b"\x89PNG")
    markdown = (page.parent / "report.md").read_text()
    assert markdown.count("| **") == len(CLAIMS)  # one verdict cell per claim
    assert "![Compare normalization: validation accuracy](images/normalization/val_accuracy.png)" in markdown
    assert "| Normalization-none | 3 | 0.500 ± 0.000 |" in markdown


def test_report_command_needs_no_tensorflow_and_explains_an_empty_folder(tmp_path):
    normalization(tmp_path / "results", batch=[[0.7, 0.95]] * 3, none=[[0.3, 0.5]] * 3)
    code = (
        "import sys; from runner.cli import main; sys.argv = ['runner', 'report', 'results']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TensorFlow'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "results" / "report" / "index.html").is_file()

    (tmp_path / "empty").mkdir()
    done = run_cli("report", "empty", cwd=tmp_path)
    assert done.returncode == 2
    assert "No results in empty" in done.stderr and "python -m runner reproduce" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", [text for text, *_ in CLAIMS])
def test_every_claim_names_an_experiment_that_exists(name):
    (names,) = [experiments for text, experiments, *_ in CLAIMS if text == name]
    for experiment in names:
        assert (REPO / "runner" / "conf" / "experiment" / f"{experiment}.yaml").is_file()


def test_the_report_shows_the_reproduced_sweep_over_a_newer_single_run(tmp_path):
    normalization(tmp_path, batch=[[0.7, 0.95]] * 3, none=[[0.3, 0.5]] * 3)
    later = tmp_path / "normalization" / "2099-01-01_00-00-00"
    fake_variant(later, {"model.normalization": "batch"}, "Normalization-batch", 42, [0.1, 0.2])
    (tmp_path / "mlartifacts" / "1" / "abc").mkdir(parents=True)  # an MLflow store beside the results
    text = build_report(tmp_path).read_text()
    assert "python -m runner -m experiment=normalization trainer.seed=0,1,2" in text
    assert "mlartifacts" not in text


def test_a_single_seed_gives_no_verdict_on_a_comparison(tmp_path):
    sweep = tmp_path / "optimizer" / "2026-01-01_00-00-00"
    fake_variant(sweep, {"optimizer": "sgd"}, "Optimizer-sgd", 42, [0.5])
    for name in ("rmsprop", "adam"):
        fake_variant(sweep, {"optimizer": name}, f"Optimizer-{name}", 42, [0.9])
    adaptive = claim(claims_of(tmp_path), "Adaptive optimizers")
    assert adaptive["verdict"] == "inconclusive"
    assert "rmsprop 0.9 (one seed)" in adaptive["evidence"]


def test_each_section_shows_the_sweep_with_the_notes_settings_and_its_exact_command(tmp_path):
    """Newer ad-hoc sweeps neither replace the notes' sweep nor feed the claims; a sweep run only
    with other settings is shown flagged, with the command that ran it, and no verdict uses it."""
    optimizer(tmp_path, sgd=[0.5, 0.52, 0.51] * 4, adaptive=[0.9, 0.92, 0.91] * 4)
    later = tmp_path / "optimizer" / "2099-01-01_00-00-00"
    fake_sweep(later, "optimizer", ["trainer.epochs=2", "data=csv", "data.path=clean.csv", "trainer.seed=0,1,2"])
    for seed in range(3):
        fake_variant(later, {"optimizer": "sgd"}, "Optimizer-sgd", seed, [0.95])
        for name in ("rmsprop", "adam"):
            fake_variant(later, {"optimizer": name}, f"Optimizer-{name}", seed, [0.1])
    lr = tmp_path / "learning_rate" / "2099-01-02_00-00-00"
    fake_sweep(lr, "learning_rate", ["optimizer=adam", "trainer.epochs=2", "resume=latest"])
    for rate in (0.001, 0.01, 0.1):
        fake_variant(lr, {"optimizer.learning_rate": rate}, f"Learning-Rate-{rate}", 42, [0.5, 0.6])
    mine = tmp_path / "momentum" / "2099-01-03_00-00-00"
    fake_sweep(mine, "momentum", ["trainer.epochs=3"], config_dirs=[tmp_path / "my conf"])
    fake_variant(mine, {"optimizer.momentum": 0.9}, "Momentum-0.9", 42, [0.7])
    adhoc = tmp_path / "default" / "2099-01-04_00-00-00"
    fake_sweep(adhoc, None, ["model.width=8,16"])
    fake_variant(adhoc, {"model.width": 8}, "Base", 42, [0.7])
    single = tmp_path / "default" / "2099-01-05_00-00-00"
    single.mkdir(parents=True)
    (single / "metrics.json").write_text(json.dumps({"status": "completed", "label": "Base"}))

    page = build_report(tmp_path).read_text()
    claims = {claim["text"]: claim for claim in json.loads((tmp_path / "report" / "claims.json").read_text())}
    adaptive = claim(claims, "Adaptive optimizers")
    assert (
        adaptive["verdict"] == "supported" and "sgd 0.51" in adaptive["evidence"]
    )  # the notes' sweep, not the CSV one
    assert "python -m runner -m experiment=optimizer 'trainer.seed=range(0,12)'</code>" in html.unescape(page)
    other = "python -m runner -m experiment=optimizer trainer.epochs=2 data=csv data.path=clean.csv trainer.seed=0,1,2"
    assert other in page.split('id="other-results"')[1]

    learning_rate = claim(claims, "A too-large learning rate")
    assert learning_rate["verdict"] == "inconclusive"
    assert (
        "no sweep of learning_rate with the notes' settings: the one found ran with optimizer=adam, trainer.epochs=2"
        in (learning_rate["evidence"])
    )
    section = page.split('<section id="learning_rate">')[1].split("</section>")[0]
    assert "Not the notes' settings: this sweep ran with optimizer=adam, trainer.epochs=2." in section
    assert "<code>python -m runner -m experiment=learning_rate optimizer=adam trainer.epochs=2</code>" in section

    section = page.split('<section id="momentum">')[1].split("</section>")[0]
    assert (
        f"python -m runner -m --config-dir &#39;{tmp_path / 'my conf'}&#39; experiment=momentum trainer.epochs=3"
        in section
    )
    assert 'id="default"' not in page and "Base Model" not in page
    assert "python -m runner -m model.width=8,16" in page and f"{single} <span" in page
    intro = re.search(r'<p class="muted">(.*?)</p>', page).group(1)
    assert "1 experiment with the notes&#39; settings, 36 runs (seeds 0-11)" in intro
    assert "not used by the claims, as run with other settings: learning_rate, momentum" in intro


def test_the_command_shown_sweeps_the_seeds_the_table_holds_and_unfinished_variants_are_flagged(tmp_path):
    """A resume with fewer seeds rewrites multirun.yaml; the table still holds every seed on disk."""
    sweep = tmp_path / "normalization" / "2026-01-01_00-00-00"
    fake_sweep(sweep, "normalization", ["trainer.seed=0", "resume=latest"])
    for seed in range(3):
        fake_variant(sweep, {"model.normalization": "batch"}, "Normalization-batch", seed, [0.9])
    fake_variant(sweep, {"model.normalization": "none"}, "Normalization-none", 0, [0.5])  # interrupted
    text = build_report(tmp_path).read_text()
    assert "Reproduce: <code>python -m runner -m experiment=normalization trainer.seed=0,1,2</code>" in text
    assert '<td class="flag">completed, UNFINISHED 1 of 3 seeds</td>' in text
