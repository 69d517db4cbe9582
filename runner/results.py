"""A run's files: their names, atomic writes, and what resume reads back. The bottom layer:
nothing here imports Keras, TensorFlow or another runner module."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
DIAGNOSTICS_FILE = "diagnostics.csv"
ERROR_FILE = "error.txt"
MODEL_FILE = "model.keras"  # the trained network, with trainer.save_model
SWEEP_FILE = ".sweep.json"  # a sweep's shared facts, written by its pre-flight check

# Statuses of a variant; the first two are results, and a resumed sweep skips them.
FINISHED = ("completed", "diverged")


def write_atomic(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, then rename it: a killed job never leaves half a file.
    The file gets the mode the umask gives, as open() would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN or Infinity: null stands for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_none(item) for item in value]
    return value


def write_metrics(folder: Path, record: dict[str, Any]) -> None:
    write_atomic(Path(folder) / METRICS_FILE, json.dumps(finite_or_none(record), indent=2) + "\n")


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """A variant's metrics.json, or None where it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_history(path: Path, epochs: dict[str, list[float]]) -> None:
    """One row per epoch (numbered from 1), one column per logged metric."""
    import pandas as pd

    frame = pd.DataFrame({key: list(map(float, values)) for key, values in sorted(epochs.items())})
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    write_atomic(path, frame.to_csv(index=False))


# Knobs that change how a run is shown or logged (or which search trial it is), not what it computes.
NOT_FINGERPRINTED = {"label", "title", "objective", "results_dir", "resume", "logger", "search"}


def config_fingerprint(settings: dict[str, Any]) -> str:
    """A hash of everything that determines a variant's result."""
    relevant = {key: value for key, value in settings.items() if key not in NOT_FINGERPRINTED}
    # evaluate_train off is left out: results from before the setting existed still match.
    relevant["trainer"] = {
        k: v
        for k, v in settings["trainer"].items()
        if k not in ("verbose", "threads") and not (k == "evaluate_train" and not v)
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_record(output_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The metrics.json of an earlier run of the same config that finished (completed or
    diverged); None where it is missing, unreadable, failed or differently set."""
    record = read_metrics(output_dir)
    if record is not None and record.get("fingerprint") == fingerprint and record.get("status") in FINISHED:
        return record
    return None


def write_sweep_facts(sweep_dir: Path, facts: dict[str, Any]) -> None:
    write_atomic(Path(sweep_dir) / SWEEP_FILE, json.dumps(facts))


def read_sweep_facts(sweep_dir: Path) -> dict[str, Any]:
    """What a sweep's pre-flight check wrote for its jobs; empty where there is none."""
    try:
        return json.loads((Path(sweep_dir) / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
