"""Real models in a fresh SQLite workspace, real servers on loopback ports, and a small keep-alive HTTP client
(the standard library's http.client, one connection per client: give each thread its own)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

import mlo  # noqa: E402


@pytest.fixture(autouse=True)
def _trusted_test_functions(tmp_path):
    """Several tests serve functions they define themselves, which are stored as pickles: the project trusts
    them as an operator would, in mlo.toml (written before the workspace is opened)."""
    (tmp_path / "mlo.toml").write_text('[registry]\ntrusted_flavors = ["cloudpickle"]\n')


def churn_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """An int, a float and a text column; y follows spend and plan."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype("int64"),
            "spend": rng.normal(70.0, 20.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    y = ((X.spend - 70) / 20 + (X.plan == "pro") * 0.8 + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    return X, y


def fit(X: pd.DataFrame, y: np.ndarray, C: float):
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "spend"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(pre, LogisticRegression(C=C)).fit(X, y)


@pytest.fixture
def churn(sqlite_ws):
    """Model ``churn``: v1 at ``production`` and v2 (different predictions on many rows) at ``staging``."""
    X, y = churn_frame()
    v1 = mlo.register_model(fit(X, y, 1.0), "churn", input_example=X.head(), alias="production")
    v2 = mlo.register_model(fit(X, 1 - y, 1.0), "churn", input_example=X.head(), alias="staging")
    return {"X": X, "y": y, "v1": v1, "v2": v2, "ws": sqlite_ws}


@pytest.fixture
def server(churn):
    srv = mlo.serve("churn@production", poll=0.05)
    yield srv
    srv.stop()


class Client:
    """One keep-alive HTTP connection; ``post``/``get`` return (status, headers, decoded JSON)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=headers or {})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None

    def post(self, path: str, body=None, headers: dict | None = None):
        return self.request("POST", path, body, headers)

    def get(self, path: str):
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def client_for():
    made: list[Client] = []

    def make(srv) -> Client:
        c = Client(srv.url)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
