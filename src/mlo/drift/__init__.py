"""Drift detection: compare current data with a reference, column by column, and decide whether it drifted.

``mlo.drift(reference, current)`` returns a :class:`DriftReport`. The modules, one idea each:
:mod:`~mlo.drift.statistics` (the maths), :mod:`~mlo.drift.methods` (the methods and the automatic choice),
:mod:`~mlo.drift.samples` (a column's two samples), :mod:`~mlo.drift.sketches` (a reference known by its profile),
:mod:`~mlo.drift.mergeable` (mergeable sketches of chunks, partitions and windows), :mod:`~mlo.drift.sketched`
(comparing two sketches), :mod:`~mlo.drift.distributed` (sketches of Dask DataFrames),
:mod:`~mlo.drift.compare` (one column), :mod:`~mlo.drift.multivariate` (a domain classifier),
:mod:`~mlo.drift.engine` (the whole comparison) and :mod:`~mlo.drift.report` (the result).
"""

from __future__ import annotations

import inspect
import sys
import types

from .engine import drift
from .mergeable import ColumnSketch, DatasetSketch, merge_all, sketch
from .methods import METHODS, auto_method
from .report import ColumnResult, DriftReport

__all__ = [
    "METHODS",
    "ColumnResult",
    "ColumnSketch",
    "DatasetSketch",
    "DriftReport",
    "auto_method",
    "drift",
    "merge_all",
    "sketch",
]


class _CallablePackage(types.ModuleType):
    """``mlo.drift`` names both this package and the function. Importing a ``mlo.drift.*`` module first can bind
    the package to ``mlo.drift``; calling the package runs :func:`drift`, so ``mlo.drift(...)`` works whichever of
    the two the name holds."""

    def __call__(self, *args, **kwargs) -> DriftReport:
        return drift(*args, **kwargs)


_package = sys.modules[__name__]
_package.__class__ = _CallablePackage
_package.__signature__ = inspect.signature(drift)
