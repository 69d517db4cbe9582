"""A search over ranges (hydra/sweeper=search): the search space from Hydra's sweep syntax, the
Optuna study in the sweep folder, each trial's jobs and outcome, and the study's files at the
end. Runs in the command's process: no TensorFlow."""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override, Transformer
from omegaconf import DictConfig, OmegaConf

from runner.config import ConfigError, objective_mode
from runner.results import read_metrics

log = logging.getLogger(__name__)

STUDY_FILE = "study.db"
TRIALS_FILE = "trials.csv"
# Statuses of trials an earlier command left running: neither counts in the budget.
INTERRUPTED = "interrupted"  # stopped while its jobs trained: queued again with its values
NOT_STARTED = "not started"  # stopped while Optuna chose its values: no job ran
BEST_FILE = "best.yaml"
SETTINGS = {"sampler", "pruner", "n_trials", "max_epochs", "seeds", "n_jobs", "study_name", "trial"}


def storage_url(sweep_dir: Path | str) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


def open_storage(sweep_dir: Path | str):
    """The study's SQLite storage; a writer waits for another's lock rather than failing. A new one
    is made under another name and then linked in, so that a reader (optuna-dashboard) opening it
    meanwhile never finds it half made: both would stamp its schema version, and one would fail."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_file = Path(sweep_dir).resolve() / STUDY_FILE
    if not study_file.exists():
        partial = study_file.with_name(f".{STUDY_FILE}.{os.getpid()}")
        optuna.storages.RDBStorage(f"sqlite:///{partial}").engine.dispose()
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.link(partial, study_file)
        partial.unlink()
    return optuna.storages.RDBStorage(storage_url(sweep_dir), engine_kwargs={"connect_args": {"timeout": 60}})


@dataclass
class Param:
    """One searched key: its Optuna distribution, and each choice's text on the command line."""

    key: str
    distribution: Any
    texts: dict[Any, str] = field(default_factory=dict)

    def override(self, value: Any) -> str:
        if value in self.texts:
            return f"{self.key}={self.texts[value]}"
        return f"{self.key}={value!r}" if isinstance(value, float) else f"{self.key}={value}"


@dataclass
class Plan:
    """What a search runs: its space, the overrides every trial shares, its budget and objective."""

    params: dict[str, Param]
    fixed: list[str]
    settings: dict[str, Any]
    metric: str
    direction: str
    seed: int

    @property
    def distributions(self) -> dict[str, Any]:
        return {key: param.distribution for key, param in self.params.items()}

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.settings["seeds"]))

    def jobs(self, number: int, values: dict[str, Any]) -> list[list[str]]:
        """The overrides of trial `number`'s jobs: one per seed, each in a folder of its own."""
        chosen = [self.params[key].override(value) for key, value in values.items()]
        jobs = []
        for seed in self.seeds:
            folder = f"trial-{number:04d}" + (f"-seed{seed}" if len(self.seeds) > 1 else "")
            # Named after the trial in tables and plots; trials.csv gives its values.
            identity = [f"label='Trial {number}'", f"search.trial={number}", f"hydra.sweep.subdir={folder}"]
            jobs.append([*self.fixed, *chosen, f"trainer.seed={seed}", *identity])
        return jobs


def probe_jobs(plan: Plan) -> list[list[str]]:
    """Jobs the pre-flight check composes for a search: every choice and both ends of every
    interval appear in one of them."""
    from optuna.distributions import CategoricalDistribution

    candidates = {}
    for key, param in plan.params.items():
        distribution = param.distribution
        if isinstance(distribution, CategoricalDistribution):
            candidates[key] = list(distribution.choices)
        else:
            candidates[key] = [distribution.low, distribution.high]
    count = max(len(values) for values in candidates.values())
    return [
        [*plan.fixed, *(plan.params[key].override(values[index % len(values)]) for key, values in candidates.items()),
         f"trainer.seed={plan.seed}"]
        for index in range(count)
    ]  # fmt: skip


def distribution_of(override: Override) -> Param:
    """The Optuna distribution a sweep override describes: interval (tag log for a log scale,
    int for integers), range (integers, or its values), choice or a list of values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element().lstrip("+~")
    value = override.value()
    if override.is_interval_sweep():
        low, high, tags = value.start, value.end, set(value.tags)
        if not low < high:
            raise ConfigError(
                f"{override.input_line}: an interval's start must be below its end, e.g. '{key}=interval(0.0001,0.1)'."
            )
        if "log" in tags and low <= 0:
            raise ConfigError(
                f"{override.input_line}: a log-scale interval must start above 0, e.g. "
                f"'{key}=tag(log,interval(0.0001,0.1))'."
            )
        if "int" in tags:
            if low != int(low) or high != int(high):
                raise ConfigError(
                    f"{override.input_line}: a whole-number interval needs whole-number ends, e.g. "
                    f"'{key}=tag(int,interval(2,8))'."
                )
            return Param(key, IntDistribution(int(low), int(high), log="log" in tags))
        return Param(key, FloatDistribution(float(low), float(high), log="log" in tags))
    values = list(override.sweep_iterator())
    texts = list(override.sweep_iterator(transformer=Transformer.encode))
    integers = override.is_range_sweep() and all(isinstance(v, int) for v in (value.start, value.stop, value.step))
    if integers and value.step > 0 and values:
        return Param(key, IntDistribution(values[0], values[-1], step=value.step))
    if not values:
        raise ConfigError(f"{override.input_line} has no value to try: give at least one, e.g. '{key}=choice(a,b)'.")
    scalar = [v if isinstance(v, (bool, int, float, str)) else text for v, text in zip(values, texts, strict=True)]
    return Param(key, CategoricalDistribution(list(dict.fromkeys(scalar))), dict(zip(scalar, texts, strict=True)))


def plan_search(config: DictConfig, overrides: Sequence[Override]) -> Plan:
    """The search a command describes, its settings checked; ConfigError names a mistake."""
    settings = check_settings(config)
    params: dict[str, Param] = {}
    fixed: list[str] = []
    for override in overrides:
        key = override.get_key_element().lstrip("+~")
        if key == "trainer.seed" and override.is_sweep_override():
            raise ConfigError(
                f"{override.input_line}: a search sets each trial's seeds itself; give search.seeds=3 for three "
                "seeds per trial (their mean is optimized), and trainer.seed=N for the first."
            )
        if override.is_sweep_override():
            params[key] = distribution_of(override)
        elif key not in ("trainer.seed", "search.trial") and not key.startswith("hydra.sweep.subdir"):
            fixed = [line for line in fixed if line.split("=", 1)[0].lstrip("+~") != key]
            fixed.append(override.input_line)
    if not params:
        raise ConfigError(
            "The search has nothing to search: give at least one range or choice, e.g. "
            "'optimizer.learning_rate=tag(log,interval(1e-4,1e-1))' or 'model.hidden_activation=choice(relu,tanh)'."
        )
    objective = OmegaConf.to_container(config.objective, resolve=True) if "objective" in config else {}
    metric = objective.get("metric", "val_accuracy")
    mode = objective_mode(metric, objective.get("mode", "auto"))
    plan = Plan(params, fixed, settings, metric, "maximize" if mode == "max" else "minimize", int(config.trainer.seed))
    build_sampler(plan)
    build_pruner(settings)
    return plan


def check_settings(config: DictConfig) -> dict[str, Any]:
    """The `search` node, resolved and checked."""
    search = OmegaConf.to_container(config.search, resolve=True)
    unknown = sorted(set(search) - SETTINGS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(SETTINGS), n=1)
        hint = f"Did you mean search.{close[0]}? " if close else ""
        raise ConfigError(f"Unknown setting search.{unknown[0]}. {hint}Valid keys: {', '.join(sorted(SETTINGS))}.")
    for key, example in (("n_trials", 40), ("seeds", 3), ("max_epochs", 600), ("n_jobs", 2)):
        value = search.get(key)
        if value is None and key in ("max_epochs", "n_jobs"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"Invalid search.{key}={value!r}: it must be a whole number of at least 1, e.g. search.{key}={example}."
            )
    for key in ("sampler", "pruner"):
        node = search.get(key)
        if not isinstance(node, dict) or not node.get("_target_"):
            raise ConfigError(
                f"search.{key} names no {key}: choose a preset, e.g. search/{key}="
                f"{'tpe' if key == 'sampler' else 'median'}, or give search.{key}._target_."
            )
    return search


def _instantiate(node: dict[str, Any], what: str, **extra: Any) -> Any:
    from hydra.utils import instantiate

    try:
        return instantiate(node, **extra)
    except Exception as error:
        cause = error.__cause__ or error
        raise ConfigError(
            f"search.{what} ({node['_target_']}) could not be made: {type(cause).__name__}: {cause}. Choose a "
            f"preset (search/{what}=...) or fix its settings."
        ) from None


def grid_space(plan: Plan) -> dict[str, list[Any]] | None:
    """For search/sampler=grid, the values of each key (a grid searches no interval); else None."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if not plan.settings["sampler"]["_target_"].endswith("GridSampler"):
        return None
    space = {}
    for key, param in plan.params.items():
        distribution = param.distribution
        if isinstance(distribution, CategoricalDistribution):
            space[key] = list(distribution.choices)
        elif isinstance(distribution, IntDistribution) and not distribution.log:
            space[key] = list(range(distribution.low, distribution.high + 1, distribution.step))
        else:
            raise ConfigError(
                f"search/sampler=grid tries lists of values, and {key} is an interval: give its values, e.g. "
                f"'{key}=choice(0.001,0.01,0.1)', or choose another sampler (tpe, random, qmc)."
            )
    return space


def build_sampler(plan: Plan, trials: int = 0):
    """The study's sampler, its seed moved on by the `trials` a resumed study has (the same seed
    would propose the same values again). A grid's points are queued in the study instead
    (grid_points): Optuna's GridSampler stops a study only inside `optimize`, which no sweeper calls."""
    node = dict(plan.settings["sampler"])
    if grid_space(plan) is not None:
        node = {"_target_": "optuna.samplers.RandomSampler", "seed": node.get("seed")}
    if trials and node.get("seed") is not None:
        node["seed"] = int(node["seed"]) + trials
    return _instantiate(node, "sampler")


def grid_points(plan: Plan) -> list[dict[str, Any]]:
    """Every point of a grid search, in an order shuffled by the sampler's seed."""
    import itertools
    import random

    space = grid_space(plan) or {}
    points = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    random.Random(plan.settings["sampler"].get("seed")).shuffle(points)
    return points


def build_pruner(settings: dict[str, Any]):
    return _instantiate(dict(settings["pruner"]), "pruner")


def trial_budget(plan: Plan) -> int:
    """Trials to run: search.n_trials, or the grid's size where that is smaller."""
    space = grid_space(plan)
    size = math.prod(len(values) for values in space.values()) if space is not None else None
    return min(plan.settings["n_trials"], size) if size else plan.settings["n_trials"]


def space_text(plan: Plan) -> dict[str, str]:
    from optuna.distributions import distribution_to_json

    return {key: json.loads(distribution_to_json(param.distribution)) for key, param in plan.params.items()}


def check_resumed(plan: Plan, sweep_dir: Path) -> None:
    """A study continued in `sweep_dir` must search the same space for the same objective and
    seeds: say what changed, and refuse."""
    import optuna

    if not (sweep_dir / STUDY_FILE).is_file():
        return
    storage = open_storage(sweep_dir)
    name = plan.settings["study_name"]
    if name not in optuna.get_all_study_names(storage):
        return
    earlier = optuna.load_study(study_name=name, storage=storage).user_attrs
    now = {"space": space_text(plan), "metric": plan.metric, "direction": plan.direction, "seeds": plan.seeds}
    changed = []
    for key in sorted(set(earlier.get("space", {})) | set(now["space"])):
        before, after = earlier.get("space", {}).get(key), now["space"].get(key)
        if before != after:
            changed.append(f"{key}: {_described(before)} then, {_described(after)} now")
    changed += [f"{key}: {earlier.get(key)} then, {now[key]} now" for key in ("metric", "direction", "seeds")
                if key in earlier and earlier[key] != now[key]]  # fmt: skip
    if changed:
        raise ConfigError(
            f"The study in {sweep_dir / STUDY_FILE} searched another space or objective ({'; '.join(changed)}): "
            "its trials would not compare with this command's. Run the command it ran to continue it, or drop "
            "resume= to start a new study."
        )


def _described(distribution: dict[str, Any] | None) -> str:
    if distribution is None:
        return "not searched"
    attributes = distribution.get("attributes", {})
    if "choices" in attributes:
        return f"choice({','.join(map(str, attributes['choices']))})"
    scale = "log " if attributes.get("log") else ""
    return f"{scale}interval({attributes.get('low')},{attributes.get('high')})"


class Study:
    """The search's Optuna study in its sweep folder, shared by the sweeper's threads: the next
    trial within the budget, and each trial's outcome read from its jobs' files."""

    def __init__(self, plan: Plan, sweep_dir: Path) -> None:
        import threading

        import optuna

        self.plan, self.sweep_dir = plan, Path(sweep_dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.sweep_dir)
        name = plan.settings["study_name"]
        trials = 0
        if name in optuna.get_all_study_names(self.storage):
            trials = self.storage.get_n_trials(self.storage.get_study_id_from_name(name))
        self.study = optuna.create_study(
            storage=self.storage,
            study_name=name,
            direction=plan.direction,
            sampler=build_sampler(plan, trials),
            pruner=build_pruner(plan.settings),
            load_if_exists=True,
        )
        self.lock = threading.Lock()
        self.budget = trial_budget(plan)
        self.running = 0
        if "space" not in self.study.user_attrs:
            facts = {"space": space_text(plan), "metric": plan.metric, "direction": plan.direction, "seeds": plan.seeds}
            for key, value in facts.items():
                self.study.set_user_attr(key, value)
            for point in grid_points(plan):
                self.study.enqueue_trial(point, user_attrs={"queued": point})
        self.recover()

    def folders(self, number: int, params: dict[str, Any]) -> list[Path]:
        return [self.sweep_dir / job[-1].split("=", 1)[1] for job in self.plan.jobs(number, params)]

    def recover(self) -> None:
        """Trials that were running when an earlier command stopped: concluded from their files
        where every seed finished, else marked failed and queued again with the same values. A
        trial stopped while Optuna chose its values ran no job: it is marked failed, not retried,
        unless it was queued (a grid point, a retry), whose values are queued again."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            values = {**(trial.user_attrs.get("queued") or {}), **trial.params}
            if set(values) != set(self.plan.params):
                self.set_attr(trial.number, "status", NOT_STARTED)
                self.study.tell(trial.number, state=TrialState.FAIL)
                log.info("Trial %d was stopped before its values were chosen: no job of it ran.", trial.number)
                continue
            folders = self.folders(trial.number, values)
            if all(read_metrics(folder) is not None for folder in folders):
                self.conclude(trial.number, folders, [])
                continue
            self.set_attr(trial.number, "status", INTERRUPTED)
            self.study.tell(trial.number, state=TrialState.FAIL)
            self.study.enqueue_trial(values, user_attrs={"retry_of": trial.number, "queued": values})
            log.info("Trial %d was interrupted: it runs again with the same values.", trial.number)

    def counted(self) -> list[Any]:
        """The finished trials the budget counts (not those an interruption cut short)."""
        return [
            trial
            for trial in self.study.get_trials(deepcopy=False)
            if trial.state.is_finished() and trial.user_attrs.get("status") not in (INTERRUPTED, NOT_STARTED)
        ]

    def epochs(self) -> int:
        return sum(int(trial.user_attrs.get("epochs") or 0) for trial in self.counted())

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        """The next trial's number and values, or None once the budget is spent or Ctrl-C stopped
        the command."""
        from runner.processes import interrupted

        with self.lock:
            if interrupted.is_set():
                return None
            if len(self.counted()) + self.running >= self.budget:
                return None
            limit = self.plan.settings.get("max_epochs")
            if limit is not None and self.epochs() >= limit:
                return None
            trial = self.study.ask(self.plan.distributions)
            self.running += 1
            return trial.number, trial.params

    def set_attr(self, number: int, key: str, value: Any) -> None:
        """A user attribute of trial `number`, through the storage's public interface."""
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        self.storage.set_trial_user_attr(trial_id, key, value)

    def conclude(self, number: int, folders: list[Path], errors: list[str], launched: bool = False) -> str:
        """Tell the study how trial `number` ended, from its seeds' metrics.json: the mean of their
        objective values; pruned where its pack was pruned; failed where one diverged, failed or
        raised (`errors`). Returns the trial's status."""
        from optuna.trial import TrialState

        records = [read_metrics(folder) for folder in folders]
        statuses = [record["status"] if record else "failed" for record in records]
        values = [_objective(record, self.plan.metric) for record in records]
        epochs = max((int(record.get("epochs_run") or 0) for record in records if record), default=0)
        status = next((s for s in ("failed", "diverged", "pruned") if s in statuses), "completed")
        if errors or (status == "completed" and not all(math.isfinite(v) for v in values)):
            status = "failed"
        with self.lock:
            if launched:
                self.running -= 1
            for key, value in (
                ("status", status),
                ("values", [None if math.isnan(v) else v for v in values]),
                ("seeds", self.plan.seeds),
                ("epochs", epochs),
                ("folders", [folder.name for folder in folders]),
                ("seconds", sum(float(record.get("seconds") or 0) for record in records if record)),
            ):
                self.set_attr(number, key, value)
            if errors:
                self.set_attr(number, "error", errors[0][:500])
            if status == "completed":
                self.study.tell(number, sum(values) / len(values))
            elif status == "pruned":
                self.study.tell(number, state=TrialState.PRUNED)
            else:
                self.study.tell(number, state=TrialState.FAIL)
        return status


def _objective(record: dict[str, Any] | None, metric: str) -> float:
    value = (record or {}).get(f"final_{metric}")
    return float("nan") if value is None else float(value)


# The config groups whose choice best.yaml repeats (a list of callbacks is a choice too).
CHOSEN = ("data", "model", "init", "optimizer", "clipping", "trainer", "callbacks", "logger")


def write_outputs(study: Study) -> list[Path]:
    """The study's files in its sweep folder: trials.csv, the optimization history, parameter
    importances, a slice plot per parameter and experiment/best.yaml; returns those written."""
    written = [write_trials(study)]
    written += draw_plots(study)
    best = write_best(study)
    if best is not None:
        written.append(best)
    return written


def trial_rows(study: Study) -> list[dict[str, Any]]:
    rows = []
    for trial in study.study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        values = [v for v in attrs.get("values") or [] if v is not None]
        mean = sum(values) / len(values) if values else None
        spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
        row = {
            "trial": trial.number,
            "status": attrs.get("status") or trial.state.name.lower(),
            f"{study.plan.metric}": trial.value if trial.value is not None else mean,
            f"{study.plan.metric}_std": spread,
            "seed_values": ";".join("" if v is None else f"{v:.6g}" for v in attrs.get("values") or []),
            "epochs": attrs.get("epochs"),
            "seconds": round(float(attrs["seconds"]), 2) if attrs.get("seconds") is not None else None,
            **{key: trial.params.get(key) for key in study.plan.params},
            "folder": ";".join(attrs.get("folders") or []),
            "retry_of": attrs.get("retry_of"),
        }
        rows.append(row)
    return rows


def write_trials(study: Study) -> Path:
    """trials.csv: one row per trial, with every seed's value, its epochs and its folder."""
    import csv
    import io

    from runner.results import write_atomic

    rows = trial_rows(study)
    text = io.StringIO()
    columns = list(rows[0]) if rows else ["trial", "status"]
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    path = study.sweep_dir / TRIALS_FILE
    write_atomic(path, text.getvalue())
    return path


def draw_plots(study: Study) -> list[Path]:
    """Optuna's optimization history, parameter importances (PED-ANOVA) and one slice plot per
    parameter, where the study has the completed trials each needs."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as plots

    completed = study.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    drawings: list[tuple[str, Any]] = []
    if completed:
        drawings.append(("optimization_history.png", lambda: plots.plot_optimization_history(study.study)))
        for key in study.plan.params:
            name = "slice-" + key.replace("/", "_") + ".png"
            drawings.append((name, lambda key=key: plots.plot_slice(study.study, params=[key])))
    if len(completed) > 1 and len(study.plan.params) > 1:
        evaluator = PedAnovaImportanceEvaluator()  # Optuna's default: which values the best trials share
        drawings.append(
            ("param_importances.png", lambda: plots.plot_param_importances(study.study, evaluator=evaluator))
        )
    written = []
    for name, draw in drawings:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                axes = draw()
            figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
            figure.set_size_inches(7, 4.5)
            figure.tight_layout()
            figure.savefig(study.sweep_dir / name, dpi=110)
            plt.close(figure)
            written.append(study.sweep_dir / name)
        except (RuntimeError, ValueError) as error:  # e.g. importances of values that never vary
            log.warning("%s not drawn: %s", name, error)
    return written


def write_best(study: Study) -> Path | None:
    """experiment/best.yaml: the best trial's config (its first seed's), ready to train again."""
    from optuna.trial import TrialState

    from runner.results import CONFIG_FILE, write_atomic

    if not study.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.study.best_trial
    folders = best.user_attrs.get("folders") or []
    folder = study.sweep_dir / folders[0] if folders else None
    if folder is None or not (folder / CONFIG_FILE).is_file() or not (folder / ".hydra" / "hydra.yaml").is_file():
        return None
    settings = OmegaConf.load(folder / CONFIG_FILE)
    choices = OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.runtime.choices
    for key in ("search", "resume"):
        settings.pop(key, None)
    settings.name = f"{settings.name}_best"
    defaults = [f"  - override /{group}: {choices[group]}" for group in CHOSEN if choices.get(group) is not None]
    values = ", ".join(f"{key}={value}" for key, value in best.params.items())
    where = study.sweep_dir
    first, last = study.plan.seeds[0], study.plan.seeds[-1] + 1
    text = "\n".join(
        [
            "# @package _global_",
            f"# The best trial of the search in {where}: trial {best.number}, {study.plan.metric} "
            f"{best.value:.4f} (mean of {len(study.plan.seeds)} seed(s)), with {values}.",
            "# Train it again, with its first seed, then over the search's seeds",
            f"# (results in {settings.results_dir}/{settings.name}/):",
            f"#   python -m runner --config-dir {where} experiment=best",
            f"#   python -m runner -m --config-dir {where} experiment=best trainer.seed='range({first},{last})'",
            "defaults:",
            *defaults,
            "  - _self_",
            "",
            OmegaConf.to_yaml(settings),
        ]
    )
    path = study.sweep_dir / "experiment" / BEST_FILE
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, text)
    return path


def best_line(study: Study) -> str | None:
    """One line on the best trial, or None where no trial completed."""
    from optuna.trial import TrialState

    trials = study.study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        status = trial.user_attrs.get("status") or trial.state.name.lower()
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    epochs = study.epochs()
    if not study.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return f"Search: {len(trials)} trials ({summary}), {epochs} epochs; no trial completed."
    best = study.study.best_trial
    values = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in best.params.items())  # fmt: skip
    limit = study.plan.settings.get("max_epochs")
    budget = f" (search.max_epochs={limit} reached)" if limit is not None and epochs >= limit else ""
    return (
        f"Search: {len(trials)} trials ({summary}), {epochs} epochs{budget}. Best: trial {best.number}, "
        f"{study.plan.metric} {best.value:.4f} with {values}."
    )
