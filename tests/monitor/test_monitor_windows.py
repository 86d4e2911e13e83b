"""Windows, quality and the canary test on small frames with known answers."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlo.errors import InvalidInput
from mlo.monitor import windows as W


@pytest.mark.parametrize(
    "spec, seconds, rows, label",
    [
        ("1h", 3600, None, "1h"),
        ("30min", 1800, None, "30min"),
        ("2 hours", 7200, None, "2h"),
        ("1d", 86400, None, "1d"),
        ("45s", 45, None, "45s"),
        ("5000 rows", None, 5000, "5000 rows"),
        ("250", None, 250, "250 rows"),
        (100, None, 100, "100 rows"),
        (timedelta(minutes=5), 300, None, "5min"),
    ],
)
def test_parse_window(spec, seconds, rows, label):
    w = W.parse_window(spec)
    assert (w.seconds, w.rows, w.label) == (seconds, rows, label)


@pytest.mark.parametrize("spec", ["", "1 fortnight", "-5 rows", "0 rows", True, "h1"])
def test_bad_windows_say_what_to_write(spec):
    with pytest.raises(InvalidInput, match="window|at least 1 row"):
        W.parse_window(spec)


def test_parse_since():
    assert W.parse_since("24h") == timedelta(hours=24)
    assert W.parse_since("7d") == timedelta(days=7)
    assert W.parse_since("2026-11-01") == "2026-11-01"
    assert W.parse_since(None) is None


def frame(ts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(ts, utc=True), "x": range(len(ts))})


def test_time_windows_are_aligned_and_skip_empty_hours():
    log = frame(["2026-01-01 00:10:00", "2026-01-01 00:59:59", "2026-01-01 01:00:00", "2026-01-01 03:30:00"])
    parts = W.cut(log, W.parse_window("1h"))
    assert [(str(s), str(e), len(f)) for s, e, f in parts] == [
        ("2026-01-01 00:00:00+00:00", "2026-01-01 01:00:00+00:00", 2),
        ("2026-01-01 01:00:00+00:00", "2026-01-01 02:00:00+00:00", 1),
        ("2026-01-01 03:00:00+00:00", "2026-01-01 04:00:00+00:00", 1),
    ]
    assert W.cut(log.iloc[0:0], W.parse_window("1h")) == []


def test_row_windows_keep_the_last_partial_one():
    log = frame([f"2026-01-01 00:00:{s:02d}" for s in range(7)])
    parts = W.cut(log, W.parse_window("3 rows"))
    assert [len(f) for _, _, f in parts] == [3, 3, 1]
    assert str(parts[1][0]) == "2026-01-01 00:00:03+00:00" and str(parts[1][1]) == "2026-01-01 00:00:05+00:00"


def test_task_quality_and_point_predictions():
    assert W.task_of(pd.Series([0, 1, 1]), pd.Series([1, 1, 0])) == "classification"
    assert W.task_of(pd.Series(["yes", "no"]), pd.Series(["no", "no"])) == "classification"
    assert W.task_of(pd.Series([None, None]), pd.Series([0.5, 1.7])) == "regression"
    assert W.quality(pd.Series([1, 0, None, 1]), pd.Series([1, 1, 0, 1]), "classification") == {
        "labeled": 3,
        "accuracy": pytest.approx(2 / 3),
    }
    q = W.quality(pd.Series([1.0, 2.0]), pd.Series([1.5, 1.0]), "regression")
    assert q["mae"] == pytest.approx(0.75) and q["rmse"] == pytest.approx(np.sqrt((0.25 + 1) / 2))
    assert W.quality(pd.Series([None]), pd.Series([1]), "classification") == {"labeled": 0}
    probs = pd.Series([[0.2, 0.8], [0.9, 0.1], None], dtype=object)
    points = W.point_predictions(probs)
    assert points[:2].tolist() == [1, 0] and pd.isna(points[2])


def routes(n_stable: int, n_canary: int, canary_errors: int, stable_errors: int = 0, canary_ms: float = 5.0):
    rows = []
    for route, n, errors, ms in (
        ("stable", n_stable, stable_errors, 5.0),
        ("canary", n_canary, canary_errors, canary_ms),
    ):
        for i in range(n):
            rows.append(
                {
                    "route": route,
                    "error": "boom" if i < errors else None,
                    "latency_ms": ms,
                    "label": None,
                    "prediction": 1,
                }
            )
    return pd.DataFrame(rows)


def test_canary_worse_needs_evidence_not_noise():
    assert W.canary_verdict(routes(400, 100, canary_errors=10), "classification")["canary_worse"] is True
    calm = W.canary_verdict(routes(400, 100, canary_errors=1, stable_errors=4), "classification")
    assert calm["canary_worse"] is False and calm["canary_error_rate"] == pytest.approx(0.01)
    slow = W.canary_verdict(routes(400, 100, canary_errors=0, canary_ms=12.0), "classification")
    assert slow["canary_worse"] is True and "p95 latency" in slow["canary_reasons"]
    few = W.canary_verdict(routes(400, 10, canary_errors=10), "classification")
    assert few["canary_worse"] is None  # fewer than 30 canary requests: no verdict
    assert W.canary_verdict(routes(50, 0, 0), "classification") == {"canary_n": 0}


def test_unseen_rate_counts_rows_with_any_new_category():
    f = pd.DataFrame({"f.plan": ["a", "z", None, "a"], "f.tier": ["x", "x", "q", None]})
    assert W.unseen_rate(f, {"plan": {"a", "b"}, "tier": {"x"}}) == pytest.approx(0.5)
    assert W.unseen_rate(f, {}) == 0.0
