"""Hydra entry point: `python -m runner` trains one variant, `python -m runner -m ...` sweeps."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import runner  # noqa: F401  (pins the Keras backend before anything imports Keras)
import runner.config  # noqa: F401  (registers the variant_dir resolver)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from runner.train import run  # TensorFlow is imported only here, after validation

    return run(cfg)


if __name__ == "__main__":
    main()
