"""What a sweep's job needs, imported once by the fork server its worker is forked from
(runner.processes; runner's launcher preloads this module by default): TensorFlow and Keras with
the training code, scikit-learn's data helpers, and Hydra's plugins (a job's configs refer to
their classes). Every worker would otherwise import the last two itself: 170 modules, a third
of a second of its first job.

The garbage collector stays off while they are imported, and is then told to leave everything
loaded alone (gc.freeze: what its documentation advises before forking). Its collections during
the imports cost 0.6 s of 3.3 and found next to nothing; later, those half a million objects,
which never become garbage, were traversed by each worker's collections until its first job
froze them: 0.4 s of that job, in every worker.
"""

import gc

gc.disable()  # until everything is imported and frozen (runner.train.freeze_imported_objects)

import sklearn.datasets  # noqa: E402, F401
import sklearn.model_selection  # noqa: E402, F401
import sklearn.preprocessing  # noqa: E402, F401
from hydra.core.plugins import Plugins  # noqa: E402

import runner.model  # noqa: E402, F401  (Keras, TensorFlow)
import runner.telemetry  # noqa: E402, F401
from runner.train import freeze_imported_objects  # noqa: E402

Plugins.instance()  # imports every installed Hydra plugin, as unpickling a job's configs would
freeze_imported_objects()
