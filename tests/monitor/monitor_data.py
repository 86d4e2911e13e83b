"""Prediction logs with known drift and labels, from a model trained on a recorded snapshot (imported by the
tests of this folder as ``monitor_data``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import mlo

T0 = pd.Timestamp("2026-11-20 00:00", tz="UTC")


def make(n: int, rng, shifted: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features and a plan; ``shifted`` moves age up by one standard deviation and brings a plan
    the training data never had."""
    X = pd.DataFrame(
        {
            "age": rng.normal(50.0 if shifted else 40.0, 10.0, n),
            "income": rng.normal(50.0, 15.0, n),
            "plan": rng.choice(["a", "b", "z"] if shifted else ["a", "b", "c"], n),
        }
    )
    y = ((X.age / 40 + X.income / 50 + rng.normal(0, 0.3, n)) > 2).astype(int).to_numpy()
    return X, y


class Trained:
    def __init__(self, rng):
        self.rng = rng
        X, y = make(4000, rng)
        with mlo.start_run("train", experiment="churn"):
            mlo.snapshot(X.assign(y=y), "train", role="input")
            self.model = LogisticRegression().fit(X[["age", "income"]], y)
            mlo.register_model(
                self.model, "churn", input_example=X[["age", "income"]].head(), alias="production"
            )

    def log_hours(self, hours: int, drift_from: int | None = None, n: int = 1500, labels: bool = True):
        """``hours`` windows of batch predictions from T0 on; inputs drift from hour ``drift_from`` on."""
        for h in range(hours):
            X, y = make(n, self.rng, shifted=drift_from is not None and h >= drift_from)
            ts = T0 + pd.Timedelta(hours=h) + pd.to_timedelta(np.sort(self.rng.uniform(0, 3599, n)), unit="s")
            mlo.monitor.log(
                "churn@production",
                X,
                self.model.predict(X[["age", "income"]]),
                labels=y if labels else None,
                timestamps=ts,
            )

    def log_hours_from(self, start: int, hours: int, shifted: bool, n: int = 1500):
        """Like :meth:`log_hours`, from hour ``start`` on, all shifted or none."""
        for h in range(start, start + hours):
            X, y = make(n, self.rng, shifted=shifted)
            ts = T0 + pd.Timedelta(hours=h) + pd.to_timedelta(np.sort(self.rng.uniform(0, 3599, n)), unit="s")
            mlo.monitor.log(
                "churn@production", X, self.model.predict(X[["age", "income"]]), labels=y, timestamps=ts
            )


def serve_like(trained, canary_error_every: int | None, n: int = 600, canary_ms: float = 3.0):
    """Records as the server writes them: stable v1 and canary v2, with latency, some canary errors."""
    X, y = make(n, trained.rng)
    mlo.register_model(trained.model, "churn", alias="canary")
    from mlo.monitor.log import PredictionLogger

    logger = PredictionLogger()
    stable = logger.stream("churn", 1, "production", "stable", {"age": None, "income": None, "plan": None})
    canary = logger.stream("churn", 2, "canary", "canary", {"age": None, "income": None, "plan": None})
    preds = trained.model.predict(X[["age", "income"]])
    for i in range(n):
        row = {c: [X[c].iloc[i]] for c in X.columns}
        ts = int((T0 + pd.Timedelta(seconds=i)).value // 1000)
        if i % 5 == 0:
            failed = canary_error_every is not None and i % canary_error_every == 0
            canary.append(
                row,
                None if failed else [preds[i]],
                n=1,
                latency_ms=canary_ms,
                error="boom" if failed else None,
                ts_us=ts,
            )
        else:
            stable.append(row, [preds[i]], n=1, latency_ms=2.0 + (i % 7) / 10, ts_us=ts)
    logger.close()
