"""Groups of rows (slices, sensitive groups) and metrics computed for every group at once.

Rows are coded once (``codes``: one small integer per row); the common metrics are then sums per group
(``np.bincount``), so a metric over every group costs about one pass over the data whatever the number of groups.
ROC AUC per group comes from ranks within groups after one sort. Other metrics are called once per group on the
group's rows, found by one stable sort rather than a boolean mask per group.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import Metric

MISSING = "<missing>"


@dataclass(frozen=True)
class Groups:
    """Rows coded by group: ``codes[i]`` is the group of row ``i``; groups are in the order of ``labels``."""

    name: str
    codes: np.ndarray
    labels: list[str]
    counts: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    def members(self) -> list[np.ndarray]:
        """Row indices of each group (one stable sort)."""
        order = np.argsort(self.codes, kind="stable")
        return np.split(order, np.cumsum(self.counts)[:-1])


def _label(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return MISSING
    return str(v)


def _sort_key(v):
    # numbers before text, each in natural order; missing last
    if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)):
        return (0, float(v), "")
    if _label(v) == MISSING:
        return (2, 0.0, "")
    return (1, 0.0, str(v))


def _factorize(values: pd.Series) -> tuple[np.ndarray, list]:
    """Codes in sorted-value order and the distinct values (missing values form one group)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.intp)
        cats = list(values.cat.categories)
        present = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
        uniques = [c for c, keep in zip(cats, present, strict=True) if keep]
        remap = np.cumsum(present) - 1
        out = np.where(codes >= 0, remap[np.maximum(codes, 0)], len(uniques))
        if (codes < 0).any():
            uniques.append(None)
        return out.astype(np.intp), uniques
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    uniques = list(uniques)
    order = sorted(range(len(uniques)), key=lambda i: _sort_key(uniques[i]))
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[codes], [uniques[i] for i in order]


def _bin_numeric(values: np.ndarray, bins: int) -> tuple[np.ndarray, list[str]]:
    """Quantile bins ``[a, b)`` (the last closed); missing values in a group of their own."""
    finite = np.isfinite(values)
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0]])
    codes = np.searchsorted(edges[1:-1], values, side="right").astype(np.intp)
    labels = [
        f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    if not finite.all():
        codes[~finite] = len(labels)
        labels.append(MISSING)
    return codes, labels


def make_groups(
    values: pd.Series | pd.DataFrame, *, bins: int | None = None, max_distinct: int = 20
) -> Groups:
    """Group rows by the values of a column (or the combinations of several).

    A numeric column with more than ``max_distinct`` distinct values is cut into ``bins`` quantile bins.
    """
    if isinstance(values, pd.DataFrame):
        parts = [
            make_groups(values.iloc[:, i], bins=bins, max_distinct=max_distinct)
            for i in range(values.shape[1])
        ]
        combined = np.zeros(len(values), dtype=np.int64)
        for g in parts:
            combined = combined * g.n_groups + g.codes
        codes, uniques = pd.factorize(combined, sort=True)
        labels = []
        for u in uniques:
            bits = []
            for g in reversed(parts):
                u, c = divmod(int(u), g.n_groups)
                bits.append(g.labels[c])
            labels.append(", ".join(reversed(bits)))
        codes = codes.astype(np.intp)
        name = ", ".join(str(c) for c in values.columns)
        return Groups(name, codes, labels, np.bincount(codes, minlength=len(labels)))

    name = str(values.name) if values.name is not None else "group"
    dtype = values.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if numeric and bins and not isinstance(dtype, pd.CategoricalDtype):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = arr[np.isfinite(arr)]
        if finite.size and pd.unique(finite).size > max_distinct:
            codes, labels = _bin_numeric(arr, bins)
            return Groups(name, codes, labels, np.bincount(codes, minlength=len(labels)))
    codes, uniques = _factorize(values)
    labels = [_label(u) for u in uniques]
    return Groups(name, codes, labels, np.bincount(codes, minlength=len(labels)))


# -- per-group metrics -------------------------------------------------------------------------------------------
def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def binary_counts(g: Groups, t: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group confusion counts of boolean truths ``t`` and predictions ``p``."""
    k = g.n_groups
    tp = np.bincount(g.codes[t & p], minlength=k)
    pos = np.bincount(g.codes[t], minlength=k)
    pred = np.bincount(g.codes[p], minlength=k)
    fp = pred - tp
    fn = pos - tp
    tn = g.counts - tp - fp - fn
    return {"n": g.counts, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "pos": pos, "pred": pred}


def group_auc(g: Groups, t: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of every group: the rank-sum form (ties share their mean rank), NaN where a group has one class."""
    # by group, then by score: sort the scores, then stably by group code (small integers sort fast)
    by_score = np.argsort(score)
    order = by_score[np.argsort(g.codes[by_score], kind="stable")]
    sc, cd, pos = score[order], g.codes[order], t[order]
    n = len(sc)
    # a new block of tied scores starts where the group or the score changes
    new = np.empty(n, dtype=bool)
    new[:1] = True
    new[1:] = (cd[1:] != cd[:-1]) | (sc[1:] != sc[:-1])
    block = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    group_start = np.zeros(g.n_groups, dtype=np.int64)
    group_start[1:] = np.cumsum(g.counts)[:-1]
    # mean 1-based rank inside the group of each tie block
    mean_rank = (starts + ends - 1) / 2.0 + 1.0 - group_start[cd[starts]]
    rank_sum = np.bincount(cd, weights=mean_rank[block] * pos, minlength=g.n_groups)
    n_pos = np.bincount(cd, weights=pos, minlength=g.n_groups)
    n_neg = g.counts - n_pos
    auc = np.full(g.n_groups, np.nan)
    ok = (n_pos > 0) & (n_neg > 0)
    auc[ok] = (rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2.0) / (n_pos[ok] * n_neg[ok])
    return auc


def _positive(metric: Metric, labels: np.ndarray) -> object | None:
    """The positive label of a binary label metric, or None when the labels are not binary."""
    pos = metric.kwargs.get("pos_label", 1)
    if len(labels) > 2 or (len(labels) == 2 and pos not in labels):
        return None
    return pos


def _fast(metric: Metric, g: Groups, y_true, y_out, labels, pos_label=None) -> np.ndarray | None:
    """A vectorized per-group value of the common metrics, None when there is none for this case."""
    fname = metric.func_name
    extra = set(metric.kwargs) - {"pos_label"}
    if extra:
        return None
    n = g.counts
    if fname in ("accuracy_score", "error_rate"):
        hit = np.bincount(g.codes, weights=(y_true == y_out), minlength=g.n_groups)
        acc = _ratio(hit, n, np.nan)
        return acc if fname == "accuracy_score" else 1.0 - acc
    if fname in ("mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "r2_score"):
        if y_out.ndim != 1 or y_out.dtype.kind not in "fiub" or y_true.dtype.kind not in "fiub":
            return None
        err = y_true.astype(np.float64) - y_out.astype(np.float64)
        if fname == "mean_absolute_error":
            return _ratio(np.bincount(g.codes, weights=np.abs(err), minlength=g.n_groups), n, np.nan)
        sse = np.bincount(g.codes, weights=err * err, minlength=g.n_groups)
        if fname != "r2_score":
            mse = _ratio(sse, n, np.nan)
            return mse if fname == "mean_squared_error" else np.sqrt(mse)
        yt = y_true.astype(np.float64)
        mean = _ratio(np.bincount(g.codes, weights=yt, minlength=g.n_groups), n, np.nan)
        dev = yt - mean[g.codes]
        sst = np.bincount(g.codes, weights=dev * dev, minlength=g.n_groups)
        # scikit-learn's convention for a constant target: 1.0 for a perfect fit, else 0.0
        r2 = np.where(sst > 0, 1.0 - _ratio(sse, sst, 0.0), np.where(sse == 0, 1.0, 0.0))
        return np.where(n >= 2, r2, np.nan)
    binary = (
        "precision_score",
        "recall_score",
        "f1_score",
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
        "balanced_accuracy_score",
    )
    if fname in binary:
        if fname in ("precision_score", "recall_score", "f1_score", "balanced_accuracy_score"):
            pos = _positive(metric, labels)
            if pos is None or (fname == "balanced_accuracy_score" and len(labels) != 2):
                return None
        else:
            pos = metric.kwargs.get("pos_label", 1)
        if fname == "balanced_accuracy_score":
            pos = labels[-1]
        c = binary_counts(g, y_true == pos, y_out == pos)
        if fname == "precision_score":
            return _ratio(c["tp"], c["pred"])
        if fname in ("recall_score", "true_positive_rate"):
            return _ratio(c["tp"], c["pos"])
        if fname == "false_positive_rate":
            return _ratio(c["fp"], c["fp"] + c["tn"])
        if fname == "selection_rate":
            return _ratio(c["pred"], n, np.nan)
        if fname == "f1_score":
            return _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])
        # balanced accuracy: the mean recall of the classes present in the group's truth
        tpr = _ratio(c["tp"], c["pos"], np.nan)
        tnr = _ratio(c["tn"], c["tn"] + c["fp"], np.nan)
        return np.nanmean(np.vstack([tpr, tnr]), axis=0)
    if fname == "roc_auc_score" and y_out.ndim == 1 and len(labels) == 2 and np.isfinite(y_out).all():
        pos = labels[-1] if pos_label is None else pos_label
        return group_auc(g, y_true == pos, y_out.astype(np.float64))
    return None


def group_metric(
    metric: Metric, g: Groups, y_true: np.ndarray, y_out: np.ndarray, pos_label=None
) -> np.ndarray:
    """``metric`` on the rows of every group; NaN where it is undefined for a group (one class for ROC AUC, …).
    ``pos_label`` is the class a 1-D score is the probability of (default: the greater label)."""
    labels = pd.unique(y_true)
    if metric.response == "label" and y_out.ndim == 1:
        labels = pd.unique(np.concatenate([labels, pd.unique(y_out)]))
    try:
        labels = np.sort(labels)
    except TypeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = _fast(metric, g, y_true, y_out, labels, pos_label)
    if fast is not None:
        return np.asarray(fast, dtype=np.float64)
    out = np.full(g.n_groups, np.nan)
    for k, idx in enumerate(g.members()):
        if idx.size == 0:
            continue
        try:
            out[k] = metric(y_true[idx], y_out[idx])
        except ValueError:  # undefined on this group (one class present, …)
            pass
    return out
