"""What a job needs, imported once by the fork server its workers come from (runner.processes),
with the garbage collector off, then frozen (gc.freeze, as its documentation advises before
forking). The fork server ends with the command, also midway through these imports; the warm
server (runner.warm) outlives it."""

import atexit
import gc
import os
import threading

from runner.warm import SERVING

gc.disable()

_parent = os.getppid()
_imported = threading.Event()


def _end_with_the_command() -> None:
    while not _imported.wait(0.05):
        if os.getppid() != _parent and not os.environ.get(SERVING):
            os._exit(0)


_watcher = threading.Thread(target=_end_with_the_command, daemon=True)
_watcher.start()

from runner import devices  # noqa: E402

with devices.quiet_stderr():
    import sklearn.datasets  # noqa: E402, F401
    import sklearn.model_selection  # noqa: E402, F401
    import sklearn.preprocessing  # noqa: E402, F401
    from hydra.core.plugins import Plugins  # noqa: E402

    import runner.fitting  # noqa: E402, F401  (Keras, TensorFlow)
    import runner.telemetry  # noqa: E402, F401

    Plugins.instance()  # imports every installed Hydra plugin, as unpickling a job's configs would

_imported.set()
_watcher.join()  # the server forks its workers single-threaded
devices.import_tensorflow()  # marks it done and freezes what is loaded
# Registered last, so run first: the server ends at once, without the teardown of TensorFlow's
# modules, a second during which it would hold the command's output open.
atexit.register(os._exit, 0)
