"""`python -m runner` and the `runner` command: train one variant, or `-m` to sweep."""

import os
import sys

from runner.devices import VERBOSE_ENV
from runner.processes import start_fork_server_early


def main() -> None:
    arguments = sys.argv[1:]
    if "--verbose" in arguments or any(argument.startswith("hydra.verbose=") for argument in arguments):
        os.environ[VERBOSE_ENV] = "1"  # TensorFlow's start-up lines are shown
        sys.argv = [sys.argv[0], *(argument for argument in arguments if argument != "--verbose")]
    # First of all: a sweep's fork server imports TensorFlow while runner and Hydra load.
    start_fork_server_early(sys.argv[1:])
    from runner.cli import cli

    cli()


if __name__ == "__main__":
    main()
