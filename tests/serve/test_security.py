"""A stranger on the network, probing a real server on loopback: the auth matrix, tokens and scopes, the warning
when listening beyond loopback without a token, labels only for issued ids and once each, and a client's bad
input never counting against the model or its canary."""

from __future__ import annotations

import json
import logging
import stat

import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput
from mlo.serve.auth import Auth, is_loopback
from mlo.serve.labels import KEY_FILE

P = "predict-token-0123456789abcdef"
L = "labels-token-0123456789abcdef"
A = "admin-token-0123456789abcdef"

SIGNATURE = {"x": "float64"}
EXAMPLE = pd.DataFrame({"x": [1.0, 2.0]})


def scaled(factor: float):
    def model(X):
        return X["x"] * factor

    return model


@pytest.fixture
def m(sqlite_ws):
    """Model ``m``: v1 = x (production), v2 = 2x (staging)."""
    mlo.register_model(scaled(1.0), "m", signature=SIGNATURE, input_example=EXAMPLE, alias="production")
    mlo.register_model(scaled(2.0), "m", signature=SIGNATURE, input_example=EXAMPLE, alias="staging")
    return sqlite_ws


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# who may call\n{P} predict\n{L}   labels   # the label job\n\n{A}\n")
    path.chmod(0o600)
    return path


def bearer(token: str | None) -> dict:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def test_the_auth_matrix(m, token_file, client_for):
    with mlo.serve("m@production", token_file=token_file) as srv:
        c = client_for(srv)
        ids = c.post("/predict", {"records": [{"x": float(i)} for i in range(10)]}, bearer(P))[2]["ids"]
        wrong = ["Bearer nope-nope-nope-nope", f"Basic {P}", f"Bearer {P}x", f"Bearer {P[:-1]}", "Bearer"]
        for header in [None, *wrong]:
            headers = {} if header is None else {"Authorization": header}
            for method, path in [
                ("POST", "/predict"),
                ("POST", "/labels"),
                ("GET", "/metadata"),
                ("GET", "/x"),
            ]:
                status, got, doc = c.request(method, path, b'{"records": [{"x": 1}]}', headers)
                assert status == 401, (header, path)
                assert (
                    got["www-authenticate"].startswith("Bearer") and "Authorization: Bearer" in doc["error"]
                )
        expected = {  # token -> (predict, labels, metadata)
            P: (200, 403, 200),
            L: (403, 200, 200),
            A: (200, 200, 200),
        }
        for k, (token, (predict, labels, meta)) in enumerate(expected.items()):
            assert c.post("/predict", {"records": [{"x": 1.0}]}, bearer(token))[0] == predict
            status, _, doc = c.post("/labels", {"ids": [ids[k]], "labels": [1.0]}, bearer(token))
            assert status == labels, doc
            if status == 403:
                assert "'labels' scope" in doc["error"]
            assert c.request("GET", "/metadata", None, bearer(token))[0] == meta
        assert (
            c.request("GET", "/x", None, bearer(P))[0] == 404
        )  # a valid token learns the endpoint is unknown
        # /health answers anyone (a load balancer), but says only "ok" without a token
        status, _, health = c.get("/health")
        assert status == 200 and health == {"status": "ok"}
        status, _, health = c.request("GET", "/health", None, bearer(L))
        assert status == 200 and health["model"] == "m" and health["refused"]["unauthorized"] >= 24
        meta = c.request("GET", "/metadata", None, bearer(P))[2]
        assert meta["auth"] is True and P not in json.dumps(meta)


def test_tokens_from_the_environment_and_from_python(m, client_for, monkeypatch):
    monkeypatch.setenv("MLO_SERVE_TOKEN", A)
    with mlo.serve("m@production") as srv:
        c = client_for(srv)
        assert c.post("/predict", {"records": [{"x": 1.0}]})[0] == 401
        assert c.post("/predict", {"records": [{"x": 1.0}]}, bearer(A))[0] == 200
        assert "1 token" in srv.auth.describe() and A not in srv._repr_html_()
    monkeypatch.delenv("MLO_SERVE_TOKEN")
    with mlo.serve("m@production", token=P) as srv:
        assert client_for(srv).post("/predict", {"records": [{"x": 1.0}]}, bearer(P))[0] == 200


def test_bad_token_configuration_is_one_line(m, tmp_path, caplog):
    with pytest.raises(InvalidInput, match="at least 16 characters"):
        mlo.serve("m@production", token="short")
    with pytest.raises(InvalidInput, match="no token file"):
        mlo.serve("m@production", token_file=tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text(f"{P} predict,admin\n")
    with pytest.raises(InvalidInput, match=r"line 1: unknown scope admin"):
        mlo.serve("m@production", token_file=bad)
    bad.write_text("# nothing\n")
    with pytest.raises(InvalidInput, match="holds no token"):
        mlo.serve("m@production", token_file=bad)
    loose = tmp_path / "loose"
    loose.write_text(f"{P}\n")
    loose.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="mlo.serve"):
        auth = Auth.configure(token_file=loose, env=False)
    assert auth.enabled and any("chmod 600" in r.getMessage() for r in caplog.records)


def test_a_warning_when_listening_beyond_loopback_without_a_token(m, monkeypatch, caplog):
    """Tests stay on loopback: the socket binds 127.0.0.1 while the server is told 0.0.0.0."""
    from mlo.serve import server as server_module

    real_bind = server_module.bind
    monkeypatch.setattr(server_module, "bind", lambda host, port: real_bind("127.0.0.1", port))
    with caplog.at_level(logging.WARNING, logger="mlo.serve"):
        with mlo.serve("m@production", host="0.0.0.0"):
            pass
    assert any("0.0.0.0 without a token" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlo.serve"):
        with mlo.serve("m@production", host="0.0.0.0", token=A):
            pass
        with mlo.serve("m@production"):
            pass
    assert not any("without a token" in r.getMessage() for r in caplog.records)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")


# -- labels ------------------------------------------------------------------------------------------------------
def test_labels_only_for_ids_the_server_issued_and_once_each(m, client_for):
    batch_ids = mlo.monitor.log("m@production", pd.DataFrame({"x": [1.0]}), [1.0])
    with mlo.serve("m@production") as srv:
        c = client_for(srv)
        ids = c.post("/predict", {"records": [{"x": float(i)} for i in range(6)]})[2]["ids"]
        made_up = ids[0][:24] + ("0" * 8 if not ids[0].endswith("0" * 8) else "1" * 8)
        for bad in (made_up, batch_ids[0], "0" * 32, "x" * 5000):
            status, _, doc = c.post("/labels", {"ids": [bad], "labels": [1.0]})
            assert status == 422 and "not issued by this server" in doc["error"] and len(doc["error"]) < 300
        status, _, doc = c.post("/labels", {"ids": ids[:2], "labels": [0.0, 1.0]})
        assert status == 200 and doc == {"labeled": 2}
        status, _, doc = c.post("/labels", {"ids": [ids[1]], "labels": [0.0]})
        assert status == 409 and "already have a label" in doc["error"]
        status, _, doc = c.post("/labels", {"ids": [ids[2], ids[0]], "labels": [5.0, 5.0]})
        assert status == 409  # all or nothing: ids[2] was not labeled either
        status, _, doc = c.post("/labels", {"ids": [ids[3], ids[3]], "labels": [1.0, 2.0]})
        assert status == 422 and "twice" in doc["error"]
        for labels, fragment in (([None], "null"), (["yes"], "must be number"), ([[1]], "one value")):
            status, _, doc = c.post("/labels", {"ids": [ids[4]], "labels": labels})
            assert status == 422 and fragment in doc["error"], doc
        status, _, doc = c.post("/labels", b'{"ids": ["%s"], "labels": [NaN]}' % ids[4].encode())
        assert status == 422 and "NaN" in doc["error"]
        assert c.post("/labels", {"ids": [ids[2]], "labels": [3.0]})[0] == 200
    log = mlo.monitor.read_log("m").set_index("id")
    assert log.loc[ids[:3], "label"].tolist() == [0.0, 1.0, 3.0] and log.loc[ids[3:], "label"].isna().all()


def test_issued_ids_survive_a_restart_and_labels_given_elsewhere_count(m, client_for):
    with mlo.serve("m@production") as srv:
        ids = client_for(srv).post("/predict", {"records": [{"x": 1.0}, {"x": 2.0}]})[2]["ids"]
    key = m.home / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    mlo.monitor.label([ids[1]], [2.0], model="m")  # a correction from a notebook
    with mlo.serve("m@production") as srv:  # a new process would read the same key file
        c = client_for(srv)
        assert c.post("/labels", {"ids": [ids[0]], "labels": [1.0]})[0] == 200
        assert c.post("/labels", {"ids": [ids[1]], "labels": [1.0]})[0] == 409
    mlo.monitor.label([ids[1]], [9.0], model="m")  # Python, the operator's path, may correct a label
    assert mlo.monitor.read_log("m").set_index("id").loc[ids[1], "label"] == 9.0


def test_a_shared_id_key_from_the_environment(m, client_for, monkeypatch):
    monkeypatch.setenv("MLO_SERVE_ID_KEY", "ab" * 32)
    with mlo.serve("m@production") as srv:
        ids = client_for(srv).post("/predict", {"records": [{"x": 1.0}]})[2]["ids"]
    assert not (m.home / KEY_FILE).exists()
    with mlo.serve("m@production") as srv:
        assert client_for(srv).post("/labels", {"ids": ids, "labels": [1.0]})[0] == 200
    monkeypatch.setenv("MLO_SERVE_ID_KEY", "abc")
    with pytest.raises(InvalidInput, match="MLO_SERVE_ID_KEY must be at least 32 hex digits"):
        mlo.serve("m@production")


def test_labels_must_match_the_classes_the_model_outputs(sqlite_ws, client_for):
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 10})
    model = LogisticRegression().fit(X, [0, 0, 1, 1] * 10)
    mlo.register_model(model, "clf", input_example=X.head())
    with mlo.serve("clf@v1") as srv:
        c = client_for(srv)
        ids = c.post("/predict", {"records": [{"a": 1.0}, {"a": 2.0}]})[2]["ids"]
        status, _, doc = c.post("/labels", {"ids": ids[:1], "labels": ["yes"]})
        assert status == 422 and "like the model's classes (0, 1)" in doc["error"]
        assert c.post("/labels", {"ids": ids, "labels": [0, 1]})[0] == 200
    assert mlo.monitor.read_log("clf")["label"].tolist() == [0, 1]


# -- a client's mistakes are not the model's ---------------------------------------------------------------------
def test_bad_requests_to_a_canary_neither_count_as_errors_nor_roll_it_back(m, client_for):
    (m.home.parent / "mlo.toml").write_text(
        '[[monitor.rules]]\nname = "canary worse"\nwhen = "canary_worse"\n'
        'actions = [{ type = "rollback", alias = "staging" }]\n'
    )
    with mlo.serve("m@production", canary="m@staging:50", seed=1) as srv:
        c = client_for(srv)
        for i in range(120):
            assert c.post("/predict", {"records": [{"x": float(i)}]})[0] == 200
        bad = [
            b"{not json",
            b'{"records": [{"x": "text"}]}',
            b'{"records": [{"x": NaN}]}',
            b'{"records": [{"y": 1.0}]}',
            b'{"records": [{"x": 1e999}]}',
            b"[[1, 2, 3]]",
        ]
        for i in range(60):  # the probe that rolled a canary back with an audit entry blaming the model
            status, _, _ = c.post("/predict", bad[i % len(bad)])
            assert status in (400, 422)
        health = c.get("/health")[2]
        assert health["errors"] == 0 and health["rejected"] == 60 and health["requests"] == 180
    log = mlo.monitor.read_log("m")
    assert len(log) == 120 and log["error"].isna().all()
    assert mlo.monitor.check(window="1h") == []
    assert mlo.get_model_version("m@staging").version == 2
    assert not (mlo.audit("m")["action"] == "rollback").any()
    rep = mlo.monitor.report("m", window="1h", save=False)
    assert rep.latest["error_rate"] == 0 and rep.latest["canary_worse"] is False


def test_refused_input_logged_by_older_servers_is_left_out_of_monitoring(m):
    """Logs written before this version hold refused input as records with an error and no latency."""
    from mlo.monitor.log import PredictionLogger

    logger = PredictionLogger(m.home)
    stable = logger.stream("m", 1, "production", "stable", {"x": None})
    canary = logger.stream("m", 2, "staging", "canary", {"x": None})
    for i in range(80):
        stable.append({"x": [float(i)]}, [float(i)], n=1, latency_ms=1.0)
        canary.append({"x": [float(i)]}, [2.0 * i], n=1, latency_ms=1.0)
    for _ in range(60):
        canary.append(None, None, n=1, latency_ms=None, error="model m/2 needs column 'x'")
    logger.close()
    rep = mlo.monitor.report("m", window="1h", save=False)
    assert rep.latest["n"] == 160 and rep.latest["error_rate"] == 0
    assert rep.latest["canary_worse"] is False and any("60 records of input" in n for n in rep.notes)


def test_the_label_ledger_reads_ids_from_arrow_buffers():
    import pyarrow as pa

    from mlo.monitor.log import new_ids
    from mlo.serve.labels import _key64

    ids = new_ids(50)
    junk = ["Z" * 32, None, "short", ids[0].upper()]
    keys = _key64(pa.chunked_array([pa.array(ids[:20]), pa.array(junk + ids[20:])]))
    assert keys.tolist() == [int(i[16:], 16) for i in ids]
