"""runner's search sweeper (hydra/sweeper=search): an Optuna study in the sweep folder, trials
pruned per epoch, resumed after a kill, and the search's mistakes refused before any training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import assert_refused

optuna = pytest.importorskip("optuna", reason="needs the optuna extra: pip install '.[optuna]'")

SEARCH = ["-m", "hydra/sweeper=search"]
LEARNING_RATE = "optimizer.learning_rate=tag(log,interval(1e-5,1e-1))"


def load(folder):
    return optuna.load_study(study_name="default", storage=f"sqlite:///{folder / 'study.db'}")


def test_a_pruned_study_keeps_every_trial_and_its_best_trains_again(cli, tmp_path):
    done = cli(
        *SEARCH, LEARNING_RATE, "search.n_trials=8", "search.seeds=2", "search.pruner.n_startup_trials=2",
        "search.pruner.n_warmup_steps=1", "trainer.epochs=6", "hydra.launcher.n_jobs=1", "hydra.sweep.dir=study",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "study"
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials["trial"]) == list(range(8))
    assert {"completed", "pruned"} <= set(trials["status"]), trials
    # The study opens with Optuna's own API (what optuna-dashboard reads) and agrees with trials.csv.
    study = load(folder)
    states = {trial.number: trial.state.name for trial in study.trials}
    for row in trials.itertuples():
        assert states[row.trial] == {"completed": "COMPLETE", "pruned": "PRUNED"}[row.status]
    # A pruned trial stopped early, both its seeds (one packed model), each with its partial history.
    pruned = trials[trials["status"] == "pruned"].iloc[0]
    assert pruned["epochs"] < 6
    for name in pruned["folder"].split(";"):
        metrics = json.loads((folder / name / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and metrics["packed"] == 2
        assert len(pd.read_csv(folder / name / "history.csv")) == pruned["epochs"] == metrics["epochs_run"]
    # Each trial's value is the mean over its seeds, every seed's value kept.
    best = trials.loc[trials[trials["status"] == "completed"]["val_accuracy"].idxmax()]
    seeds = [float(value) for value in best["seed_values"].split(";")]
    assert len(seeds) == 2 and best["val_accuracy"] == pytest.approx(sum(seeds) / 2)
    assert study.best_trial.number == best["trial"]
    summary = pd.read_csv(folder / "summary.csv")
    assert "pruned" in " ".join(summary["status"])
    for name in ("optimization_history.png", "slice-optimizer.learning_rate.png", "val_accuracy.png"):
        assert (folder / name).stat().st_size > 0
    # experiment/best.yaml trains the best trial again, alone: its first seed's result.
    assert f"Best: trial {best['trial']}" in done.stdout
    again = cli("--config-dir", str(folder), "experiment=best", "hydra.run.dir=best")
    assert again.returncode == 0, again.stderr
    first = json.loads((folder / best["folder"].split(";")[0] / "metrics.json").read_text())
    rerun = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert rerun["final_val_loss"] == pytest.approx(first["final_val_loss"], rel=1e-4)


def test_a_diverged_trial_fails_and_the_study_goes_on(cli, tmp_path):
    done = cli(
        *SEARCH, "search/sampler=grid", "search.n_trials=10", "optimizer=sgd",
        "optimizer.learning_rate=choice(0.05,1000000.0)", "trainer.epochs=3", "hydra.sweep.dir=study",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # a diverged variant is a result, not an error
    trials = pd.read_csv(tmp_path / "study" / "trials.csv").set_index("optimizer.learning_rate")
    assert len(trials) == 2  # the grid has two points, whatever n_trials says
    assert trials.loc[1e6, "status"] == "diverged" and trials.loc[0.05, "status"] == "completed"
    states = {trial.params["optimizer.learning_rate"]: trial.state.name for trial in load(tmp_path / "study").trials}
    assert states == {1e6: "FAIL", 0.05: "COMPLETE"}


def test_a_killed_search_resumes_the_same_study(tmp_path):
    command = [
        sys.executable, "-m", "runner", *SEARCH, LEARNING_RATE, "search.n_trials=6", "search/pruner=none",
        "trainer.epochs=60", "hydra.sweep.dir=study",
    ]  # fmt: skip
    folder = tmp_path / "study"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            if (folder / "study.db").is_file() and sum(t.state.name == "COMPLETE" for t in load(folder).trials) >= 2:
                break
        except Exception:  # the study is not made yet  # noqa: BLE001
            continue
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal sends it to every process of the command
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "resume=latest" in stderr
    before = {t.number: (t.state.name, t.value, t.params) for t in load(folder).trials}
    assert 2 <= sum(state == "COMPLETE" for state, _, _ in before.values()) < 6
    times = {path: path.stat().st_mtime for path in folder.glob("trial-*/metrics.json")}

    done = subprocess.run([*command, "resume=study"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = load(folder).trials
    for trial in after:  # finished trials kept as they were, and not trained again
        if trial.number in before and before[trial.number][0] == "COMPLETE":
            assert (trial.state.name, trial.value) == before[trial.number][:2]
    assert all(path.stat().st_mtime == mtime for path, mtime in times.items())
    counted = [t for t in after if t.user_attrs.get("status") not in ("interrupted", "not started")]
    assert len(counted) == 6 and all(t.state.name == "COMPLETE" for t in counted)
    retried = {t.user_attrs["retry_of"]: t.params for t in after if "retry_of" in t.user_attrs}
    interrupted = [t.number for t in after if t.user_attrs.get("status") == "interrupted"]
    assert sorted(retried) == sorted(interrupted)  # each interrupted trial ran again, with its values
    assert all(retried[number] == before[number][2] for number in interrupted)
    # One finished folder per counted trial: none lost, none trained twice.
    assert len(list(folder.glob("trial-*/metrics.json"))) == 6
    assert len(pd.read_csv(folder / "trials.csv")) == len(after)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["search/sampler=annealing", LEARNING_RATE], "Unknown search/sampler 'annealing'. Choose one of: cmaes, grid"),
        (["search/pruner=patient", LEARNING_RATE], "Unknown search/pruner 'patient'. Choose one of: hyperband, median"),
        (["trainer.epochs=3"], "The search has nothing to search: give at least one range or choice"),
        (["optimizer.learning_rate=interval(0.1)"], "Can't read the sweep 'optimizer.learning_rate=interval(0.1)'"),
        (["optimizer.learning_rate=interval(0.1,0.01)"], "an interval's start must be below its end"),
        (["optimizer.learning_rate=tag(log,interval(0,0.1))"], "a log-scale interval must start above 0"),
        (["search.n_trials=0", LEARNING_RATE], "Invalid search.n_trials=0: it must be a whole number of at least 1"),
        (["search.n_trials=-3", LEARNING_RATE], "Invalid search.n_trials=-3"),
        (["search.seeds=0", LEARNING_RATE], "Invalid search.seeds=0"),
        (["search/sampler=grid", LEARNING_RATE], "search/sampler=grid tries lists of values"),
        (["trainer.seed=range(0,3)", LEARNING_RATE], "a search sets each trial's seeds itself"),
        (["model.hidden_activation=choice(relu,bogus)"], "Invalid model.hidden_activation='bogus'"),
        (["model.width=choice(16,64)"], "model.width is set, but the network takes its layers from model.hidden_nodes"),
        (["model.width=tag(int,interval(1.5,3.5))"], "a whole-number interval needs whole-number ends"),
    ],
)
def test_a_mistaken_search_is_refused_before_training(refused_ahead, arguments, message):
    done, folder = refused_ahead(lambda params, folder: [*SEARCH, *params["arguments"]])
    assert_refused(done, message, folder)


def test_a_study_continued_with_a_larger_budget_tries_new_values(cli, tmp_path):
    common = [*SEARCH, LEARNING_RATE, "search/sampler=random", "trainer.epochs=1", "hydra.sweep.dir=study"]
    assert cli(*common, "search.n_trials=3").returncode == 0
    done = cli(*common, "search.n_trials=6", "resume=study")
    assert done.returncode == 0, done.stderr
    values = [trial.params["optimizer.learning_rate"] for trial in load(tmp_path / "study").trials]
    assert len(values) == 6 and len(set(values)) == 6  # the sampler does not start its sequence over


def test_resuming_a_study_with_another_space_is_refused(cli, tmp_path):
    first = cli(*SEARCH, LEARNING_RATE, "search.n_trials=1", "trainer.epochs=1", "hydra.sweep.dir=study")
    assert first.returncode == 0, first.stderr
    files = sorted(path.name for path in (tmp_path / "study").rglob("*"))
    done = cli(*SEARCH, "optimizer.learning_rate=interval(0.001,0.1)", "model.hidden_activation=choice(relu,tanh)",
               "search.n_trials=2", "trainer.epochs=1", "resume=study")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "searched another space or objective" in done.stderr
    assert "optimizer.learning_rate: log interval(1e-05,0.1) then, interval(0.001,0.1) now" in done.stderr
    assert "model.hidden_activation: not searched then" in done.stderr and "Traceback" not in done.stderr
    assert sorted(path.name for path in (tmp_path / "study").rglob("*")) == files  # nothing written
    assert len(load(tmp_path / "study").trials) == 1


def test_sweep_syntax_becomes_optuna_distributions():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from runner.config import ConfigError
    from runner.search import distribution_of

    parser = OverridesParser.create()

    def distribution(line):
        param = distribution_of(parser.parse_override(line))
        return param.distribution, param

    log_float, _ = distribution("a=tag(log,interval(1e-4,1e-1))")
    assert log_float == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert distribution("a=tag(int,interval(2,9))")[0] == optuna.distributions.IntDistribution(2, 9)
    assert distribution("a=range(8,40,8)")[0] == optuna.distributions.IntDistribution(8, 32, step=8)
    choices, param = distribution("model.hidden_nodes=choice([64,64],[128])")
    assert choices == optuna.distributions.CategoricalDistribution(["[64,64]", "[128]"])
    assert param.override("[64,64]") == "model.hidden_nodes=[64,64]"
    assert distribution("optimizer=choice(sgd,adam)")[1].override("adam") == "optimizer=adam"
    with pytest.raises(ConfigError, match="start must be below its end"):
        distribution("a=interval(1,1)")


def test_a_trial_stopped_while_its_values_were_chosen_is_not_retried(tmp_path):
    """A kill between Optuna's new trial and its values leaves a running trial with none (or some) of
    them: it ran no job, so it is not retried with made-up values; a queued one keeps its own."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from runner.search import Param, Plan, Study

    settings = {
        "sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": 0},
        "pruner": {"_target_": "optuna.pruners.NopPruner"},
        "n_trials": 3, "max_epochs": None, "seeds": 1, "n_jobs": None, "study_name": "default",
    }  # fmt: skip
    key = "model.hidden_activation"
    space = {key: Param(key, CategoricalDistribution(["relu", "tanh"]))}
    plan = Plan(space, [], settings, "val_accuracy", "maximize", 0)
    first = Study(plan, tmp_path)
    first.study.ask()  # a new trial, stopped before its value was chosen
    first.study.enqueue_trial({key: "tanh"}, user_attrs={"queued": {key: "tanh"}})
    first.study.ask()  # a queued trial, stopped the same way
    first.storage.engine.dispose()

    again = Study(plan, tmp_path)
    trials = again.study.get_trials(deepcopy=False)
    assert [(t.state, t.user_attrs.get("status")) for t in trials[:2]] == [
        (TrialState.FAIL, "not started"), (TrialState.FAIL, "interrupted")
    ]  # fmt: skip
    assert [(t.state, t.user_attrs.get("retry_of")) for t in trials[2:]] == [(TrialState.WAITING, 1)]
    assert again.counted() == []  # the budget is still 3 trials
    number, values = again.ask()
    assert (number, values) == (2, {key: "tanh"})
