"""Real scikit-learn models on a small churn-like table, and a real IPython shell for the magic tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402


def churn(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """X with an int, a text and a float column; y follows spend and plan."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype("int64"),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "spend": rng.normal(70.0, 20.0, n),
        }
    )
    y = ((X.spend - 70) / 20 + (X.plan == "pro") * 0.8 + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture
def data():
    return churn()


@pytest.fixture
def pipeline(data):
    """A ColumnTransformer + RandomForest pipeline (its trees are skops types that need the allowlist)."""
    X, y = data
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "spend"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(pre, RandomForestClassifier(n_estimators=15, random_state=0)).fit(X, y)


@pytest.fixture
def logreg(data):
    X, y = data
    return LogisticRegression().fit(X[["tenure", "spend"]], y)
