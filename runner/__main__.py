"""Hydra entry point: `python -m runner` trains one variant, `python -m runner -m ...` sweeps."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import runner  # noqa: F401  (pins the Keras backend before anything imports Keras)
from runner.config import ConfigError, check_override_keys  # also registers the variant_dir resolver


@hydra.main(version_base=None, config_path="conf", config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    from runner.train import run  # TensorFlow is imported only here, after validation

    return run(cfg)


def main() -> None:
    """The `runner` command: check the override keys, then hand over to Hydra."""
    try:
        check_override_keys(sys.argv[1:])
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        sys.exit(2)
    train_app()


if __name__ == "__main__":
    main()
