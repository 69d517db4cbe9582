"""Seed statistics the claims are judged by: one figure's values over seeds, how two of them
compare, and how comparisons combine into a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


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
            return f"{self.label} {number(self.mean)} (one seed)"
        return f"{self.label} {number(self.mean)} ± {number(self.std)}"


def number(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) < 1e-12:
        return "0"  # rounding dust, e.g. the std of equal values
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        return f"{value:.1e}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}".rstrip("0").rstrip(".")


ALPHA = 0.05  # family-wise error rate over all of a report's comparisons (Holm)
CONFIDENCE = 0.95  # the shown intervals
DUST = 1e-5  # paired differences below this share of the values' scale count as none
EXACT_UP_TO = 16  # pairs up to which the permutation test enumerates every sign pattern
VERDICT_WORDS = {"yes": "holds", "no": "reversed", "tie": "tie"}


@dataclass
class Comparison:
    """Two variants paired by seed: the mean difference in the claimed direction (positive: the
    claim holds) with its 95% bootstrap interval, the probability that the first beats the second
    with its interval, and a paired sign-flip permutation test's p-value, Holm-adjusted by `holm`."""

    better: Stat
    worse: Stat
    higher_is_better: bool = True
    measure: str = ""  # what is compared, e.g. "final val_accuracy"
    adjusted: float | None = None

    @property
    def name(self) -> str:
        """'batch vs none', the labels without their notes in brackets, and the measure."""
        names = " vs ".join(stat.label.split(" (")[0] for stat in (self.better, self.worse))
        return f"{names}, {self.measure}" if self.measure else names

    def __post_init__(self) -> None:
        first, second = _by_seed(self.better.values), _by_seed(self.worse.values)
        seeds = first.index.intersection(second.index)
        sign = 1.0 if self.higher_is_better else -1.0
        a, b = first[seeds].to_numpy(dtype=float), second[seeds].to_numpy(dtype=float)
        d = sign * (a - b)
        # Below 1e-5 of the values' scale a difference is float32 rounding (0.825 logged as 0.82499999).
        values = np.abs(np.concatenate([a, b]))
        values = values[np.isfinite(values)]
        d[np.abs(d) < DUST * (values.max() if values.size else 0.0)] = 0.0
        self.differences = d = d[np.isfinite(d)]
        self.pairs = len(d)
        self.difference = float(d.mean()) if self.pairs else math.nan
        self.interval = _bootstrap(d)
        wins = (d > 0) + 0.5 * (d == 0)
        self.improvement = float(wins.mean()) if self.pairs else math.nan
        self.improvement_interval = _bootstrap(wins)
        self.p_value = _sign_flip_p(d)

    @property
    def verdict(self) -> str:
        """'yes' where the test rejects equality and the claim's direction holds, 'no' where it
        rejects it the other way, 'tie' otherwise (also with fewer than two paired seeds)."""
        p = self.p_value if self.adjusted is None else self.adjusted
        if self.pairs < 2 or not p <= ALPHA:
            return "tie"
        return "yes" if self.difference > 0 else "no"

    def __str__(self) -> str:
        if self.pairs < 2:
            return f"{self.name}: {self.pairs} paired seed(s), too few to compare"
        low, high = self.interval
        p = f"p={number(self.p_value)}" + (f", Holm {number(self.adjusted)}" if self.adjusted is not None else "")
        low_p, high_p = self.improvement_interval
        outcome = VERDICT_WORDS[self.verdict]
        if self.verdict == "tie" and (low > 0 or high < 0):  # the interval alone would decide
            outcome = "undecided: too few seeds for the report's number of comparisons"
            floor = smallest_p(self.pairs)
            if floor > ALPHA:
                outcome = f"undecided: {self.pairs} seeds can never decide (their smallest p is {number(floor)})"
        return (
            f"{self.name} ({self.pairs} seeds): difference {_signed(self.difference)} "
            f"[{_signed(low)}, {_signed(high)}], P(better) {number(self.improvement)} [{number(low_p)}, "
            f"{number(high_p)}], {p}: {outcome}"
        )


def smallest_p(pairs: int) -> float:
    """The smallest two-sided p-value the sign-flip test can give with this many pairs."""
    return 2 / 2**pairs if pairs <= EXACT_UP_TO else 1 / 20001


def seeds_to_decide() -> int:
    """The fewest paired seeds whose smallest p-value is at most ALPHA (6 at 0.05)."""
    return next(pairs for pairs in range(2, EXACT_UP_TO + 1) if smallest_p(pairs) <= ALPHA)


def compare(better: Stat, worse: Stat, higher_is_better: bool = True, measure: str = "") -> Comparison:
    """`better` against `worse`, paired by seed (see Comparison)."""
    return Comparison(better, worse, higher_is_better, measure)


def holm(comparisons: list[Comparison]) -> None:
    """Holm's step-down adjustment of the comparisons' p-values, in place: together they keep the
    chance of any false 'holds' or 'reversed' at ALPHA."""
    ranked = sorted((c for c in comparisons if c.pairs >= 2), key=lambda c: c.p_value)
    running = 0.0
    for rank, comparison in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * comparison.p_value))
        comparison.adjusted = running


def combine(parts: list) -> str:
    """All parts hold: supported; any part contradicted: not supported; else inconclusive. A part
    is a Comparison or the verdict word ('yes', 'no', 'tie') of a test that is not one."""
    words = [part.verdict if isinstance(part, Comparison) else part for part in parts]
    if words and all(word == "yes" for word in words):
        return "supported"
    if any(word == "no" for word in words):
        return "not supported"
    return "inconclusive"


def _by_seed(values: pd.Series) -> pd.Series:
    values = pd.to_numeric(values, errors="coerce")
    return values.groupby(level=0).mean() if values.index.has_duplicates else values


def _bootstrap(values: np.ndarray) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean, seeded: the same report every time."""
    if len(values) == 0:
        return math.nan, math.nan
    if len(values) < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    from scipy.stats import bootstrap

    result = bootstrap(
        (values,),
        np.mean,
        n_resamples=5000,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _sign_flip_p(differences: np.ndarray) -> float:
    """Two-sided p-value of a paired permutation test: how often flipping the signs of the pairs'
    differences gives a mean at least as far from 0 (every pattern up to EXACT_UP_TO pairs, else
    20,000 seeded draws). Valid at any number of seeds: 3 seeds can give no less than 0.25."""
    n = len(differences)
    if n < 2 or not np.any(differences):
        return 1.0
    observed = abs(differences.mean()) - 1e-12
    if n <= EXACT_UP_TO:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ differences) / n >= observed))
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(20000, n))
    return float((np.sum(np.abs(signs @ differences) / n >= observed) + 1) / 20001)


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + number(value)


def all_seeds(stat: Stat, test) -> str:
    """'yes' where `test` holds in every seed, 'no' where in none, 'tie' otherwise."""
    if not len(stat.values):
        return "tie"
    held = stat.values.map(test)
    return "yes" if held.all() else "no" if not held.any() else "tie"
