"""The automatic method choice at its boundaries (1000 reference values, 5 distinct values, 2 categories),
column kinds, thresholds and the drift decision of each method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.drift.methods import METHODS, auto_method, infer_kind


def one_column(ref, cur, **kw):
    report = mlo.drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), save=False, **kw)
    return report.column("x")


def values(n: int, distinct: int, seed: int = 0, dtype=float) -> np.ndarray:
    """n values cycling over ``distinct`` different ones (all present), shuffled."""
    v = (np.arange(n) % distinct).astype(dtype)
    np.random.default_rng(seed).shuffle(v)
    return v


@pytest.mark.parametrize(
    ("n_ref", "distinct", "expected"),
    [
        (1000, 6, "ks"),
        (1000, 5, "chisquare"),
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1000, 1, "z"),
        (1001, 6, "wasserstein"),
        (1001, 5, "jensenshannon"),
        (1001, 2, "jensenshannon"),
        (5, 3, "chisquare"),
        (50_000, 1000, "wasserstein"),
    ],
)
def test_auto_picks_by_reference_size_and_distinct_values_for_numeric_columns(n_ref, distinct, expected):
    r = one_column(values(n_ref, distinct), values(800, distinct, seed=1))
    assert (r.kind, r.method) == ("numeric", expected)
    assert auto_method("numeric", n_ref, distinct).name == expected


@pytest.mark.parametrize(
    ("n_ref", "categories", "expected"),
    [
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1001, 3, "jensenshannon"),
        (1001, 2, "jensenshannon"),
        (10, 1, "z"),
    ],
)
def test_auto_picks_by_reference_size_and_categories_for_categorical_columns(n_ref, categories, expected):
    labels = np.array(list("abcdefg"))
    r = one_column(
        labels[values(n_ref, categories, dtype=int)], labels[values(300, categories, seed=2, dtype=int)]
    )
    assert (r.kind, r.method) == ("categorical", expected)


def test_reference_size_counts_values_not_rows():
    ref = values(1001, 10)
    ref[0] = np.nan  # 1000 values left
    assert one_column(ref, values(500, 10)).method == "ks"
    ref[1] = np.inf  # infinities are left out too
    r = one_column(ref, values(500, 10))
    assert r.method == "ks" and "1 infinite values left out" in r.note


def test_distinct_values_are_counted_over_both_samples():
    # 5 distinct in the reference, a 6th in the current data: 6 over both, so KS
    assert one_column(values(600, 5), np.append(values(100, 5), 17.0)).method == "ks"
    # 2 categories in the reference, a third in the current data: chi-square, not z
    r = one_column(np.array(["a", "b"] * 200), np.array(["a", "b", "c"] * 100))
    assert r.method == "chisquare" and r.unseen == 1


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (pd.Series([0.5, 1.5, 2.5]), "numeric"),
        (pd.Series(np.arange(100) % 10), "categorical"),  # 10 distinct integers
        (pd.Series(np.arange(100) % 11), "numeric"),  # 11 distinct integers
        (pd.Series(pd.array([1, 2, None] * 10, dtype="Int64")), "categorical"),
        (pd.Series([True, False] * 5), "categorical"),
        (pd.Series(["a", "b"] * 50), "categorical"),
        (pd.Series(["a", "b"] * 50, dtype="category"), "categorical"),
        (
            pd.Series([f"note {i}" for i in range(99)] + ["x"] * 101),
            "categorical",
        ),  # 100 distinct of 200: not > half
        (pd.Series([f"note {i}" for i in range(100)] + ["x"] * 100), "text"),  # 101 of 200
        (pd.Series([f"note {i}" for i in range(50)]), "categorical"),  # all distinct, but only 50
        (pd.Series(pd.date_range("2024-01-01", periods=5)), "datetime"),
        (pd.Series([[1], [2]]), "unsupported"),
    ],
)
def test_column_kinds(series, kind):
    assert infer_kind(series) == kind


def test_every_method_can_be_chosen_and_keeps_its_default_threshold(mixed_frames):
    ref, cur = mixed_frames
    for name, m in METHODS.items():
        kinds = m.kinds
        cols = [c for c in ref.columns if ("numeric" if c.startswith("n") else "categorical") in kinds]
        report = mlo.drift(ref, cur, columns=cols, method=name, save=False)
        assert set(report.columns.method) == {name}, name
        assert set(report.columns.threshold) == {m.default_threshold}
        if name != "z":  # z compares the share of the first value: meaningless on a continuous column
            assert report.column("n0").drifted, name
        assert not report.column("n4").value_drift or name in ("chisquare", "z"), name


def test_a_method_for_every_column_applies_where_it_fits(mixed_frames):
    ref, cur = mixed_frames
    report = mlo.drift(ref, cur, method="ks", save=False)
    assert report.column("n0").method == "ks"
    city = report.column("city")  # ks does not compare categories: the automatic choice stands in
    assert city.method == "jensenshannon" and "ks does not fit categorical columns" in city.note


def test_thresholds_per_column_and_the_decision_rule():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.normal(size=5000)})
    cur = pd.DataFrame({"a": rng.normal(0.15, size=5000), "b": rng.normal(0.15, size=5000)})
    report = mlo.drift(ref, cur, threshold={"a": 0.5}, save=False)
    a, b = report.column("a"), report.column("b")
    assert a.statistic == pytest.approx(b.statistic, rel=0.3)
    assert (a.threshold, a.drifted) == (0.5, False)
    assert (b.threshold, b.drifted) == (0.1, True)
    ks = METHODS["ks"]
    assert ks.drifted(0.3, 0.05, 0.05) and not METHODS["chisquare"].drifted(0.3, 0.05, 0.05)
    assert METHODS["wasserstein"].drifted(0.1, None, 0.1)


def test_bad_arguments_say_what_to_fix(mixed_frames):
    ref, cur = mixed_frames
    with pytest.raises(mlo.InvalidInput, match="unknown drift method 'kolmogorov'"):
        mlo.drift(ref, cur, method="kolmogorov", save=False)
    with pytest.raises(
        mlo.InvalidInput, match="method 'ks' compares numeric columns; column 'city' is categorical"
    ):
        mlo.drift(ref, cur, method={"city": "ks"}, save=False)
    with pytest.raises(mlo.InvalidInput, match="unknown correction"):
        mlo.drift(ref, cur, correction="holm", save=False)
    with pytest.raises(mlo.InvalidInput, match="not in the reference nor the current data: 'nope'"):
        mlo.drift(ref, cur, columns=["nope"], save=False)
    with pytest.raises(mlo.InvalidInput, match="method given for 'cty', which is not compared"):
        mlo.drift(ref, cur, method={"cty": "chisquare"}, save=False)
    with pytest.raises(mlo.InvalidInput, match="threshold given for 'n9'"):
        mlo.drift(ref, cur, threshold={"n9": 0.2}, save=False)
    with pytest.raises(mlo.InvalidInput, match="current: column names must be unique; rename 'n0'"):
        mlo.drift(ref, cur.rename(columns={"n1": "n0"}), save=False)
    with pytest.raises(mlo.InvalidInput, match="drift_share"):
        mlo.drift(ref, cur, drift_share=0, save=False)


def test_corrections_adjust_p_values_and_flags():
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({f"c{i}": rng.normal(size=300) for i in range(20)})
    cur = pd.DataFrame({f"c{i}": rng.normal(0.25 if i == 0 else 0.0, size=300) for i in range(20)})
    plain = mlo.drift(ref, cur, save=False).columns
    bonf = mlo.drift(ref, cur, correction="bonferroni", save=False).columns
    bh = mlo.drift(ref, cur, correction="fdr_bh", save=False).columns
    assert set(plain.method) == {"ks"}
    np.testing.assert_allclose(bonf.p_adjusted, np.minimum(plain.p_value * 20, 1.0))
    assert (bonf.p_value == plain.p_value).all() and plain.p_adjusted.isna().all()
    assert (bh.p_adjusted >= bh.p_value - 1e-12).all() and (bh.p_adjusted <= bonf.p_adjusted + 1e-12).all()
    assert bonf.drifted.sum() <= bh.drifted.sum() <= plain.drifted.sum()
    assert (bonf.drifted == (bonf.p_adjusted <= 0.05)).all()
