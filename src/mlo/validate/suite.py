"""``mlo.validate``: run checks over one shared context, then keep the report as evidence.

The report is stored (``ws.reports``, kind ``validation``) when it is evidence for a model version, when a run is
active, or when a workspace already exists; it is linked in the lineage graph to the model version
(``report → model``, relation ``evidence``) and to the active run (``run → report``), and the active run gets the
headline numbers as metrics (``validation.passed`` and ``validation.<check>``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput
from .base import Check
from .context import Context
from .report import CheckResult, ValidationReport


class VersionRef:
    """The model version a report is evidence for: ``name``, ``version`` and the ``signature`` when known."""

    def __init__(self, name: str, version: Any, signature: Any = None):
        self.name = str(name)
        self.version = version
        self.signature = signature

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def node(self) -> str:
        return f"model:{self.ref}"


def _from_record(mv: Any) -> VersionRef:
    return VersionRef(mv.name, mv.version, getattr(mv, "signature", None))


def resolve_version(model_version: Any, model: Any) -> VersionRef | None:
    """A :class:`VersionRef` from a ModelVersion, a ref string (``"churn/3"``, ``"churn@production"``), or the
    ``model_version`` of a handle from ``mlo.load_model``."""
    if model_version is None:
        mv = getattr(model, "model_version", None)
        return _from_record(mv) if mv is not None and hasattr(mv, "name") and hasattr(mv, "version") else None
    if isinstance(model_version, str):
        mv = getattr(model, "model_version", None)
        ref = model_version.strip()
        ref = ref[len("models:/") :] if ref.startswith("models:/") else ref
        if mv is not None and hasattr(mv, "name") and f"{mv.name}/{mv.version}" == ref:
            return _from_record(mv)
        from ..registry import get_model_version

        return _from_record(get_model_version(model_version))
    if hasattr(model_version, "name") and hasattr(model_version, "version"):
        return _from_record(model_version)
    raise InvalidInput(
        f"model_version must be a ModelVersion or a ref like 'churn/3', got {type(model_version).__name__}"
    )


def _checks(checks: Any) -> list[Check]:
    if checks is None:
        raise InvalidInput(
            "validate needs checks=[...]: from mlo import checks; e.g. checks.threshold('accuracy', 0.8), "
            "checks.slices('region'), checks.fairness('sex'), checks.robustness(), checks.data()"
        )
    if isinstance(checks, Check) or callable(checks) and not isinstance(checks, Sequence):
        checks = [checks]
    if isinstance(checks, (str, bytes)) or not isinstance(checks, (Sequence, set, tuple)):
        raise InvalidInput(f"checks must be a list of mlo checks, got {type(checks).__name__} {checks!r:.40}")
    out = []
    for c in checks:
        if isinstance(c, Check):
            out.append(c)
        elif callable(c):
            from .checks import rule

            out.append(rule(c))
        else:
            raise InvalidInput(
                f"checks must be mlo checks (checks.threshold(...), …) or callables, got {type(c).__name__}"
            )
    if not out:
        raise InvalidInput("validate got an empty checks list; give at least one check")
    return out


def _unique_names(rows: list[CheckResult]) -> None:
    seen: dict[str, int] = {}
    for r in rows:
        if r.name in seen:
            seen[r.name] += 1
            r.name = f"{r.name}#{seen[r.name]}"
        else:
            seen[r.name] = 1


def validate(
    model: Any,
    X: Any,
    y: Any = None,
    checks: Sequence[Check] | None = None,
    *,
    model_version: Any = None,
    pos_label: Any = None,
    store: bool | None = None,
) -> ValidationReport:
    """Run ``checks`` on ``model`` over ``X`` (and ``y``), sharing each model's predictions between them.

    Parameters
    ----------
    model : estimator or model handle
        Anything with ``predict`` (and ``predict_proba`` for probability metrics), or ``mlo.load_model(ref)``.
    X : DataFrame or 2-D array
        The rows to validate on.
    y : array-like, optional
        The true targets; metric, slice, regression and equalized-odds checks need them.
    checks : list
        Checks from :mod:`mlo.checks` (or callables, run as ``checks.rule``).
    model_version : ModelVersion or str, optional
        The version this report is evidence for (``"churn/3"``); defaults to the handle's version.
    pos_label : optional
        The positive class for binary metrics and fairness when the labels are not 0/1.
    store : bool, optional
        Keep the report in the workspace. By default it is kept when it is evidence for a model version, when a
        run is active or when a workspace exists.

    Returns
    -------
    ValidationReport
        ``.passed``, ``.rows``, ``.raise_for_failures()``, ``.to_dict()``.
    """
    start = time.perf_counter()
    chosen = _checks(checks)
    version = resolve_version(model_version, model)
    ctx = Context(model, X, y, pos_label=pos_label, signature=version.signature if version else None)
    rows: list[CheckResult] = []
    for check in chosen:
        rows.extend(check.evaluate(ctx))
    _unique_names(rows)
    total = time.perf_counter() - start
    predict_s = sum(c["seconds"] for c in ctx.calls)
    timing = {
        "seconds": total,
        "predict_seconds": predict_s,
        "checks_seconds": total - predict_s,
        "calls": ctx.calls,
    }
    report = ValidationReport(
        rows, model_version=version.ref if version else None, n_rows=ctx.n_rows, timing=timing
    )
    inputs = list(dict.fromkeys(node for c in chosen for node in getattr(c, "inputs_", [])))
    from .evidence import keep

    keep(report, version, store, inputs=inputs)
    return report
