"""The statistics behind drift: pure functions over sorted samples, counts and shares.

Numeric samples arrive sorted (and, for a reference rebuilt from a profile, weighted), so one merge of the two
sorted samples serves the Kolmogorov–Smirnov statistic, the Wasserstein distance, the number of distinct values
and the per-value counts at once. Every function here is checked against scipy in ``tests/drift``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np

KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp switches from the exact to the asymptotic p-value above this size


def _stats():
    """scipy.stats, imported on first use (``import mlo`` stays fast; it takes most of a second)."""
    from scipy import stats

    return stats


def _special():
    """scipy.special alone, for the distances that need only it (a fraction of scipy.stats' import time)."""
    from scipy import special

    return special


@dataclass
class Merged:
    """Two sorted samples merged: the pooled values and both empirical CDFs at every pooled position."""

    values: np.ndarray  # pooled values, sorted
    cum_ref: (
        np.ndarray
    )  # reference weight at or before each position (counts, or weights for a weighted side)
    cum_cur: np.ndarray
    n_ref: float
    n_cur: float

    @cached_property
    def ends(self) -> np.ndarray:
        """Positions that end a run of equal values: where both CDFs are defined."""
        v = self.values
        out = np.empty(v.size, dtype=bool)
        if v.size:
            np.not_equal(v[:-1], v[1:], out=out[:-1])
            out[-1] = True
        return out

    @cached_property
    def cdf_gap(self) -> np.ndarray:
        """F_ref − F_cur at every pooled position (only meaningful at :attr:`ends`)."""
        return self.cum_ref / self.n_ref - self.cum_cur / self.n_cur

    @property
    def n_unique(self) -> int:
        return int(np.count_nonzero(self.ends))


def merge(
    ref: np.ndarray,
    cur: np.ndarray,
    ref_weights: np.ndarray | None = None,
    cur_weights: np.ndarray | None = None,
) -> Merged:
    """Merge two sorted samples (a stable sort of two sorted runs is a linear merge)."""
    pooled = np.concatenate([ref, cur])
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    del pooled
    from_ref = order < ref.size
    if ref_weights is None and cur_weights is None:
        cum_ref = np.cumsum(from_ref, dtype=np.int64)
        cum_cur = np.arange(1, values.size + 1, dtype=np.int64) - cum_ref
        n_ref, n_cur = float(ref.size), float(cur.size)
    else:
        rw = np.ones(ref.size) if ref_weights is None else np.asarray(ref_weights, dtype=np.float64)
        cw = np.ones(cur.size) if cur_weights is None else np.asarray(cur_weights, dtype=np.float64)
        w = np.concatenate([rw, cw])[order]
        cum_ref = np.cumsum(np.where(from_ref, w, 0.0))
        cum_cur = np.cumsum(np.where(from_ref, 0.0, w))
        n_ref, n_cur = float(rw.sum()), float(cw.sum())
    return Merged(values, cum_ref, cum_cur, n_ref, n_cur)


# -- tests on samples -----------------------------------------------------------------------------------------------
def ks_statistic(m: Merged) -> float:
    """The two-sided Kolmogorov–Smirnov statistic sup |F_ref − F_cur|."""
    if m.values.size == 0:
        return 0.0
    return float(np.max(np.abs(m.cdf_gap[m.ends])))


def ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    """Smirnov's asymptotic two-sided p-value (scipy's ks_2samp above :data:`KS_EXACT_MAX_N`)."""
    stats = _stats()
    big, small = max(n_ref, n_cur), min(n_ref, n_cur)
    en = big * small / (big + small)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_test(ref: np.ndarray, cur: np.ndarray, m: Merged | None = None) -> tuple[float, float]:
    """Two-sample KS test on sorted samples: (statistic, p-value) as scipy's ``ks_2samp`` gives them.

    Small samples get scipy's exact p-value; large ones the asymptotic one from the merged CDFs.
    """
    stats = _stats()
    if max(ref.size, cur.size) <= KS_EXACT_MAX_N:
        res = stats.ks_2samp(ref, cur)
        return float(res.statistic), float(res.pvalue)
    m = m if m is not None else merge(ref, cur)
    d = ks_statistic(m)
    return d, ks_pvalue(d, ref.size, cur.size)


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """The Wasserstein-1 distance ∫ |F_a − F_b| dx of two sorted, unweighted samples, in linear passes.

    Equal sizes pair the order statistics (``mean |a_i − b_i|``). Otherwise the two sorted samples are merged
    without a sort: ``searchsorted`` places each value of ``b`` after the values of ``a`` at or below it, and
    the gap between the two empirical CDFs is summed over the pooled intervals.
    """
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return 0.0
    if n == m:
        return float(np.abs(a - b).sum() / n)
    pos_b = np.searchsorted(a, b, side="right")
    pos_b += np.arange(m, dtype=pos_b.dtype)  # b_j's place among all n + m values
    from_b = np.zeros(n + m, dtype=bool)
    from_b[pos_b] = True
    pooled = np.empty(n + m)
    pooled[pos_b] = b
    pooled[~from_b] = a
    cum_b = np.cumsum(from_b[:-1], dtype=np.int64)
    gap = np.arange(1, n + m, dtype=np.float64)
    gap -= cum_b
    gap *= 1.0 / n
    gap -= cum_b * (1.0 / m)  # F_a − F_b after each pooled value
    np.abs(gap, out=gap)
    return float(np.sum(gap * np.diff(pooled)))  # not np.dot: BLAS threads would compete with ours


def wasserstein(m: Merged) -> float:
    """The Wasserstein-1 distance ∫ |F_ref − F_cur| dx between the two samples."""
    if m.values.size < 2:
        return 0.0
    gap = np.abs(m.cdf_gap[:-1])
    return float(np.sum(gap * np.diff(m.values)))


def std0(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Population standard deviation (ddof = 0)."""
    if values.size == 0:
        return 0.0
    if weights is None:
        return float(np.std(values))
    mean = np.average(values, weights=weights)
    return float(math.sqrt(max(np.average((values - mean) ** 2, weights=weights), 0.0)))


def anderson(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """k-sample Anderson–Darling (midrank) on two samples: (statistic, p-value capped to [0.001, 0.25])."""
    stats = _stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "p-value capped/floored" notes: the caps are documented
        try:
            res = stats.anderson_ksamp([ref, cur], variant="midrank")
        except TypeError:  # scipy < 1.17 has no ``variant``
            res = stats.anderson_ksamp([ref, cur], midrank=True)
    return float(res.statistic), float(res.pvalue)


# -- tests on counts ------------------------------------------------------------------------------------------------
def chisquare(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's goodness-of-fit of the current counts against the reference proportions.

    Expected counts are the reference counts scaled to the current total; a value never seen in the reference
    has an expected count of 0, an infinite statistic and a p-value of 0.
    """
    stats = _stats()
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.size < 2:
        return 0.0, 1.0
    expected = ref * (cur.sum() / ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (cur - expected) ** 2 / expected
    stat = float(terms.sum())
    return stat, float(stats.chi2.sf(stat, ref.size - 1))


def two_proportion_z(x_ref: float, n_ref: float, x_cur: float, n_cur: float) -> tuple[float, float]:
    """Two-proportion z-test with a pooled variance: (z, two-sided p-value).

    Equal to Pearson's chi-square on the 2×2 table without continuity correction (z² = χ²).
    """
    stats = _stats()
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 1.0
    p_ref, p_cur = x_ref / n_ref, x_cur / n_cur
    pooled = (x_ref + x_cur) / (n_ref + n_cur)
    var = pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur)
    if var <= 0:
        return 0.0, 1.0
    z = (p_ref - p_cur) / math.sqrt(var)
    return float(z), float(2.0 * stats.norm.sf(abs(z)))


# -- distances on shares --------------------------------------------------------------------------------------------
def _normalized(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum()


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (natural log), the square root of the divergence, of two count/share vectors."""
    special = _special()
    p, q = _normalized(p), _normalized(q)
    m = (p + q) / 2.0
    js = (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / 2.0
    return float(math.sqrt(max(js, 0.0)))


def fill_zeros(shares: np.ndarray) -> np.ndarray:
    """Replace empty bins by a small share so log ratios stay finite: a millionth of the smallest non-empty share
    when that is at most 1e-4, else 1e-4."""
    out = np.array(shares, dtype=np.float64)
    zero = out == 0
    if zero.any() and not zero.all():
        smallest = out[~zero].min()
        out[zero] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index Σ (p − q)·ln(p/q) = Σ rel_entr(p, q) + rel_entr(q, p), on zero-filled shares."""
    special = _special()
    p, q = fill_zeros(p), fill_zeros(q)
    return float((special.rel_entr(p, q) + special.rel_entr(q, p)).sum())


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback–Leibler divergence KL(p ‖ q) of zero-filled shares, each renormalized to sum to 1."""
    special = _special()
    p, q = _normalized(fill_zeros(p)), _normalized(fill_zeros(q))
    return float(special.rel_entr(p, q).sum())


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance √(1 − Σ √(p·q)) of two share vectors."""
    bc = float(np.sqrt(_normalized(p) * _normalized(q)).sum())
    return math.sqrt(1.0 - min(max(bc, 0.0), 1.0))


def hellinger_density(ref_counts: np.ndarray, cur_counts: np.ndarray, edges: np.ndarray) -> float:
    """Hellinger distance of two histograms as densities on equal-width bins: √(1 − Σ √(f·g)·w)."""
    widths = np.diff(edges)
    f = np.asarray(ref_counts, dtype=np.float64) / (np.sum(ref_counts) * widths)
    g = np.asarray(cur_counts, dtype=np.float64) / (np.sum(cur_counts) * widths)
    width = (edges[-1] - edges[0]) / (edges.size - 1)
    bc = float(np.sqrt(f * g).sum() * width)
    return math.sqrt(1.0 - min(max(bc, 0.0), 1.0))


# -- binning --------------------------------------------------------------------------------------------------------
def sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """Equal-width bin edges over [lo, hi] by Sturges' rule for ``n`` values (numpy's ``bins="sturges"``)."""
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / (math.log2(n) + 1.0) if n > 0 else 0.0
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    bins = int(math.ceil((hi - lo) / width)) if width else 1
    return np.linspace(lo, hi, bins + 1, endpoint=True)


def histogram_sorted(
    values: np.ndarray, edges: np.ndarray, cum_weights: np.ndarray | None = None
) -> np.ndarray:
    """Counts of a sorted sample in the bins of ``edges``, as ``np.histogram`` counts them (half-open bins, the
    last one closed). ``cum_weights`` (cumulative weights, same length as ``values``) makes them weighted."""
    left = np.searchsorted(values, edges, side="left")
    last = np.searchsorted(values, edges[-1], side="right")
    idx = np.append(left[:-1], last)
    if cum_weights is None:
        return np.diff(idx).astype(np.float64)
    cw = np.concatenate([[0.0], cum_weights])
    return np.diff(cw[idx])


# -- multiple testing -----------------------------------------------------------------------------------------------
def bonferroni(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.minimum(p * p.size, 1.0)


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (step-up, monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


CORRECTIONS = {"bonferroni": bonferroni, "fdr_bh": fdr_bh}
