"""The Hydra application. It lives in an importable module (not __main__) so that launchers
which run jobs in other processes (runner's own, joblib, Ray, SLURM) pickle it by reference."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import runner  # noqa: F401  (pins the Keras backend before anything imports Keras)
from runner.callbacks import summaries_in_background
from runner.config import CONFIG_DIR, ConfigError, check_override_keys  # also registers the resolvers


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    from runner.train import run  # TensorFlow is imported only here, after validation

    return run(cfg)


def swept_experiments(arguments: list[str]) -> tuple[int, list[str]] | None:
    """Where `-m experiment=a,b` (or `experiment=glob(*)`) sweeps experiments: the argument's
    index and the experiment names. Hydra alone would run one job per experiment file and
    ignore each file's own sweep; runner runs each experiment's sweep instead."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    if not {"-m", "--multirun"} & set(arguments):
        return None
    parser = OverridesParser.create()
    available = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))
    for index, argument in enumerate(arguments):
        if not argument.startswith("experiment="):
            continue
        override = parser.parse_override(argument)
        if not override.is_sweep_override():
            return None
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            names = override.value().filter(available)
        else:
            names = list(override.sweep_string_iterator())
        unknown = [name for name in names if name not in available]
        if unknown or not names:
            raise ConfigError(
                f"Unknown experiment(s) {', '.join(map(repr, unknown)) or 'in ' + repr(argument)}. "
                f"Choose from: {', '.join(available)}."
            )
        return index, names
    return None


REPRODUCE_HELP = """usage: python -m runner reproduce [OVERRIDE ...]

Run every experiment in conf/experiment/ over seeds 0, 1 and 2, then build the report
(<results_dir>/report/index.html and report.md). Each experiment's sweep goes to
<results_dir>/<experiment>/reproduce/; variants already completed there with the same
config are skipped, so an interrupted run continues where it stopped.

Overrides apply to every experiment, e.g. results_dir=out, trainer.seed=0,1,2,3,4
or experiment=optimizer,learning_rate (a subset).
"""


def reproduce(arguments: list[str]) -> int:
    """`python -m runner reproduce`: the notes' experiments over three seeds, then the report."""
    import time

    from omegaconf import OmegaConf

    from runner.report import main as report_main

    if {"-h", "--help"} & set(arguments):
        print(REPRODUCE_HELP)
        return 0
    given = {argument.split("=", 1)[0].lstrip("+~") for argument in arguments if "=" in argument}
    defaults = {
        "experiment": "experiment=glob(*)",
        "trainer.seed": "trainer.seed=0,1,2",
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

    from runner.processes import collect_sweeps, queued_sweeps, start_fork_server_early

    try:
        check_override_keys(arguments)
        sweep = swept_experiments(arguments)
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
                print(f"\n=== Experiment {number}/{len(names)}: {name} ===", flush=True)
                sys.argv = [sys.argv[0], *arguments[:index], f"experiment={name}", *arguments[index + 1 :]]
                GlobalHydra.instance().clear()
                train_app()
                collect_sweeps(wait=False)  # rankings of the sweeps done meanwhile


def release_workers() -> None:
    """Stop the parallel launchers' worker processes as soon as the command is done (also after
    a mistake in the sweep: the fork server was started early). Hydra's joblib launcher leaves
    its workers idle until loky's timeout (5 minutes), holding the command's output open."""
    from runner.processes import stop_workers

    stop_workers()
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


def main() -> None:
    """The `runner` command: a training run or sweep (Hydra's command line), or one of the
    subcommands `reproduce` (every experiment, three seeds, then the report) and `report`
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
    """`runner` and `python -m runner`: main(), then an exit that skips the interpreter's
    teardown of the modules it loaded, once every result is written and the streams are
    flushed. With TensorFlow loaded (a sequential sweep trains in this process) that teardown
    alone takes most of a second. Exit handlers still run (logging's among them)."""
    import atexit
    import os

    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code
    except KeyboardInterrupt:
        print(
            "\nInterrupted. The variants that finished are saved in their sweep folders; run the same "
            "command with resume=latest to skip them and train the rest.",
            file=sys.stderr,
        )
        code = 130
    if not isinstance(code, int):  # None, or a message as sys.exit("...") gives it
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
