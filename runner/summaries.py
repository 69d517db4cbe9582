"""A finished sweep's ranking, tables and plots: shown at once, and written in the background
while the command's next sweep trains."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.compare import SweepSummary


def summarize(
    folder: Path, background: BackgroundSummaries | None = None, then: Callable[[], None] | None = None
) -> None:
    """Show the sweep's ranking and write its tables and plots, in `background` where given;
    then call `then` (which reads those files)."""
    from runner.compare import CompareError, current_summary, print_ranking, print_summary, rank_sweep, summarize_sweep

    try:
        result = current_summary(folder)
        if result is None and background is not None:
            ranked = rank_sweep(folder)
            print_ranking(ranked)
            _note_failures(ranked)
            background.submit(ranked, then)
            return
        result = result or summarize_sweep(folder)
    except CompareError:
        return  # nothing was trained (e.g. the run stopped on a config error)
    print_summary(result)
    _note_failures(result)
    if then is not None:
        then()


_failures: list[str] = []  # the command's sweeps with failed variants: it exits with status 1


def _note_failures(result: SweepSummary) -> None:
    failed = result.summary["status"].astype(str).str.contains("failed")
    if failed.any():
        variants = ", ".join(result.summary.loc[failed, "variant"].astype(str))
        _failures.append(f"{result.folder}: {variants} (each failed run's traceback is in its error.txt)")


class BackgroundSummaries:
    """Draws sweeps' plots in two processes of their own while the next sweep trains (a sweep's
    eight plots take about a second, which the workers would otherwise wait for; the last
    sweep's, which everyone waits for, take half as long), then writes their tables."""

    def __init__(self) -> None:
        self._pool = None
        self._pending: list[tuple[SweepSummary, list[Any], Callable[[], None] | None]] = []
        self._succeeded = True

    def submit(self, ranked: SweepSummary, then: Callable[[], None] | None = None) -> None:
        """Write the plots and tables of the sweep `ranked` (compare.rank_sweep) ranks; `then`
        runs here once they are written."""
        from runner.compare import PLOT_GROUPS, draw_plots

        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            from runner import warm
            from runner.processes import command_alive, finish_at_interrupt, start_fork_server

            # Forked from the warm server or the fork server (the parallel launcher's, where it
            # runs), never from this process, which may hold TensorFlow's running threads.
            server = warm.server()
            if server is not None and server.hold():
                alive = command_alive("plots").fileno()
                self._pool = warm.WarmPool(server, len(PLOT_GROUPS), finish_at_interrupt, tuple, alive)
            else:
                context = start_fork_server(["runner.compare"])
                self._pool = ProcessPoolExecutor(
                    len(PLOT_GROUPS), context, initializer=finish_at_interrupt, initargs=(command_alive("plots"),)
                )
        self._collect(wait=False)  # earlier sweeps' tables, where their plots are done
        plots = [self._pool.submit(draw_plots, ranked.folder, group) for group in PLOT_GROUPS]
        self._pending.append((ranked, plots, then))

    def finish(self) -> bool:
        """Wait for every sweep's plots, write its tables and say where they are; False where
        one could not be written."""
        self._collect(wait=True)
        if self._pool is not None:
            self._pool.shutdown()
        self._pool = None
        return self._succeeded

    def _collect(self, wait: bool) -> None:
        """Write the tables of the sweeps whose plots are drawn (of all, waiting, where `wait`)."""
        waiting = []
        for ranked, plots, then in self._pending:
            if not wait and not all(future.done() for future in plots):
                waiting.append((ranked, plots, then))
                continue
            from runner.compare import print_files, write_tables

            folder = ranked.folder
            drawn, failure = [], None
            for future in plots:
                try:
                    drawn += future.result()
                except Exception as error:
                    failure = failure or error
            try:
                files = write_tables(ranked) + drawn
            except Exception as error:
                failure = failure or error
            if failure is not None:  # the runs are on disk; say how to rebuild the rest
                self._succeeded = False
                sys.stderr.write(
                    f"Could not write all the tables and plots of {folder}: {type(failure).__name__}: {failure}. "
                    f"Its runs are on disk; rebuild them with: python -m runner.compare {folder}\n"
                )
            else:
                print_files(folder, files)
            if then is not None:
                then()
        self._pending = waiting


_background: BackgroundSummaries | None = None


def import_ahead() -> None:
    """Import what ranking a sweep needs (pandas) in a thread, while the workers train and this
    process waits for them, rather than after the last one."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("runner.compare",), daemon=True).start()


def in_background() -> BackgroundSummaries | None:
    """The summaries being written in the background, within `summaries_in_background`."""
    return _background


@contextmanager
def summaries_in_background():
    """Within this block, a finished sweep's tables and plots are written in the background;
    leaving it waits for them (also on an interrupt: those sweeps are done) and exits with
    status 1 where one could not be written or a variant failed."""
    global _background
    _background = background = BackgroundSummaries()
    _failures.clear()
    try:
        yield
    finally:
        _background = None
        succeeded = background.finish()
    if _failures:
        sys.stderr.write(
            "Variants that failed, so the command exits with status 1:\n  " + "\n  ".join(_failures) + "\n"
        )
    if not succeeded or _failures:
        sys.exit(1)
