"""The sweeps under a results folder, how each was run (its exact command, and whether it ran the
notes' settings), and each experiment's sweep loaded with the columns the report needs."""

from __future__ import annotations

import functools
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from runner.compare import current_summary, find_runs, load_histories, load_runs, summarize_sweep
from runner.config import CONFIG_DIR
from runner.plots import DIAGNOSTIC_PLOTS, PLOTTED_METRICS
from runner.results import METRICS_FILE, NOT_FINGERPRINTED

REPORT_DIR = "report"
REPRODUCE_DIR = "reproduce"  # where `python -m runner reproduce` puts each experiment's sweep
SWEEP_CONFIG = "multirun.yaml"  # what the sweeper saved of the sweep's command and config
PLOTS = [f"{metric}.png" for metric in PLOTTED_METRICS] + ["gradient_norms.png", *DIAGNOSTIC_PLOTS]
TARGET_SHARE = 0.9  # "epochs to reach 90% of the best"
# Overrides that leave a sweep on the notes' settings: which experiment, which seeds, and what
# changes how results are shown or stored, not what they are.
SAME_SETTINGS = {"experiment", "trainer.seed", "trainer.verbose", "trainer.threads", *NOT_FINGERPRINTED}


@dataclass
class Sweep:
    """A sweep folder and how it was run, from the multirun.yaml its sweeper saved."""

    folder: Path
    experiment: str | None  # None: a sweep of no experiment (python -m runner -m key=a,b)
    overrides: list[str]  # the command line's, as Hydra recorded them
    config_dirs: list[str]  # --config-dir folders it was run with
    finished: float  # when its last variant finished

    @property
    def command(self) -> str:
        """The command that runs this sweep again (resume dropped: it names a folder)."""
        words = ["python", "-m", "runner", "-m"]
        for folder in self.config_dirs:
            words += ["--config-dir", folder]
        words += [override for override in self.overrides if _key(override) != "resume"]
        return shlex.join(words)

    @property
    def departures(self) -> list[str]:
        """What it changed beyond the notes' settings of its experiment: overrides that change the
        results, and an experiment file of the user's own."""
        changed = [override for override in self.overrides if _key(override) not in SAME_SETTINGS]
        return changed + [f"--config-dir {folder}" for folder in self.config_dirs]

    @property
    def notes_settings(self) -> bool:
        return self.experiment is not None and not self.departures


def _key(override: str) -> str:
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split(".", 1)[0] if key.startswith("logger.") else key


def read_sweep(folder: Path) -> Sweep | None:
    """How the sweep in `folder` was run; None where it is no sweep runner can account for (no
    multirun.yaml: a single run, or files put there by hand)."""
    from omegaconf import OmegaConf

    saved = folder / SWEEP_CONFIG
    if not saved.is_file() or not find_runs(folder):
        return None
    config = OmegaConf.load(saved)
    task = OmegaConf.select(config, "hydra.overrides.task", default=[])
    overrides = [str(override) for override in OmegaConf.to_container(task, resolve=False)]
    sources = OmegaConf.select(config, "hydra.runtime.config_sources", default=[]) or []
    config_dirs = [str(source.path) for source in sources if source.provider == "command-line"]
    experiment = OmegaConf.select(config, "hydra.runtime.choices.experiment", default=None)
    return Sweep(
        folder=folder,
        experiment=None if experiment in (None, "null") else str(experiment),
        overrides=overrides,
        config_dirs=config_dirs,
        finished=max(path.stat().st_mtime for path in folder.glob(f"**/{METRICS_FILE}")),
    )


def find_sweeps(root: Path) -> tuple[dict[str, Sweep], list[Sweep], list[Path]]:
    """Under `root` (results/<name>/<sweep>/): the sweep each experiment's section shows (the one
    `reproduce` wrote with the notes' settings, else the newest with them, else the newest), the
    other sweeps (of no experiment, or not shown), and folders with runs that are no sweep."""
    sweeps: list[Sweep] = []
    unknown: list[Path] = []
    for name_dir in sorted(path for path in root.iterdir() if path.is_dir() and path.name != REPORT_DIR):
        for folder in sorted(path for path in name_dir.iterdir() if path.is_dir()):
            sweep = read_sweep(folder)
            if sweep is not None:
                sweeps.append(sweep)
            elif find_runs(folder):
                unknown.append(folder)
    shown: dict[str, Sweep] = {}
    for sweep in sweeps:
        if sweep.experiment is None:
            continue
        best = shown.get(sweep.experiment)
        if best is None or _preference(sweep) > _preference(best):
            shown[sweep.experiment] = sweep
    others = [sweep for sweep in sweeps if sweep not in shown.values()]
    return dict(sorted(shown.items())), others, unknown


def _preference(sweep: Sweep) -> tuple[bool, bool, float]:
    return sweep.notes_settings, sweep.folder.name == REPRODUCE_DIR, sweep.finished


@dataclass
class Experiment:
    """One experiment's sweep, loaded: its runs (one row per variant and seed) with the derived
    columns the report needs, and its variant table."""

    name: str
    sweep: Sweep
    title: str
    question: str
    runs: pd.DataFrame
    histories: pd.DataFrame
    table: pd.DataFrame
    target: float
    chance: float | None
    plots: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.sweep.folder

    @property
    def command(self) -> str:
        """The sweep's command, with the values of what it sweeps as its runs hold them (a resume
        may have run fewer seeds than the runs on disk)."""
        overrides = []
        for override in self.sweep.overrides:
            key = override.split("=", 1)[0]
            values = list(dict.fromkeys(self.runs[key].dropna().map(_plain))) if key in self.runs else []
            if len(values) > 1:
                override = f"{key}={_sweep_values(values)}"
            overrides.append(override)
        return Sweep(self.folder, self.sweep.experiment, overrides, self.sweep.config_dirs, 0.0).command

    @property
    def metric(self) -> str:
        return str(self.runs["metric"].iloc[0])


def _sweep_values(values: list[str]) -> str:
    """Swept values as a command line gives them: numbers in order, consecutive whole numbers
    (seeds) as Hydra's range(start,stop)."""
    try:
        numbers = sorted(values, key=float)
    except ValueError:
        return ",".join(values)
    if len(numbers) > 3 and all(value.lstrip("-").isdigit() for value in numbers):
        whole = [int(value) for value in numbers]
        if whole == list(range(whole[0], whole[-1] + 1)):
            return f"range({whole[0]},{whole[-1] + 1})"
    return ",".join(numbers)


def _plain(value) -> str:
    """A value as it was written on the command line (a whole number without its ".0")."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def load_experiment(sweep: Sweep) -> Experiment:
    folder = sweep.folder
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
    # trainer.evaluate_train: both splits scored after training, dropout off, with the same weights.
    scored = runs.get("train_eval_accuracy", math.nan) - runs.get("val_eval_accuracy", math.nan)
    runs["clean_gap"] = pd.Series(scored, index=runs.index, dtype=float).round(6)
    experiment = Experiment(
        name=str(sweep.experiment),
        sweep=sweep,
        title=str(runs["title"].iloc[0]),
        question=experiment_question(str(sweep.experiment), sweep.config_dirs),
        runs=runs,
        histories=histories,
        table=pd.DataFrame(),
        target=target,
        chance=majority_share(folder, runs),
        plots=[folder / plot for plot in PLOTS if (folder / plot).is_file()],
    )
    experiment.table = variant_table(experiment)
    return experiment


def experiment_question(name: str, config_dirs: list[str]) -> str:
    """The question an experiment answers: the first comment line of its file (a --config-dir's
    first, as Hydra finds it)."""
    for folder in [*map(Path, config_dirs), CONFIG_DIR]:
        path = folder / "experiment" / f"{name}.yaml"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                text = line.lstrip("# ").strip()
                if line.startswith("#") and text and not text.startswith("@package"):
                    return text
            return ""
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
    from runner.config import ConfigError
    from runner.data import load_dataset

    try:
        dataset = load_dataset(json.loads(data))
    except (ConfigError, OSError, ValueError):  # a loader this folder can't import, say
        return None
    return float(pd.Series(dataset.labels).value_counts(normalize=True).max())


def variant_table(experiment: Experiment) -> pd.DataFrame:
    """One row per variant, in the sweep's ranking: accuracies as mean +- std over seeds, epochs
    to reach 90% of the best variant's best val_accuracy, and status."""
    from runner.compare import summarize_runs

    runs = experiment.runs
    seeds = int(runs.groupby("variant").size().max())
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        reached = group["epochs_to_target"].dropna()
        never = len(group) - len(reached)
        epochs = mean_std(reached, digits=1) if len(reached) else "never"
        if len(reached) and never:
            epochs += f" ({never} of {len(group)} never)"
        rows.append(
            {
                "variant": variant,
                "seeds": len(group),
                "final val_accuracy": mean_std(group["final_val_accuracy"]),
                "best val_accuracy": mean_std(group["best_val_accuracy"]),
                "final accuracy (train)": mean_std(group["final_accuracy"]),
                "epochs to 90% of best": epochs,
                "status": status_text(group["status"])
                + (f", UNFINISHED {len(group)} of {seeds} seeds" if len(group) < seeds else ""),
            }
        )
    order = summarize_runs(runs, experiment.metric)["variant"]  # the sweep's own ranking, ties included
    return pd.DataFrame(rows).set_index("variant").loc[list(order)].reset_index()


def mean_std(values: pd.Series, digits: int = 3) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def status_text(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1 and counts.index[0] == "completed":
        return "completed"
    return ", ".join(
        f"{status.upper() if status != 'completed' else status} {count}/{len(statuses)}"
        for status, count in counts.items()
    )
