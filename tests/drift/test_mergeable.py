"""Mergeable sketches: the same verdicts as the exact comparison, statistics within their stated bounds, merges that
do not depend on how the data was chunked, and clear errors for what cannot work."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.drift import DatasetSketch, merge_all, sketch
from mlo.errors import InvalidInput

N = 20_000


def _frames(case: str, seed: int):
    r = np.random.default_rng(seed)
    n = N
    if case == "normal_unshifted":
        return pd.DataFrame({"x": r.normal(0, 1, n)}), pd.DataFrame({"x": r.normal(0, 1, n)})
    if case == "normal_shifted":
        return pd.DataFrame({"x": r.normal(0, 1, n)}), pd.DataFrame({"x": r.normal(0.15, 1, n)})
    if case == "near_threshold":  # a normed Wasserstein distance of about 0.1
        return pd.DataFrame({"x": r.normal(0, 1, n)}), pd.DataFrame({"x": r.normal(0.1, 1, n)})
    if case == "lognormal_scaled":
        return pd.DataFrame({"x": r.lognormal(0, 1, n)}), pd.DataFrame({"x": r.lognormal(0.1, 1.1, n)})
    if case == "heavy_tails":
        return pd.DataFrame({"x": r.standard_cauchy(n)}), pd.DataFrame({"x": r.standard_cauchy(n) + 0.2})
    if case == "offset":  # large values, small spread: the loosest bound
        return pd.DataFrame({"x": 1e4 + r.normal(0, 1, n)}), pd.DataFrame({"x": 1e4 + r.normal(0.3, 1, n)})
    if case == "mixed_signs_and_zeros":
        a = np.where(r.random(n) < 0.2, 0.0, r.normal(0, 2, n))
        b = np.where(r.random(n) < 0.3, 0.0, r.normal(0.1, 2, n))
        return pd.DataFrame({"x": a}), pd.DataFrame({"x": b})
    if case == "nan_heavy":
        a, b = r.normal(0, 1, n), r.normal(0.2, 1, n)
        a[r.random(n) < 0.6] = np.nan
        b[r.random(n) < 0.7] = np.nan
        b[:5] = np.inf
        return pd.DataFrame({"x": a}), pd.DataFrame({"x": b})
    if case == "few_values":
        return (
            pd.DataFrame({"x": r.integers(0, 4, n).astype(float), "i": r.integers(0, 8, n)}),
            pd.DataFrame({"x": r.integers(0, 5, n).astype(float), "i": r.integers(0, 9, n)}),
        )
    if case == "categorical":
        levels = np.array(["a", "b", "c", "d"])
        return (
            pd.DataFrame({"c": levels[r.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])], "b": r.random(n) < 0.3}),
            pd.DataFrame({"c": np.append(levels[r.choice(4, n - 50)], ["new"] * 50), "b": r.random(n) < 0.4}),
        )
    if case == "pandas_category":
        cat = pd.CategoricalDtype(["x", "y", "z"])
        return (
            pd.DataFrame({"c": pd.Series(r.choice(["x", "y"], n)).astype(cat)}),
            pd.DataFrame({"c": pd.Series(r.choice(["x", "y", "z"], n)).astype(cat)}),
        )
    if case == "constant":
        return pd.DataFrame({"x": [2.5] * n, "s": ["k"] * n}), pd.DataFrame({"x": [2.5] * n, "s": ["k"] * n})
    if case == "single_value":
        return pd.DataFrame({"x": r.normal(0, 1, n)}), pd.DataFrame({"x": [0.3]})
    if case == "all_nan_current":
        return pd.DataFrame({"x": r.normal(0, 1, n)}), pd.DataFrame({"x": [np.nan] * 100})
    if case == "wide_ints":
        return (
            pd.DataFrame({"i": r.integers(0, 100_000, n)}),
            pd.DataFrame({"i": r.integers(0, 120_000, n)}),
        )
    if case == "text_and_dates":
        ids = np.array([f"id-{k}" for k in range(n)])
        dates = pd.date_range("2024-01-01", periods=n, freq="min")
        return pd.DataFrame({"t": ids, "d": dates}), pd.DataFrame({"t": ids[::-1].copy(), "d": dates})
    raise ValueError(case)


CASES = [
    "normal_unshifted",
    "normal_shifted",
    "near_threshold",
    "lognormal_scaled",
    "heavy_tails",
    "offset",
    "mixed_signs_and_zeros",
    "nan_heavy",
    "few_values",
    "categorical",
    "pandas_category",
    "constant",
    "single_value",
    "all_nan_current",
    "wide_ints",
    "text_and_dates",
]


def _compare(exact: mlo.DriftReport, sketched: mlo.DriftReport) -> None:
    assert sketched.mode == "sketch"
    for e, s in zip(exact.results, sketched.results, strict=True):
        assert (s.column, s.kind, s.method, s.status) == (e.column, e.kind, e.method, e.status), (e, s)
        assert (s.rows_ref, s.rows_cur, s.missing_drift, s.unseen) == (
            e.rows_ref,
            e.rows_cur,
            e.missing_drift,
            e.unseen,
        )
        for attr in ("missing_ref", "missing_cur"):
            a, b = getattr(e, attr), getattr(s, attr)
            assert (math.isnan(a) and math.isnan(b)) or a == b
        if math.isnan(e.statistic):
            assert math.isnan(s.statistic)
            continue
        if math.isnan(s.error_bound):  # exact: categorical, or every value kept
            assert s.exact and s.statistic == pytest.approx(e.statistic, rel=1e-9, abs=1e-12), (e, s)
            assert s.drifted == e.drifted
            continue
        assert not s.exact and "approximate" in s.note
        if s.method == "ks":  # the sketch reads the CDFs at bucket edges: a lower bound, within the bound
            assert s.statistic <= e.statistic + 1e-12
            assert e.statistic <= s.statistic + s.error_bound + 1e-12, (e, s)
        else:
            assert abs(s.statistic - e.statistic) <= s.error_bound, (e, s)
        if "within the error bound" not in s.note:  # a verdict the bound cannot flip is the exact one
            assert s.drifted == e.drifted, (e, s)
        if s.method != "ks" and abs(e.statistic - e.threshold) <= s.error_bound:
            assert "within the error bound" in s.note


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["auto", "ks"])
def test_sketches_give_the_exact_verdicts_and_statistics_within_their_bounds(case, method):
    ref, cur = _frames(case, seed=CASES.index(case))
    kw = {"save": False} if method == "auto" else {"save": False, "method": "ks"}
    exact = mlo.drift(ref, cur, **kw)
    _compare(exact, mlo.drift(sketch(ref), sketch(cur), **kw))  # buckets around 0
    _compare(exact, mlo.drift(sketch(ref), cur, **kw))  # the DataFrame side sketched alike
    ref_sketch = sketch(ref, center="mean")  # the documented pattern: windows sketched around the reference's
    _compare(exact, mlo.drift(ref_sketch, sketch(cur, center=ref_sketch), **kw))


def test_far_from_zero_values_need_centred_buckets_and_the_bound_says_so():
    ref, cur = _frames("offset", seed=4)
    exact = mlo.drift(ref, cur, save=False).column("x")
    loose = mlo.drift(sketch(ref), sketch(cur), save=False).column("x")  # buckets around 0: 20 wide at 1e4
    assert loose.error_bound > 1 and "within the error bound" in loose.note
    assert abs(loose.statistic - exact.statistic) <= loose.error_bound
    ref_sketch = sketch(ref, center="mean")
    for tight in (
        mlo.drift(ref_sketch, sketch(cur, center=ref_sketch), save=False),
        mlo.drift(ref, sketch(cur, center=ref_sketch), save=False),  # the DataFrame side takes its centres
    ):
        col = tight.column("x")
        assert col.error_bound < 0.01 and col.drifted == exact.drifted
        assert abs(col.statistic - exact.statistic) <= col.error_bound
    off = mlo.drift(sketch(ref, center="mean"), sketch(cur), save=False).column("x")
    assert off.status == "error" and "center=reference_sketch" in off.note


@pytest.mark.parametrize("accuracy", [1e-2, 1e-4])
def test_the_bound_holds_at_other_accuracies_and_tightens_with_them(accuracy):
    ref, cur = _frames("lognormal_scaled", seed=3)
    exact = mlo.drift(ref, cur, save=False)
    s = mlo.drift(ref, sketch(cur, accuracy=accuracy), save=False)  # the DataFrame side is sketched alike
    _compare(exact, s)
    assert s.column("x").error_bound == pytest.approx(
        accuracy * (ref.x.abs().mean() + cur.x.abs().mean()) / ref.x.std(ddof=0), rel=1e-6
    )


def test_a_sketch_of_chunks_merged_in_any_order_equals_the_sketch_of_the_whole():
    ref, cur = _frames("nan_heavy", seed=5)
    ref2, _ = _frames("categorical", seed=6)
    ref = pd.concat([ref, ref2], axis=1)
    whole = sketch(ref)
    chunks = [sketch(ref.iloc[i : i + 3000]) for i in range(0, len(ref), 3000)]
    for merged in (merge_all(chunks), merge_all(chunks[::-1]), chunks[0].merge(merge_all(chunks[1:]))):
        assert merged.rows == whole.rows
        for name, col in whole.columns.items():
            m = merged[name]
            assert (m.rows, m.missing, m.infinite, m.n, m.zero) == (
                col.rows,
                col.missing,
                col.infinite,
                col.n,
                col.zero,
            )
            assert m.mean == pytest.approx(col.mean) and m.m2 == pytest.approx(col.m2)
            assert np.array_equal(m.pos_keys, col.pos_keys) and np.array_equal(m.pos_counts, col.pos_counts)
            assert np.array_equal(m.neg_keys, col.neg_keys) and np.array_equal(m.neg_counts, col.neg_counts)
            if col.counts is not None:
                assert m.counts.sort_index().equals(col.counts.sort_index())
    a = mlo.drift(whole, sketch(cur), save=False)
    b = mlo.drift(merge_all(chunks[::-1]), sketch(cur), save=False)
    assert [r.statistic for r in a.results] == pytest.approx(
        [r.statistic for r in b.results], rel=1e-9, nan_ok=True
    )


def test_few_exact_values_per_chunk_stay_exact_until_their_union_is_too_large():
    chunks = [pd.DataFrame({"x": np.arange(k * 10, k * 10 + 10, dtype=float)}) for k in range(5)]
    merged = merge_all(sketch(c) for c in chunks)
    assert merged["x"].values is None  # 50 distinct values in all: buckets from now on
    assert merge_all(sketch(c) for c in chunks[:2])["x"].values.size == 20


def test_a_sketch_survives_json_and_gives_the_same_report():
    ref, cur = _frames("categorical", seed=2)
    ref["x"], cur["x"] = np.linspace(0, 1, N), np.linspace(0.1, 1.2, N)
    ref_sketch = DatasetSketch.from_dict(json.loads(json.dumps(sketch(ref).to_dict())))
    a = mlo.drift(ref_sketch, cur, save=False)
    b = mlo.drift(sketch(ref), cur, save=False)
    assert a.columns.drop(columns="note").equals(b.columns.drop(columns="note"))
    assert repr(ref_sketch).startswith(f"DatasetSketch({N:,} rows, 3 columns")


def test_the_report_from_sketches_is_stored_and_loads_with_its_bounds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlo.init(tmp_path)
    ref, cur = _frames("normal_shifted", seed=1)
    rep = mlo.drift(sketch(ref), sketch(cur))
    back = mlo.DriftReport.load(rep.id)
    assert back.mode == "sketch" and back.column("x").error_bound == rep.column("x").error_bound > 0
    assert "error_bound" in back.columns.columns and "sketch mode" in back.to_html()


def test_empty_current_data_reads_as_empty_like_the_exact_comparison():
    ref = pd.DataFrame({"x": np.arange(100.0), "s": ["a", "b"] * 50})
    cur = ref.iloc[:0]
    exact, sketched = mlo.drift(ref, cur, save=False), mlo.drift(sketch(ref), sketch(cur), save=False)
    assert [r.status for r in sketched.results] == [r.status for r in exact.results] == ["empty", "empty"]


def test_a_column_absent_on_one_side_is_reported_as_in_the_exact_comparison():
    ref = pd.DataFrame({"x": np.arange(100.0), "gone": np.arange(100.0)})
    cur = pd.DataFrame({"x": np.arange(100.0), "new": np.arange(100.0)})
    s = mlo.drift(sketch(ref), sketch(cur), save=False)
    assert s.column("gone").status == "missing_column" and s.current["new_columns"] == ["new"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, c: mlo.drift(sketch(r), c, multivariate=True, save=False), "multivariate=True needs rows"),
        (lambda r, c: mlo.drift(sketch(r), c, mode="profile", save=False), "mode='profile'"),
        (lambda r, c: mlo.drift(r, c, accuracy=0.01, save=False), "accuracy= applies to Dask"),
        (lambda r, c: mlo.drift(sketch(r), c, accuracy=0.01, save=False), "differs from that of the sketch"),
        (lambda r, c: mlo.drift(sketch(r, accuracy=0.01), sketch(c), save=False), "different accuracy"),
        (
            lambda r, c: mlo.drift(sketch(r), c, prediction=(r.x, c.x), save=False),
            "prediction must be the name",
        ),
        (lambda r, c: sketch(r).merge(sketch(c, accuracy=0.01)), "do not merge"),
        (lambda r, c: sketch(r).merge(r), "can only merge a DatasetSketch"),
        (lambda r, c: sketch(r, accuracy=0), "accuracy must be a relative error"),
        (lambda r, c: sketch(r, accuracy=True), "accuracy must be a relative error"),
        (lambda r, c: sketch([1, 2, 3]), "can sketch a pandas or Dask DataFrame"),
        (lambda r, c: sketch(r, columns=["nope"]), "columns not in the data: 'nope'"),
        (lambda r, c: merge_all([]), "nothing to merge"),
        (lambda r, c: DatasetSketch.from_dict({"columns": [{"name": "x"}]}), "not a column sketch"),
        (lambda r, c: DatasetSketch.from_dict("{}"), "not a dataset sketch"),
    ],
)
def test_what_cannot_work_says_what_to_do_in_one_line(call, message):
    ref, cur = _frames("normal_shifted", seed=0)
    with pytest.raises(InvalidInput, match=message) as info:
        call(ref, cur)
    assert "\n" not in str(info.value)


def test_explicit_methods_that_need_values_fail_per_column_not_the_report():
    ref, cur = _frames("normal_shifted", seed=0)
    rep = mlo.drift(sketch(ref), sketch(cur), method={"x": "anderson"}, save=False)
    col = rep.column("x")
    assert col.status == "error" and "anderson needs the values themselves" in col.note
    rep = mlo.drift(sketch(ref), sketch(cur), method={"x": "chisquare"}, save=False)
    assert rep.column("x").status == "error" and "too many distinct" in rep.column("x").note
    rep = mlo.drift(sketch(ref), sketch(cur), method="psi", save=False)
    exact = mlo.drift(ref, cur, method="psi", save=False)
    assert rep.column("x").statistic == pytest.approx(exact.column("x").statistic, rel=0.05)
