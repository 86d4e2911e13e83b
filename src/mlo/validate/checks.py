"""The checks of ``mlo.validate``, as small constructors: ``from mlo import checks``.

=================================  ==================================================================================
``checks.threshold(metric, …)``    a metric on all rows within bounds
``checks.no_regression(against…)`` not worse than another model (``"churn@production"``) on the same rows
``checks.slices(by, metric, …)``   no slice of a column much worse than all rows; the worst slice is reported
``checks.fairness(sensitive, …)``  demographic parity and equalized odds across the groups of a sensitive column
``checks.robustness(…)``           predictions agree after numeric noise, missing values and category swaps
``checks.data(reference, …)``      the data against the model's signature or a reference (schema, nulls, ranges,
                                   unseen categories)
``checks.rule(fn, …)``             any callable on the shared context
=================================  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound
from .base import Check, bound_of, column_label, number
from .context import Context
from .data_checks import DataCheck
from .fairness import Fairness
from .groups import group_metric as _group_metric
from .groups import make_groups
from .metrics import Metric, resolve_metric
from .report import CheckResult
from .robustness import Robustness

__all__ = [
    "Check",
    "DataCheck",
    "Fairness",
    "NoRegression",
    "Robustness",
    "Rule",
    "Slices",
    "Threshold",
    "data",
    "fairness",
    "no_regression",
    "robustness",
    "rule",
    "slices",
    "threshold",
]

MAX_SLICES_KEPT = 50


def _metric(metric: Any, kwargs: dict) -> Metric:
    response = kwargs.pop("response", None)
    gib = kwargs.pop("greater_is_better", None)
    return resolve_metric(metric, response=response, greater_is_better=gib, **kwargs)


class Threshold(Check):
    """``metric`` on all rows meets ``min``/``max`` (see :func:`threshold`)."""

    kind = "threshold"

    def __init__(self, metric, bound=None, *, min=None, max=None, name=None, **metric_kwargs):
        super().__init__(name)
        self.metric = metric
        self.metric_ = _metric(metric, dict(metric_kwargs))
        if bound is not None:
            if min is not None or max is not None:
                raise InvalidInput("threshold: give the bound once, positionally or as min=/max=")
            bound = number(bound, f"threshold {self.metric_.name} bound")
            min, max = (bound, None) if self.metric_.greater_is_better else (None, bound)
        self.min, self.max = min, max
        self.op_, self.bound_ = bound_of(min, max, f"threshold {self.metric_.name}")

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        m = self.metric_
        y = ctx.require_y(f"threshold {m.name!r}")
        value = ctx.outputs.metric(m, y)
        return [self.row(self.row_name(f"threshold.{m.name}"), value, self.op_, self.bound_, m.describe())]


class NoRegression(Check):
    """Not worse than the model ``against`` on the same rows (see :func:`no_regression`)."""

    kind = "no_regression"

    def __init__(self, against, metric, tolerance=0.0, *, if_missing="fail", name=None, **metric_kwargs):
        super().__init__(name)
        if against is None or (isinstance(against, str) and not against.strip()):
            raise InvalidInput("no_regression needs against= a model ref like 'churn@production' or a model")
        if not isinstance(against, str) and not hasattr(against, "predict"):
            raise InvalidInput(
                f"no_regression: against= must be a model ref or a model with predict(), got {against!r}"
            )
        if if_missing not in ("fail", "pass"):
            raise InvalidInput(f"no_regression: if_missing must be 'fail' or 'pass', got {if_missing!r}")
        self.against = against
        self.metric = metric
        self.tolerance = number(tolerance, "no_regression tolerance", low=0.0)
        self.if_missing = if_missing
        self.metric_ = _metric(metric, dict(metric_kwargs))

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        m = self.metric_
        y = ctx.require_y(f"no_regression {m.name!r}")
        name = self.row_name(f"no_regression.{m.name}")
        value = ctx.outputs.metric(m, y)
        op = ">=" if m.greater_is_better else "<="
        try:
            champion, label = ctx.champion(self.against)
        except NotFound as exc:
            passed = self.if_missing == "pass"
            hint = "" if passed else "; pass if_missing='pass' to accept a first version"
            return [self.row(name, value, None, None, f"nothing to compare with: {exc}{hint}", passed=passed)]
        out = ctx.outputs_of(champion, label)
        try:
            base = out.metric(m, y)
        except Exception as exc:  # the champion cannot score these rows: that is a finding, not a crash
            detail = f"{label} could not predict on these rows ({type(exc).__name__}: {exc})"
            return [self.row(name, value, None, None, detail, {"against": label}, passed=False)]
        bound = base - self.tolerance if m.greater_is_better else base + self.tolerance
        detail = f"{m.name} {value:.4g} vs {base:.4g} for {label}" + (
            f" (tolerance {self.tolerance:g})" if self.tolerance else ""
        )
        data = {
            "against": label,
            "candidate": value,
            "champion": base,
            "delta": value - base,
            "tolerance": self.tolerance,
        }
        return [self.row(name, value, op, bound, detail, data)]


class Slices(Check):
    """No slice of ``by`` much worse than all rows (see :func:`slices`)."""

    kind = "slices"

    def __init__(
        self, by, metric="accuracy", min_size=30, max_gap=0.1, *, bins=5, name=None, **metric_kwargs
    ):
        super().__init__(name)
        if by is None or (isinstance(by, (list, tuple)) and not by):
            raise InvalidInput("slices needs by= a column name, a list of names, or values per row")
        self.by = by
        self.metric = metric
        self.min_size = int(number(min_size, "slices min_size", low=1))
        self.max_gap = number(max_gap, "slices max_gap", low=0.0)
        self.bins = int(number(bins, "slices bins", low=2))
        self.metric_ = _metric(metric, dict(metric_kwargs))

    def _specs(self) -> list[Any]:
        if isinstance(self.by, (list, tuple)) and all(isinstance(b, str) for b in self.by):
            return list(self.by)
        return [self.by]

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        return [self._one(ctx, spec) for spec in self._specs()]

    def _one(self, ctx: Context, spec: Any) -> CheckResult:
        m = self.metric_
        y = ctx.require_y(f"slices by {column_label(spec)!r}")
        col = column_label(spec)
        name = self.row_name(f"slices.{col}.{m.name}", col if len(self._specs()) > 1 else None)
        values = ctx.column(spec, "slices")
        overall = ctx.outputs.metric(m, y)
        out, mm = ctx.outputs.for_metric(m)
        g = make_groups(values, bins=self.bins)
        per = _group_metric(mm, g, y, out, ctx.outputs.score_label() if mm.response == "score" else None)
        gap = (overall - per) if m.greater_is_better else (per - overall)
        eligible = (g.counts >= self.min_size) & np.isfinite(per)
        rows = [
            {"slice": label, "size": int(n), "value": float(v), "gap": float(d), "eligible": bool(e)}
            for label, n, v, d, e in zip(g.labels, g.counts, per, gap, eligible, strict=True)
        ]
        rows.sort(key=lambda r: (not r["eligible"], -(r["gap"] if np.isfinite(r["gap"]) else -np.inf)))
        data = {
            "column": col,
            "metric": m.name,
            "greater_is_better": m.greater_is_better,
            "overall": overall,
            "min_size": self.min_size,
            "n_slices": g.n_groups,
            "n_small": int((g.counts < self.min_size).sum()),
            "slices": rows[:MAX_SLICES_KEPT],
        }
        if not eligible.any():
            detail = f"no slice of {col!r} has {self.min_size}+ rows with a defined {m.name}"
            return self.row(name, None, "<=", self.max_gap, detail, data, passed=None)
        k = int(np.argmax(np.where(eligible, gap, -np.inf)))
        self.worst_rows_ = (f"{col}={g.labels[k]}", g.codes == k)  # for the importance on the worst slice
        data["worst"] = {
            "slice": g.labels[k],
            "size": int(g.counts[k]),
            "value": float(per[k]),
            "gap": float(gap[k]),
        }
        detail = f"worst {col}={g.labels[k]} (n={int(g.counts[k])}): {m.name} {per[k]:.4g} vs {overall:.4g} overall"
        return self.row(name, float(gap[k]), "<=", self.max_gap, detail, data)


class Rule(Check):
    """A custom rule: ``fn(ctx)`` returns a bool, a number (checked against min/max) or ``(value, detail)``."""

    kind = "rule"

    def __init__(self, fn: Callable[[Context], Any], *, name=None, min=None, max=None):
        if not callable(fn):
            raise InvalidInput(f"rule needs a callable fn(ctx), got {type(fn).__name__}")
        super().__init__(name)
        self.fn = fn
        label = getattr(fn, "__name__", "") or "rule"
        self.label_ = name or (label if label != "<lambda>" else "rule")
        self.min, self.max = min, max
        self.op_, self.bound_ = (
            (None, None) if min is None and max is None else bound_of(min, max, f"rule {self.label_}")
        )

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        result = self.fn(ctx)
        detail = ""
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, detail = result
        name = self.row_name(f"rule.{self.label_}")
        if isinstance(result, (bool, np.bool_)):
            if self.op_ is not None:
                raise InvalidInput(f"rule {self.label_!r} returned a bool; min=/max= apply to numbers only")
            return [self.row(name, float(result), None, None, detail, passed=bool(result))]
        if isinstance(result, (int, float, np.integer, np.floating)):
            if self.op_ is None:
                raise InvalidInput(f"rule {self.label_!r} returned a number; give min= or max= to judge it")
            return [self.row(name, float(result), self.op_, self.bound_, detail)]
        raise InvalidInput(
            f"rule {self.label_!r} returned {type(result).__name__}; return a bool, a number, or (value, detail)"
        )


# -- the namespace users call ---------------------------------------------------------------------------------
def threshold(metric, bound=None, *, min=None, max=None, name=None, **metric_kwargs) -> Threshold:
    """A metric on all rows within bounds.

    Parameters
    ----------
    metric : str or callable
        Any scikit-learn metric name (``"accuracy"``, ``"roc_auc"``, ``"mean_absolute_error"``, ``"f1_macro"``)
        or ``f(y_true, y_pred) -> float``.
    bound : float, optional
        Shorthand: at least ``bound`` for a higher-is-better metric, at most for an error or loss.
    min, max : float, optional
        Explicit bounds (both: the value must lie between them).
    **metric_kwargs
        Passed to the metric (``pos_label=``, ``average=``); ``response=`` and ``greater_is_better=`` describe a
        callable.
    """
    return Threshold(metric, bound, min=min, max=max, name=name, **metric_kwargs)


def no_regression(
    against, metric, tolerance=0.0, *, if_missing="fail", name=None, **metric_kwargs
) -> NoRegression:
    """Not worse than another model on the same rows.

    Parameters
    ----------
    against : str or model
        A registry ref (``"churn@production"``, ``"churn/2"``), loaded with ``mlo.load_model``, or a model.
    metric : str or callable
        The metric both are scored with.
    tolerance : float
        How much worse (in the metric's units) still passes.
    if_missing : {"fail", "pass"}
        What a missing ref means (no production model yet): fail (default) or pass.
    """
    return NoRegression(against, metric, tolerance, if_missing=if_missing, name=name, **metric_kwargs)


def slices(by, metric="accuracy", min_size=30, max_gap=0.1, *, bins=5, name=None, **metric_kwargs) -> Slices:
    """No slice much worse than all rows; the worst slice is reported.

    Parameters
    ----------
    by : str, list of str, or array-like
        A column of X, several columns (a row each), or values per row (a Series outside X).
        Numeric columns with more than 20 distinct values are cut into ``bins`` quantile bins.
    metric : str or callable
        The metric per slice.
    min_size : int
        Slices with fewer rows are listed but not judged.
    max_gap : float
        The largest allowed gap between all rows and the worst slice (in the metric's units).
    """
    return Slices(by, metric, min_size, max_gap, bins=bins, name=name, **metric_kwargs)


def fairness(
    sensitive,
    *,
    max_dp_difference=0.1,
    min_dp_ratio=0.8,
    max_eo_difference=0.1,
    method="between_groups",
    agg="worst_case",
    pos_label=None,
    name=None,
) -> Fairness:
    """Demographic parity and equalized odds across the groups of a sensitive column.

    Parameters
    ----------
    sensitive : str, list of str, or array-like
        The sensitive column of X (several columns: their combinations), or values per row.
    max_dp_difference : float or None
        Bound on the demographic parity difference (largest minus smallest selection rate); None skips it.
    min_dp_ratio : float or None
        Bound on the demographic parity ratio (smallest over largest selection rate); None skips it.
    max_eo_difference : float or None
        Bound on the equalized odds difference; None skips it.
    method : {"between_groups", "to_overall"}
        Compare groups with each other, or each group with all rows.
    agg : {"worst_case", "mean"}
        Equalized odds: the larger of the true- and false-positive-rate differences, or their mean.
    pos_label : optional
        The favourable outcome; by default 1 (or True, or the model's second class).
    """
    return Fairness(
        sensitive,
        max_dp_difference=max_dp_difference,
        min_dp_ratio=min_dp_ratio,
        max_eo_difference=max_eo_difference,
        method=method,
        agg=agg,
        pos_label=pos_label,
        name=name,
    )


def robustness(
    *,
    noise=0.1,
    missing=0.05,
    swap=0.05,
    min_agreement=0.95,
    columns=None,
    max_rows=100_000,
    tolerance=0.1,
    seed=0,
    name=None,
) -> Robustness:
    """Predictions stay the same under small perturbations; a row per perturbation.

    Parameters
    ----------
    noise : float or None
        Gaussian noise on numeric columns, as a fraction of each column's standard deviation.
    missing : float or None
        Share of the cells of each column set missing.
    swap : float or None
        Share of the rows of each categorical column given another observed category.
    min_agreement : float
        The smallest share of rows whose prediction must not change.
    columns : list of str, optional
        Perturb only these columns.
    max_rows : int
        Perturb a fixed-seed sample of this many rows (the unperturbed predictions are reused).
    tolerance : float
        Regression: a prediction "agrees" within ``tolerance`` × the standard deviation of the predictions.
    """
    return Robustness(
        noise=noise,
        missing=missing,
        swap=swap,
        min_agreement=min_agreement,
        columns=columns,
        max_rows=max_rows,
        tolerance=tolerance,
        seed=seed,
        name=name,
    )


def data(
    reference=None,
    *,
    columns=None,
    label=None,
    exclude=None,
    null_tolerance=0.05,
    max_out_of_range=0.01,
    max_unseen=0.01,
    name=None,
) -> DataCheck:
    """The data against the model's signature or a reference: schema, null rates, ranges, unseen categories.

    Only the model's features are checked. A reference snapshot or DataFrame usually holds more (the label, ids,
    timestamps): those are left out by what the model says it takes (the signature of the version being
    validated, else the model's ``feature_names_in_``), by the name of ``y``, and by ``label``/``exclude``.

    Parameters
    ----------
    reference : Snapshot, DataFrame, str, signature, or None
        What the data should look like: a snapshot (or its ref, loaded with ``mlo.get_snapshot``), a DataFrame,
        or None for the signature of the model version being validated.
    columns : list of str, optional
        Check only these columns.
    label, exclude : str or list of str, optional
        The label column(s) and other columns of the reference that are not model inputs.
    null_tolerance : float
        How much a column's share of missing values may exceed the reference's.
    max_out_of_range : float
        The largest share of a numeric column's rows outside the reference's [min, max].
    max_unseen : float
        The largest share of a categorical column's rows with a category the reference never had.
    """
    return DataCheck(
        reference,
        columns=columns,
        label=label,
        exclude=exclude,
        null_tolerance=null_tolerance,
        max_out_of_range=max_out_of_range,
        max_unseen=max_unseen,
        name=name,
    )


def rule(fn: Callable[[Context], Any], *, name=None, min=None, max=None) -> Rule:
    """A custom rule. ``fn(ctx)`` gets the shared :class:`~mlo.validate.context.Context` (``ctx.X``, ``ctx.y``,
    ``ctx.y_pred``, ``ctx.proba``, ``ctx.predict(X)``) and returns a bool, a number judged by ``min``/``max``, or
    ``(value, detail)``."""
    return Rule(fn, name=name, min=min, max=max)
