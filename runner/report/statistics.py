"""Seed statistics the claims are judged by: one figure's values over seeds, how two of them
compare, and how comparisons combine into a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def all_seeds(stat: Stat, test) -> str:
    """'yes' where `test` holds in every seed, 'no' where in none, 'tie' otherwise."""
    if not len(stat.values):
        return "tie"
    held = stat.values.map(test)
    return "yes" if held.all() else "no" if not held.any() else "tie"
