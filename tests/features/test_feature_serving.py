"""``mlo serve`` for a model whose signature names feature views: values looked up by entity id or computed from
the request's inputs by the registered transform, the same bytes as in the training frame."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from feature_data import post, transactions

import mlo

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(autouse=True)
def _trusted_functions(tmp_path):
    """The models served here are functions defined in this file, stored as pickles: trusted in mlo.toml."""
    (tmp_path / "mlo.toml").write_text('[registry]\ntrusted_flavors = ["cloudpickle"]\n')


def _usd(df):
    return pd.DataFrame({"amount_usd": df.amount * df.rate / 3.0})


def echo(X):
    """A model that answers with its feature: what it was given is what it predicts."""
    return X["amount_usd"].to_numpy()


def _setup(seed: int = 0):
    tx = transactions(seed=seed)
    mlo.snapshot(tx, "transactions")
    view = mlo.FeatureView(
        "spend",
        source="transactions",
        entity="customer_id",
        timestamp="ts",
        transform=_usd,
        inputs=["amount", "rate"],
    )
    return tx, view


def _register(view):
    ents = pd.DataFrame({"customer_id": np.arange(1, 21), "ts": pd.Timestamp("2030-01-01")})
    train = mlo.features.training_frame(ents, [view])
    mv = mlo.register_model(echo, "echo", input_example=train[["amount_usd"]].head(), features=[view.ref])
    return train, mv


def test_one_definition_gives_the_same_bytes_in_training_and_serving(ws):
    tx, view = _setup()
    train, mv = _register(view)
    assert mv.signature.features[0]["view"] == "spend" and mv.signature.features[0]["version"] == 1
    assert [n.label for n in mlo.lineage(f"model:{mv.ref}").upstream("feature")] == ["spend@1"]
    card = mlo.model_card(mv.name, mv.version)
    assert [(f["ref"], f["columns"], f["source"]) for f in card.to_dict()["lineage"]["features"]] == [
        ("spend@1", ["amount_usd"], "transactions@1")
    ]
    assert "features: spend@1" in card.to_markdown() and "spend@1" in card.to_html()
    mlo.features.materialize()

    with mlo.serve("echo@latest", poll=0) as srv:
        # by entity id: the online values
        status, out = post(srv.url, {"records": [{"customer_id": i} for i in range(1, 21)]})
        assert status == 200, out
        served = np.array(out["predictions"], dtype="float64")
        assert served.tobytes() == train.amount_usd.to_numpy().tobytes()

        # by the view's inputs: the registered transform at request time
        rows = tx.sample(50, random_state=1)
        status, out = post(srv.url, {"columns": {"amount": rows.amount.tolist(), "rate": rows.rate.tolist()}})
        assert status == 200, out
        offline = view.apply(rows).amount_usd.to_numpy()
        assert np.array(out["predictions"], dtype="float64").tobytes() == offline.tobytes()

        # a client's own value for a feature column is replaced by the view's
        status, out = post(srv.url, {"records": [{"customer_id": 1, "amount_usd": 1e9}]})
        assert status == 200 and out["predictions"] == [train.amount_usd.iloc[0]]


def test_what_a_stranger_sends_is_refused_with_what_to_send(sqlite_ws):
    _, view = _setup()
    _register(view)
    mlo.features.materialize()
    with mlo.serve("echo@latest", poll=0) as srv:
        cases = [
            ({"records": [{"plan": "pro"}]}, 400, "send 'customer_id'"),
            (
                {"records": [{"customer_id": 999}, {"customer_id": 1}]},
                422,
                "no online values of feature view spend",
            ),
            ({"records": [{"customer_id": {"$ne": 1}}]}, 422, "must hold an id per row"),
            ({"records": [{"customer_id": None}]}, 422, "must hold an id per row"),
            ({"columns": {"amount": ["a lot"], "rate": [1.0]}}, 422, "amount"),
            ([[1.0]], 400, "send records or columns by name"),
        ]
        for body, want, fragment in cases:
            status, out = post(srv.url, body)
            assert status == want and fragment in out["error"], (body, status, out)
        # a huge batch of ids is one lookup
        status, out = post(srv.url, {"columns": {"customer_id": [1 + i % 20 for i in range(5_000)]}})
        assert status == 200 and len(out["predictions"]) == 5_000


def test_online_values_of_another_version_are_refused_not_served(sqlite_ws):
    _, v1 = _setup()
    _register(v1)
    _setup(seed=7)  # new source data: spend@2
    mlo.features.materialize()  # the latest version: 2
    with mlo.serve("echo@latest", poll=0) as srv:
        status, out = post(srv.url, {"records": [{"customer_id": 1}]})
        assert status == 422 and "materialize spend@1" in out["error"]
    mlo.features.materialize(["spend@1"])
    with mlo.serve("echo@latest", poll=0) as srv:
        assert post(srv.url, {"records": [{"customer_id": 1}]})[0] == 200


def test_materializing_while_serving_never_fails_or_mixes_a_request(ws):
    tx, view = _setup()
    train, _ = _register(view)
    mlo.features.materialize()
    old = train.amount_usd.tolist()
    # the same version recomputed as of an earlier time: other values for the same entities
    cut = pd.Timestamp("2024-01-20")
    early = mlo.features.training_frame(
        pd.DataFrame({"customer_id": np.arange(1, 21), "ts": cut}), [view], snapshot=None
    )
    present = early.amount_usd.notna().to_numpy()
    ids = [int(i) for i in np.arange(1, 21)[present]]
    new = early.amount_usd[present].tolist()
    old = [v for v, p in zip(old, present, strict=True) if p]
    seen, errors = [], []
    stop = threading.Event()

    with mlo.serve("echo@latest", poll=0) as srv:

        def client():
            while not stop.is_set():
                status, out = post(srv.url, {"columns": {"customer_id": ids}})
                if status != 200:
                    errors.append(out)
                    continue
                got = out["predictions"]
                seen.append("old" if got == old else "new" if got == new else "mixed")

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for as_of in (cut, None, cut, None):
            mlo.features.materialize(["spend"], as_of=as_of)
        stop.set()
        for t in threads:
            t.join()
    assert not errors and seen and "mixed" not in seen


# -- the skew check ------------------------------------------------------------------------------------------------
SCALER = """
def scale(x):
    return x / 3.0
"""


def test_the_skew_check_catches_a_transform_changed_in_the_serving_process(sqlite_ws, tmp_path, monkeypatch):
    """The view calls a helper module; the serving environment's copy of it computes differently."""
    (tmp_path / "featurelib.py").write_text(SCALER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import featurelib

    def usd(df):
        return pd.DataFrame({"amount_usd": featurelib.scale(df.amount * df.rate)})

    tx = transactions()
    mlo.snapshot(tx, "transactions")
    view = mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts", transform=usd,
                           inputs=["amount", "rate"])  # fmt: skip
    _register(view)
    mlo.features.materialize()
    rows = tx.sample(30, random_state=2)
    body = {"columns": {"customer_id": rows.customer_id.tolist(), "amount": rows.amount.tolist(),
                        "rate": rows.rate.tolist()}}  # fmt: skip

    with mlo.serve("echo@latest", poll=0) as srv:
        assert post(srv.url, body)[0] == 200
        assert post(srv.url, {"records": [{"customer_id": i} for i in range(1, 21)]})[0] == 200
    clean = mlo.monitor.feature_skew("echo")
    assert clean.passed and clean.checked == 50 and clean.mismatches == {"amount_usd": 0}

    original = featurelib.scale
    featurelib.scale = lambda x: x / 3.0001  # the serving side's helper drifts
    try:
        with mlo.serve("echo@latest", poll=0) as srv:
            assert post(srv.url, body)[0] == 200
    finally:
        featurelib.scale = original
    report = mlo.monitor.feature_skew("echo", since=pd.Timestamp.now("UTC") - pd.Timedelta(minutes=5))
    assert not report.passed
    assert report.mismatches == {"amount_usd": 30}
    assert set(report.examples.how) == {"request inputs"}
    stored = sqlite_ws.reports.get(report.id)
    assert stored.kind == "feature_skew" and stored.passed is False
    assert "skew in 1 feature" in report._repr_html_()


def test_the_skew_check_catches_stale_online_values(sqlite_ws):
    tx, view = _setup()
    _register(view)
    mlo.features.materialize(as_of=pd.Timestamp("2024-01-15"))  # values from a fortnight in
    with mlo.serve("echo@latest", poll=0) as srv:
        ids = sorted(set(tx[tx.ts <= "2024-01-15"].customer_id.tolist()))
        assert post(srv.url, {"records": [{"customer_id": i} for i in ids]})[0] == 200
    report = mlo.monitor.feature_skew("echo@latest", sample=500)
    stale = sum(
        1 for i in ids if tx[(tx.customer_id == i)].ts.max() > pd.Timestamp("2024-01-15")
    )  # entities with newer rows than the materialization
    assert stale > 0 and report.mismatches["amount_usd"] == stale
    assert set(report.examples.how) == {"online lookup"}


@pytest.mark.postgres
def test_an_unreachable_store_answers_503_and_serving_resumes(own_postgres, tmp_path, monkeypatch):
    """The database of the online table goes down under a running server, then comes back."""
    from mlo import workspace

    monkeypatch.setenv("MLO_HOME", str(tmp_path / ".mlo"))
    monkeypatch.setenv("MLO_STORE", own_postgres.url(own_postgres.new_database()))
    workspace.reset_cache()
    mlo.init(tmp_path)
    _, view = _setup()
    train, _ = _register(view)
    mlo.features.materialize()
    with mlo.serve("echo@latest", poll=0) as srv:
        assert post(srv.url, {"records": [{"customer_id": 1}]})[0] == 200
        own_postgres._run(
            str(own_postgres.bindir / "pg_ctl"), "-D", str(own_postgres.data), "-m", "fast", "stop"
        )
        status, out = post(srv.url, {"records": [{"customer_id": 1}]})
        assert (
            status == 503 and "cannot read the online features" in out["error"] and "\n" not in out["error"]
        )
        # a request that brings the view's inputs needs no database
        assert post(srv.url, {"records": [{"amount": 10.0, "rate": 1.1}]})[0] == 200
        own_postgres.resume()
        status, out = post(srv.url, {"records": [{"customer_id": 1}]})
        assert status == 200 and out["predictions"] == [train.amount_usd.iloc[0]]
