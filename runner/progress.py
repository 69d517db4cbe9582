"""One line per finished variant, counted by the process that launched the sweep: a job run there
prints its own, runner's launcher sends each back from its workers, and a job of another
launcher (joblib, Ray, SLURM) prints its line where it runs, without the count."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Finished:
    """What a progress line says of one variant."""

    label: str
    values: dict[str, Any]  # its swept values
    seed: int | None
    status: str
    value: float | None  # the final value of the objective's metric
    seconds: float
    skipped: bool = False
    error: str | None = None  # why it failed, with where its traceback is
    metric: str = "val_accuracy"

    @classmethod
    def of(cls, record: dict[str, Any], folder: str | None = None, skipped: bool = False) -> Finished:
        error = record.get("error")
        metric = str(record.get("metric") or "val_accuracy")
        return cls(
            label=str(record.get("label")),
            values=dict(record.get("swept") or {}),
            seed=record.get("seed"),
            status=str(record.get("status")),
            value=record.get(f"final_{metric}"),
            # a packed seed's line: the pack's time, since the pack began when this seed did
            seconds=0.0 if skipped else float(record.get("pack_seconds") or record.get("seconds") or 0.0),
            skipped=skipped,
            error=f"{error.splitlines()[0]} (traceback: {folder}/error.txt)" if error else None,
            metric=metric,
        )

    def describe(self) -> str:
        shown = [f"{key}={value}" for key, value in self.values.items() if key != "trainer.seed"]
        shown.append(f"seed {self.seed}")
        outcome = f"failed: {self.error}" if self.error else f"{self.status}, {self.metric} {number(self.value)}"
        return f"{self.label} ({', '.join(shown)}): {outcome}" + ("; done earlier, skipped" if self.skipped else "")


@dataclass
class _Sweep:
    total: int | None
    header: str | None = None  # printed before its first line
    done: int = 0
    trained: int = 0
    started: float | None = None  # when its first variant began training


_sweeps: dict[str, _Sweep] = {}
_header: str | None = None  # the next sweep's header
_in_worker = False  # set in runner's launcher workers: their lines go back to the launching process
_last: Finished | None = None


def announce(header: str) -> None:
    """The header of the next sweep, printed before its first line: a command's sweeps are all
    checked and queued before the first trains."""
    global _header
    _header = header


def start_sweep(sweep_dir: str, total: int | None) -> None:
    """In the launching process, before a sweep's jobs start: its count starts at 0."""
    global _header
    _sweeps[str(sweep_dir)] = _Sweep(total=total, header=_header)
    _header = None


def mark_worker() -> None:
    global _in_worker
    _in_worker = True


def finished(sweep_dir: str | None, line: Finished) -> None:
    """Where a job ends (`sweep_dir` None for a single run): count and print its line here, or keep
    it for the launching process."""
    global _last
    if _in_worker:
        _last = line
    elif sweep_dir is not None and str(sweep_dir) in _sweeps:
        report(str(sweep_dir), line)
    else:  # a single run, or a worker of another launcher: no count to keep
        print(line.describe(), flush=True)


def take_last() -> Finished | None:
    """In a worker of runner's launcher, after a job: its line, to send back."""
    global _last
    line, _last = _last, None
    return line


def report(sweep_dir: str, line: Finished) -> None:
    """In the launching process: count `line` against its sweep and print it."""
    sweep = _sweeps.setdefault(str(sweep_dir), _Sweep(total=None))
    now = time.time()
    sweep.done += 1
    if not line.skipped:
        sweep.trained += 1
        began = now - line.seconds
        sweep.started = began if sweep.started is None else min(sweep.started, began)
    if sweep.header is not None:
        print(f"\n{sweep.header}", flush=True)
        sweep.header = None
    count = f"[{sweep.done}/{sweep.total}] " if sweep.total else f"[{sweep.done}] "
    timing = ""
    if sweep.started is not None:
        elapsed = now - sweep.started
        left = (sweep.total or 0) - sweep.done
        eta = f", about {duration(elapsed / sweep.trained * left)} left" if sweep.trained and left > 0 else ""
        timing = f" ({duration(elapsed)} elapsed{eta})"
    print(f"{count}{line.describe()}{timing}", flush=True)


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"
