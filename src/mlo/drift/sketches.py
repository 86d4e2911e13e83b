"""Profile mode: compare current data with a reference known only by its stored profile.

A snapshot's profile (see :mod:`mlo.data.profile`) keeps, per column, exact counts, missing values, min, max,
mean and standard deviation, a 50-bin histogram with exact counts, 101 quantiles and the top 50 values with their
counts. From these the reference is rebuilt without loading its rows:

- exactly, when every distinct value is among the stored top values and no sampling was involved (categorical,
  boolean and low-cardinality numeric columns): the statistics are then the same as with the data;
- approximately otherwise: a numeric reference becomes a piecewise-linear CDF through the histogram edges and the
  quantiles, a categorical one keeps its top values and pools the rest into one bucket. Such columns say so.

Missing-value rates are always exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import statistics as st
from .methods import CATEGORICAL, NUMERIC
from .samples import (
    NORM_FLOOR,
    PLOT_BINS,
    CategoricalPair,
    CategoricalSide,
    NumericPair,
    NumericSide,
    _round,
    _shares,
)

OTHER = "(other values)"
CDF_NOTE = "reference CDF interpolated from its profile (histogram and quantiles)"


class NotComputable(Exception):
    """A method that cannot be computed from what the reference profile keeps."""


def _rows(prof: dict) -> tuple[int, int]:
    return int(prof.get("count") or 0), int(prof.get("nulls") or 0)


def _finite_count(prof: dict) -> int:
    hist = prof.get("histogram")
    return int(sum(hist["counts"])) if hist else 0


def _complete_top(prof: dict) -> bool:
    return "top" in prof and not prof.get("other") and not prof.get("sampled")


def numeric_reference(prof: dict, cur: NumericSide):
    """A pair for a numeric column: exact when the profile lists every value, else CDF-based."""
    rows, nulls = _rows(prof)
    finite = _finite_count(prof)
    infinite = max(rows - nulls - finite, 0)
    if "top" in prof:
        vals, wts = [], []
        for value, count in prof["top"]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                continue
            vals.append(float(value))
            wts.append(float(count))
        order = np.argsort(vals, kind="stable")
        values, weights = np.asarray(vals)[order], np.asarray(wts)[order]
        if _complete_top(prof):
            return NumericPair(NumericSide(values, rows, nulls, infinite, weights), cur)
        if finite and not prof.get("other"):  # every value listed, counts scaled up from a sample
            weights = weights * (finite / max(weights.sum(), 1.0))
            side = NumericSide(values, rows, nulls, infinite, weights)
            return NumericPair(side, cur, approximate="reference counts scaled from a sample")
    return SketchNumericPair(prof, cur, rows, nulls, infinite, finite)


def categorical_reference(prof: dict, cur: CategoricalSide):
    rows, nulls = _rows(prof)
    top = prof.get("top") or []
    counts = pd.Series([float(c) for _, c in top], index=pd.Index([v for v, _ in top]), dtype=np.float64)
    ref = CategoricalSide(counts, rows, nulls)
    if _complete_top(prof):
        return CategoricalPair(ref, cur)
    reason = "reference counts scaled from a sample" if prof.get("sampled") else None
    other = float(prof.get("other") or 0)
    if other > 0:
        # values outside the reference's top list are pooled on both sides
        known = cur.counts.index.isin(counts.index)
        pooled = pd.concat([cur.counts[known], pd.Series([float(cur.counts[~known].sum())], index=[OTHER])])
        ref = CategoricalSide(pd.concat([counts, pd.Series([other], index=[OTHER])]), rows, nulls)
        cur = CategoricalSide(pooled[pooled > 0], cur.rows, cur.missing)
        reason = f"reference keeps its top {len(top)} values; the rest are pooled"
    return CategoricalPair(ref, cur, approximate=reason)


def reference_pair(prof: dict, kind: str, current: pd.Series):
    from .samples import categorical_side, numeric_side

    if kind == NUMERIC:
        return numeric_reference(prof, numeric_side(current))
    if kind == CATEGORICAL:
        return categorical_reference(prof, categorical_side(current))
    raise NotComputable(f"{kind} columns are not compared from a profile")


# -- a reference known by its CDF -------------------------------------------------------------------------------------
def _knots(prof: dict) -> tuple[np.ndarray, np.ndarray]:
    xs, fs = [], []
    hist = prof.get("histogram")
    if hist:
        counts = np.asarray(hist["counts"], dtype=np.float64)
        edges = np.asarray(hist["edges"], dtype=np.float64)
        total = counts.sum()
        if total:
            xs.append(edges)
            fs.append(np.concatenate([[0.0], np.cumsum(counts) / total]))
    quant = prof.get("quantiles")
    if quant:
        xs.append(np.asarray(quant["values"], dtype=np.float64))
        fs.append(np.asarray(quant["q"], dtype=np.float64))
    if not xs:
        return np.empty(0), np.empty(0)
    x, f = np.concatenate(xs), np.concatenate(fs)
    order = np.lexsort((f, x))
    x, f = x[order], np.clip(np.maximum.accumulate(f[order]), 0.0, 1.0)
    f[-1] = 1.0
    return x, f


def cdf(kx: np.ndarray, kf: np.ndarray, t: np.ndarray, side: str = "right") -> np.ndarray:
    """The piecewise-linear CDF through the knots, at ``t``: its value (``side="right"``) or its left limit."""
    t = np.asarray(t, dtype=np.float64)
    i = np.searchsorted(kx, t, side=side)
    i0 = np.clip(i - 1, 0, kx.size - 1)
    i1 = np.clip(i, 0, kx.size - 1)
    x0, x1, f0, f1 = kx[i0], kx[i1], kf[i0], kf[i1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(x1 > x0, (t - x0) / (x1 - x0), 1.0 if side == "left" else 0.0)
    out = f0 + np.clip(frac, 0.0, 1.0) * (f1 - f0)
    out[i == 0] = 0.0
    out[i >= kx.size] = 1.0
    return out


@dataclass
class SketchNumericPair:
    """A numeric column whose reference is a piecewise-linear CDF rebuilt from its profile."""

    prof: dict
    cur: NumericSide
    rows: int
    nulls: int
    infinite: int
    finite: int
    approximate: str | None = CDF_NOTE

    def __post_init__(self):
        self.kx, self.kf = _knots(self.prof)
        self.ref = NumericSide(np.empty(0), self.rows, self.nulls, self.infinite)
        self.ref_n = self.finite
        self.ref_unique = int(self.prof.get("distinct") or 0)

    @property
    def n_ref(self) -> int:
        return self.finite

    @property
    def n_unique(self) -> int:
        return max(self.ref_unique, self.cur.n_unique)

    def _grid(self) -> np.ndarray:
        g = np.concatenate([self.kx, self.cur.values])
        g.sort(kind="stable")
        keep = np.empty(g.size, dtype=bool)
        keep[0] = True
        np.not_equal(g[1:], g[:-1], out=keep[1:])
        return g[keep]

    def _fcur(self, t: np.ndarray, side: str) -> np.ndarray:
        return np.searchsorted(self.cur.values, t, side=side) / self.cur.values.size

    def ks(self) -> tuple[float, float]:
        g = self._grid()
        d = max(
            float(np.max(np.abs(cdf(self.kx, self.kf, g, "right") - self._fcur(g, "right")))),
            float(np.max(np.abs(cdf(self.kx, self.kf, g, "left") - self._fcur(g, "left")))),
        )
        return d, st.ks_pvalue(d, self.finite, self.cur.values.size)

    def ref_std(self) -> float:
        n, std = self.finite, float(self.prof.get("std") or 0.0)
        return std * np.sqrt((n - 1) / n) if n > 1 else 0.0

    def wasserstein_normed(self) -> float:
        g = self._grid()
        if g.size < 2:
            return 0.0
        a = cdf(self.kx, self.kf, g[:-1], "right")
        b = cdf(self.kx, self.kf, g[1:], "left")
        c = self._fcur(g[:-1], "right")
        dx = np.diff(g)
        da, db = a - c, b - c
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (da * db) < 0
            area = np.where(crossing, (da * da + db * db) / (2.0 * np.abs(b - a)), np.abs(da + db) / 2.0)
        return float(np.sum(np.nan_to_num(area) * dx)) / max(self.ref_std(), NORM_FLOOR)

    def anderson(self):
        raise NotComputable("anderson needs the reference values: use mode='exact'")

    def counts(self):
        raise NotComputable("value-by-value counts need the reference values: use mode='exact'")

    def _ref_hist(self, edges: np.ndarray) -> np.ndarray:
        f = cdf(self.kx, self.kf, edges, "left")
        f[-1] = cdf(self.kx, self.kf, edges[-1:], "right")[0]
        f[0] = cdf(self.kx, self.kf, edges[:1], "left")[0] if np.isfinite(edges[0]) else 0.0
        return np.diff(f) * self.finite

    def _range(self) -> tuple[float, float]:
        return (
            min(float(self.prof["min"]), float(self.cur.values[0])),
            max(float(self.prof["max"]), float(self.cur.values[-1])),
        )

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self._range()
        edges = st.sturges_edges(lo, hi, self.finite + self.cur.values.size)
        return self._ref_hist(edges), st.histogram_sorted(self.cur.values, edges)

    def hellinger(self) -> float:
        lo, hi = self._range()
        edges = st.sturges_edges(lo, hi, self.n_unique)
        return st.hellinger_density(self._ref_hist(edges), st.histogram_sorted(self.cur.values, edges), edges)

    def plot(self) -> dict[str, Any]:
        q = self.prof.get("quantiles", {}).get("values") or [self.prof["min"], self.prof["max"]]
        lo = min(float(q[min(1, len(q) - 1)]), self.cur.quantile(0.005))
        hi = max(float(q[max(len(q) - 2, 0)]), self.cur.quantile(0.995))
        if not hi > lo:
            lo, hi = self._range()
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, PLOT_BINS + 1)
        inner = edges.copy()
        inner[0], inner[-1] = -np.inf, np.inf
        ref = np.diff(np.concatenate([[0.0], cdf(self.kx, self.kf, inner[1:-1], "left"), [1.0]]))
        cur = st.histogram_sorted(self.cur.values, inner)
        return {"type": "hist", "edges": _round(edges), "ref": _round(ref), "cur": _round(_shares(cur))}
