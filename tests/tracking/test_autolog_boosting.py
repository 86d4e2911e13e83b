"""XGBoost and LightGBM autolog with the real libraries: per-iteration evaluation metrics as step histories,
early stopping, the model in the library's format loading back, one run per top-level fit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

import mlo
from strict import need

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification  # noqa: E402


@pytest.fixture
def data():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=3, flip_y=0.2, random_state=1)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    return X[:300], y[:300], X[300:], y[300:]


@pytest.fixture
def xgb(sqlite_ws):
    need(
        importlib.util.find_spec("xgboost") is not None, "xgboost is not installed (pip install -e '.[dev]')"
    )
    import xgboost

    mlo.autolog()
    yield xgboost
    mlo.autolog(disable=True)


@pytest.fixture
def lgb(sqlite_ws):
    need(
        importlib.util.find_spec("lightgbm") is not None,
        "lightgbm is not installed (pip install -e '.[dev]')",
    )
    import lightgbm

    mlo.autolog()
    yield lightgbm
    mlo.autolog(disable=True)


def the_run():
    df = mlo.runs()
    assert len(df) == 1, list(df.name)
    return mlo.get_run(df.run_id[0])


def test_xgboost_train_histories_early_stopping_and_model(xgb, data):
    X, y, Xv, yv = data
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 6, "eta": 0.5}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=300,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=5,
    )
    run = the_run()
    assert run.name == "xgboost.train" and run.status == "finished" and run.tags["mlo.autolog"] == "xgboost"
    assert run.params["max_depth"] == 6 and run.params["num_boost_round"] == 300
    assert run.params["early_stopping_rounds"] == 5
    history = run.history("valid-logloss")
    rounds = booster.num_boosted_rounds()
    assert rounds < 300  # stopped early
    assert list(history.step) == list(range(rounds)) and len(run.history("train-error")) == rounds
    assert run.metrics["best_iteration"] == booster.best_iteration
    # early stopping watches the last metric of the last eval set
    assert run.metrics["best_score"] == pytest.approx(run.history("valid-error").value.min(), rel=1e-6)
    loaded = run.load_model()
    assert np.allclose(loaded.predict(dvalid), booster.predict(dvalid))
    info = __import__("json").loads(run.artifact("model/model.json").read_text())
    assert info["flavor"] == "xgboost" and [c["name"] for c in info["signature"]["columns"]] == list(
        X.columns
    )


def test_xgboost_estimator_is_one_run_with_its_histories(xgb, data):
    X, y, Xv, yv = data
    model = xgb.XGBClassifier(n_estimators=200, max_depth=4, early_stopping_rounds=5, eval_metric="logloss")
    model.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    run = the_run()
    assert run.name == "XGBClassifier" and run.params["max_depth"] == 4
    assert len(run.history("validation_0-logloss")) == model.get_booster().num_boosted_rounds()
    assert run.metrics["best_iteration"] == model.best_iteration and run.metrics["training_accuracy"] > 0.7
    loaded = run.load_model()
    assert type(loaded) is xgb.XGBClassifier and (loaded.predict(Xv) == model.predict(Xv)).all()


def test_xgboost_inside_a_search_makes_no_runs_of_its_own(xgb, data):
    from sklearn.model_selection import GridSearchCV

    X, y, _, _ = data
    GridSearchCV(xgb.XGBClassifier(n_estimators=5), {"max_depth": [2, 3]}, cv=2).fit(X, y)
    df = mlo.runs()
    assert list(df[df.parent_id.isna()].name) == ["GridSearchCV"] and len(df) == 3


def test_lightgbm_train_histories_early_stopping_and_model(lgb, data):
    X, y, Xv, yv = data
    train_set = lgb.Dataset(X, label=y)
    valid = lgb.Dataset(Xv, label=yv, reference=train_set)
    params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 31, "verbose": -1}
    booster = lgb.train(
        params, train_set, num_boost_round=300, valid_sets=[valid], callbacks=[lgb.early_stopping(5)]
    )
    run = the_run()
    assert (
        run.name == "lightgbm.train"
        and run.params["num_leaves"] == 31
        and run.params["num_boost_round"] == 300
    )
    history = run.history("valid_0-binary_logloss")
    # every iteration that ran, up to the patience past the best one (which the model keeps)
    assert list(history.step) == list(range(booster.best_iteration + 5))
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["boosted_rounds"] == booster.current_iteration()
    at_best = history.value[booster.best_iteration - 1]  # best_iteration counts from 1, steps from 0
    assert run.metrics["best_valid_0-binary_logloss"] == pytest.approx(at_best)
    assert len(run.history("valid_0-auc")) == len(history)
    loaded = run.load_model()
    assert np.allclose(loaded.predict(Xv), booster.predict(Xv))


def test_lightgbm_estimator_is_one_run_with_its_histories(lgb, data):
    X, y, Xv, yv = data
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=7, verbose=-1)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # eval_set: renamed in LightGBM 4.7, still taken
        model.fit(X, y, eval_set=[(Xv, yv)])
    run = the_run()
    assert run.name == "LGBMClassifier" and run.params["num_leaves"] == 7
    assert len(run.history("valid_0-binary_logloss")) == 40 and run.metrics["training_accuracy"] > 0.7
    assert np.allclose(run.load_model().predict(Xv), model.predict_proba(Xv)[:, 1])
