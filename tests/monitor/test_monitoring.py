"""``mlo.monitor.report``: windows over real prediction logs with known drift, labels that arrive later, a canary,
and server-style records with latency and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from monitor_data import T0, make, serve_like

import mlo
from mlo.errors import InvalidInput, NotFound
from mlo.monitor.reporting import MonitorReport


def test_drift_is_found_in_the_drifted_windows_only(trained):
    trained.log_hours(6, drift_from=4)
    rep = mlo.monitor.report("churn", window="1h")
    w = rep.windows
    assert len(w) == 6 and w["n"].tolist() == [1500] * 6 and rep.rows == 9000
    assert w["dataset_drift"].tolist() == [False] * 4 + [True] * 2
    assert w["prediction_drift"].tolist() == [False] * 4 + [True] * 2
    assert set(w.loc[4, "drifted"].split(", ")) == {"age", "plan"}
    assert (w["unseen_rate"][:4] == 0).all() and w["unseen_rate"][4:].between(0.25, 0.42).all()  # plan "z"
    assert w["accuracy"].between(0.7, 0.95).all() and (w["labeled"] == 1500).all()
    assert rep.version == 1 and "train@1" in rep.reference and rep.task == "classification"
    assert w["latency_p95"].isna().all() and (w["error_rate"] == 0).all()  # batch records
    assert rep.latest["dataset_drift"] is True or rep.latest["dataset_drift"] == np.True_


def test_report_is_stored_linked_and_renders(trained):
    trained.log_hours(3, drift_from=2)
    rep = mlo.monitor.report("churn", window="1h")
    with pytest.raises(NotFound, match="is a monitor report, not a drift report"):
        mlo.DriftReport.load(rep.id[:12])
    again = MonitorReport.load(rep.id[:12])  # a unique prefix does
    assert again.windows["dataset_drift"].tolist() == [False, False, True]
    assert again.windows["start"].iloc[0] == T0
    assert f"report:{rep.id}" in {n["id"] for n in mlo.lineage("model:churn@production").to_dict()["nodes"]}
    html = rep._repr_html_()
    assert "Monitoring churn v1" in html and "<svg" in html and "input drift in age" in html
    assert "DRIFT" in rep.to_text() and "churn v1: 4500 records, 3 windows of 1h" in rep.to_text()
    assert "windows of 1h" in repr(rep)


def test_row_windows_and_since_until(trained):
    trained.log_hours(4)
    rep = mlo.monitor.report("churn", window="1000 rows", since=T0 + pd.Timedelta(hours=1), save=False)
    assert rep.windows["n"].tolist() == [1000] * 4 + [500] and rep.id is None
    rep = mlo.monitor.report("churn", window="1h", until=T0 + pd.Timedelta(hours=2), save=False)
    assert len(rep.windows) == 2


def test_labels_that_arrive_later_fill_in_quality(trained):
    rng = np.random.default_rng(1)
    X, y = make(800, rng)
    ids = mlo.monitor.log("churn@production", X, trained.model.predict(X[["age", "income"]]), timestamps=T0)
    rep = mlo.monitor.report("churn", window="1h", save=False)
    assert rep.windows["labeled"].tolist() == [0] and "accuracy" not in rep.windows
    mlo.monitor.label(ids[:600], y[:600])
    rep = mlo.monitor.report("churn", window="1h", save=False)
    expected = (trained.model.predict(X[["age", "income"]])[:600] == y[:600]).mean()
    assert rep.windows["labeled"].tolist() == [600]
    assert rep.windows["accuracy"].iloc[0] == pytest.approx(expected)


def test_a_failing_canary_is_worse_than_stable(trained):
    serve_like(trained, canary_error_every=10)  # half the canary's requests fail
    rep = mlo.monitor.report("churn", window="1h", save=False)
    last = rep.latest
    assert last["canary_n"] == 120 and last["canary_error_rate"] == pytest.approx(0.5)
    assert last["canary_worse"] and "more errors" in last["canary_reasons"]
    assert last["versions"] == "1,2" and rep.version == 1  # the reference is the stable version
    assert last["latency_p50"] == pytest.approx(np.percentile(rep_latencies(), 50))
    assert "canary worse" in rep._repr_html_()


def rep_latencies():
    log = mlo.monitor.read_log("churn")
    return log["latency_ms"].dropna().to_numpy()


def test_a_healthy_canary_is_not_worse(trained):
    serve_like(trained, canary_error_every=None, canary_ms=2.4)
    last = mlo.monitor.report("churn", window="1h", save=False).latest
    assert last["canary_worse"] is False or last["canary_worse"] == np.False_
    assert last["canary_error_rate"] == 0


def test_without_a_training_snapshot_the_first_window_is_the_reference(sqlite_ws):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X, y = make(2000, rng)
    model = LogisticRegression().fit(X[["age", "income"]], y)
    mlo.register_model(model, "bare", input_example=X[["age", "income"]].head())
    for h, shifted in enumerate([False, False, True]):
        Xh, _ = make(1000, rng, shifted=shifted)
        mlo.monitor.log(
            "bare@v1", Xh, model.predict(Xh[["age", "income"]]), timestamps=T0 + pd.Timedelta(hours=h)
        )
    rep = mlo.monitor.report("bare", window="1h", save=False)
    assert "first window" in rep.reference
    assert rep.windows["dataset_drift"].tolist() == [False, False, True]


def test_bad_input_is_one_clear_line(trained):
    with pytest.raises(NotFound, match="no model 'nope'"):
        mlo.monitor.report("nope")
    with pytest.raises(InvalidInput, match="cannot read the window"):
        mlo.monitor.report("churn", window="fortnightly")
    with pytest.raises(InvalidInput, match="name the model"):
        mlo.monitor.report("")
    rep = mlo.monitor.report("churn", save=False)  # registered, nothing logged yet
    assert rep.windows.empty and "No predictions logged" in rep._repr_html_()


def test_monitor_magic(shell, trained):
    trained.log_hours(2, drift_from=1)
    rep = shell.run("%mlo monitor churn --window 1h --since 2026-11-20")
    assert isinstance(rep, MonitorReport) and rep.windows["dataset_drift"].tolist() == [False, True]
    err = shell.fails("%mlo monitor churn --window 2x")
    assert isinstance(err, UsageError) and "cannot read the window" in str(err)


def test_serve_magic_serves_and_logs(shell, trained):
    import json
    import urllib.request

    server = shell.run("%mlo serve churn@production")
    try:
        X, _ = make(3, trained.rng)
        body = json.dumps({"records": X[["age", "income"]].to_dict("records")}).encode()
        request = urllib.request.Request(f"{server.url}/predict", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
        assert answer["predictions"] == trained.model.predict(X[["age", "income"]]).tolist()
        server.flush()
        assert len(mlo.monitor.read_log("churn")) == 3
    finally:
        server.stop()
    err = shell.fails("%mlo serve churn@nosuchalias")
    assert isinstance(err, UsageError) and "nosuchalias" in str(err)


def test_reference_predictions_are_kept_for_the_next_report(trained):
    trained.log_hours(2, drift_from=1)
    first = mlo.monitor.report("churn", window="1h", save=False)
    kept = list((mlo.workspace.current().home / "monitor" / "churn" / "reference").glob("v1-*.parquet"))
    assert len(kept) == 1
    again = mlo.monitor.report("churn", window="1h", save=False)
    pd.testing.assert_frame_equal(first.windows, again.windows)
    assert len(mlo.monitor.read_log("churn")) == 3000  # the log does not mistake the cache for records
