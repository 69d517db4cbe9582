"""The command line: the Hydra application (one variant, or `-m` to sweep), and the subcommands
`reproduce` and `report`. The app lives in an importable module (not __main__), so that launchers
that run jobs in other processes (runner's own, joblib, Ray, SLURM) pickle it by reference."""

from __future__ import annotations

import signal
import sys

import hydra
from omegaconf import DictConfig

import runner  # noqa: F401  (pins the Keras backend before anything imports Keras)
from runner.config import CONFIG_DIR, ConfigError  # also registers the resolvers
from runner.summaries import summaries_in_background


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    from runner.variant import run  # TensorFlow is imported only here, after validation

    return run(cfg)


REPRODUCE_HELP = """usage: python -m runner reproduce [OVERRIDE ...]

Run every experiment in conf/experiment/ over seeds 0 to 29, then build the report
(<results_dir>/report/index.html and report.md). Each experiment's sweep goes to
<results_dir>/<experiment>/reproduce/; variants already completed there with the same
config are skipped, so an interrupted run continues where it stopped.

Each variant's 30 seeds train together as one packed model (runner.packing), and the
report's verdicts compare variants seed by seed; 3 seeds cannot decide a comparison.

Overrides apply to every experiment, e.g. results_dir=out, trainer.seed=0,1,2
or experiment=optimizer,learning_rate (a subset).
"""


def reproduce(arguments: list[str]) -> int:
    """`python -m runner reproduce`: the notes' experiments over 30 seeds, then the report."""
    import time

    from omegaconf import OmegaConf

    from runner.report import main as report_main

    if {"-h", "--help"} & set(arguments):
        print(REPRODUCE_HELP)
        return 0
    given = {argument.split("=", 1)[0].lstrip("+~") for argument in arguments if "=" in argument}
    defaults = {
        # The notes' experiments, not the examples.
        "experiment": "experiment=glob(*,exclude=[digits_cnn,search_digits])",
        "trainer.seed": "trainer.seed=range(0,30)",
        "hydra.sweep.dir": "hydra.sweep.dir=${results_dir}/${name}/reproduce",
    }
    sweep = ["-m", *(value for key, value in defaults.items() if key not in given), *arguments]
    started = time.monotonic()
    run_command(sweep)
    results_dir = next(
        (argument.split("=", 1)[1] for argument in arguments if argument.startswith("results_dir=")),
        OmegaConf.load(CONFIG_DIR / "config.yaml").results_dir,
    )
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    print(f"\nAll sweeps done in {minutes} min {seconds} s. Building the report...", flush=True)
    return report_main([results_dir])


def run_command(arguments: list[str]) -> None:
    """Check the override keys, then hand over to Hydra, once per experiment when several are
    swept (their jobs share the launcher's worker processes)."""
    from hydra.core.global_hydra import GlobalHydra

    from runner.overrides import check_composition, check_override_keys, swept_experiments
    from runner.processes import collect_sweeps, queued_sweeps, start_fork_server_early
    from runner.progress import announce

    try:
        check_override_keys(arguments)
        sweep = swept_experiments(arguments)
        if not {"--help", "-h", "--hydra-help", "--shell-completion", "-sc", "--info", "-i"} & set(arguments):
            composed = check_composition(arguments)
            if not {"-m", "--multirun", "--cfg", "-c"} & set(arguments):
                check_run(composed)
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        sys.exit(2)
    start_fork_server_early(arguments)
    with summaries_in_background():
        if sweep is None:
            sys.argv = [sys.argv[0], *arguments]
            train_app()
            return
        index, names = sweep
        with queued_sweeps():  # with runner's parallel launcher, every sweep is checked and queued at once
            for number, name in enumerate(names, start=1):
                announce(f"=== Experiment {number}/{len(names)}: {name} ===")
                sys.argv = [sys.argv[0], *arguments[:index], f"experiment={name}", *arguments[index + 1 :]]
                GlobalHydra.instance().clear()
                train_app()
                collect_sweeps(wait=False)  # rankings of the sweeps done meanwhile


def check_run(config: DictConfig) -> None:
    """Validate a single run's settings and data before Hydra runs it, as a sweep's pre-flight
    check does for each of its jobs."""
    from hydra.core.hydra_config import HydraConfig

    from runner.config import check_settings, check_width_used
    from runner.data import check_data
    from runner.preflight import check_build, check_targets

    HydraConfig.instance().set_config(config)  # labels may read ${hydra:runtime.choices...}
    settings = check_settings(config)
    given = {str(line).split("=", 1)[0].lstrip("+~") for line in config.hydra.overrides.task}
    check_width_used(given, settings["model"])
    swept = ", ".join(config.hydra.sweeper.get("params") or {})
    if swept:
        experiment = config.hydra.runtime.choices.get("experiment")
        print(f"experiment={experiment} sweeps {swept}: this trains one variant; add -m to run the sweep.")
    if settings.get("resume") is not None:
        experiment = config.hydra.runtime.choices.get("experiment") or "optimizer"
        raise ConfigError(
            f"resume={settings['resume']} continues a sweep, and this command runs a single variant: add -m to the "
            f"sweep's command, e.g. `python -m runner -m experiment={experiment} resume={settings['resume']}`."
        )
    check_targets(settings)
    check_build(settings, check_data(settings))


def release_workers() -> None:
    """Stop the parallel launchers' worker processes as soon as the command is done (also after
    a mistake in the sweep). Hydra's joblib launcher leaves its loky workers idle for 5 minutes,
    holding the command's output open."""
    from runner.processes import stop_workers, used_joblib

    stop_workers()
    if used_joblib():
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor(reuse=True).shutdown(wait=True, kill_workers=True)


def main() -> None:
    """The `runner` command: a training run or sweep (Hydra's command line), or one of the
    subcommands `reproduce` (every experiment, 30 seeds, then the report) and `report`
    (the report from results on disk, without TensorFlow)."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["report"]:
        from runner.report import main as report_main

        sys.exit(report_main(arguments[1:]))
    try:
        if arguments[:1] == ["reproduce"]:
            sys.exit(reproduce(arguments[1:]))
        run_command(arguments)
    finally:
        release_workers()  # also after a mistake in the sweep: its workers were started early


def cli() -> None:
    """`runner` and `python -m runner`: main(), with Ctrl-C answered by what was kept and how to
    go on, without a traceback. Once every exit handler has run, the process ends without tearing
    its modules down (with TensorFlow loaded, most of a second)."""
    import atexit

    outcome = {"code": 1}  # unless main() ends otherwise: an error escaped it
    atexit.register(_end, outcome)  # registered first, so run last
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
        outcome["code"] = 0
    except SystemExit as exit:
        outcome["code"] = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        raise
    except KeyboardInterrupt:
        word = "Terminated" if _stopped_by[0] == signal.SIGTERM else "Interrupted"
        print(
            f"\n{word}. The variants that finished are saved in their sweep folders; run the same "
            "command with resume=latest to skip them and train the rest.",
            file=sys.stderr,
        )
        outcome["code"] = 128 + _stopped_by[0]
        sys.exit(outcome["code"])


_stopped_by = [signal.SIGINT]  # the signal that stopped the command: SIGINT (Ctrl-C) or SIGTERM


def _interrupt(signum, frame) -> None:
    """Ctrl-C, or SIGTERM (kill, a scheduler's time limit): noted for the threads that wait for
    jobs, the job workers ended (Ctrl-C reaches them itself, a kill of this process does not),
    then Python's KeyboardInterrupt."""
    from runner.processes import end_job_workers, interrupted

    _stopped_by[0] = signum
    interrupted.set()
    end_job_workers()
    raise KeyboardInterrupt


def _end(outcome: dict[str, int]) -> None:
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(outcome["code"])
