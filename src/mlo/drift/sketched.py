"""Comparing two columns known by their mergeable sketches (see :mod:`mlo.drift.mergeable`).

Categorical columns and numeric columns with few distinct values compare exactly (their sketches keep every value
and its count). Other numeric columns compare their bucket centres as weighted samples, with the error bound of
the statistic (see :mod:`mlo.drift.mergeable`) in :attr:`SketchNumericPair.error_bound`.
"""

from __future__ import annotations

from . import statistics as st
from .mergeable import EXACT_VALUES_MAX, TINY, ColumnSketch
from .methods import (
    CATEGORICAL,
    DATETIME,
    INT_CATEGORICAL_MAX,
    NUMERIC,
    TEXT,
    TEXT_DISTINCT_SHARE,
    TEXT_MIN_DISTINCT,
    UNSUPPORTED,
)
from .samples import NORM_FLOOR, CategoricalPair, CategoricalSide, NumericPair, NumericSide
from .sketches import NotComputable


def kind_of(col: ColumnSketch) -> str:
    """The kind of a column by the rule of :func:`mlo.drift.methods.infer_kind`, read from its sketch."""
    fam = col.family
    if fam == "float":
        return NUMERIC
    if fam == "int":
        few = col.values is not None and len(col.values) <= INT_CATEGORICAL_MAX
        return CATEGORICAL if few else NUMERIC
    if fam in ("bool", "category"):
        return CATEGORICAL
    if fam == "datetime":
        return DATETIME
    if fam == "object":
        if col.text:
            return TEXT
        counts = col.counts
        if counts is None or len(counts) == 0:
            return CATEGORICAL
        n_valid = col.rows - col.missing
        strings = all(isinstance(k, str) for k in counts.index[:1000])
        if strings and len(counts) > max(TEXT_DISTINCT_SHARE * n_valid, TEXT_MIN_DISTINCT):
            return TEXT
        return CATEGORICAL
    return UNSUPPORTED


def _numeric_side(col: ColumnSketch, accuracy: float) -> NumericSide:
    values, counts = col.points(accuracy)
    return NumericSide(values, col.rows, col.missing, col.infinite, counts)


def _categorical_counts(col: ColumnSketch):
    if col.counts is not None:
        return col.counts
    if col.values is not None:
        return col.values
    raise NotComputable(
        "value-by-value counts need the exact values, and this column has too many distinct ones"
    )


def pair(ref: ColumnSketch, cur: ColumnSketch, kind: str, accuracy: float):
    """The pair of samples to compare, exact when both sketches keep their values."""
    if kind == CATEGORICAL:
        r, c = _categorical_counts(ref), _categorical_counts(cur)
        return CategoricalPair(
            CategoricalSide(r[r > 0], ref.rows, ref.missing), CategoricalSide(c[c > 0], cur.rows, cur.missing)
        )
    if not (ref.numeric and cur.numeric):
        raise NotComputable(f"{kind} columns compare only when both sides hold numbers")
    a, b = _numeric_side(ref, accuracy), _numeric_side(cur, accuracy)
    if ref.values is not None and cur.values is not None:
        return NumericPair(a, b)
    if ref.center != cur.center and ref.n and cur.n:
        raise NotComputable(
            f"the sketches' buckets have different centres ({ref.center:g}, {cur.center:g}): sketch the current "
            "data with center=reference_sketch"
        )
    return SketchNumericPair(a, b, ref=a, cur=b, ref_sketch=ref, cur_sketch=cur, accuracy=accuracy)


class SketchNumericPair(NumericPair):
    """A numeric column compared through its log buckets: bucket centres as weighted samples, the reference's
    standard deviation exact from its moments, and an error bound for the statistic."""

    def __init__(self, *_, ref, cur, ref_sketch: ColumnSketch, cur_sketch: ColumnSketch, accuracy: float):
        NumericPair.__init__(self, ref, cur)
        self.ref_sketch, self.cur_sketch, self.accuracy = ref_sketch, cur_sketch, accuracy
        self.error_bound = float("nan")
        self.approximate = f"from mergeable sketches (relative accuracy {accuracy:g})"

    @property
    def n_unique(self) -> int:
        """A lower bound: a side without its exact values has more than :data:`EXACT_VALUES_MAX` of them (more than
        the few that change the method), and at least as many as its buckets."""
        many = EXACT_VALUES_MAX + 1 if self.ref_sketch.values is None or self.cur_sketch.values is None else 0
        return max(self.ref.values.size, self.cur.values.size, many)

    def ref_std(self) -> float:
        return self.ref_sketch.std

    def ks(self) -> tuple[float, float]:
        d = st.ks_statistic(self.merged)
        shares = max(float(self.ref.weights.max()) / self.ref.n, float(self.cur.weights.max()) / self.cur.n)
        self.error_bound = shares
        self.approximate += f"; the exact statistic is within [{d:.4g}, {min(d + shares, 1.0):.4g}]"
        n_ref, n_cur = int(round(self.ref.n)), int(round(self.cur.n))
        p = st.ks_pvalue(d, n_ref, n_cur)
        self.p_values = (
            st.ks_pvalue(min(d + shares, 1.0), n_ref, n_cur),
            p,
        )  # the range of the exact p-value
        return d, p

    def wasserstein_normed(self) -> float:
        w = st.wasserstein(self.merged)
        std = max(self.ref_std(), NORM_FLOOR)
        bound = (self.accuracy * (self.ref_sketch.mean_abs + self.cur_sketch.mean_abs) + 2 * TINY) / std
        self.error_bound = bound
        self.approximate += f"; the exact statistic is within ±{bound:.2g}"
        return w / std

    def anderson(self):
        raise NotComputable(
            "anderson needs the values themselves; sketches keep buckets: use ks or wasserstein"
        )

    def counts(self):
        raise NotComputable(
            "value-by-value counts need the exact values, and this column has too many distinct ones"
        )

    def binned(self):
        self.approximate += "; bin counts from bucket centres (each value within the relative accuracy)"
        lo, hi = self._range()
        edges = st.sturges_edges(lo, hi, int(round(self.ref.n + self.cur.n)))
        return self._hist(self.ref, edges), self._hist(self.cur, edges)

    def hellinger(self) -> float:
        self.approximate += "; bin counts from bucket centres (each value within the relative accuracy)"
        lo, hi = self._range()
        edges = st.sturges_edges(lo, hi, self.n_unique)
        return st.hellinger_density(self._hist(self.ref, edges), self._hist(self.cur, edges), edges)

    def _range(self) -> tuple[float, float]:
        """The pooled range of the values and of the bucket centres standing for them."""
        lo = min(self.ref_sketch.min, self.cur_sketch.min, self.ref.values[0], self.cur.values[0])
        hi = max(self.ref_sketch.max, self.cur_sketch.max, self.ref.values[-1], self.cur.values[-1])
        return lo, hi

    def plot(self):
        return self.plot_hist()
