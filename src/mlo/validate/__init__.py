"""Validation: checks over one model's shared predictions, kept as evidence for a model version.

``from mlo import checks``; ``rep = mlo.validate(model, X, y, checks=[...], model_version=mv)``. See
docs/validation.md.
"""

from __future__ import annotations

import inspect
import sys
import types

from . import checks
from .context import Context
from .metrics import Metric, resolve_metric
from .report import CheckResult, ValidationReport
from .suite import validate

__all__ = ["CheckResult", "Context", "Metric", "ValidationReport", "checks", "resolve_metric", "validate"]


class _CallablePackage(types.ModuleType):
    """``mlo.validate`` names both this package and the function. Importing any ``mlo.validate.*`` module binds
    the package to ``mlo.validate``; calling the package runs :func:`validate`, so ``mlo.validate(...)`` works
    whichever of the two the name holds."""

    def __call__(self, *args, **kwargs) -> ValidationReport:
        return validate(*args, **kwargs)


_package = sys.modules[__name__]
_package.__class__ = _CallablePackage
_package.__signature__ = inspect.signature(validate)
