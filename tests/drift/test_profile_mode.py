"""Profile mode: comparing with a reference snapshot's stored profile, without its rows; which statistics are
exact and which approximate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.data import profile as profile_module
from mlo.data.profile import profile_frame


def frame(n: int, shift: float, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "norm": r.normal(shift, 1, n),
            "skewed": r.lognormal(shift, 1, n),
            "few": r.integers(0, 4, n).astype(float) + (r.random(n) < shift),
            "int8": r.integers(0, 8, n),
            "city": r.choice(["paris", "lyon", "nice", "metz"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": r.random(n) < 0.3 + shift / 5,
            "sparse": np.where(r.random(n) < 0.1 + shift / 2, np.nan, r.normal(size=n)),
        }
    )


EXACT_COLUMNS = ["few", "int8", "city", "flag"]


@pytest.mark.parametrize(
    "method", ["auto", "jensenshannon", "psi", "kl", "hellinger", "chisquare", "ks", "wasserstein"]
)
def test_columns_fully_listed_in_the_profile_give_the_exact_statistics(method):
    ref, cur = frame(20_000, 0.0, 1), frame(15_000, 0.3, 2)
    exact = mlo.drift(ref, cur, method=method, save=False).columns.set_index("column")
    prof = mlo.drift(profile_frame(ref), cur, method=method, save=False)
    assert prof.mode == "profile"
    got = prof.columns.set_index("column")
    pd.testing.assert_series_equal(
        got.method, exact.method
    )  # the same choice, also where a method falls back
    for col in EXACT_COLUMNS:
        assert got.loc[col, "exact"], col
        np.testing.assert_allclose(got.loc[col, "statistic"], exact.loc[col, "statistic"], rtol=1e-9)
        np.testing.assert_allclose(got.loc[col, "p_value"], exact.loc[col, "p_value"], rtol=1e-9)
        assert got.loc[col, "drifted"] == exact.loc[col, "drifted"]
        assert "approximate" not in got.loc[col, "note"]
    # missing-value rates are exact everywhere
    pd.testing.assert_series_equal(got.missing_ref, exact.missing_ref)
    pd.testing.assert_series_equal(got.missing_cur, exact.missing_cur)


@pytest.mark.parametrize(
    ("method", "tolerance"),
    [("wasserstein", 0.05), ("ks", 0.05), ("jensenshannon", 0.1), ("psi", 0.25), ("hellinger", 0.1)],
)
def test_continuous_columns_are_approximate_and_close(method, tolerance):
    ref, cur = frame(40_000, 0.0, 3), frame(30_000, 0.25, 4)
    exact = mlo.drift(ref, cur, method=method, columns=["norm", "skewed", "sparse"], save=False).columns
    prof = mlo.drift(profile_frame(ref), cur, method=method, columns=["norm", "skewed", "sparse"], save=False)
    got = prof.columns
    assert not got.exact.any()
    assert got.note.str.contains("approximate: reference CDF interpolated from its profile").all()
    np.testing.assert_allclose(got.statistic, exact.statistic, rtol=tolerance)
    assert (got.drifted == exact.drifted).all()
    html = prof._repr_html_()
    assert "Approximate statistics (reference from its stored profile) in 3 of 3 columns" in html
    assert f"{method} ≈" in html


def test_a_snapshot_reference_is_not_loaded_in_profile_mode(sqlite_ws):
    ref, cur = frame(5000, 0.0, 5), frame(5000, 0.4, 6)
    snap = mlo.snapshot(ref, "train")
    sqlite_ws.blobs.path(snap.blob).unlink()  # the rows are gone; the profile stays in the metadata
    r = mlo.drift("train", cur, mode="profile")
    assert r.mode == "profile" and r.reference["ref"] == "snapshot:train@1" and r.id
    assert r.column("norm").drifted and not r.column("int8").drifted
    with pytest.raises(mlo.MloError):
        mlo.drift("train", cur)  # exact mode needs the rows


def test_sampled_profiles_make_counts_approximate(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 2000)
    ref, cur = frame(8000, 0.0, 7), frame(8000, 0.0, 8)
    prof = profile_frame(ref)
    assert all(0 < p.get("sampled", 0) <= 2000 for p in prof)
    r = mlo.drift(prof, cur, save=False)
    city = r.column("city")
    assert not city.exact and "reference counts scaled from a sample" in city.note
    assert not r.dataset_drift


def test_many_categories_pool_what_the_profile_does_not_list():
    rng = np.random.default_rng(9)
    values = [f"k{i}" for i in range(120)]
    ref = pd.DataFrame({"k": rng.choice(values, 30_000)})
    cur = pd.DataFrame({"k": rng.choice(values + ["brand-new"], 30_000)})
    col = mlo.drift(profile_frame(ref), cur, save=False).column("k")
    assert not col.exact and "the rest are pooled" in col.note
    assert col.unseen == 0  # an unseen value cannot be told from the reference's unlisted ones
    assert mlo.drift(ref, cur, save=False).column("k").unseen == 1


def test_methods_that_need_the_rows_say_so():
    ref, cur = frame(3000, 0.0, 10), frame(3000, 0.0, 11)
    r = mlo.drift(profile_frame(ref), cur, method={"norm": "anderson"}, save=False)
    col = r.column("norm")
    assert (col.status, col.drifted) == ("error", False)
    assert "anderson needs the reference values: use mode='exact'" in col.note
    with pytest.raises(mlo.InvalidInput, match="mode='profile' needs a snapshot"):
        mlo.drift(ref, cur, mode="profile", save=False)
    with pytest.raises(mlo.InvalidInput, match="multivariate=True needs the reference rows"):
        mlo.drift(profile_frame(ref), cur, multivariate=True, save=False)
    with pytest.raises(mlo.InvalidInput, match="the current data must be rows"):
        mlo.drift(ref, profile_frame(cur), save=False)


def test_edge_cases_from_a_profile():
    ref = pd.DataFrame({"const": [2.0] * 3000, "nan": [np.nan] * 3000, "x": np.arange(3000.0)})
    cur = pd.DataFrame({"const": [2.0] * 3000, "nan": np.arange(3000.0), "x": np.arange(3000.0)})
    r = mlo.drift(profile_frame(ref), cur, save=False)
    assert r.column("const").status == "constant" and r.column("const").exact
    assert r.column("nan").status == "all_nan" and r.column("nan").missing_drift
    assert not r.column("x").drifted
    empty = mlo.drift(profile_frame(ref.iloc[:0]), cur, save=False)
    assert set(empty.columns.status) == {"empty"}
