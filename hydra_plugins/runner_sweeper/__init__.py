"""runner's grid sweeper, a Hydra plugin (Hydra finds sweepers in the hydra_plugins namespace)."""
