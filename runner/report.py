"""Results folder -> one report: every experiment's plots and seed statistics, and the notes'
claims with verdicts computed from the data. Never imports Keras or TensorFlow.

python -m runner report results        # writes results/report/index.html and report.md
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from runner.compare import (
    CompareError,
    current_summary,
    find_runs,
    load_histories,
    load_runs,
    summarize_sweep,
)
from runner.config import CONFIG_DIR
from runner.plots import DIAGNOSTIC_PLOTS, PLOTTED_METRICS
from runner.results import METRICS_FILE, write_atomic

REPORT_DIR = "report"
SEEDS = (0, 1, 2)
PLOTS = [f"{metric}.png" for metric in PLOTTED_METRICS] + ["gradient_norms.png", *DIAGNOSTIC_PLOTS]
TARGET_SHARE = 0.9  # "epochs to reach 90% of the best"
CHANCE_MARGIN = 0.05  # an accuracy within this of the majority-class share counts as chance
DYING_SHARE = 0.05  # ReLU units "die" at high rates where at least this share of them is dead
VANISHED = 0.1  # first hidden layer's gradient norm below a tenth of the output layer's
EXPLODED = 10.0


class ReportError(Exception):
    """The folder holds no results to report on."""


@dataclass
class Experiment:
    """One experiment's latest sweep, loaded: its runs (one row per variant and seed) with the
    derived columns the report needs, and its variant table."""

    name: str
    folder: Path
    title: str
    question: str
    command: str
    runs: pd.DataFrame
    histories: pd.DataFrame
    table: pd.DataFrame
    target: float
    chance: float | None
    plots: list[Path] = field(default_factory=list)


@dataclass
class Claim:
    text: str
    experiment: str
    test: str
    evidence: str = ""
    verdict: str = "inconclusive"


# ---------------------------------------------------------------- loading


REPRODUCE_DIR = "reproduce"  # where `python -m runner reproduce` puts each experiment's sweep
NOT_EXPERIMENTS = {REPORT_DIR, "mlartifacts", "mlruns"}


def find_sweeps(root: Path) -> dict[str, Path]:
    """The sweep folder of each experiment under `root` (results/<experiment>/<sweep>/) that the
    report shows: the one `reproduce` wrote, else the newest by its last finished variant."""
    sweeps: dict[str, Path] = {}
    for experiment_dir in sorted(path for path in root.iterdir() if path.is_dir() and path.name not in NOT_EXPERIMENTS):
        candidates = [path for path in experiment_dir.iterdir() if path.is_dir() and find_runs(path)]
        reproduced = [path for path in candidates if path.name == REPRODUCE_DIR]
        if candidates:
            sweeps[experiment_dir.name] = reproduced[0] if reproduced else max(candidates, key=_last_finished)
    return sweeps


def _last_finished(folder: Path) -> float:
    return max(path.stat().st_mtime for path in folder.glob(f"**/{METRICS_FILE}"))


def load_experiment(name: str, folder: Path) -> Experiment:
    if current_summary(folder) is None:
        summarize_sweep(folder)  # tables and plots of a sweep that was interrupted or resumed
    runs = load_runs(folder)
    histories = load_histories(folder, runs)
    val = histories[histories["metric"] == "val_accuracy"]
    best_by_variant = runs.groupby("variant")["best_val_accuracy"].mean()
    target = TARGET_SHARE * float(best_by_variant.max()) if best_by_variant.notna().any() else math.nan
    reached = val[val["value"] >= target].groupby("run")["epoch"].min()
    runs["epochs_to_target"] = runs["run"].map(reached)
    runs["gap"] = (runs["final_accuracy"] - runs["final_val_accuracy"]).round(6)  # no float32 dust
    seeds = sorted(int(seed) for seed in runs["seed"].dropna().unique())
    seed_text = ",".join(map(str, seeds))
    command = f"python -m runner -m experiment={name}" + (f" trainer.seed={seed_text}" if len(seeds) > 1 else "")
    experiment = Experiment(
        name=name,
        folder=folder,
        title=str(runs["title"].iloc[0]),
        question=experiment_question(name),
        command=command,
        runs=runs,
        histories=histories,
        table=pd.DataFrame(),
        target=target,
        chance=majority_share(folder, runs),
        plots=[folder / plot for plot in PLOTS if (folder / plot).is_file()],
    )
    experiment.table = variant_table(experiment)
    return experiment


def experiment_question(name: str) -> str:
    """The question an experiment answers: the first comment line of its file in conf/."""
    path = CONFIG_DIR / "experiment" / f"{name}.yaml"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.lstrip("# ").strip()
            if line.startswith("#") and text and not text.startswith("@package"):
                return text
    return ""


def majority_share(folder: Path, runs: pd.DataFrame) -> float | None:
    """Accuracy of always answering the most common class: what "chance" means for this data."""
    from omegaconf import OmegaConf

    config = next(
        (folder / run / "config.yaml" for run in runs["run"] if (folder / run / "config.yaml").is_file()), None
    )
    if config is None:
        return None
    data = OmegaConf.to_container(OmegaConf.load(config).data, resolve=True)
    return _majority_share(json.dumps(data, sort_keys=True))


@functools.cache
def _majority_share(data: str) -> float | None:
    """Per data set, once: most experiments share Iris or Digits."""
    from runner.data import DataError, load_dataset

    try:
        dataset = load_dataset(json.loads(data))
    except (DataError, OSError, ValueError):
        return None
    return float(pd.Series(dataset.labels).value_counts(normalize=True).max())


def variant_table(experiment: Experiment) -> pd.DataFrame:
    """One row per variant, in the sweep's ranking: accuracies as mean +- std over seeds, epochs
    to reach 90% of the best variant's best val_accuracy, and status."""
    runs = experiment.runs
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        reached = group["epochs_to_target"].dropna()
        never = len(group) - len(reached)
        epochs = _mean_std(reached, digits=1) if len(reached) else "never"
        if len(reached) and never:
            epochs += f" ({never} of {len(group)} never)"
        rows.append(
            {
                "variant": variant,
                "seeds": len(group),
                "final val_accuracy": _mean_std(group["final_val_accuracy"]),
                "best val_accuracy": _mean_std(group["best_val_accuracy"]),
                "final accuracy (train)": _mean_std(group["final_accuracy"]),
                "epochs to 90% of best": epochs,
                "status": _status(group["status"]),
                "_rank": group[f"final_{group['metric'].iloc[0]}"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    ascending = str(runs["metric"].iloc[0]).endswith("loss")
    return table.sort_values("_rank", ascending=ascending, na_position="last").drop(columns="_rank")


def _mean_std(values: pd.Series, digits: int = 3) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _status(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1 and counts.index[0] == "completed":
        return "completed"
    return ", ".join(
        f"{status.upper() if status != 'completed' else status} {count}/{len(statuses)}"
        for status, count in counts.items()
    )


# ---------------------------------------------------------------- claims


@dataclass
class Stat:
    """One variant's per-seed values of one figure."""

    label: str
    values: pd.Series

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if len(self.values) else math.nan

    @property
    def std(self) -> float:
        return float(self.values.std()) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        if not len(self.values):
            return f"{self.label} n/a"
        if len(self.values) == 1:
            return f"{self.label} {_number(self.mean)} (one seed)"
        return f"{self.label} {_number(self.mean)} ± {_number(self.std)}"


def _number(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) < 1e-12:
        return "0"  # rounding dust, e.g. the std of equal values
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        return f"{value:.1e}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def compare(better: Stat, worse: Stat, higher_is_better: bool = True) -> str:
    """'yes' where `better` beats `worse` by more than the larger of their spreads over seeds,
    'no' where it is behind by more than that, 'tie' in between, and without the data to tell:
    a side with fewer than two seeds has no spread to judge the difference by."""
    if len(better.values) < 2 or len(worse.values) < 2:
        return "tie"
    difference = better.mean - worse.mean if higher_is_better else worse.mean - better.mean
    spread = max(better.std, worse.std)
    if difference > spread:
        return "yes"
    if difference < -spread:
        return "no"
    return "tie"


def combine(parts: list[str]) -> str:
    """All parts hold: supported; any part contradicted: not supported; else inconclusive."""
    if parts and all(part == "yes" for part in parts):
        return "supported"
    if any(part == "no" for part in parts):
        return "not supported"
    return "inconclusive"


class Runs:
    """The runs of one experiment, selected by their swept values."""

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.frame = experiment.runs

    def where(self, **values) -> pd.DataFrame:
        frame = self.frame
        for key, value in values.items():
            column = key.replace("__", ".")
            if column not in frame:
                return frame.iloc[0:0]
            frame = frame[frame[column].map(str) == str(value)]
        return frame

    def stat(self, column: str, label: str, **values) -> Stat:
        frame = self.where(**values)
        return Stat(label, pd.to_numeric(frame[column], errors="coerce").dropna() if column in frame else pd.Series())


def claim_batch_normalization(runs: Runs) -> tuple[str, list[str]]:
    bn = runs.stat("final_val_accuracy", "batch", model__normalization="batch")
    plain = runs.stat("final_val_accuracy", "none", model__normalization="none")
    bn_epochs = _epochs(runs, "batch", model__normalization="batch")
    plain_epochs = _epochs(runs, "none", model__normalization="none")
    evidence = f"final val_accuracy: {bn}, {plain}. Epochs to 90% of best: {bn_epochs}, {plain_epochs}"
    return evidence, [compare(bn, plain), compare(bn_epochs, plain_epochs, higher_is_better=False)]


def _epochs(runs: Runs, label: str, **values) -> Stat:
    """Epochs to reach the target; a seed that never reaches it counts as one epoch past the end."""
    frame = runs.where(**values)
    if frame.empty:
        return Stat(label, pd.Series(dtype=float))
    never = int(frame["epochs_to_target"].isna().sum())
    if never:
        label += f" (never reached in {never} of {len(frame)} seeds, counted as {int(frame['epochs'].max()) + 1})"
    epochs = frame["epochs_to_target"].fillna(frame["epochs"] + 1)
    return Stat(label, pd.to_numeric(epochs, errors="coerce"))


def _rates(runs: Runs) -> dict[float, str]:
    """The swept learning rates, ascending, each with its value as the runs record it."""
    values = runs.frame.get("optimizer.learning_rate", pd.Series()).dropna().map(str)
    return {float(text): text for text in sorted(set(values), key=float)}


def claim_learning_rate(runs: Runs) -> tuple[str, list[str]]:
    column = "optimizer.learning_rate"
    texts = _rates(runs)
    rates = list(texts)
    if len(rates) < 3:
        return "needs at least three learning rates", []
    smallest, largest = rates[0], rates[-1]
    # The reference: the rate in between with the best validation accuracy over all epochs.
    histories = runs.experiment.histories
    val = histories[histories["metric"] == "val_accuracy"]
    area = val.groupby("run")["value"].mean()
    middle = runs.frame[runs.frame[column].astype(float).between(smallest, largest, inclusive="neither")]
    good = float(middle.assign(area=middle["run"].map(area)).groupby(column)["area"].mean().idxmax())
    swings = val.sort_values("epoch").groupby("run")["value"].apply(lambda values: values.diff().abs().mean())

    def of(rate: float) -> pd.DataFrame:
        return runs.where(optimizer__learning_rate=texts[rate])

    big = of(largest)
    diverged = int((big["status"] == "diverged").sum())
    swing_big = Stat(f"lr={largest:g}", big["run"].map(swings).dropna())
    swing_good = Stat(f"lr={good:g}", of(good)["run"].map(swings).dropna())
    slow = _epochs(runs, f"lr={smallest:g}", optimizer__learning_rate=texts[smallest])
    fast = _epochs(runs, f"lr={good:g}", optimizer__learning_rate=texts[good])
    unstable = "yes" if diverged else compare(swing_big, swing_good)
    evidence = (
        f"largest rate: {diverged} of {len(big)} seeds diverged; mean change of val_accuracy from one epoch to the "
        f"next: {swing_big}, {swing_good} (the best rate in between). Epochs to 90% of best: {slow}, {fast}"
    )
    return evidence, [unstable, compare(slow, fast)]


def claim_adaptive_optimizers(runs: Runs) -> tuple[str, list[str]]:
    sgd = runs.stat("final_val_accuracy", "sgd", optimizer="sgd")
    others = [runs.stat("final_val_accuracy", name, optimizer=name) for name in ("rmsprop", "adam")]
    evidence = "final val_accuracy at the same rate: " + ", ".join(str(stat) for stat in [*others, sgd])
    return evidence, [compare(other, sgd) for other in others]


def _gradient_ratios(runs: Runs, activation: str, init: str) -> Stat:
    frame = runs.where(model__hidden_activation=activation, init=init)
    values = pd.to_numeric(frame.get("gradient_ratio_first_epoch", pd.Series()), errors="coerce").dropna()
    return Stat(f"{activation}+{init}", values)


def _ratio_text(stat: Stat) -> str:
    if not len(stat.values):
        return f"{stat.label} n/a"
    low, high = stat.values.min(), stat.values.max()
    return f"{stat.label} {_number(low)}" + (f" to {_number(high)}" if len(stat.values) > 1 else "")


def _all_seeds(stat: Stat, test) -> str:
    if not len(stat.values):
        return "tie"
    held = stat.values.map(test)
    return "yes" if held.all() else "no" if not held.any() else "tie"


def claim_vanishing(runs: Runs) -> tuple[str, list[str]]:
    stats = [_gradient_ratios(runs, activation, "normal_std1") for activation in ("sigmoid", "tanh")]
    evidence = "first-to-output gradient norm ratio, epoch 1 (range over seeds): " + ", ".join(map(_ratio_text, stats))
    return evidence, [_all_seeds(stat, lambda ratio: ratio < VANISHED) for stat in stats]


def claim_glorot_he(runs: Runs) -> tuple[str, list[str]]:
    pairs = [("sigmoid", "glorot_uniform"), ("tanh", "glorot_uniform"), ("relu", "he_normal")]
    stats = [_gradient_ratios(runs, activation, init) for activation, init in pairs]
    evidence = "first-to-output gradient norm ratio, epoch 1 (range over seeds): " + ", ".join(map(_ratio_text, stats))
    return evidence, [_all_seeds(stat, lambda ratio: VANISHED <= ratio <= EXPLODED) for stat in stats]


ACTIVATION_RANKING = ["selu", "elu", "leaky_relu", "relu", "tanh", "sigmoid"]


def claim_activation_ranking(runs: Runs) -> tuple[str, list[str]]:
    stats = [runs.stat("final_val_accuracy", name, model__hidden_activation=name) for name in ACTIVATION_RANKING]
    measured = sorted((stat for stat in stats if len(stat.values)), key=lambda stat: -stat.mean)
    order = " > ".join(f"{stat.label} {_number(stat.mean)}" for stat in measured)
    parts = [compare(higher, lower) for higher, lower in zip(stats[:-1], stats[1:], strict=True)]
    agree = sum(part == "yes" for part in parts)
    wrong = sum(part == "no" for part in parts)
    evidence = (
        f"measured order of final val_accuracy: {order}. Of the {len(parts)} neighbouring pairs of the claimed order, "
        f"{agree} hold, {wrong} are reversed, {len(parts) - agree - wrong} are within the spread over seeds"
    )
    return evidence, parts


def claim_dying_relu(runs: Runs) -> tuple[str, list[str]]:
    rates = _rates(runs)
    if not rates:
        return "no learning rates in this sweep", []
    rate = rates[max(rates)]
    dead = {
        name: runs.stat("dead_fraction_final", name, model__hidden_activation=name, optimizer__learning_rate=rate)
        for name in ("relu", "leaky_relu", "elu")
    }
    accuracy = {
        name: runs.stat("final_val_accuracy", name, model__hidden_activation=name, optimizer__learning_rate=rate)
        for name in ("relu", "leaky_relu", "elu")
    }
    relu_dies = "yes" if dead["relu"].mean >= DYING_SHARE else "tie"  # nothing to avoid if no unit died
    evidence = (
        f"at lr={rate}, dead hidden units at the end (fraction): {', '.join(map(str, dead.values()))}; "
        f"final val_accuracy: {', '.join(map(str, accuracy.values()))}"
    )
    return evidence, [relu_dies] + [
        compare(dead[name], dead["relu"], higher_is_better=False) for name in ("leaky_relu", "elu")
    ]


def claim_clipping(runs: Runs) -> tuple[str, list[str]]:
    frame = runs.frame
    baseline = runs.where(clipping="none")
    clipped = frame[~frame["run"].isin(baseline["run"])]
    base_diverged = int((baseline["status"] == "diverged").sum())
    per_kind = clipped.groupby("clipping")["status"].apply(lambda s: int((s == "diverged").sum()))
    evidence = f"without clipping {base_diverged} of {len(baseline)} seeds diverged; with clipping: " + ", ".join(
        f"{kind} {count} of {int((clipped['clipping'] == kind).sum())}" for kind, count in per_kind.items()
    )
    if not clipped.empty:
        accuracy = clipped.groupby("clipping")["final_val_accuracy"].mean()
        evidence += f" (they then reach a final val_accuracy of {_number(accuracy.min())} to {_number(accuracy.max())})"
    if baseline.empty or clipped.empty:
        return evidence, []
    baseline_fails = "yes" if base_diverged else "tie"  # nothing to prevent if the baseline never diverged
    return evidence, [baseline_fails, "yes" if per_kind.sum() == 0 else "no"]


def claim_residual(runs: Runs) -> tuple[str, list[str]]:
    parts, texts = [], []
    for activation in ("sigmoid", "relu"):
        on = runs.stat(
            "final_val_accuracy", f"{activation} residual", model__hidden_activation=activation, model__residual=True
        )
        off = runs.stat(
            "final_val_accuracy", f"{activation} plain", model__hidden_activation=activation, model__residual=False
        )
        parts.append(compare(on, off))
        texts += [str(on), str(off)]
    return "final val_accuracy: " + ", ".join(texts), parts


def claim_regularization(dropout: Runs | None, regularizer: Runs | None) -> tuple[str, list[str]]:
    parts, texts = [], []
    for runs, key, baseline in ((dropout, "model.dropout_rate", "0.0"), (regularizer, "model.regularizer", "none")):
        if runs is None or key not in runs.frame:
            continue
        base = runs.stat("gap", f"{key.split('.')[-1]}={baseline}", **{key.replace(".", "__"): baseline})
        texts.append(str(base))
        for value in runs.frame[key].map(str).unique():
            if value == baseline:
                continue
            stat = runs.stat("gap", f"{key.split('.')[-1]}={value}", **{key.replace(".", "__"): value})
            parts.append(compare(stat, base, higher_is_better=False))
            texts.append(str(stat))
    return "final training minus validation accuracy: " + ", ".join(texts), parts


def claim_zeros(runs: Runs) -> tuple[str, list[str]]:
    zeros = runs.stat("best_val_accuracy", "zeros", model__weights_initializer="zeros")
    chance = runs.experiment.chance
    if chance is None or not len(zeros.values):
        return "no zeros variant or unknown class shares", []
    at_chance = (zeros.values <= chance + CHANCE_MARGIN).all()
    evidence = (
        f"best val_accuracy of any epoch with all-zero weights: {zeros} (max {_number(zeros.values.max())}); "
        f"majority-class share (chance) {_number(chance)}"
    )
    return evidence, ["yes" if at_chance else "no"]


# Each claim: its text, the experiment(s) that test it, how the verdict is decided, and the
# function that measures it.
CLAIMS = [
    (
        "Batch normalization reaches higher accuracy in fewer epochs.",
        ["normalization"],
        "batch vs none: higher final val_accuracy and fewer epochs to 90% of the best",
        claim_batch_normalization,
    ),
    (
        "A too-large learning rate makes training unstable; a too-small one learns slowly.",
        ["learning_rate"],
        "largest rate diverges or its val_accuracy swings more from epoch to epoch than at the best rate in between; "
        "smallest rate needs more epochs to 90% of the best than that rate",
        claim_learning_rate,
    ),
    (
        "Adaptive optimizers (RMSprop, Adam) beat plain SGD at the same small learning rate.",
        ["optimizer"],
        "rmsprop and adam each reach a higher final val_accuracy than sgd",
        claim_adaptive_optimizers,
    ),
    (
        "Sigmoid and tanh with N(0, 1) weights make the lower layers' gradients vanish in deep networks.",
        ["vanishing_gradients"],
        f"in every seed the first hidden layer's gradient norm is below {VANISHED:g}x the output layer's "
        "(epoch 1), for both",
        claim_vanishing,
    ),
    (
        "Glorot/He initialization keeps gradients flowing.",
        ["vanishing_gradients"],
        f"first-to-output gradient norm ratio within [{VANISHED:g}, {EXPLODED:g}] in every seed, for sigmoid "
        "and tanh with Glorot and relu with He",
        claim_glorot_he,
    ),
    (
        "Activation ranking for deep networks: SELU > ELU > leaky ReLU > ReLU > tanh > sigmoid.",
        ["activations_deep"],
        "each neighbouring pair of the claimed order holds on final val_accuracy",
        claim_activation_ranking,
    ),
    (
        "Leaky ReLU and ELU avoid dying units at high learning rates.",
        ["dying_relu"],
        f"at the highest rate, relu ends with at least {DYING_SHARE:.0%} dead units and leaky_relu and elu "
        "each with fewer",
        claim_dying_relu,
    ),
    (
        "Gradient clipping prevents divergence at a large learning rate.",
        ["gradient_clipping"],
        "the unclipped baseline diverges and no clipped variant does",
        claim_clipping,
    ),
    (
        "Residual connections help deep networks train.",
        ["residual_deep"],
        "with skip connections, higher final val_accuracy than the plain stack, for sigmoid and relu",
        claim_residual,
    ),
    (
        "Dropout and L1/L2 regularization narrow the gap between training and validation accuracy.",
        ["dropout", "regularizer"],
        "every dropout rate and weight penalty has a smaller final train - val accuracy gap than none",
        claim_regularization,
    ),
    (
        "All-zeros initialization cannot break symmetry: accuracy stays at chance.",
        ["initializer"],
        f"in every seed, the best val_accuracy of the zeros variant is within {CHANCE_MARGIN:g} of the "
        "majority-class share",
        claim_zeros,
    ),
]


def assess_claims(experiments: dict[str, Experiment]) -> list[Claim]:
    claims = []
    for text, names, test, measure in CLAIMS:
        claim = Claim(text=text, experiment=", ".join(names), test=test)
        missing = [name for name in names if name not in experiments]
        if len(missing) == len(names):
            claim.evidence = f"no results for {claim.experiment}: run `python -m runner reproduce`"
        else:
            try:
                # One argument per experiment the claim names; None for one without results.
                found = [Runs(experiments[name]) if name in experiments else None for name in names]
                claim.evidence, parts = measure(*found)
            except (KeyError, ValueError, StopIteration) as error:
                claim.evidence, parts = f"not measurable from these results ({error})", []
            claim.verdict = combine(parts)
            if missing:
                claim.evidence += f" (no results for {', '.join(missing)})"
        claims.append(claim)
    return claims


# ---------------------------------------------------------------- writing


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
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #1f2328; line-height: 1.45 }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top }
th { background: #f6f8fa }
code { background: #f6f8fa; padding: .1em .3em; border-radius: 4px }
.verdict { font-weight: 600; white-space: nowrap }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1em }
figure { margin: 0 }
figure img { width: 100%; border: 1px solid #d0d7de }
figcaption, .muted { font-size: .85em; color: #59636e }
.flag { color: #cf222e; font-weight: 600 }
"""


def build_report(root: Path) -> Path:
    """Write <root>/report/index.html and report.md from the newest sweep of each experiment."""
    root = Path(root)
    sweeps = find_sweeps(root)
    if not sweeps:
        raise ReportError(
            f"No results in {root}: no folder like {root}/<experiment>/<sweep>/ holds a finished variant. "
            "Run `python -m runner reproduce` (or a sweep) first, or give the results folder."
        )
    experiments = {}
    for name, folder in sweeps.items():
        try:
            experiments[name] = load_experiment(name, folder)
        except (CompareError, KeyError, ValueError) as error:  # not a runner sweep after all
            print(f"Skipped {folder}: {error}", file=sys.stderr)
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
    write_atomic(out / "index.html", render_html(root, experiments, claims))
    write_atomic(out / "report.md", render_markdown(root, experiments, claims))
    write_atomic(out / "claims.json", json.dumps([claim.__dict__ for claim in claims], indent=2))
    return out / "index.html"


def _intro(root: Path, experiments: dict[str, Experiment]) -> str:
    seeds = sorted({int(seed) for e in experiments.values() for seed in e.runs["seed"].dropna()})
    runs = sum(len(e.runs) for e in experiments.values())
    return (
        f"{len(experiments)} experiments, {runs} runs (seeds {', '.join(map(str, seeds))}), from {root}/, "
        f"built {datetime.now():%Y-%m-%d %H:%M}. Figures are mean ± standard deviation over seeds."
    )


METHOD = (
    "A verdict is computed from the results below: a comparison holds when the difference of the means exceeds "
    "the larger of the two standard deviations over seeds, is reversed when it falls short by more than that, "
    "and is a tie otherwise; with a single seed on either side there is no spread, and it is a tie. A claim is "
    "supported when all its comparisons hold, not supported when any is reversed, and inconclusive otherwise. "
    "Training accuracy is Keras' average over each epoch's batches, with dropout active."
)


def render_html(root: Path, experiments: dict[str, Experiment], claims: list[Claim]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>runner report: the notes' experiments</title><style>{STYLE}</style></head><body>",
        "<h1>The notes' experiments, reproduced</h1>",
        f'<p class="muted">{e(_intro(root, experiments))}</p>',
        '<h2 id="claims">Claims</h2>',
        '<table id="claims-table"><thead><tr><th>Claim</th><th>Experiment</th><th>Test</th>',
        "<th>Measured evidence</th><th>Verdict</th></tr></thead><tbody>",
    ]
    for claim in claims:
        links = ", ".join(f'<a href="#{e(name.strip())}">{e(name.strip())}</a>' for name in claim.experiment.split(","))
        color = VERDICT_COLORS[claim.verdict]
        parts.append(
            f'<tr class="claim"><td>{e(claim.text)}</td><td>{links}</td><td>{e(claim.test)}</td>'
            f'<td>{e(claim.evidence)}</td><td class="verdict" style="color:{color}">{e(claim.verdict)}</td></tr>'
        )
    parts.append(f'</tbody></table><p class="muted">{e(METHOD)}</p>')
    parts.append("<h2>Experiments</h2><nav><ul>")
    parts += [
        f'<li><a href="#{e(name)}">{e(x.title)}</a> <span class="muted">({e(name)})</span></li>'
        for name, x in experiments.items()
    ]
    parts.append("</ul></nav>")
    for name, experiment in experiments.items():
        parts.append(f'<section id="{e(name)}"><h2>{e(experiment.title)}</h2>')
        if experiment.question:
            parts.append(f"<p><strong>Question:</strong> {e(experiment.question)}</p>")
        parts.append(
            f"<p>Reproduce: <code>{e(experiment.command)}</code> "
            f'<span class="muted">(results in {e(str(experiment.folder))})</span></p>'
        )
        parts.append(_html_table(experiment))
        parts.append('<div class="plots">')
        for plot in experiment.plots:
            source = f"images/{name}/{plot.name}"
            caption = PLOT_CAPTIONS.get(plot.name, plot.stem)
            parts.append(
                f'<figure><img src="{e(source)}" alt="{e(experiment.title)}: {e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_table(experiment: Experiment) -> str:
    e = html.escape
    columns = list(experiment.table.columns)
    rows = [f"<tr>{''.join(f'<th>{e(c)}</th>' for c in columns)}</tr>"]
    for record in experiment.table.to_dict("records"):
        cells = []
        for column in columns:
            text = e(str(record[column]))
            flagged = column == "status" and record[column] != "completed"
            cells.append(f'<td class="flag">{text}</td>' if flagged else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    metric = str(experiment.runs["metric"].iloc[0])
    target = f"Ranked by final {metric}, the experiment's metric."
    if math.isfinite(experiment.target):
        target += f" 90% of best = {experiment.target:.3f} val_accuracy."
    body = "".join(rows[1:])
    table = f'<table class="variants"><thead>{rows[0]}</thead><tbody>{body}</tbody></table>'
    return f'{table}<p class="muted">{e(target)}</p>'


def render_markdown(root: Path, experiments: dict[str, Experiment], claims: list[Claim]) -> str:
    lines = ["# The notes' experiments, reproduced", "", _intro(root, experiments), "", "## Claims", ""]
    lines += ["| Claim | Experiment | Test | Measured evidence | Verdict |", "|---|---|---|---|---|"]
    for claim in claims:
        cells = [claim.text, claim.experiment, claim.test, claim.evidence, f"**{claim.verdict}**"]
        lines.append("| " + " | ".join(_md(cell) for cell in cells) + " |")
    lines += ["", METHOD, "", "## Experiments", ""]
    lines += [f"- [{x.title}](#{name.replace('_', '-')}) ({name})" for name, x in experiments.items()]
    for name, experiment in experiments.items():
        lines += ["", f'<a id="{name.replace("_", "-")}"></a>', "", f"### {experiment.title}", ""]
        if experiment.question:
            lines += [f"**Question:** {experiment.question}", ""]
        lines += [f"Reproduce: `{experiment.command}`", ""]
        columns = list(experiment.table.columns)
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for record in experiment.table.to_dict("records"):
            lines.append("| " + " | ".join(_md(str(record[column])) for column in columns) + " |")
        lines.append("")
        for plot in experiment.plots:
            lines.append(f"![{experiment.title}: {PLOT_CAPTIONS.get(plot.name, plot.stem)}](images/{name}/{plot.name})")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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
    print(f"Report: {page}\n        {page.with_name('report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
