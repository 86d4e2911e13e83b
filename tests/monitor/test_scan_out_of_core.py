"""Monitoring out of core: the DuckDB scan gives the numbers the in-memory path gives, on every kind of log, and a
sampled window's drift stays within its sampling error."""

from __future__ import annotations

import numpy as np
import pandas as pd
from monitor_data import T0, make, serve_like

import mlo
from mlo.monitor import reporting, scan
from mlo.monitor.log import PredictionLogger


def _both(monkeypatch, *args, **kwargs):
    """The same report by the scan and by the in-memory path."""
    new = mlo.monitor.report(*args, save=False, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(reporting, "_open_scan", lambda *a, **k: None)
        old = mlo.monitor.report(*args, save=False, **kwargs)
    return new, old


def _same(new, old):
    assert new.rows == old.rows and new.task == old.task and new.version == old.version
    assert new.notes == old.notes and new.reference == old.reference
    a, b = new.windows, old.windows
    assert list(a.columns) == list(b.columns)
    a = a.drop(columns=["rows_per_s"], errors="ignore")  # depends on the clock for the newest window
    b = b.drop(columns=["rows_per_s"], errors="ignore")
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


def test_batch_logs_with_drift_labels_and_row_windows(trained, monkeypatch):
    trained.log_hours(4, drift_from=2, n=700)
    _same(*_both(monkeypatch, "churn", window="1h"))
    _same(*_both(monkeypatch, "churn", window="1000 rows"))
    _same(*_both(monkeypatch, "churn", window="30min", since=T0 + pd.Timedelta(minutes=50)))
    _same(*_both(monkeypatch, "churn", window="1h", until=T0 + pd.Timedelta(hours=2, minutes=30)))


def test_server_records_with_a_canary_errors_and_latency(trained, monkeypatch):
    serve_like(trained, canary_error_every=10)
    new, old = _both(monkeypatch, "churn", window="5min")
    _same(new, old)
    assert new.windows["canary_worse"].any() and new.windows["latency_p99"].notna().all()
    _same(*_both(monkeypatch, "churn", window="100 rows"))  # ties in time: one request per second per route


def test_labels_that_arrive_later_and_a_relabel(trained, monkeypatch):
    rng = np.random.default_rng(5)
    X, y = make(900, rng)
    ids = mlo.monitor.log("churn@production", X, trained.model.predict(X[["age", "income"]]), timestamps=T0)
    _same(*_both(monkeypatch, "churn", window="1h"))  # no label yet: no accuracy column
    mlo.monitor.label(ids[:500], y[:500], timestamps=T0 + pd.Timedelta(hours=1))
    mlo.monitor.label(ids[:100], 1 - y[:100], timestamps=T0 + pd.Timedelta(hours=2))  # the latest label wins
    new, old = _both(monkeypatch, "churn", window="1h")
    _same(new, old)
    assert new.windows["labeled"].tolist() == [500]


def test_probabilities_regression_and_missing_values(sqlite_ws, monkeypatch):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(7)
    X, y = make(1200, rng)
    clf = LogisticRegression().fit(X[["age", "income"]], y)
    mlo.register_model(clf, "proba", input_example=X[["age", "income"]].head())
    Xm = X.copy()
    Xm.loc[::7, "age"] = np.nan
    Xm.loc[::11, "plan"] = None
    mlo.monitor.log("proba@v1", Xm, clf.predict_proba(X[["age", "income"]]), labels=y, timestamps=T0)
    new, old = _both(monkeypatch, "proba", window="1h")
    _same(new, old)
    assert new.windows["missing_rate"].iloc[0] > 0 and "accuracy" in new.windows

    reg = LinearRegression().fit(X[["age", "income"]], X["income"] * 2.0)
    mlo.register_model(reg, "price", input_example=X[["age", "income"]].head())
    target = X["income"].to_numpy() * 2.0 + rng.normal(0, 1, len(X))
    mlo.monitor.log("price@v1", X, reg.predict(X[["age", "income"]]), labels=target, timestamps=T0)
    new, old = _both(monkeypatch, "price", window="1h")
    _same(new, old)
    assert new.task == "regression" and new.windows["mae"].iloc[0] > 0


def test_refused_input_from_older_servers_is_left_out_the_same_way(trained, monkeypatch):
    logger = PredictionLogger()
    s = logger.stream("churn", 1, "production", "stable", {"age": None, "income": None, "plan": None})
    t0 = int(T0.value // 1000)
    for i in range(200):
        row = {"age": [40.0 + i % 9], "income": [50.0], "plan": ["a"]}
        if i % 10 == 0:  # what an older server logged for a refused request: an error, no model call
            s.append(row, None, n=1, error="bad input", ts_us=t0 + i * 1_000_000)
        else:
            s.append(row, [1], n=1, latency_ms=1.0 + i % 3, ts_us=t0 + i * 1_000_000)
    logger.close()
    new, old = _both(monkeypatch, "churn", window="1h")
    _same(new, old)
    assert new.rows == 180 and "20 records of input a server refused" in new.notes[0]


def test_without_a_training_snapshot_and_with_too_many_windows(sqlite_ws, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X, y = make(600, rng)
    model = LogisticRegression().fit(X[["age", "income"]], y)
    mlo.register_model(model, "bare", input_example=X[["age", "income"]].head())
    ts = T0 + pd.to_timedelta(np.arange(600) * 10, unit="s")
    mlo.monitor.log("bare@v1", X, model.predict(X[["age", "income"]]), timestamps=ts)
    monkeypatch.setattr(reporting, "MAX_WINDOWS", 5)
    new, old = _both(monkeypatch, "bare", window="5min")
    _same(new, old)
    assert "first window" in new.reference and "15 older windows left out" in new.notes[-1]


def test_a_sampled_window_keeps_its_exact_figures_and_its_drift(trained, monkeypatch):
    trained.log_hours(3, drift_from=2, n=1500)
    full = mlo.monitor.report("churn", window="1h", save=False)
    monkeypatch.setattr(scan, "SAMPLE_ROWS", 400)  # each window of 1,500 records is sampled to about 400
    sampled = mlo.monitor.report("churn", window="1h", save=False)
    exact = ["n", "versions", "missing_rate", "labeled", "accuracy", "error_rate"]
    pd.testing.assert_frame_equal(sampled.windows[exact], full.windows[exact])
    assert bool(sampled.windows["dataset_drift"].iloc[2])  # age moved by a standard deviation: found by ~400
    # the unseen plan "z" in the drifted window: a share estimated from ~400 of 1,500 records
    p, k = full.windows["unseen_rate"].iloc[2], 400
    assert abs(sampled.windows["unseen_rate"].iloc[2] - p) < 4 * np.sqrt(p * (1 - p) / k)
    again = mlo.monitor.report("churn", window="1h", save=False)  # the sample is fixed by the ids
    pd.testing.assert_frame_equal(
        again.windows.drop(columns="rows_per_s"), sampled.windows.drop(columns="rows_per_s")
    )


def test_memory_is_bounded_by_duckdb_and_the_scan_closes(trained, monkeypatch):
    trained.log_hours(2, n=500)
    folder = mlo.monitor.log.__globals__["model_folder"]("churn")
    from mlo.monitor.windows import parse_window

    sc = scan.open_scan(folder, parse_window("1h"), None, None, 500)
    try:
        limit = sc._con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert limit.endswith(("MiB", "MB", "GiB")) and len(sc.windows) == 2
        assert len(sc.sample(sc.windows[0])) == 500
    finally:
        sc.close()
    assert sc._con is None


def test_windows_queried_in_chunks_and_ids_of_another_layout(trained, monkeypatch):
    """Labels are joined chunk by chunk through the ids' time prefix; records whose id does not carry their
    time (written by other tools) still get their labels."""
    import pyarrow as pa

    from mlo.monitor.log import LABELS, TS_TYPE, model_folder, write_segment

    trained.log_hours(3, n=600)
    folder = model_folder("churn")
    n = 50
    ts = pa.array(
        [int((T0 + pd.Timedelta(minutes=90, seconds=i)).value // 1000) for i in range(n)], pa.int64()
    )
    ids = pa.array([f"{i:032x}" for i in range(n)], pa.string())  # no time prefix
    records = {
        "id": ids,
        "ts": ts.cast(TS_TYPE),
        "model": pa.array(["churn"] * n),
        "version": pa.array([1] * n, pa.int64()),
        "alias": pa.nulls(n, pa.string()),
        "route": pa.array(["batch"] * n),
        "latency_ms": pa.nulls(n, pa.float64()),
        "error": pa.nulls(n, pa.string()),
        "prediction": pa.array([1] * n, pa.int64()),
        "f.age": pa.array(np.full(n, 40.0)),
        "f.income": pa.array(np.full(n, 50.0)),
        "f.plan": pa.array(["a"] * n),
    }
    write_segment(folder, pa.table(records))
    write_segment(
        folder / LABELS, pa.table({"id": ids, "label": pa.array([1] * n), "ts": ts.cast(TS_TYPE)}), "lab"
    )
    monkeypatch.setattr(scan, "CHUNK_ROWS", 700)  # one window a query
    new, old = _both(monkeypatch, "churn", window="1h")
    _same(new, old)
    assert new.windows["labeled"].tolist() == [600, 650, 600]
    _same(*_both(monkeypatch, "churn", window="250 rows"))


def test_reference_predictions_of_a_given_frame_are_kept_too(trained, monkeypatch):
    from mlo.registry.versions import ModelVersion

    trained.log_hours(2, drift_from=1, n=400)
    X, _ = make(1000, np.random.default_rng(9))
    first = mlo.monitor.report("churn", window="1h", reference=X, save=False)
    kept = list((mlo.workspace.current().home / "monitor" / "churn" / "reference").glob("v1-*.parquet"))
    assert len(kept) == 1

    loads = []

    def counted_load(self, *a, **k):
        loads.append(self.version)
        raise RuntimeError("no model here")

    monkeypatch.setattr(ModelVersion, "load", counted_load)
    again = mlo.monitor.report("churn", window="1h", reference=X, save=False)
    assert (
        loads == []
        and again.windows["prediction_drift"].tolist() == first.windows["prediction_drift"].tolist()
    )
    X.loc[0, "age"] += 1.0  # other rows: another key, so the model is needed
    mlo.monitor.report("churn", window="1h", reference=X, save=False)
    assert loads == [1]
