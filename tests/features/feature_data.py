"""Data for the feature tests, and a client for the servers they start."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import numpy as np
import pandas as pd


def transactions(n_customers: int = 20, per: int = 15, seed: int = 0) -> pd.DataFrame:
    """Rows of (customer_id, ts, amount, rate) at distinct times per customer."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(1, n_customers + 1), per)
    start = pd.Timestamp("2024-01-01")
    offsets = rng.permutation(n_customers * per * 10)[: n_customers * per]
    return pd.DataFrame(
        {
            "customer_id": ids.astype("int64"),
            "ts": start + pd.to_timedelta(offsets, unit="h"),
            "amount": rng.gamma(2.0, 30.0, len(ids)).round(2),
            "rate": rng.choice([0.9, 1.1, 1.27], len(ids)),
        }
    )


def post(url: str, body) -> tuple[int, dict]:
    """POST ``body`` as JSON to ``url``/predict: (status, decoded answer)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/predict", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()
