"""runner's parallel launcher, a Hydra plugin (Hydra finds launchers in the hydra_plugins namespace)."""
