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

import numpy as np

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


def _with_problem(checks: Any, version: VersionRef | None, use: bool) -> list[Check]:
    """The given checks, plus those ``[problem]`` derives for what they leave unjudged (explicit checks win)."""
    from ..governance.problem import current

    problem = current() if use else None
    if problem is None or not problem.applies_to(version.name if version else None):
        return _checks(checks)
    derived = problem.checks(version.name if version else None)
    if checks is None:
        if not derived:
            return _checks(None)
        return derived
    explicit = _checks(checks)
    judged = {(c.kind, _judges(c)) for c in explicit}
    return explicit + [c for c in derived if (c.kind, _judges(c)) not in judged]


def _judges(check: Check) -> Any:
    metric = getattr(check, "metric_", None)
    if metric is not None:
        return metric.name
    return repr(getattr(check, "sensitive", None))


def _importance(model: Any, ctx: Context, chosen: list[Check]) -> dict[str, Any]:
    """Permutation importance on the rows (and on the worst slice found), as the report keeps it."""
    from .explain import explain

    y = ctx.require_y("explain=True")
    X = ctx.X if hasattr(ctx.X, "columns") else None
    try:
        out: dict[str, Any] = {"all": explain(model, ctx.X, y, method="permutation").to_dict(top=30)}
    except (
        Exception
    ) as exc:  # the checks are the verdict: an importance that cannot be computed is only noted
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if X is None:
        return out
    for check in chosen:
        worst = getattr(check, "worst_rows_", None)
        if worst is not None and worst[1].sum() >= 30:
            label, mask = worst
            try:
                part = explain(model, X[mask], np.asarray(y)[mask], method="permutation").to_dict(top=30)
            except Exception:  # e.g. one class only in the slice: the overall importance stands
                break
            out["worst_slice"] = {"slice": label, **part}
            break
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
    problem: bool = True,
    explain: bool | None = None,
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
    problem : bool
        Add the checks ``[problem]`` derives (its target, guardrails and fairness bound; see
        :mod:`mlo.problem`) for the metrics the given checks do not already judge, or run them alone when no
        checks are given. False leaves them out.
    explain : bool, optional
        Keep the permutation importance of the features in the report (on at most 2,000 rows; and on the worst
        slice a slices check found), which the model card shows. By default: when ``y`` is given and the report
        is evidence for a model version.

    Returns
    -------
    ValidationReport
        ``.passed``, ``.rows``, ``.raise_for_failures()``, ``.to_dict()``.
    """
    start = time.perf_counter()
    version = resolve_version(model_version, model)
    chosen = _with_problem(checks, version, problem)
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
    if explain or (explain is None and y is not None and version is not None and ctx.calls):
        report.importance = _importance(model, ctx, chosen)
        timing["explain_seconds"] = time.perf_counter() - start - total
    inputs = list(dict.fromkeys(node for c in chosen for node in getattr(c, "inputs_", [])))
    from .evidence import keep

    keep(report, version, store, inputs=inputs)
    return report
