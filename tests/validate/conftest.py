"""Data and models with known properties for the validation tests (real scikit-learn models, fixed seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.compose import make_column_transformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

NUMERIC = ["tenure", "charges"]
CATEGORIES = ["region", "plan"]


def churn_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Churn-like rows: the label follows the numbers, except in region 'south' where it is a coin flip; churn is
    more common for sex 'F', and charges carry sex into the model. Returns X, y and sex (not a model input)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    X = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n),
            "charges": rng.normal(np.where(sex == "F", 78.0, 62.0), 20.0),  # a proxy of sex the model learns
            "region": rng.choice(["north", "south", "east", "west"], n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    score = (X.charges - 70) / 20 - (X.tenure - 36) / 20 + np.where(sex == "F", 0.8, -0.8)
    y = np.array(score + rng.normal(0, 0.5, n) > 0, dtype=int)
    south = (X.region == "south").to_numpy()
    y[south] = rng.integers(0, 2, south.sum())
    return X, y, sex


def churn_model(X: pd.DataFrame, y, C: float = 1.0):
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        (
            make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
            CATEGORIES,
        ),
    )
    return make_pipeline(pre, LogisticRegression(C=C, max_iter=500)).fit(X, y)


@pytest.fixture(scope="session")
def churn():
    """(X, y, sex, model): 4,000 rows and a fitted pipeline (imputation, scaling, one-hot, logistic regression)."""
    X, y, sex = churn_frame(4000)
    return X, y, sex, churn_model(X, y)


class Counting:
    """A real model wrapped to count the calls validate makes (the calls still reach the model)."""

    def __init__(self, model):
        self.model = model
        self.calls: list[tuple[str, int]] = []
        self.classes_ = model.classes_

    def predict(self, X):
        self.calls.append(("predict", len(X)))
        return self.model.predict(X)

    def predict_proba(self, X):
        self.calls.append(("predict_proba", len(X)))
        return self.model.predict_proba(X)


@pytest.fixture
def counting():
    return Counting


@pytest.fixture(scope="session")
def make_churn():
    """A factory: ``make_churn(n, seed)`` → (X, y, sex, model) for another draw of the same generator."""

    def make(n: int, seed: int):
        X, y, sex = churn_frame(n, seed)
        return X, y, sex, churn_model(X, y)

    return make
