"""What a sweep's job needs, imported once by the fork server its worker is forked from
(runner.processes; runner's launcher preloads this module by default): TensorFlow and Keras with
the training code, scikit-learn's data helpers, and Hydra's plugins (a job's configs refer to
their classes). Every worker would otherwise import the last two itself: 170 modules, a third
of a second of its first job.

Then the garbage collector is told to leave everything loaded so far alone (gc.freeze: the use
its documentation gives it, just before forking). Those half a million objects never become
garbage, yet each worker's collections traversed them until its first job froze them: 0.4 s of
that job, in every worker.
"""

import sklearn.datasets  # noqa: F401
import sklearn.model_selection  # noqa: F401
import sklearn.preprocessing  # noqa: F401
from hydra.core.plugins import Plugins

import runner.model  # noqa: F401  (Keras, TensorFlow)
import runner.telemetry  # noqa: F401
from runner.train import freeze_imported_objects

Plugins.instance()  # imports every installed Hydra plugin, as unpickling a job's configs would
freeze_imported_objects()
