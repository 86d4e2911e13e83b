"""Drift of Dask DataFrames on a real LocalCluster: per-partition sketches merged into the report the exact
comparison gives (verdicts equal, statistics within their bounds), with partitions generated lazily."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.drift import sketch
from mlo.errors import InvalidInput

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

PARTS, PER_PART = 8, 100_000  # 800,000 rows a side, generated where each partition is computed


def make_part(i: int, current: bool) -> pd.DataFrame:
    r = np.random.default_rng(1000 + 2 * i + int(current))
    n = PER_PART
    x = r.normal(0.12 if current else 0.0, 1.0, n)
    x[r.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "stable": r.lognormal(0.0, 1.0, n),
            "offset": 300.0 + r.normal(0.5 if current else 0.0, 2.0, n),  # e.g. temperatures in kelvin
            "count": r.poisson(3.0, n).astype(np.int64),
            "plan": pd.Categorical(
                r.choice(["basic", "pro", "max"], n, p=[0.5, 0.4, 0.1] if current else None)
            ),
            "flag": r.random(n) < 0.3,
        }
    )


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


def lazy(current: bool, parts: int = PARTS):
    return dd.from_map(make_part, list(range(parts)), current=current)


def test_dask_frames_give_the_exact_verdicts_with_statistics_within_their_bounds(client):
    ref, cur = lazy(False), lazy(True)
    rep = mlo.drift(ref, cur, save=False)
    exact = mlo.drift(ref.compute(), cur.compute(), save=False)
    assert rep.mode == "sketch" and rep.reference["rows"] == rep.current["rows"] == PARTS * PER_PART
    assert rep.reference["label"] == f"Dask DataFrame ({PARTS} partitions)"
    assert rep.drifted_columns == exact.drifted_columns == ["x", "offset", "plan"]
    for s, e in zip(rep.results, exact.results, strict=True):
        assert (s.method, s.status, s.kind) == (e.method, e.status, e.kind)
        assert s.missing_cur == e.missing_cur and s.missing_ref == e.missing_ref
        if s.error_bound == s.error_bound:
            assert abs(s.statistic - e.statistic) <= s.error_bound < 0.01
        else:  # categories, booleans and few-valued counts compare exactly
            assert s.statistic == pytest.approx(e.statistic, rel=1e-9)


def test_a_mix_of_dask_pandas_and_files_and_the_default_scheduler(tmp_path):
    ref_pd = make_part(0, False)
    path = tmp_path / "reference.parquet"
    ref_pd.to_parquet(path)
    cur = lazy(True, parts=2)
    exact = mlo.drift(ref_pd, cur.compute(), save=False)
    for reference in (ref_pd, str(path), sketch(ref_pd, center="mean")):  # no client: Dask's own scheduler
        rep = mlo.drift(reference, cur, save=False)
        assert rep.drifted_columns == exact.drifted_columns
    assert mlo.drift(cur, cur, save=False).n_drifted == 0


def test_sketches_of_partitions_merge_like_monitoring_windows(client):
    """A monitoring job keeps the reference's sketch and adds each window's."""
    ref_sketch = sketch(lazy(False, parts=4), center="mean")
    window = sketch(lazy(True, parts=1), center=ref_sketch)  # on the cluster
    day = sketch(make_part(0, True), center=ref_sketch)  # the same rows in memory
    assert window["x"].n == day["x"].n and np.array_equal(window["x"].pos_counts, day["x"].pos_counts)
    assert mlo.drift(ref_sketch, window.merge(day), save=False).drifted_columns == ["x", "offset", "plan"]


def test_columns_target_and_a_stored_report(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlo.init(tmp_path)
    rep = mlo.drift(lazy(False, 2), lazy(True, 2), columns=["x", "plan"], target="flag")
    assert [r.column for r in rep.results] == ["x", "plan", "flag"] and rep.results[-1].role == "target"
    back = mlo.DriftReport.load(rep.id)
    assert back.mode == "sketch" and back.column("x").error_bound == rep.column("x").error_bound


def test_what_dask_data_cannot_do_is_a_one_line_error(client):
    ref, cur = lazy(False, 2), lazy(True, 2)
    for kw, message in (
        ({"multivariate": True}, "multivariate=True needs rows in memory"),
        ({"prediction": (np.zeros(3), np.ones(3))}, "prediction must be the name of a column"),
        ({"columns": ["nope"]}, "columns not in the reference nor the current data"),
        ({"accuracy": 2}, "accuracy must be a relative error"),
    ):
        with pytest.raises(InvalidInput, match=message) as info:
            mlo.drift(ref, cur, save=False, **kw)
        assert "\n" not in str(info.value)
    with pytest.raises(InvalidInput, match="columns not in the Dask DataFrame: 'nope'"):
        sketch(ref, columns=["nope"])
