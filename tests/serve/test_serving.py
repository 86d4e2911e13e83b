"""A real server on a loopback port, driven over HTTP: predictions, input errors, model errors, concurrency,
the server handle, and every request landing in the prediction log."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput, MloError, NotFound


def as_records(X: pd.DataFrame) -> list[dict]:
    """Rows as JSON records, floats at full precision."""
    return json.loads(json.dumps(X.to_dict(orient="records"), default=lambda v: v.item()))


def test_single_and_batch_predictions_equal_the_models_own(churn, server, client_for):
    X = churn["X"]
    expected = mlo.load_model("churn@production").predict(X.head(20)).tolist()
    c = client_for(server)

    status, headers, one = c.post("/predict", {"records": as_records(X.head(1))})
    assert status == 200 and one["predictions"] == expected[:1]
    assert one["model"] == "churn" and one["version"] == 1 and one["route"] == "stable"
    assert headers["x-mlo-route"] == "stable" and headers["x-mlo-version"] == "1"
    assert len(one["ids"]) == 1 and len(one["ids"][0]) == 32

    batch = as_records(X.head(20))
    assert c.post("/predict", {"records": batch})[2]["predictions"] == expected
    assert c.post("/predict", batch)[2]["predictions"] == expected  # a bare list of records
    columns = {k: X.head(20)[k].tolist() for k in X.columns}
    assert c.post("/predict", {"columns": columns})[2]["predictions"] == expected
    rows = X.head(20).to_numpy().tolist()  # positional rows, in the signature's column order
    assert c.post("/predict", rows)[2]["predictions"] == expected
    split = {"columns": list(X.columns), "data": rows}
    assert c.post("/predict", {"dataframe_split": split})[2]["predictions"] == expected
    extra = [{**r, "ignored": 1} for r in batch[:3]]  # columns the model does not take are dropped
    assert c.post("/predict", {"records": extra})[2]["predictions"] == expected[:3]


def test_all_numeric_inputs_predict_the_same_through_the_dense_path(sqlite_ws, client_for):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(X, (X.a - X.b > 0).astype(int))
    mlo.register_model(model, "dense", input_example=X.head())
    expected = model.predict(X.head(10)).tolist()
    with mlo.serve("dense@v1") as srv:
        assert srv.service.stable.current.dense == np.dtype("float64")
        c = client_for(srv)
        assert c.post("/predict", {"records": as_records(X.head(10))})[2]["predictions"] == expected
        assert c.post("/predict", X.head(10).to_numpy().tolist())[2]["predictions"] == expected
        ints = {"records": [{"a": 1, "b": 0, "c": 0, "d": 0}]}  # integers are fine for float columns
        assert (
            c.post("/predict", ints)[2]["predictions"]
            == model.predict(pd.DataFrame([[1.0, 0, 0, 0]], columns=list("abcd"))).tolist()
        )
        status, _, doc = c.post("/predict", {"records": [{"a": True, "b": 0, "c": 0, "d": 0}]})
        assert status == 422 and "'a'" in doc["error"]  # booleans leave the fast path and are refused
        status, _, doc = c.post("/predict", {"records": [{"a": 1.0, "b": 0.0, "c": 0.0}]})
        assert status == 422 and "'d'" in doc["error"]
    log = mlo.monitor.read_log("dense")
    assert log["f.a"].tolist()[:10] == X["a"].head(10).tolist() and str(log["f.a"].dtype) == "float64"


def test_health_and_metadata(churn, server, client_for):
    c = client_for(server)
    status, _, health = c.get("/health")
    assert status == 200 and health["status"] == "ok" and health["version"] == 1
    status, _, meta = c.get("/metadata")
    assert status == 200
    assert meta["name"] == "churn" and meta["alias"] == "production" and meta["version"] == 1
    assert [col["name"] for col in meta["signature"]["columns"]] == ["tenure", "spend", "plan"]
    assert meta["canary"] is None and meta["canary_percent"] == 0 and meta["log"] is True
    assert server.metadata()["ref"] == "churn@production"


MALFORMED = [
    b"{not json",
    b"",
    b"\xff\xfe",
    b'"text"',
    b"42",
    b"[]",
    b'{"rows": []}',
    b'{"records": [], "columns": {}}',
    b'{"columns": {"tenure": 1}}',
    b'{"columns": {"tenure": [1, 2], "spend": [1.0]}}',
    b'{"records": [{"tenure": 1}, [1, 2, 3]]}',
]


def test_malformed_bodies_are_400_with_one_line(server, client_for):
    c = client_for(server)
    for body in MALFORMED:
        status, _, doc = c.post("/predict", body)
        assert status == 400, body
        assert set(doc) == {"error"} and doc["error"] and "\n" not in doc["error"], body
    assert c.get("/health")[0] == 200


def test_input_not_matching_the_signature_is_422_naming_the_column(churn, server, client_for):
    c = client_for(server)
    status, _, doc = c.post("/predict", {"records": [{"tenure": 3, "plan": "pro"}]})
    assert status == 422 and "'spend'" in doc["error"] and "\n" not in doc["error"]
    status, headers, doc = c.post("/predict", {"records": [{"tenure": "three", "spend": 1.0, "plan": "pro"}]})
    assert status == 422 and "'tenure'" in doc["error"] and headers["x-mlo-route"] == "stable"
    status, _, doc = c.post("/predict", [[1, 2]])
    assert status == 422 and "columns" in doc["error"]
    health = c.get("/health")[2]
    assert health["rejected"] == 3 and health["errors"] == 0  # the client's mistakes, not the model's
    server.stop()
    assert len(mlo.monitor.read_log("churn")) == 0  # and they never reach the prediction log


def test_a_model_that_raises_is_500_and_the_error_is_logged(sqlite_ws, client_for):
    def fragile(X):
        if (X["x"] < 0).any():
            raise ValueError("negative x\nis not supported")
        return X["x"] * 2

    mlo.register_model(fragile, "fragile", signature={"x": "float64"})
    with mlo.serve("fragile@v1") as srv:
        c = client_for(srv)
        status, _, ok = c.post("/predict", {"records": [{"x": 1.5}, {"x": 2}]})
        assert status == 200 and ok["predictions"] == [3.0, 4.0] and ok["version"] == 1
        status, headers, doc = c.post("/predict", {"records": [{"x": -1.0}]})
        assert status == 500 and headers["x-mlo-version"] == "1"
        assert doc["error"] == "model fragile/1 failed: ValueError: negative x is not supported"
        assert c.get("/health")[0] == 200  # still serving
        assert c.post("/predict", {"records": [{"x": 0.5}]})[0] == 200
    log = mlo.monitor.read_log("fragile")
    assert log["error"].notna().tolist() == [False, False, True, False]
    failed = log[log["error"].notna()].iloc[0]
    assert failed["f.x"] == -1.0 and pd.isna(failed["prediction"]) and failed["latency_ms"] >= 0
    assert failed["alias"] is None or pd.isna(failed["alias"])  # pinned by version: no alias


def test_unknown_endpoints_and_methods(server, client_for):
    c = client_for(server)
    status, _, doc = c.get("/nope")
    assert status == 404 and "POST /predict" in doc["error"]
    status, _, doc = c.get("/predict")
    assert status == 405 and "GET is not allowed" in doc["error"]


def test_concurrent_requests_are_all_answered_and_logged(churn, server, client_for):
    X = churn["X"]
    expected = mlo.load_model("churn/1").predict(X).tolist()
    rows = as_records(X)
    failures: list[str] = []
    ids: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        c = client_for(server)
        for i in range(50):
            j = (k * 50 + i) % len(rows)
            status, _, doc = c.post("/predict", {"records": [rows[j]]})
            with lock:
                if status != 200 or doc["predictions"] != [expected[j]]:
                    failures.append(f"{status} {doc}")
                else:
                    ids.extend(doc["ids"])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(ids) == 400
    server.stop()  # flushes the log
    log = mlo.monitor.read_log("churn")
    assert len(log) == 400 and set(log["id"]) == set(ids)
    assert (log["route"] == "stable").all() and (log["version"] == 1).all()
    assert (log["alias"] == "production").all() and log["error"].isna().all()
    assert (log["latency_ms"] > 0).all() and (log["latency_ms"] < 5000).all()
    assert log["ts"].is_monotonic_increasing
    by_id = log.set_index("id")
    for c in ("tenure", "spend", "plan"):
        assert f"f.{c}" in log.columns
    assert str(log["f.tenure"].dtype) == "int64" and str(log["f.spend"].dtype) == "float64"
    sample = ids[::37]
    got = by_id.loc[sample, ["f.tenure", "f.spend", "f.plan", "prediction"]]
    assert set(got["prediction"]) <= {0, 1}


def test_every_request_is_logged_with_its_values_and_labels_join(churn, server, client_for):
    X = churn["X"].head(5)
    c = client_for(server)
    doc = c.post("/predict", {"records": as_records(X)})[2]
    status, _, labeled = c.post("/labels", {"ids": doc["ids"][:2], "labels": [1, 0]})
    assert status == 200 and labeled == {"labeled": 2}
    assert c.post("/labels", {"ids": ["x"], "labels": []})[0] == 400
    server.stop()
    log = mlo.monitor.read_log("churn").set_index("id").loc[doc["ids"]]
    assert log["prediction"].tolist() == doc["predictions"]
    assert log["f.tenure"].tolist() == X["tenure"].tolist() and log["f.plan"].tolist() == X["plan"].tolist()
    assert np.allclose(log["f.spend"], X["spend"])
    assert log["label"].iloc[:2].tolist() == [1, 0] and log["label"].iloc[2:].isna().all()
    assert log["latency_ms"].nunique() == 1  # one model call for the whole request


def test_stop_writes_everything_and_is_idempotent(churn, client_for):
    srv = mlo.serve("churn@production")
    c = client_for(srv)
    n = 0
    for r in as_records(churn["X"].head(30)):
        assert c.post("/predict", {"records": [r]})[0] == 200
        n += 1
    srv.stop()  # well within the logger's 1 s flush period: the last records are written by stop()
    srv.stop()
    assert len(mlo.monitor.read_log("churn")) == n
    assert "stopped" in repr(srv)


def test_no_log_still_answers(churn, client_for):
    with mlo.serve("churn@production", log=False) as srv:
        status, _, doc = client_for(srv).post(
            "/predict", {"records": [{"tenure": 3, "spend": 50.0, "plan": "pro"}]}
        )
        assert status == 200 and len(doc["ids"]) == 1
    assert len(mlo.monitor.read_log("churn")) == 0


def test_server_handle(churn):
    with mlo.serve("churn@production", port=0) as srv:
        assert srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}"
        assert repr(srv) == f"<mlo Server churn@production (v1) at {srv.url} (running)>"
        assert "churn@production" in srv._repr_html_() and srv.url in srv._repr_html_()
        with pytest.raises(InvalidInput, match="cannot listen"):
            mlo.serve("churn@production", port=srv.port)
    assert not srv.running
    package = sys.modules["mlo.serve"]  # what `mlo.serve` holds after `import mlo.serve.app`: callable too
    with package("churn@v2") as srv:
        assert srv.service.stable.current.number == 2


def test_bad_references_are_one_line_errors(churn):
    with pytest.raises(NotFound, match="no alias 'nope'"):
        mlo.serve("churn@nope")
    with pytest.raises(InvalidInput, match="NAME@ALIAS:PCT"):
        mlo.serve("churn@production", canary="churn@staging")
    with pytest.raises(InvalidInput, match="between 0 and 100"):
        mlo.serve("churn@production", canary="churn@staging:120")
    with pytest.raises(InvalidInput, match="not a number"):
        mlo.serve("churn@production", canary="churn@staging:ten")


def test_missing_extras_say_what_to_install(churn, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(MloError, match=r"pip install 'mlo-workbench\[serve\]'"):
        mlo.serve("churn@production")
