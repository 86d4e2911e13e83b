"""checks.data against training data that holds more than the model's inputs: the label and other columns are
known from the signature, the model, the name of y, or label=/exclude=, and left out instead of reported missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import mlo
from mlo import checks


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": np.arange(n), "tenure": rng.integers(1, 72, n), "spend": rng.normal(70, 20, n)})
    df["churned"] = (df.spend > 70).astype(int)
    return df


def test_a_training_snapshot_with_its_label_checks_only_the_features(sqlite_ws):
    train, test = _frame(), _frame(seed=1)
    features = ["tenure", "spend"]
    snap = mlo.snapshot(train, "train")
    model = LogisticRegression().fit(train[features], train.churned)
    # the model knows its inputs (feature_names_in_): the label and the id column are not inputs
    rep = mlo.validate(model, test[features], test.churned, checks=[checks.data(reference=snap)], store=False)
    row = rep["data.schema"]
    assert row.passed and row.value == 0
    assert "left out: churned, id" in row.detail
    # a registered version's signature says the same
    mv = mlo.register_model(model, "churn", input_example=train[features].head())
    rep = mlo.validate(
        mv.load(), test[features], test.churned, checks=[checks.data("train")], model_version=mv
    )
    assert rep["data.schema"].passed and rep["data.ranges"].passed is not None


def test_label_and_exclude_name_them_when_nothing_else_does(sqlite_ws):
    train, test = _frame(), _frame(seed=1)
    X = train[["tenure", "spend"]].to_numpy()
    model = LogisticRegression().fit(X, train.churned)  # fit on an array: no feature names

    class Named:  # a model that takes the DataFrame of the two features
        def predict(self, frame):
            return model.predict(frame[["tenure", "spend"]].to_numpy())

    check = checks.data(reference=train, label="churned", exclude=["id"])
    rep = mlo.validate(
        Named(), test[["tenure", "spend"]], test.churned.to_numpy(), checks=[check], store=False
    )
    assert rep["data.schema"].passed
    # y named like the label column is enough
    rep = mlo.validate(
        Named(),
        test[["tenure", "spend"]],
        test.churned,
        checks=[checks.data(train, exclude="id")],
        store=False,
    )
    assert rep["data.schema"].passed
    # without any of it, the extra reference columns are reported missing, as before
    rep = mlo.validate(
        Named(), test[["tenure", "spend"]], test.churned.to_numpy(), checks=[checks.data(train)], store=False
    )
    assert not rep["data.schema"].passed and "churned: missing" in rep["data.schema"].detail
