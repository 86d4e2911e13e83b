"""Columns that break other tools get a clear status: constant, empty, all-NaN, single-row, absent, retyped,
free text; missing-value changes and new categories are findings of their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo


def run(ref: dict | pd.DataFrame, cur: dict | pd.DataFrame, **kw) -> mlo.DriftReport:
    return mlo.drift(pd.DataFrame(ref), pd.DataFrame(cur), save=False, **kw)


@pytest.mark.parametrize("n", [10, 5000])
def test_constant_columns_compare_as_no_drift(n):
    r = run({"c": [3.0] * n, "s": ["a"] * n}, {"c": [3.0] * n, "s": ["a"] * n})
    for name in ("c", "s"):
        col = r.column(name)
        assert (col.status, col.drifted, col.statistic) == ("constant", False, 0.0), col
        assert "one and the same value" in col.note
    assert r.column("c").method == ("z" if n <= 1000 else "jensenshannon")


def test_a_constant_reference_against_a_changed_column_drifts():
    r = run({"c": [3.0] * 5000}, {"c": np.random.default_rng(0).normal(3, 1, 5000)})
    col = r.column("c")
    assert col.status == "ok" and col.method == "wasserstein" and col.drifted  # normed by the 0.001 floor


def test_empty_frames_give_empty_statuses_not_errors():
    ref = pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=object)})
    cur = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    r = run(ref, cur)
    assert r.columns.status.tolist() == ["empty", "empty"]
    assert r.n_columns == 0 and r.share_drifted == 0.0 and not r.dataset_drift
    assert "no rows in the reference" in r.column("a").note
    assert run(cur, ref).column("b").note == "no rows in the current data"
    assert "<table" in r._repr_html_() and "empty" in r.to_text()


def test_all_nan_columns_compare_missing_rates_only():
    n = 400
    ref = {"a": [np.nan] * n, "b": np.arange(n, dtype=float), "s": [None] * n}
    cur = {"a": [np.nan] * n, "b": [np.nan] * n, "s": [None] * n}
    r = run(ref, cur)
    a, b, s = r.column("a"), r.column("b"), r.column("s")
    assert (a.status, a.drifted, a.missing_ref, a.missing_cur) == ("all_nan", False, 1.0, 1.0)
    assert "no values in both samples" in a.note and s.status == "all_nan" and not s.drifted
    assert (b.status, b.drifted, b.missing_drift, b.value_drift) == ("all_nan", True, True, None)
    assert "no values in the current data" in b.note and "missing values 0.0% → 100.0%" in b.note


@pytest.mark.parametrize("side", ["reference", "current"])
def test_single_row_columns_are_compared_with_a_warning(side):
    one = {"x": [0.5], "c": ["a"]}
    many = {"x": np.linspace(0, 1, 300), "c": ["a", "b", "c"] * 100}
    r = run(one, many) if side == "reference" else run(many, one)
    x, c = r.column("x"), r.column("c")
    assert x.status == "single_row" and x.method == "ks" and 0 <= x.p_value <= 1
    assert c.status == "single_row" and c.method == "chisquare"
    assert "almost no power" in x.note
    single = run({"x": [1.0]}, {"x": [2.0]}).column("x")
    assert single.method == "z" and single.status == "single_row"


def test_missing_value_rate_changes_are_findings_and_count_as_drift():
    rng = np.random.default_rng(1)
    n = 5000
    values = rng.normal(size=n)
    more_missing = values.copy()
    more_missing[rng.random(n) < 0.2] = np.nan
    slightly = values.copy()
    slightly[rng.random(n) < 0.02] = np.nan
    r = run({"a": values, "b": values}, {"a": more_missing, "b": slightly})
    a, b = r.column("a"), r.column("b")
    assert (a.value_drift, a.missing_drift, a.drifted) == (False, True, True)
    assert a.missing_ref == 0 and a.missing_cur == pytest.approx(np.isnan(more_missing).mean())
    assert f"missing values 0.0% → {a.missing_cur:.1%}" in a.note
    assert (b.missing_drift, b.drifted) == (False, False)  # 2 points: below the 5-point tolerance
    assert run({"a": values}, {"a": more_missing}, missing_threshold=None).column("a").drifted is False
    assert run({"a": values}, {"a": slightly}, missing_threshold=0.01).column("a").drifted is True
    assert "Missing values changed in 1 column" in r._repr_html_()


def test_a_missing_rate_change_on_few_rows_needs_to_be_significant():
    r = run({"a": [1.0, 2.0, 3.0, 4.0]}, {"a": [1.0, np.nan, 3.0, 4.0]})  # 0% → 25%, but 1 of 4
    assert not r.column("a").missing_drift


def test_unseen_categories_are_counted_and_named():
    ref = {"city": ["paris", "lyon", "nice"] * 400}
    cur = {"city": ["paris", "lyon", "nice"] * 300 + ["brest"] * 200 + ["metz"] * 50 + [None] * 10}
    col = run(ref, cur).column("city")
    assert col.unseen == 2 and col.drifted
    assert "2 new values (21.7% of rows): 'brest', 'metz'" in col.note


def test_columns_absent_or_retyped_on_one_side():
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0], "gone": [1, 2, 3], "kind": [1.5, 2.5, 3.5]})
    cur = pd.DataFrame({"a": [1.0, 2.0, 3.0], "kind": ["x", "y", "z"], "extra": [1, 2, 3]})
    r = run(ref, cur)
    assert r.columns.column.tolist() == ["a", "gone", "kind"]  # new current columns are not compared
    gone, kind = r.column("gone"), r.column("kind")
    assert (gone.status, gone.drifted, gone.note) == ("missing_column", True, "absent from the current data")
    assert (kind.status, kind.drifted) == ("type_changed", True)
    assert "number in the reference, text in the current data" in kind.note
    assert (
        r.current["new_columns"] == ["extra"]
        and "Only in the current data (not compared): extra" in r._repr_html_()
    )
    asked = run(ref, cur, columns=["extra"]).column("extra")
    assert (asked.status, asked.note) == ("skipped", "not in the reference")


def test_infinities_are_left_out_and_said():
    col = run({"a": [1.0, 2.0, np.inf, 3.0]}, {"a": [1.0, -np.inf, 2.0, 3.0]}).column("a")
    assert col.status == "ok" and col.missing_ref == 0 and "2 infinite values left out" in col.note


def test_free_text_datetimes_and_odd_values_are_skipped_unless_asked_for():
    n = 300
    ref = pd.DataFrame(
        {
            "comment": [f"note {i}" for i in range(n)],
            "when": pd.date_range("2024-01-01", periods=n, freq="D"),
            "blob": [[i] for i in range(n)],
        }
    )
    cur = ref.assign(when=ref["when"] + pd.Timedelta(days=400))
    r = run(ref, cur)
    assert r.columns.status.tolist() == ["skipped"] * 3 and r.n_columns == 0
    assert "free text" in r.column("comment").note and "datetime" in r.column("when").note
    asked = run(ref, cur, method={"when": "ks", "comment": "chisquare"})
    when, comment = asked.column("when"), asked.column("comment")
    assert (when.kind, when.method, when.drifted) == ("numeric", "ks", True)
    assert (comment.kind, comment.method, comment.drifted) == ("categorical", "chisquare", False)


def test_nullable_and_categorical_dtypes():
    ref = pd.DataFrame(
        {
            "i": pd.array([1, 2, None, 4] * 300, dtype="Int64"),
            "b": pd.array([True, False, None] * 400, dtype="boolean"),
            "c": pd.Categorical(["a", "b"] * 600, categories=["a", "b", "z"]),
        }
    )
    r = run(ref, ref)
    assert r.columns.kind.tolist() == ["categorical"] * 3
    assert not r.columns.drifted.any() and (r.columns.unseen == 0).all()
    assert r.column("i").missing_ref == pytest.approx(0.25)


def test_unsupported_values_are_skipped_unless_a_method_is_given():
    ref = pd.DataFrame({"ok": np.arange(60.0), "d": [{"k": i % 3} for i in range(60)], "z": [1 + 2j] * 60})
    r = run(ref, ref)
    assert r.column("d").status == "skipped" and r.column("z").status == "skipped"
    assert "values that cannot be compared" in r.column("d").note
    asked = run(ref, ref.assign(d=[{"k": i % 4} for i in range(60)]), method={"d": "chisquare"}).column("d")
    assert (asked.kind, asked.method, asked.unseen, asked.drifted) == ("categorical", "chisquare", 1, True)
