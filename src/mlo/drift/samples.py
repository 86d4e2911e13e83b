"""The two samples of one column, ready to compare: sorted finite values for numeric columns, aligned value counts
for categorical ones. A pair answers every method of :mod:`mlo.drift.methods` and gives the data of the small
distribution plot; the sketch-based pairs of :mod:`mlo.drift.sketches` answer the same questions from a profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import statistics as st

PLOT_BINS = 24
PLOT_CATEGORIES = 8
KEY_BINNING_MAX_UNIQUE = (
    20  # binned distances compare values one by one when the reference has at most this many
)
NORM_FLOOR = 0.001  # the normed Wasserstein distance divides by max(std(reference), this)


@dataclass
class NumericSide:
    """Sorted finite values of one side (optionally weighted), with what was left out."""

    values: np.ndarray
    rows: int
    missing: int
    infinite: int = 0
    weights: np.ndarray | None = None

    @property
    def n(self) -> float:
        return float(self.values.size if self.weights is None else self.weights.sum())

    @cached_property
    def cum_weights(self) -> np.ndarray | None:
        return None if self.weights is None else np.cumsum(self.weights)

    @cached_property
    def n_unique(self) -> int:
        v = self.values
        return int(v.size and 1 + np.count_nonzero(v[1:] != v[:-1]))

    def quantile(self, q: float) -> float:
        if self.weights is None:
            return float(self.values[min(int(q * (self.values.size - 1) + 0.5), self.values.size - 1)])
        cw = self.cum_weights
        return float(self.values[min(np.searchsorted(cw, q * cw[-1]), self.values.size - 1)])

    def sample(self) -> np.ndarray:
        """The values one per observation (weights expanded)."""
        if self.weights is None:
            return self.values
        return np.repeat(self.values, np.rint(self.weights).astype(np.int64))


def numeric_side(series: pd.Series) -> NumericSide:
    """Sorted finite float64 values of ``series`` (datetimes as epoch microseconds), with missing/infinite
    counts."""
    if isinstance(series.dtype, pd.PeriodDtype):
        series = series.dt.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(series.dtype):  # epoch microseconds, as profiles keep them
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[us]")
        arr = stamps.astype(np.int64).astype(np.float64)
        arr[np.isnat(stamps)] = np.nan
    elif series.dtype == np.float64:
        arr = series.to_numpy()  # no copy: NaN already marks what is missing
    else:
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(arr)
    n_finite = int(np.count_nonzero(finite))
    if n_finite == arr.size:
        return NumericSide(np.sort(arr), arr.size, 0, 0)
    nan = int(np.count_nonzero(np.isnan(arr)))
    values = arr[finite]  # a copy already: sorted in place
    values.sort()
    return NumericSide(values, arr.size, nan, arr.size - n_finite - nan)


@dataclass
class CategoricalSide:
    counts: pd.Series  # value → count, non-missing values only, no zero counts
    rows: int
    missing: int
    exact: bool = True

    @property
    def n(self) -> float:
        return float(self.counts.sum())


def _distinct(sorted_values: np.ndarray) -> np.ndarray:
    v = sorted_values
    if v.size == 0:
        return v
    keep = np.empty(v.size, dtype=bool)
    keep[0] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]


def _runs(side: NumericSide) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted side and their counts (weights)."""
    v = side.values
    if v.size == 0:
        return v, v
    starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    if side.weights is None:
        counts = np.diff(np.append(starts, v.size)).astype(np.float64)
    else:
        counts = np.add.reduceat(side.weights, starts)
    return v[starts], counts


def categorical_side(series: pd.Series) -> CategoricalSide:
    counts = series.value_counts(dropna=True, sort=False)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]
        counts.index = counts.index.astype(object)
    missing = len(series) - int(counts.sum())
    return CategoricalSide(counts.astype(np.float64), len(series), missing)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts


def _round(values) -> list[float]:
    return [float(f"{v:.4g}") for v in values]


@dataclass
class NumericPair:
    ref: NumericSide
    cur: NumericSide
    approximate: str | None = None  # why the comparison is approximate (profile mode), None when exact

    @cached_property
    def merged(self) -> st.Merged:
        return st.merge(self.ref.values, self.cur.values, self.ref.weights, self.cur.weights)

    @property
    def n_unique(self) -> int:
        """Distinct values over both samples: exact when both sides have few, else the larger side's count
        (a lower bound, which is all the method choice needs)."""
        r, c = self.ref.n_unique, self.cur.n_unique
        if max(r, c) > 2 * KEY_BINNING_MAX_UNIQUE:
            return max(r, c)
        return int(np.union1d(_distinct(self.ref.values), _distinct(self.cur.values)).size)

    @property
    def n_ref(self) -> float:
        return self.ref.n

    @property
    def ref_unique(self) -> int:
        return self.ref.n_unique

    def ks(self) -> tuple[float, float]:
        small = max(self.ref.n, self.cur.n) <= st.KS_EXACT_MAX_N
        if small:  # scipy's exact p-value
            return st.ks_test(self.ref.sample(), self.cur.sample())
        d = st.ks_statistic(self.merged)
        return d, st.ks_pvalue(d, int(round(self.ref.n)), int(round(self.cur.n)))

    def ref_std(self) -> float:
        return st.std0(self.ref.values, self.ref.weights)

    def wasserstein_normed(self) -> float:
        if self.ref.weights is None and self.cur.weights is None and "merged" not in self.__dict__:
            w = st.wasserstein_sorted(self.ref.values, self.cur.values)
        else:
            w = st.wasserstein(self.merged)
        return w / max(self.ref_std(), NORM_FLOOR)

    def anderson(self) -> tuple[float, float]:
        return st.anderson(self.ref.sample(), self.cur.sample())

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct values over both samples with the count (or weight) of each on either side."""
        rk, rc = _runs(self.ref)
        ck, cc = _runs(self.cur)
        keys = np.union1d(rk, ck)
        ref = np.zeros(keys.size)
        cur = np.zeros(keys.size)
        ref[np.searchsorted(keys, rk)] = rc
        cur[np.searchsorted(keys, ck)] = cc
        return keys, ref, cur

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference and current counts for the binned distances: value by value when the reference has at most
        20 distinct values, else in Sturges bins over the pooled range."""
        if self.ref_unique <= KEY_BINNING_MAX_UNIQUE:
            _, ref, cur = self.counts()
            return ref, cur
        lo = min(self.ref.values[0], self.cur.values[0])
        hi = max(self.ref.values[-1], self.cur.values[-1])
        edges = st.sturges_edges(lo, hi, self.ref.values.size + self.cur.values.size)
        return self._hist(self.ref, edges), self._hist(self.cur, edges)

    def hellinger(self) -> float:
        """Hellinger distance of density histograms in Sturges bins laid over the distinct pooled values."""
        keys, _, _ = self.counts()
        edges = st.sturges_edges(keys[0], keys[-1], keys.size)
        return st.hellinger_density(self._hist(self.ref, edges), self._hist(self.cur, edges), edges)

    @staticmethod
    def _hist(side: NumericSide, edges: np.ndarray) -> np.ndarray:
        return st.histogram_sorted(side.values, edges, side.cum_weights)

    def plot(self) -> dict[str, Any]:
        """Shares of both samples: per value when there are few, else in equal bins over the pooled 0.5–99.5%
        range (outliers in the end bins)."""
        if self.n_unique <= PLOT_BINS:
            keys, ref, cur = self.counts()
            labels = [f"{k:.6g}" for k in keys]
            return {
                "type": "bars",
                "labels": labels,
                "ref": _round(_shares(ref)),
                "cur": _round(_shares(cur)),
            }
        return self.plot_hist()

    def plot_hist(self) -> dict[str, Any]:
        """Shares of both samples in equal bins over the pooled 0.5–99.5% range (outliers in the end bins)."""
        lo = min(self.ref.quantile(0.005), self.cur.quantile(0.005))
        hi = max(self.ref.quantile(0.995), self.cur.quantile(0.995))
        if not hi > lo:
            lo, hi = (
                min(self.ref.values[0], self.cur.values[0]),
                max(self.ref.values[-1], self.cur.values[-1]),
            )
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, PLOT_BINS + 1)
        inner = edges.copy()
        inner[0], inner[-1] = -np.inf, np.inf
        ref = self._hist(self.ref, inner)
        cur = self._hist(self.cur, inner)
        return {
            "type": "hist",
            "edges": _round(edges),
            "ref": _round(_shares(ref)),
            "cur": _round(_shares(cur)),
        }


@dataclass
class CategoricalPair:
    ref: CategoricalSide
    cur: CategoricalSide
    approximate: str | None = None

    @cached_property
    def _aligned(self) -> tuple[list, np.ndarray, np.ndarray]:
        r, c = self.ref.counts, self.cur.counts
        new = c.index[~c.index.isin(r.index)]
        keys = r.index.append(new) if len(new) else r.index
        ref = np.concatenate([r.to_numpy(dtype=np.float64), np.zeros(len(new))])
        cur = c.reindex(keys, fill_value=0.0).to_numpy(dtype=np.float64)
        return list(keys), ref, cur

    def counts(self) -> tuple[list, np.ndarray, np.ndarray]:
        return self._aligned

    @property
    def n_unique(self) -> int:
        return len(self._aligned[0])

    @property
    def ref_unique(self) -> int:
        return len(self.ref.counts)

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        _, ref, cur = self._aligned
        return ref, cur

    def hellinger(self) -> float:
        _, ref, cur = self._aligned
        return st.hellinger(ref, cur)

    def unseen(self) -> tuple[list, float]:
        """Values of the current sample absent from the reference, most frequent first, and their row share."""
        keys, ref, cur = self._aligned
        idx = np.flatnonzero((ref == 0) & (cur > 0))
        idx = idx[np.argsort(-cur[idx], kind="stable")]
        total = cur.sum()
        return [keys[i] for i in idx], float(cur[idx].sum() / total) if total else 0.0

    def plot(self) -> dict[str, Any]:
        keys, ref, cur = self._aligned
        rs, cs = _shares(ref), _shares(cur)
        order = np.argsort(-(rs + cs), kind="stable")
        top = order[:PLOT_CATEGORIES]
        labels = [str(keys[i]) for i in top]
        r, c = list(rs[top]), list(cs[top])
        if order.size > PLOT_CATEGORIES:
            labels.append(f"{order.size - PLOT_CATEGORIES} more")
            r.append(float(rs[order[PLOT_CATEGORIES:]].sum()))
            c.append(float(cs[order[PLOT_CATEGORIES:]].sum()))
        return {"type": "bars", "labels": labels, "ref": _round(r), "cur": _round(c)}
