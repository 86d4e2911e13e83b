"""Production monitoring: the prediction log that servers and batch jobs write, monitoring reports per window,
and alert rules with actions.

``mlo.monitor.report(name, window="1h")`` (module :mod:`.reporting`) measures drift, quality, latency and errors
window by window; ``mlo.monitor.check()`` runs the alert rules of mlo.toml once; ``mlo.monitor.alerts()`` lists
what fired. ``mlo.monitor.log(...)`` logs batch predictions, ``mlo.monitor.label(...)`` adds outcomes that arrive later,
``mlo.monitor.read_log(name)`` reads a model's log back as a DataFrame; ``mlo.monitor.feature_skew(name)`` recomputes
served feature values offline (:mod:`.skew`). The module holding them is
:mod:`mlo.monitor.log`: ``from mlo.monitor.log import PredictionLogger`` works, but the package attribute ``log``
is the function, so ``import mlo.monitor.log as m`` gives the function too (use ``importlib.import_module``).
"""

from __future__ import annotations

from .alerts import Alert, alerts, check
from .log import PredictionLogger, compact, label, log, read_log
from .reporting import MonitorReport, report
from .skew import SkewReport, feature_skew

__all__ = [
    "Alert",
    "MonitorReport",
    "PredictionLogger",
    "SkewReport",
    "alerts",
    "check",
    "compact",
    "feature_skew",
    "label",
    "log",
    "read_log",
    "report",
]
