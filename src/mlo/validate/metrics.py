"""Metrics by name or callable: which model output a metric reads, which way is better, how to call it.

A name is any scikit-learn metric, as a function name (``roc_auc_score``, ``mean_absolute_error``) or as a scorer
name (``roc_auc``, ``f1_macro``, ``neg_log_loss``: the ``neg_`` is dropped and the value reported as is, lower
being better), plus ``selection_rate``, ``true_positive_rate`` (``tpr``), ``false_positive_rate`` (``fpr``) and
``error_rate``. A callable ``f(y_true, y_out) -> float`` is used as given.

``response`` says what ``y_out`` is: ``label`` (``predict``), ``score`` (the positive class's probability for a
binary model, else the probability matrix; ``decision_function`` when there is no ``predict_proba``) or
``proba`` (the probability matrix).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput

RESPONSES = ("label", "score", "proba")

# name -> (sklearn function name or ``mlo:`` own function, response, greater is better, fixed keyword arguments)
_TABLE: dict[str, tuple[str, str, bool, dict]] = {
    "accuracy": ("accuracy_score", "label", True, {}),
    "balanced_accuracy": ("balanced_accuracy_score", "label", True, {}),
    "precision": ("precision_score", "label", True, {}),
    "recall": ("recall_score", "label", True, {}),
    "f1": ("f1_score", "label", True, {}),
    "jaccard": ("jaccard_score", "label", True, {}),
    "matthews_corrcoef": ("matthews_corrcoef", "label", True, {}),
    "mcc": ("matthews_corrcoef", "label", True, {}),
    "cohen_kappa": ("cohen_kappa_score", "label", True, {}),
    "roc_auc": ("roc_auc_score", "score", True, {}),
    "roc_auc_ovr": ("roc_auc_score", "proba", True, {"multi_class": "ovr"}),
    "roc_auc_ovo": ("roc_auc_score", "proba", True, {"multi_class": "ovo"}),
    "roc_auc_ovr_weighted": ("roc_auc_score", "proba", True, {"multi_class": "ovr", "average": "weighted"}),
    "roc_auc_ovo_weighted": ("roc_auc_score", "proba", True, {"multi_class": "ovo", "average": "weighted"}),
    "average_precision": ("average_precision_score", "score", True, {}),
    "log_loss": ("log_loss", "proba", False, {}),
    "brier_score_loss": ("brier_score_loss", "score", False, {}),
    "brier": ("brier_score_loss", "score", False, {}),
    "top_k_accuracy": ("top_k_accuracy_score", "proba", True, {}),
    "r2": ("r2_score", "label", True, {}),
    "explained_variance": ("explained_variance_score", "label", True, {}),
    "mae": ("mean_absolute_error", "label", False, {}),
    "mse": ("mean_squared_error", "label", False, {}),
    "rmse": ("root_mean_squared_error", "label", False, {}),
    "mape": ("mean_absolute_percentage_error", "label", False, {}),
    "max_error": ("max_error", "label", False, {}),
    "selection_rate": ("mlo:selection_rate", "label", True, {}),
    "true_positive_rate": ("mlo:true_positive_rate", "label", True, {}),
    "tpr": ("mlo:true_positive_rate", "label", True, {}),
    "false_positive_rate": ("mlo:false_positive_rate", "label", False, {}),
    "fpr": ("mlo:false_positive_rate", "label", False, {}),
    "error_rate": ("mlo:error_rate", "label", False, {}),
}
_AVERAGED = ("precision", "recall", "f1", "jaccard")
_AVERAGES = ("macro", "micro", "weighted", "samples")
# sklearn.metrics functions that read scores or probabilities, not labels
_SCORE_FUNCS = {
    "roc_auc_score": "score",
    "average_precision_score": "score",
    "brier_score_loss": "score",
    "log_loss": "proba",
    "top_k_accuracy_score": "proba",
    "label_ranking_average_precision_score": "proba",
    "coverage_error": "proba",
    "label_ranking_loss": "proba",
    "dcg_score": "proba",
    "ndcg_score": "proba",
    "d2_log_loss_score": "proba",
    "d2_brier_score": "proba",
}
_LOWER_IS_BETTER = ("_error", "_loss", "_deviance")
_NOT_METRICS = {"auc", "check_scoring", "get_scorer", "make_scorer"}


def _binary_rates(y_true, y_pred, pos_label) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).ravel() == pos_label
    p = np.asarray(y_pred).ravel() == pos_label
    return t, p


def selection_rate(y_true, y_pred, pos_label: Any = 1) -> float:
    """Share of predictions equal to ``pos_label``."""
    p = np.asarray(y_pred).ravel() == pos_label
    if p.size == 0:
        raise ValueError("selection rate of no predictions")
    return float(p.mean())


def true_positive_rate(y_true, y_pred, pos_label: Any = 1) -> float:
    """Share of the positives predicted positive (0.0 when there are no positives)."""
    t, p = _binary_rates(y_true, y_pred, pos_label)
    n = int(t.sum())
    return float((t & p).sum() / n) if n else 0.0


def false_positive_rate(y_true, y_pred, pos_label: Any = 1) -> float:
    """Share of the negatives predicted positive (0.0 when there are no negatives)."""
    t, p = _binary_rates(y_true, y_pred, pos_label)
    n = int((~t).sum())
    return float((~t & p).sum() / n) if n else 0.0


def error_rate(y_true, y_pred) -> float:
    """Share of wrong predictions."""
    return float((np.asarray(y_true).ravel() != np.asarray(y_pred).ravel()).mean())


_OWN = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "error_rate": error_rate,
}


@dataclass(frozen=True)
class Metric:
    """A resolved metric: ``metric(y_true, y_out)`` returns a float."""

    name: str
    func: Callable[..., Any]
    response: str = "label"
    greater_is_better: bool = True
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def func_name(self) -> str:
        return getattr(self.func, "__name__", "")

    def __call__(self, y_true, y_out) -> float:
        with warnings.catch_warnings():
            # an undefined precision in a small slice is a value (0.0, as scikit-learn defines it), not noise
            warnings.simplefilter("ignore")
            return float(self.func(y_true, y_out, **self.kwargs))

    def with_kwargs(self, **kwargs: Any) -> Metric:
        return Metric(self.name, self.func, self.response, self.greater_is_better, {**self.kwargs, **kwargs})

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is at least as good as ``b``."""
        return a >= b if self.greater_is_better else a <= b

    def describe(self) -> str:
        return f"{self.name} ({'higher' if self.greater_is_better else 'lower'} is better)"


def binary_auc(t: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of boolean truths ``t`` and scores: the rank-sum form, ties sharing their mean rank (the same
    number as scikit-learn's trapezoids, in one sort)."""
    n_pos = int(t.sum())
    n_neg = len(t) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
    order = np.argsort(score)  # the order inside a tie does not matter: ties share their mean rank
    s = score[order]
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    new[1:] = s[1:] != s[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(s))
    mean_rank = (starts + ends + 1) / 2.0  # 1-based ranks start+1 … end, averaged
    rank_sum = float(mean_rank[np.cumsum(new) - 1][t[order]].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def fast_value(metric: Metric, y: np.ndarray, out: np.ndarray, pos_label: Any = None) -> float | None:
    """``metric`` on all rows by a faster route where there is one (binary ROC AUC), else None."""
    if metric.func_name != "roc_auc_score" or out.ndim != 1 or set(metric.kwargs) - {"pos_label"}:
        return None
    if out.dtype.kind not in "fiu" or not np.isfinite(out).all():
        return None
    labels = pd.unique(y)
    if len(labels) != 2:
        return None
    pos = metric.kwargs.get("pos_label", pos_label)
    if pos is None:
        try:
            pos = max(labels)
        except TypeError:
            return None
    return binary_auc(y == pos, out.astype(np.float64, copy=False))


def _sklearn_metrics():
    import sklearn.metrics as skm

    return skm


def known_names() -> list[str]:
    """Every metric name :func:`resolve_metric` accepts."""
    skm = _sklearn_metrics()
    names = set(_TABLE)
    names.update(f"{base}_{avg}" for base in _AVERAGED for avg in _AVERAGES)
    for attr in dir(skm):
        if attr.startswith("_") or attr in _NOT_METRICS or not callable(getattr(skm, attr)):
            continue
        if attr.endswith(("_score", *_LOWER_IS_BETTER)) or attr == "matthews_corrcoef":
            names.add(attr)
    return sorted(names)


def _unknown(name: str) -> InvalidInput:
    close = difflib.get_close_matches(name, known_names(), n=4, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(repr(c) for c in close)}?"
        if close
        else "see docs/validation.md for the list"
    )
    return InvalidInput(
        f"unknown metric {name!r}: {hint} (any scikit-learn metric name, or a callable f(y_true, y_pred))"
    )


def _from_name(name: str) -> tuple[str, Callable, str, bool, dict]:
    key = name.strip()
    if key.startswith("neg_"):
        key = key[4:]
    skm = _sklearn_metrics()
    if key in _TABLE:
        fname, response, gib, kw = _TABLE[key]
        func = _OWN[fname[4:]] if fname.startswith("mlo:") else getattr(skm, fname)
        return key, func, response, gib, dict(kw)
    base, _, avg = key.rpartition("_")
    if base in _AVERAGED and avg in _AVERAGES:
        fname = _TABLE[base][0]
        return key, getattr(skm, fname), "label", True, {"average": avg}
    if key in _NOT_METRICS or key.startswith("_"):
        raise _unknown(name)
    for fname in (key, f"{key}_score"):
        func = getattr(skm, fname, None)
        if callable(func) and (fname.endswith(("_score", *_LOWER_IS_BETTER)) or fname == "matthews_corrcoef"):
            gib = not fname.endswith(_LOWER_IS_BETTER)
            return key, func, _SCORE_FUNCS.get(fname, "label"), gib, {}
    raise _unknown(name)


def resolve_metric(
    metric: str | Callable | Metric,
    *,
    response: str | None = None,
    greater_is_better: bool | None = None,
    **kwargs: Any,
) -> Metric:
    """A :class:`Metric` from a name, a callable or a Metric.

    Parameters
    ----------
    metric : str or callable
        A scikit-learn metric or scorer name, one of mlo's rate names, or ``f(y_true, y_out) -> float``.
    response : {"label", "score", "proba"}, optional
        What the metric reads; names know it, callables default to ``label``.
    greater_is_better : bool, optional
        Names know it (``*_error``/``*_loss`` are lower-is-better); callables default to True.
    **kwargs
        Passed to the metric function on every call (``pos_label``, ``average``, …).
    """
    if isinstance(metric, Metric):
        if response is None and greater_is_better is None and not kwargs:
            return metric
        return Metric(
            metric.name,
            metric.func,
            response or metric.response,
            metric.greater_is_better if greater_is_better is None else bool(greater_is_better),
            {**metric.kwargs, **kwargs},
        )
    if response is not None and response not in RESPONSES:
        raise InvalidInput(f"response must be one of {', '.join(RESPONSES)}, got {response!r}")
    if isinstance(metric, str):
        if not metric.strip():
            raise InvalidInput("metric name must be a non-empty string")
        name, func, resp, gib, kw = _from_name(metric)
    elif callable(metric):
        name = getattr(metric, "__name__", None) or type(metric).__name__
        if name == "<lambda>":
            name = "custom"
        func, resp, gib, kw = metric, "label", True, {}
    else:
        raise InvalidInput(
            f"metric must be a name (like 'roc_auc') or a callable f(y_true, y_pred), got {type(metric).__name__}"
        )
    return Metric(
        name=name,
        func=func,
        response=response or resp,
        greater_is_better=gib if greater_is_better is None else bool(greater_is_better),
        kwargs={**kw, **kwargs},
    )
