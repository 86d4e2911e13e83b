"""Production monitoring, starting with the prediction log that servers and batch jobs write.

``mlo.monitor.log(...)`` logs batch predictions, ``mlo.monitor.label(...)`` adds outcomes that arrive later,
``mlo.monitor.read_log(name)`` reads a model's log back as a DataFrame. The module holding them is
:mod:`mlo.monitor.log`: ``from mlo.monitor.log import PredictionLogger`` works, but the package attribute ``log``
is the function, so ``import mlo.monitor.log as m`` gives the function too (use ``importlib.import_module``).
"""

from __future__ import annotations

from .log import PredictionLogger, compact, label, log, read_log

__all__ = ["PredictionLogger", "compact", "label", "log", "read_log"]
