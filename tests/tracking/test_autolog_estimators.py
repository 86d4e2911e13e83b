"""Every scikit-learn estimator that can fit a small dataset: with autolog off, fitting it makes no run; with
autolog on, exactly one (a search: one, with its candidates as children), named after the estimator, finished,
holding the estimator's params, with no warning that something could not be recorded."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

import mlo

pytest.importorskip("sklearn")
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402
from sklearn.utils import all_estimators  # noqa: E402

rng = np.random.RandomState(0)
X = np.abs(rng.normal(size=(40, 4)))
y = (X[:, 0] > np.median(X[:, 0])).astype(int)
y_reg = X @ [1.0, 2.0, 0.5, 0.0]
TEXTS = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 10

# what the estimators that take required arguments are built with
REQUIRED = {
    "ClassifierChain": lambda: dict(estimator=LogisticRegression()),
    "ColumnTransformer": lambda: dict(transformers=[("s", StandardScaler(), [0, 1])]),
    "FeatureUnion": lambda: dict(transformer_list=[("p", PCA(1)), ("s", StandardScaler())]),
    "FixedThresholdClassifier": lambda: dict(estimator=LogisticRegression()),
    "FrozenEstimator": lambda: dict(estimator=PREFIT),
    "GaussianRandomProjection": lambda: dict(n_components=2),
    "GridSearchCV": lambda: dict(estimator=LogisticRegression(), param_grid={"C": [0.1, 1.0, 10.0]}),
    "MultiOutputClassifier": lambda: dict(estimator=LogisticRegression()),
    "MultiOutputRegressor": lambda: dict(estimator=Ridge()),
    "OneVsOneClassifier": lambda: dict(estimator=LogisticRegression()),
    "OneVsRestClassifier": lambda: dict(estimator=LogisticRegression()),
    "OutputCodeClassifier": lambda: dict(estimator=LogisticRegression()),
    "Pipeline": lambda: dict(steps=[("s", StandardScaler()), ("m", LogisticRegression())]),
    "RFE": lambda: dict(estimator=LogisticRegression()),
    "RFECV": lambda: dict(estimator=LogisticRegression()),
    "RandomizedSearchCV": lambda: dict(
        estimator=LogisticRegression(), param_distributions={"C": [0.1, 1.0]}, n_iter=2
    ),
    "RegressorChain": lambda: dict(estimator=Ridge()),
    "SelectFromModel": lambda: dict(estimator=LogisticRegression()),
    "SelfTrainingClassifier": lambda: dict(estimator=LogisticRegression()),
    "SequentialFeatureSelector": lambda: dict(estimator=LogisticRegression(), n_features_to_select=2),
    "SparseCoder": lambda: dict(dictionary=np.eye(4)),
    "SparseRandomProjection": lambda: dict(n_components=2),
    "StackingClassifier": lambda: dict(
        estimators=[("a", LogisticRegression()), ("b", DecisionTreeClassifier())]
    ),
    "StackingRegressor": lambda: dict(estimators=[("a", Ridge()), ("b", DecisionTreeRegressor())]),
    "TunedThresholdClassifierCV": lambda: dict(estimator=LogisticRegression()),
    "VotingClassifier": lambda: dict(
        estimators=[("a", LogisticRegression()), ("b", DecisionTreeClassifier())]
    ),
    "VotingRegressor": lambda: dict(estimators=[("a", Ridge()), ("b", DecisionTreeRegressor())]),
}
# the fit arguments tried, in order, until one works with autolog off
RECIPES = [
    lambda: (X, y),
    lambda: (X, y_reg),
    lambda: (X, np.c_[y, 1 - y]),
    lambda: ((X * 3).astype(int), y),
    lambda: (X[:, 0], y_reg),
    lambda: (X @ X.T,),
    lambda: (TEXTS,),
    lambda: ([["a", "b"], ["b"]] * 20,),
    lambda: ([{"a": 1.0, "b": 2.0}] * 40,),
    lambda: (rng.rand(3, 8, 8),),
]
SEARCHES = {"GridSearchCV": 3, "RandomizedSearchCV": 2}


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PREFIT = LogisticRegression().fit(X, y)  # fitted before autolog is on: FrozenEstimator wraps it


def _build(name, cls):
    return cls(**REQUIRED.get(name, dict)())


def test_every_estimator_fits_into_exactly_one_run_and_none_when_autolog_is_off(sqlite_ws, caplog):
    mlo.autolog(disable=True)
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            for recipe in RECIPES:
                try:
                    _build(name, cls).fit(*recipe())
                except Exception:
                    continue
                fits[name] = (cls, recipe)
                break
    assert mlo.runs().empty, "a fit made a run while autolog was off"
    cannot = sorted({n for n, _ in all_estimators()} - set(fits))
    assert len(fits) >= len(all_estimators()) - 2, f"these estimators could not fit the small data: {cannot}"

    mlo.autolog()
    try:
        seen: set[str] = set()
        problems = []
        with caplog.at_level(logging.WARNING, logger="mlo"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, (cls, recipe) in sorted(fits.items()):
                est = _build(name, cls)
                est.fit(*recipe())
                df = mlo.runs(columns=["run_id", "name", "status", "parent_id"])
                new = df[~df["run_id"].isin(seen)]
                seen.update(new["run_id"])
                top = new[new["parent_id"].isna()]
                if len(top) != 1:
                    problems.append(f"{name}: {len(top)} runs ({', '.join(top['name'])})")
                    continue
                run = mlo.get_run(top["run_id"].iloc[0])
                children = new[new["parent_id"].notna()]
                if len(children) != SEARCHES.get(name, 0) or set(children["parent_id"]) - {run.id}:
                    problems.append(f"{name}: {len(children)} child runs ({', '.join(children['name'])})")
                if run.name != name or run.status != "finished":
                    problems.append(f"{name}: run {run.name!r} is {run.status}")
                expected = {k for k in est.get_params(deep=True) if k}
                if not expected <= set(run.params):
                    problems.append(f"{name}: params {sorted(expected - set(run.params))[:5]} missing")
                if run.tags.get("mlo.autolog") != "sklearn" or run.tags.get("estimator_name") != name:
                    problems.append(f"{name}: tags {run.tags}")
        assert not problems, "\n".join(problems)
        unrecorded = [r.getMessage() for r in caplog.records if r.name == "mlo"]
        assert not unrecorded, "\n".join(unrecorded[:10])
    finally:
        mlo.autolog(disable=True)
