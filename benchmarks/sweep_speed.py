"""runner against plain Keras, as whole processes, imports included, measured side by side.

    python benchmarks/sweep_speed.py [--rounds 3] [--no-single | --only-single]

Each round runs, in alternating order:
- the notes' hand-written loop (benchmarks/reference_loop.py) over the 11 variants of the
  normalization, optimizer and learning_rate sweeps (10 epochs, batch 16, Iris, 80/20 split);
- runner's three sweeps in one command, in parallel (the default) and sequentially in one process
  (hydra/launcher=basic), and as three commands one after another, as a user types them: the first
  with no warm server running (it starts one, as the first command after a pause does), and all
  three with one running (runner.warm; every other case starts with none);
- one compute-bound run, runner's single run against the same network in a plain model.fit
  (benchmarks/plain_fit.py): synthetic data 40,000 x 64, three hidden layers of 512, 5 epochs,
  batch 64, telemetry on.

It prints the median of each round's ratio to its reference in the same round (targets: parallel
<= 0.5, sequential <= 0.7, separate commands <= 0.75, the single run <= 1.05), the CPU time of
every process a command started (also those that outlive it), and how long `--help` and
`--cfg job` take and whether they import TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = [sys.executable, "-m", "runner"]
SWEEPS = ["normalization", "optimizer", "learning_rate"]
SINGLE = ["data=synthetic", "data.n_samples=50000", "data.n_features=64", "model.hidden_nodes=[512,512,512]",
          "trainer.epochs=5", "trainer.batch_size=64"]  # fmt: skip
# name: (commands, the reference it is measured against, target ratio); each starts with no warm
# server running, except those in WARM, which start with the one the case before them left.
WARM = {"runner 3 commands, warm"}  # it runs right after "runner 3 commands"
CASES = {
    "reference loop": (lambda out: [[sys.executable, str(HERE / "reference_loop.py"), str(out)]], None, None),
    "runner parallel": (lambda out: [[*RUNNER, "-m", f"experiment={','.join(SWEEPS)}", f"results_dir={out}"]],
                        "reference loop", 0.5),
    "runner sequential": (
        lambda out: [[*RUNNER, "-m", f"experiment={','.join(SWEEPS)}", "hydra/launcher=basic", f"results_dir={out}"]],
        "reference loop", 0.7),
    "runner 3 commands": (lambda out: [[*RUNNER, "-m", f"experiment={name}", f"results_dir={out}"] for name in SWEEPS],
                          "reference loop", 0.75),
    "runner 3 commands, warm": (
        lambda out: [[*RUNNER, "-m", f"experiment={name}", f"results_dir={out}"] for name in SWEEPS],
        "reference loop", 0.75),
    "plain model.fit": (lambda out: [[sys.executable, str(HERE / "plain_fit.py")]], None, None),
    "runner single run": (lambda out: [[*RUNNER, *SINGLE, f"hydra.run.dir={out}"]], "plain model.fit", 1.05),
}  # fmt: skip


def measured(commands: list[list[str]], cwd: Path, keep_server: bool = False) -> tuple[float, float]:
    """Wall-clock seconds until the last command exits, and CPU seconds (user + system) of them and
    of every process they started, including those that outlive them: this process adopts them (a
    child subreaper) and waits for them all; the warm server they left too, stopped first, unless
    `keep_server` (the next case uses it, and its CPU time is counted there)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    if not keep_server:
        stop_warm_servers()
    while True:
        try:
            if os.waitpid(-1, 0 if not keep_server else os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def adopt_orphans() -> None:
    """Make this process the child subreaper (Linux), so that processes the measured commands
    start and that outlive them become its children and their CPU time is counted."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError) as error:
        print(f"note: CPU time may miss processes that outlive a command (no subreaper: {error})")


def stop_warm_servers() -> None:
    """Stop the warm servers the measured commands left (in this benchmark's own TMPDIR) and wait
    until they have ended."""
    from runner.warm import Server

    for path in Path(os.environ["TMPDIR"]).glob("runner-warm-*/*.sock"):
        pid = int(path.with_suffix(".pid").read_text())
        try:
            Server(path).ask("stop", {})
        except (OSError, EOFError):
            continue
        while running(pid):
            time.sleep(0.05)


def running(pid: int) -> bool:
    """Whether `pid` runs (not ended, nor ended and waiting to be reaped)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return False


def imports_tensorflow(arguments: list[str], cwd: Path) -> bool:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", *arguments], cwd=cwd,
                          capture_output=True, text=True)  # fmt: skip
    return any(line.rstrip().endswith(("| tensorflow", "| keras")) for line in done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-single", action="store_true", help="leave out the compute-bound single run")
    parser.add_argument("--only-single", action="store_true", help="only the compute-bound single run")
    args = parser.parse_args()
    adopt_orphans()
    single = {"plain model.fit", "runner single run"}
    cases = {
        name: case
        for name, case in CASES.items()
        if not (args.no_single and name in single) and not (args.only_single and name not in single)
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "tmp").mkdir()
        os.environ["TMPDIR"] = str(scratch / "tmp")  # the commands' warm servers: this benchmark's own
        for round_number in range(args.rounds):
            names = list(cases) if round_number % 2 == 0 else list(reversed(cases))
            if "runner 3 commands, warm" in names:  # right after the case whose server it uses
                names.remove("runner 3 commands, warm")
                names.insert(names.index("runner 3 commands") + 1, "runner 3 commands, warm")
            for position, name in enumerate(names):
                keep = position + 1 < len(names) and names[position + 1] in WARM
                out = scratch / f"{name.replace(' ', '-').replace(',', '')}-{round_number}"
                wall, used = measured(cases[name][0](out), cwd=scratch, keep_server=keep)
                seconds[name].append(wall)
                cpu[name].append(used)
            print(f"round {round_number + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.1f} s" for n in cases), flush=True)

        cores = os.cpu_count() or 1
        print(f"\ncores: {cores}, rounds: {args.rounds}, medians:")
        for name, (_, reference, target) in cases.items():
            median, used = statistics.median(seconds[name]), statistics.median(cpu[name])
            line = f"  {name:18s} {median:6.1f} s   CPU {used:5.1f} s"
            if reference is not None:
                # Each round's time over its reference's in the same round: measured side by side.
                ratios = [value / base for value, base in zip(seconds[name], seconds[reference], strict=True)]
                verdict = "meets" if statistics.median(ratios) <= target else "misses"
                line += (
                    f"   ratio to {reference} {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-"
                    f"{max(ratios):.2f}; target <= {target}: {verdict})"
                )
            print(line)

        stop_warm_servers()
        print("\nstart-up without training:")
        for arguments in (["--help"], ["--cfg", "job"]):
            median = statistics.median(measured([[*RUNNER, *arguments]], scratch)[0] for _ in range(3))
            imported = "imports TensorFlow" if imports_tensorflow(arguments, scratch) else "no TensorFlow"
            print(f"  python -m runner {' '.join(arguments):10s} {median:.2f} s ({imported}; target < 2 s)")


if __name__ == "__main__":
    main()
