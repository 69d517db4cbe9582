"""The notes' claims, each measured on the experiments that test it, with a verdict computed from
the results: never written in advance."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from runner.report.load import Experiment
from runner.report.statistics import (
    ALPHA,
    Comparison,
    Stat,
    all_seeds,
    combine,
    compare,
    holm,
    number,
    seeds_to_decide,
    smallest_p,
)

CHANCE_MARGIN = 0.05  # an accuracy within this of the majority-class share counts as chance
DYING_SHARE = 0.05  # ReLU units "die" at high rates where at least this share of them is dead
VANISHED = 0.1  # first hidden layer's gradient norm below a tenth of the output layer's
EXPLODED = 10.0
UNDERFIT_MARGIN = 0.05  # a regularizer whose val_accuracy falls more than this below none's underfits


class Runs:
    """The runs of one experiment, selected by their swept values."""

    def __init__(self, experiment: Experiment) -> None:
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
        return Stat(label, by_seed(frame, frame[column]) if column in frame else pd.Series(dtype=float))


def by_seed(frame: pd.DataFrame, values: pd.Series) -> pd.Series:
    """`values` (one per row of `frame`) as numbers indexed by each row's seed, for pairing."""
    numbers = pd.to_numeric(
        pd.Series(list(values), index=list(frame["seed"]) if "seed" in frame else None), errors="coerce"
    )
    return numbers.dropna()


@dataclass
class Claim:
    text: str
    experiment: str
    test: str
    evidence: str = ""
    verdict: str = "inconclusive"
    comparisons: list[dict] = field(default_factory=list)  # each paired comparison's figures
    forest: str | None = None  # the report's plot of them, relative to its folder


def claim_batch_normalization(runs: Runs) -> tuple[str, list[str]]:
    bn = runs.stat("final_val_accuracy", "batch", model__normalization="batch")
    plain = runs.stat("final_val_accuracy", "none", model__normalization="none")
    bn_epochs = _epochs(runs, "batch", model__normalization="batch")
    plain_epochs = _epochs(runs, "none", model__normalization="none")
    evidence = f"final val_accuracy: {bn}, {plain}. Epochs to 90% of best: {bn_epochs}, {plain_epochs}"
    return evidence, [
        compare(bn, plain, measure="final val_accuracy"),
        compare(bn_epochs, plain_epochs, higher_is_better=False, measure="epochs to 90% of best"),
    ]


def _epochs(runs: Runs, label: str, **values) -> Stat:
    """Epochs to reach the target; a seed that never reaches it counts as one epoch past the end."""
    frame = runs.where(**values)
    if frame.empty:
        return Stat(label, pd.Series(dtype=float))
    never = int(frame["epochs_to_target"].isna().sum())
    if never:
        label += f" (never reached in {never} of {len(frame)} seeds, counted as {int(frame['epochs'].max()) + 1})"
    epochs = frame["epochs_to_target"].fillna(frame["epochs"] + 1)
    return Stat(label, by_seed(frame, epochs))


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
    swing_big = Stat(f"lr={largest:g}", by_seed(big, big["run"].map(swings)))
    swing_good = Stat(f"lr={good:g}", by_seed(of(good), of(good)["run"].map(swings)))
    slow = _epochs(runs, f"lr={smallest:g}", optimizer__learning_rate=texts[smallest])
    fast = _epochs(runs, f"lr={good:g}", optimizer__learning_rate=texts[good])
    unstable = "yes" if diverged else compare(swing_big, swing_good, measure="val_accuracy change per epoch")
    evidence = (
        f"largest rate: {diverged} of {len(big)} seeds diverged; mean change of val_accuracy from one epoch to the "
        f"next: {swing_big}, {swing_good} (the best rate in between). Epochs to 90% of best: {slow}, {fast}"
    )
    return evidence, [unstable, compare(slow, fast, measure="epochs to 90% of best")]


def claim_adaptive_optimizers(runs: Runs) -> tuple[str, list[str]]:
    sgd = runs.stat("final_val_accuracy", "sgd", optimizer="sgd")
    others = [runs.stat("final_val_accuracy", name, optimizer=name) for name in ("rmsprop", "adam")]
    evidence = "final val_accuracy at the same rate: " + ", ".join(str(stat) for stat in [*others, sgd])
    return evidence, [compare(other, sgd, measure="final val_accuracy") for other in others]


def _gradient_ratios(runs: Runs, activation: str, init: str) -> Stat:
    frame = runs.where(model__hidden_activation=activation, init=init)
    values = pd.to_numeric(frame.get("gradient_ratio_first_epoch", pd.Series()), errors="coerce").dropna()
    return Stat(f"{activation}+{init}", values)


def _ratio_text(stat: Stat) -> str:
    if not len(stat.values):
        return f"{stat.label} n/a"
    low, high = stat.values.min(), stat.values.max()
    return f"{stat.label} {number(low)}" + (f" to {number(high)}" if len(stat.values) > 1 else "")


def claim_vanishing(runs: Runs) -> tuple[str, list[str]]:
    stats = [_gradient_ratios(runs, activation, "normal_std1") for activation in ("sigmoid", "tanh")]
    evidence = "first-to-output gradient norm ratio, epoch 1 (range over seeds): " + ", ".join(map(_ratio_text, stats))
    return evidence, [all_seeds(stat, lambda ratio: ratio < VANISHED) for stat in stats]


def claim_glorot_he(runs: Runs) -> tuple[str, list[str]]:
    pairs = [("sigmoid", "glorot_uniform"), ("tanh", "glorot_uniform"), ("relu", "he_normal")]
    stats = [_gradient_ratios(runs, activation, init) for activation, init in pairs]
    evidence = "first-to-output gradient norm ratio, epoch 1 (range over seeds): " + ", ".join(map(_ratio_text, stats))
    return evidence, [all_seeds(stat, lambda ratio: VANISHED <= ratio <= EXPLODED) for stat in stats]


ACTIVATION_RANKING = ["selu", "elu", "leaky_relu", "relu", "tanh", "sigmoid"]


def claim_activation_ranking(runs: Runs) -> tuple[str, list[str]]:
    stats = [runs.stat("final_val_accuracy", name, model__hidden_activation=name) for name in ACTIVATION_RANKING]
    measured = sorted((stat for stat in stats if len(stat.values)), key=lambda stat: -stat.mean)
    order = " > ".join(f"{stat.label} {number(stat.mean)}" for stat in measured)
    parts = [
        compare(higher, lower, measure="final val_accuracy")
        for higher, lower in zip(stats[:-1], stats[1:], strict=True)
    ]
    evidence = f"measured order of final val_accuracy: {order}; each neighbouring pair of the claimed order below"
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
        compare(dead[name], dead["relu"], higher_is_better=False, measure="dead units")
        for name in ("leaky_relu", "elu")
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
        evidence += f" (they then reach a final val_accuracy of {number(accuracy.min())} to {number(accuracy.max())})"
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
        parts.append(compare(on, off, measure="final val_accuracy"))
        texts += [str(on), str(off)]
    return "final val_accuracy: " + ", ".join(texts), parts


def gap_measure(runs: Runs) -> tuple[str, str]:
    """The train/validation gap's column and its words: both splits scored after training with
    dropout off (trainer.evaluate_train) where every run has them, else Keras' logged accuracies."""
    if runs.frame["clean_gap"].notna().all():
        return "clean_gap", "training minus validation accuracy, both scored after training (dropout off)"
    return "gap", "final training minus validation accuracy"


def claim_regularization(dropout: Runs | None, regularizer: Runs | None) -> tuple[str, list[str]]:
    parts, texts = [], []
    for runs, key, baseline in ((dropout, "model.dropout_rate", "0.0"), (regularizer, "model.regularizer", "none")):
        if runs is None or key not in runs.frame:
            continue
        column, words = gap_measure(runs)
        base = runs.stat(column, f"{key.split('.')[-1]}={baseline}", **{key.replace(".", "__"): baseline})
        texts.append(f"{words}: {base}" if not texts or words not in texts[0] else str(base))
        for value in runs.frame[key].map(str).unique():
            if value == baseline:
                continue
            stat = runs.stat(column, f"{key.split('.')[-1]}={value}", **{key.replace(".", "__"): value})
            parts.append(compare(stat, base, higher_is_better=False, measure="train - val accuracy gap"))
            texts.append(str(stat))
    return ", ".join(texts), parts


def claim_overfitting(runs: Runs) -> tuple[str, list[str]]:
    """Each of dropout alone and each penalty alone against neither, on the gap; validation
    accuracy beside it, since a penalty that stops all learning narrows the gap too."""
    frame = runs.frame
    if not {"model.dropout_rate", "model.regularizer"} <= set(frame):
        return "needs a sweep over both model.dropout_rate and model.regularizer", []
    neither = {"model__dropout_rate": "0.0", "model__regularizer": "none"}
    rates = [rate for rate in frame["model.dropout_rate"].map(str).unique() if rate != "0.0"]
    penalties = [penalty for penalty in frame["model.regularizer"].map(str).unique() if penalty != "none"]
    alone = [(f"dropout={rate}", {**neither, "model__dropout_rate": rate}) for rate in rates]
    alone += [(penalty, {**neither, "model__regularizer": penalty}) for penalty in penalties]
    variants = [("neither", neither), *alone]
    column, words = gap_measure(runs)
    gaps = [runs.stat(column, label, **values) for label, values in variants]
    accuracies = [runs.stat("final_val_accuracy", label, **values) for label, values in variants]
    evidence = f"{words}: {', '.join(map(str, gaps))}; final val_accuracy: {', '.join(map(str, accuracies))}"
    worse = [stat.label for stat in accuracies[1:] if stat.mean < accuracies[0].mean - UNDERFIT_MARGIN]
    if worse:  # a narrower gap bought with lower validation accuracy is underfitting
        evidence += f" ({', '.join(worse)} narrow(s) the gap by learning less: lower val_accuracy than neither)"
    if rates and column == "gap":  # Keras logs training accuracy with dropout on, which lowers it by itself
        evidence += (
            ". Training accuracy is Keras' running mean with dropout active, which narrows a dropout variant's "
            "logged gap by itself: read its narrowing as an upper bound"
        )
    measure = "train - val accuracy gap"
    return evidence, [compare(gap, gaps[0], higher_is_better=False, measure=measure) for gap in gaps[1:]]


def claim_zeros(runs: Runs) -> tuple[str, list[str]]:
    zeros = runs.stat("best_val_accuracy", "zeros", model__weights_initializer="zeros")
    chance = runs.experiment.chance
    if chance is None or not len(zeros.values):
        return "no zeros variant or unknown class shares", []
    at_chance = (zeros.values <= chance + CHANCE_MARGIN).all()
    evidence = (
        f"best val_accuracy of any epoch with all-zero weights: {zeros} (max {number(zeros.values.max())}); "
        f"majority-class share (chance) {number(chance)}"
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
        "Where a network overfits, dropout and L1/L2 regularization narrow the gap between training and "
        "validation accuracy.",
        ["overfitting"],
        "dropout alone and each weight penalty alone have a smaller final train - val accuracy gap than neither "
        "(about 200 training samples, two hidden layers of 128)",
        claim_overfitting,
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
    """Each claim measured on the experiments that test it, using only sweeps run with the notes'
    settings (a sweep run otherwise is named in the evidence, never used); the paired comparisons
    of all claims Holm-adjusted together before any verdict is drawn."""
    claims, measured = [], []
    for text, names, test, measure in CLAIMS:
        claim = Claim(text=text, experiment=", ".join(names), test=test)
        usable = {
            name: experiments[name] for name in names if name in experiments and experiments[name].sweep.notes_settings
        }
        missing = [_why_missing(name, experiments.get(name)) for name in names if name not in usable]
        parts = None
        if not usable:
            claim.evidence = "; ".join(missing)
        else:
            try:
                # One argument per experiment the claim names; None for one without usable results.
                found = [Runs(usable[name]) if name in usable else None for name in names]
                claim.evidence, parts = measure(*found)
            except (KeyError, ValueError, StopIteration) as error:
                claim.evidence, parts = f"not measurable from these results ({error})", []
            if missing:
                claim.evidence += f" ({'; '.join(missing)})"
        claims.append(claim)
        measured.append(parts)
    holm([part for parts in measured if parts for part in parts if isinstance(part, Comparison)])
    for claim, parts in zip(claims, measured, strict=True):
        if parts is None:
            continue
        claim.verdict = combine(parts)
        comparisons = [part for part in parts if isinstance(part, Comparison)]
        if comparisons:
            claim.evidence += ". Paired over seeds: " + "; ".join(map(str, comparisons))
        if claim.verdict == "inconclusive":
            claim.evidence += _why_inconclusive(comparisons)
        claim.comparisons = [_figures(comparison) for comparison in comparisons]
    return claims


def _why_inconclusive(comparisons: list[Comparison]) -> str:
    """Why the ties are ties: intervals that include 0 (how wide), or too few seeds."""
    ties = [c for c in comparisons if c.verdict == "tie"]
    spanning = [c for c in ties if c.pairs >= 2 and c.interval[0] <= 0 <= c.interval[1]]
    reasons = []
    if spanning:
        widest = max(spanning, key=lambda c: c.interval[1] - c.interval[0])
        low, high = widest.interval
        reasons.append(
            f"{len(spanning)} tie(s) with a 95% interval that includes 0, the widest {number(high - low)} wide "
            f"({widest.name}, {widest.pairs} seeds): a smaller difference cannot be told from seed noise here"
        )
    pointed = [c for c in ties if c not in spanning and c.pairs >= 2]
    never = [c for c in pointed if smallest_p(c.pairs) > ALPHA]
    if never:
        reasons.append(
            f"{len(never)} difference(s) whose interval excludes 0, but {never[0].pairs} seeds can never decide a "
            f"comparison (the smallest p-value they allow is {number(smallest_p(never[0].pairs))}): run at least "
            f"{seeds_to_decide()}, better 30"
        )
    if len(pointed) > len(never):
        reasons.append(
            f"{len(pointed) - len(never)} difference(s) whose interval excludes 0, with too few seeds to decide "
            "once the report's comparisons are adjusted together: run more seeds"
        )
    return ". Inconclusive: " + "; ".join(reasons) if reasons else ""


def _figures(comparison: Comparison) -> dict:
    return {
        "comparison": comparison.name,
        "seeds": comparison.pairs,
        "difference": comparison.difference,
        "interval": list(comparison.interval),
        "probability_better": comparison.improvement,
        "probability_interval": list(comparison.improvement_interval),
        "p_value": comparison.p_value,
        "holm_p_value": comparison.adjusted,
        "verdict": comparison.verdict,
    }


def _why_missing(name: str, shown: Experiment | None) -> str:
    if shown is None:
        return (
            f"no results for {name}: run `python -m runner -m experiment={name} 'trainer.seed=range(0,30)'` "
            "or `python -m runner reproduce`"
        )
    return (
        f"no sweep of {name} with the notes' settings: the one found ran with {', '.join(shown.sweep.departures)}; "
        f"run `python -m runner -m experiment={name} 'trainer.seed=range(0,30)'`"
    )
