"""`python -m runner` and the `runner` command: train one variant, or `-m` to sweep."""

import sys

from runner.processes import start_fork_server_early


def main() -> None:
    # First of all: a sweep's fork server imports TensorFlow while runner and Hydra load.
    start_fork_server_early(sys.argv[1:])
    from runner.app import cli

    cli()


if __name__ == "__main__":
    main()
