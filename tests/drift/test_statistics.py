"""Every drift statistic against scipy, to rtol 1e-9, on samples with ties, heavy tails, tiny and large sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from drift_samples import KINDS, SIZES, samples
from scipy import stats
from scipy.spatial import distance
from scipy.special import rel_entr

from mlo.drift import methods
from mlo.drift import statistics as st
from mlo.drift.samples import CategoricalPair, NumericPair, categorical_side, numeric_side

RTOL = 1e-9
pytestmark = pytest.mark.filterwarnings("ignore:p-value (capped|floored)")


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0)


def pair(a, b) -> NumericPair:
    return NumericPair(numeric_side(pd.Series(a)), numeric_side(pd.Series(b)))


def cases():
    for i, kind in enumerate(KINDS):
        for j, (n, m) in enumerate(SIZES):
            if n * m > 5e9 and kind not in ("normal", "ties"):
                continue
            yield pytest.param(kind, n, m, 1000 * i + j, id=f"{kind}-{n}x{m}")


def evidently_style_bins(a, b):
    """Reference and current shares as the binned distances define them, computed the plain numpy way: value by
    value when the reference has at most 20 distinct values, else Sturges bins over the pooled sample."""
    if np.unique(a).size <= 20:
        keys = np.union1d(a, b)
        return (
            np.array([np.sum(a == k) for k in keys]) / a.size,
            np.array([np.sum(b == k) for k in keys]) / b.size,
        )
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    return np.histogram(a, edges)[0] / a.size, np.histogram(b, edges)[0] / b.size


def filled(p):
    p = np.array(p, dtype=float)
    if (p == 0).any():
        smallest = p[p > 0].min()
        p[p == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return p


@pytest.mark.parametrize(("kind", "n", "m", "seed"), list(cases()))
def test_numeric_statistics_match_scipy(kind, n, m, seed):
    a, b = samples(kind, n, seed), samples(kind, m, seed + 1, shift=0.3)
    p = pair(a, b)

    ks = stats.ks_2samp(a, b)
    d, pv = p.ks()
    close(d, ks.statistic)
    close(pv, ks.pvalue)

    close(st.wasserstein_sorted(np.sort(a), np.sort(b)), stats.wasserstein_distance(a, b))
    close(st.wasserstein(p.merged), stats.wasserstein_distance(a, b))
    close(p.wasserstein_normed(), stats.wasserstein_distance(a, b) / max(np.std(a), 0.001))

    ref_share, cur_share = evidently_style_bins(a, b)
    close(methods.METHODS["jensenshannon"].compute(p)[0], distance.jensenshannon(ref_share, cur_share))
    fr, fc = filled(ref_share), filled(cur_share)
    close(methods.METHODS["psi"].compute(p)[0], np.sum(rel_entr(fr, fc) + rel_entr(fc, fr)))
    close(methods.METHODS["kl"].compute(p)[0], stats.entropy(fr, fc))

    if n > 1 and m > 1 and np.unique(np.concatenate([a, b])).size > 1:
        res = stats.anderson_ksamp([a, b], variant="midrank")
        stat, pv = p.anderson()
        close(stat, res.statistic)
        close(pv, res.pvalue)


@pytest.mark.parametrize(
    ("kind", "n", "m", "seed"), [c for c in cases() if c.values[0] in ("ties", "rounded")]
)
def test_counts_tests_match_scipy(kind, n, m, seed):
    a, b = samples(kind, n, seed), samples(kind, m, seed + 1)
    keys, ref, cur = pair(a, b).counts()
    np.testing.assert_array_equal(keys, np.union1d(a, b))
    np.testing.assert_array_equal(ref, [np.sum(a == k) for k in keys])
    np.testing.assert_array_equal(cur, [np.sum(b == k) for k in keys])
    if keys.size > 1 and (ref > 0).all():
        expected = stats.chisquare(cur, ref * (m / n))
        stat, pv = st.chisquare(ref, cur)
        close(stat, expected.statistic)
        close(pv, expected.pvalue)


def test_chisquare_gives_p_zero_for_a_value_never_seen_in_the_reference():
    stat, p = st.chisquare(np.array([10.0, 5.0, 0.0]), np.array([8.0, 6.0, 1.0]))
    assert stat == np.inf and p == 0.0


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(3, 10, 7, 10), (1, 2, 0, 3), (480, 1000, 530, 1000), (5, 100_000, 40, 90_000), (0, 50, 50, 50)],
)
def test_two_proportion_z_is_the_uncorrected_chi2_contingency(x1, n1, x2, n2):
    z, p = st.two_proportion_z(x1, n1, x2, n2)
    chi2, p_expected, *_ = stats.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    close(z * z, chi2)
    close(p, p_expected)


def test_z_method_counts_the_values_other_than_the_first_in_sorted_order():
    ref = pd.Series(["yes"] * 30 + ["no"] * 70)
    cur = pd.Series(["yes"] * 45 + ["no"] * 55)
    z, p = methods.METHODS["z"].compute(CategoricalPair(categorical_side(ref), categorical_side(cur)))
    # "no" sorts first: the shares compared are those of "yes"
    close(z, (0.30 - 0.45) / np.sqrt(0.375 * 0.625 * (1 / 100 + 1 / 100)))
    close(p, stats.chi2_contingency([[30, 70], [45, 55]], correction=False)[1])


def test_categorical_distances_match_scipy():
    rng = np.random.default_rng(3)
    ref = pd.Series(rng.choice(list("abcdefgh"), 5000, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]))
    cur = pd.Series(rng.choice(list("abcdefgx"), 3000))  # 'h' vanishes, 'x' appears
    p = CategoricalPair(categorical_side(ref), categorical_side(cur))
    keys, rc, cc = p.counts()
    assert sorted(keys) == sorted(set(ref) | set(cur))
    rs, cs = rc / rc.sum(), cc / cc.sum()
    assert rs[keys.index("x")] == 0 and cs[keys.index("h")] == 0
    close(methods.METHODS["jensenshannon"].compute(p)[0], distance.jensenshannon(rs, cs))
    fr, fc = filled(rs), filled(cs)
    close(methods.METHODS["psi"].compute(p)[0], np.sum(rel_entr(fr, fc) + rel_entr(fc, fr)))
    close(methods.METHODS["kl"].compute(p)[0], stats.entropy(fr, fc))
    close(methods.METHODS["hellinger"].compute(p)[0], np.sqrt(1 - np.sum(np.sqrt(rs * cs))))
    assert p.unseen() == (["x"], pytest.approx(cc[keys.index("x")] / cc.sum()))


@pytest.mark.parametrize("kind", ["normal", "cauchy", "ties"])
def test_hellinger_on_numeric_columns_uses_densities_over_the_distinct_values(kind):
    a, b = samples(kind, 3000, 5), samples(kind, 2000, 6, shift=0.5)
    keys = np.union1d(a, b)
    edges = np.histogram_bin_edges(keys, bins="sturges")
    f = np.histogram(a, edges, density=True)[0]
    g = np.histogram(b, edges, density=True)[0]
    width = (edges[-1] - edges[0]) / (len(edges) - 1)
    expected = np.sqrt(1 - min(np.sum(np.sqrt(f * g)) * width, 1.0))
    close(pair(a, b).hellinger(), expected)


@pytest.mark.parametrize("n", [1, 2, 10, 1000, 123_457])
def test_binning_helpers_match_numpy(n):
    x = np.sort(samples("lognormal", n, n))
    lo, hi = x[0], x[-1]
    np.testing.assert_array_equal(st.sturges_edges(lo, hi, n), np.histogram_bin_edges(x, bins="sturges"))
    edges = np.histogram_bin_edges(x, bins="sturges")
    np.testing.assert_array_equal(st.histogram_sorted(x, edges), np.histogram(x, edges)[0])
    w = np.random.default_rng(n).random(n)
    close(st.histogram_sorted(x, edges, np.cumsum(w)), np.histogram(x, edges, weights=w)[0])


def test_weighted_samples_match_scipy():
    rng = np.random.default_rng(11)
    a = np.sort(rng.normal(size=40))
    wa = rng.integers(1, 9, 40).astype(float)
    b = np.sort(rng.normal(0.4, size=25))
    m = st.merge(a, b, ref_weights=wa)
    close(st.wasserstein(m), stats.wasserstein_distance(a, b, u_weights=wa))
    close(st.ks_statistic(m), stats.ks_2samp(np.repeat(a, wa.astype(int)), b).statistic)


def test_multiple_testing_corrections_match_scipy():
    p = np.random.default_rng(2).random(40) ** 3
    close(st.fdr_bh(p), stats.false_discovery_control(p, method="bh"))
    close(st.bonferroni(p), np.minimum(p * 40, 1))
