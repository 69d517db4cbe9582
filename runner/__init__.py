"""runner: a config-driven experiment runner for Keras.

The course-style API of the notes is importable from the top level::

    from runner import base_model_config, get_data, create_and_run_model, plot_graph

It is loaded lazily, so `import runner` (and `python -m runner.compare`) never
imports TensorFlow.
"""

import os

# Keras 3 picks its backend at import time: pin TensorFlow before anything imports it.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["base_model_config", "create_and_run_model", "get_data", "plot_accuracy", "plot_graph"]


def __getattr__(name: str):
    if name in __all__:
        from runner import course

        return getattr(course, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
