"""scikit-learn autolog: what a fit records, searches as parent and children, partial_fit, the logged model, and
what must never happen (junk runs, a broken fit, a changed estimator API)."""

import inspect
import io
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import mlo

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402


@pytest.fixture
def autolog(sqlite_ws):
    mlo.autolog()
    yield
    mlo.autolog(disable=True)


@pytest.fixture
def data():
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]), y


def test_fit_without_a_run_gets_its_own_run(autolog):
    X, y = make_classification(n_samples=200, random_state=0)
    LogisticRegression(C=0.5, max_iter=200).fit(X, y)
    df = mlo.runs()
    assert len(df) == 1
    run = mlo.get_run(df.run_id[0])
    assert run.name == "LogisticRegression" and run.status == "finished"
    assert run.params["C"] == 0.5 and run.params["max_iter"] == 200
    m = run.metrics
    assert (
        0.5 < m["training_accuracy"] <= 1 and 0.5 < m["training_roc_auc"] <= 1 and m["training_log_loss"] > 0
    )
    assert run.tags["estimator_name"] == "LogisticRegression" and run.tags["mlo.autolog"] == "sklearn"


def test_pipeline_logs_once_into_the_active_run(autolog):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_regression(n_samples=100, n_features=3, random_state=0)
    with mlo.start_run("pipe") as run:
        make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X, y)
    assert len(mlo.runs()) == 1  # inner fits did not start runs
    assert run.params["ridge__alpha"] == 2.0 and run.params["steps"]
    assert run.metrics["training_r2"] > 0.9 and run.metrics["training_rmse"] >= 0


def test_ensembles_log_one_run_each_and_no_run_for_their_trees(autolog, data):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    X, y = data
    RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0).fit(X, y)  # trees fit on joblib threads
    ExtraTreesClassifier(n_estimators=8, random_state=0).fit(X, y)
    HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    GradientBoostingClassifier(n_estimators=5).fit(X, y)
    df = mlo.runs()
    assert sorted(df.name) == [
        "ExtraTreesClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "RandomForestClassifier",
    ]
    forest = mlo.get_run(df.run_id[df.name == "RandomForestClassifier"].iloc[0])
    assert forest.params["n_estimators"] == 8 and forest.metrics["training_accuracy"] > 0.9


def test_a_subclass_is_recorded_as_itself(autolog, data):
    from sklearn.ensemble import RandomForestClassifier

    class MyForest(RandomForestClassifier):
        def fit(self, X, y):
            return super().fit(X, y)

    MyForest(n_estimators=3).fit(*data)
    assert list(mlo.runs().name) == ["MyForest"]


def test_grid_search_is_a_parent_with_a_child_per_candidate_best_first_up_to_the_cap(sqlite_ws, data):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlo.autolog(max_tuning_runs=4)
    try:
        grid = {
            "logisticregression__C": [0.001, 0.1, 10.0],
            "logisticregression__fit_intercept": [True, False],
        }
        search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), grid, cv=3)
        search.fit(*data)
    finally:
        mlo.autolog(disable=True)
    df = mlo.runs()
    parent = mlo.get_run(df.run_id[df.parent_id.isna()].iloc[0])
    assert parent.name == "GridSearchCV" and parent.tags["mlo.sweep"] == "GridSearchCV"
    assert parent.params["best_logisticregression__C"] == search.best_params_["logisticregression__C"]
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.metrics["training_accuracy"] > 0.5
    assert parent.tags["mlo.sweep.candidates"] == "6" and parent.tags["mlo.sweep.logged"] == "4"
    table = pd.read_csv(io.BytesIO(parent.artifact("cv_results.csv").read_bytes()))
    assert len(table) == 6 and "mean_test_score" in table.columns
    assert isinstance(parent.load_model().steps[-1][1], LogisticRegression)  # the refitted best estimator

    children = df[df.parent_id == parent.id]
    assert len(children) == 4
    ranks = sorted(int(mlo.get_run(r).tags["mlo.rank"]) for r in children.run_id)
    assert ranks == sorted(search.cv_results_["rank_test_score"])[:4]  # the best-ranked candidates
    child = mlo.get_run(children.run_id.iloc[0])
    i = int(child.tags["mlo.candidate"])
    assert child.name == f"Pipeline #{i}"
    candidate = search.cv_results_["params"][i]
    assert child.params["logisticregression__C"] == candidate["logisticregression__C"]
    assert child.params["standardscaler__with_mean"] is True  # the estimator's other params too
    assert child.metrics["mean_test_score"] == pytest.approx(search.cv_results_["mean_test_score"][i])
    assert list(child.history("test_score").step) == [0, 1, 2]  # one point per fold


def test_successive_halving_candidates_have_a_point_per_iteration(autolog, data):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    search = HalvingGridSearchCV(
        LogisticRegression(), {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}, cv=3, factor=2, min_resources=20
    )
    search.fit(*data)
    df = mlo.runs()
    parent = df[df.parent_id.isna()]
    assert list(parent.name) == ["HalvingGridSearchCV"]
    children = df[df.parent_id.notna()]
    assert len(children) == 6  # one per candidate, however many iterations it ran in
    survivors = [mlo.get_run(r) for r in children.run_id]
    longest = max(survivors, key=lambda r: len(r.history("mean_test_score")))
    assert list(longest.history("mean_test_score").step) == list(range(search.n_iterations_))


def test_randomized_search_in_an_active_run(autolog, data):
    from sklearn.model_selection import RandomizedSearchCV

    with mlo.start_run("tuning") as run:
        RandomizedSearchCV(LogisticRegression(), {"C": [0.01, 0.1, 1.0, 10.0]}, n_iter=3, random_state=0).fit(
            *data
        )
    df = mlo.runs()
    assert set(df.parent_id.dropna()) == {run.id} and len(df) == 4
    assert "best_C" in run.params and "cv_results.csv" in [a.path for a in run.artifacts]


def test_partial_fit_calls_share_one_run_with_a_point_per_call(autolog, data):
    from sklearn.linear_model import SGDClassifier

    X, y = data
    model = SGDClassifier(random_state=0)
    for batch in range(3):
        part = slice(batch * 40, (batch + 1) * 40)
        model.partial_fit(X[part], y[part], classes=[0, 1])
    df = mlo.runs()
    assert list(df.name) == ["SGDClassifier"] and df.status[0] == "finished"
    run = mlo.get_run(df.run_id[0])
    assert list(run.history("training_accuracy").step) == [0, 1, 2]
    with mlo.start_run("online") as active:
        model.partial_fit(X[:40], y[:40])
    assert len(mlo.runs()) == 2 and list(active.history("training_accuracy").step) == [0]


def test_a_failing_fit_raises_as_before_and_its_run_is_failed(autolog):
    with pytest.raises(ValueError):
        LogisticRegression(C=3.0).fit([["a"], ["b"]], [0, 1])
    run = mlo.get_run(mlo.runs().run_id[0])
    assert run.status == "failed" and run.params["C"] == 3.0  # params were logged before the fit


def test_patched_estimators_keep_their_api(autolog):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.validation import has_fit_parameter

    model = LogisticRegression()
    assert list(inspect.signature(model.fit).parameters)[:3] == ["X", "y", "sample_weight"]
    assert has_fit_parameter(model, "sample_weight") and model.fit.__name__ == "fit"
    assert not hasattr(make_pipeline(StandardScaler(), LogisticRegression()), "fit_transform")
    assert hasattr(make_pipeline(StandardScaler(), PCA(1)), "fit_transform")
    assert "Fit the model" in LogisticRegression.fit.__doc__


def test_turning_frameworks_on_and_off(sqlite_ws, data):
    from sklearn.linear_model import LinearRegression

    original = inspect.getattr_static(LogisticRegression, "fit")
    inherited = "fit" in LinearRegression.__dict__
    states = mlo.autolog()
    assert states["sklearn"] == "on" and set(states) >= {"xgboost", "lightgbm"}
    assert mlo.autolog()["sklearn"] == "on"  # twice: patched once
    LogisticRegression().fit(*data)
    assert len(mlo.runs()) == 1
    assert mlo.autolog(disable="sklearn")["sklearn"] == "off"
    assert inspect.getattr_static(LogisticRegression, "fit") is original  # exactly as it was
    assert ("fit" in LinearRegression.__dict__) == inherited
    LogisticRegression().fit(*data)
    assert len(mlo.runs()) == 1
    with pytest.raises(mlo.InvalidInput, match="sklearn"):
        mlo.autolog(disable=["sklarn"])
    with pytest.raises(mlo.InvalidInput, match="max_tuning_runs"):
        mlo.autolog(max_tuning_runs=-2)
    mlo.autolog(disable=True)


def test_log_models_and_metrics_can_be_turned_off(sqlite_ws, data):
    mlo.autolog(log_models=False, metrics=False)
    try:
        LogisticRegression().fit(*data)
    finally:
        mlo.autolog(disable=True)
    run = mlo.get_run(mlo.runs().run_id[0])
    assert run.artifacts == [] and run.metrics == {} and run.params["C"] == 1.0


def test_mlo_toml_sets_autolog_defaults(sqlite_ws, data):
    (sqlite_ws.home / "mlo.toml").write_text("[autolog]\nlog_models = false\nmax_tuning_runs = 1\n")
    sqlite_ws.reread_config()
    from sklearn.model_selection import GridSearchCV

    mlo.autolog()
    try:
        GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(*data)
    finally:
        mlo.autolog(disable=True)
    df = mlo.runs()
    assert len(df) == 2  # the search and its best candidate
    assert all(
        not mlo.get_run(r).artifacts or "cv_results.csv" in str(mlo.get_run(r).artifacts) for r in df.run_id
    )
    (sqlite_ws.home / "mlo.toml").write_text("[autolog]\nlog_model = false\n")
    with pytest.raises(mlo.InvalidInput, match="did you mean 'log_models'"):
        sqlite_ws.reread_config()


def test_the_logged_model_loads_back_with_its_signature(autolog, data):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = data
    model = LogisticRegression().fit(X, y)
    run = mlo.get_run(mlo.runs().run_id[0])
    info = __import__("json").loads(run.artifact("model/model.json").read_text())
    assert info["flavor"] == "skops" and [c["name"] for c in info["signature"]["columns"]] == list(X.columns)
    assert info["signature"]["outputs"]["classes"] == [0, 1]
    loaded = run.load_model()
    assert (loaded.predict(X) == model.predict(X)).all()
    version = mlo.register_model(loaded, "from-run", run=run)
    assert version.run_id == run.id

    # a model skops cannot hold is a pickle, which loads only with trust
    make_pipeline(FunctionTransformer(lambda v: v), LogisticRegression()).fit(X, y)
    pickled = mlo.get_run(mlo.runs().run_id[0])
    assert pickled.artifact("model/model.pkl")
    with pytest.raises(mlo.InvalidInput, match="trust=True"):
        pickled.load_model()
    assert pickled.load_model(trust=True).predict(X).shape == (len(X),)
    with pytest.raises(mlo.NotFound, match="log_models"):
        mlo.start_run("empty").load_model()


def test_autolog_before_sklearn_is_imported_patches_it_on_import(sqlite_ws):
    script = textwrap.dedent("""
        import sys, mlo
        states = mlo.autolog()
        assert "sklearn" not in sys.modules and states["sklearn"] == "on import", states
        from sklearn.linear_model import LinearRegression
        LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        print(list(mlo.runs().name))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['LinearRegression']"


def test_a_store_fault_never_breaks_the_fit(autolog, data, caplog, monkeypatch, tmp_path):
    import logging

    from mlo import workspace

    LogisticRegression().fit(*data)  # the store works
    # the store becomes unreachable (a database on a disk that is gone)
    monkeypatch.setenv("MLO_STORE", f"sqlite:///{tmp_path}/gone/deeper/mlo.db")
    workspace.reset_cache()
    with caplog.at_level(logging.WARNING, logger="mlo"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression().fit(*data)
    assert (model.predict(data[0]) == data[1]).mean() > 0.5  # trained all the same
    assert any("could not start a run" in r.getMessage() for r in caplog.records)


def test_an_integration_is_a_few_lines(sqlite_ws):
    from mlo.tracking.autolog import FitRun, Integration, register

    class Toy(Integration):
        name = "toy"
        module = "json"  # any importable module stands in for a framework

        def patch(self, patcher, module):
            patcher.method(Trainer, "train", self.train)

        def train(self, train, trainer, *args, **kwargs):
            with FitRun(self.name, type(trainer).__name__) as rec:
                if rec is None:
                    return train(*args, **kwargs)
                rec.log_params({"lr": trainer.lr})
                result = train(*args, **kwargs)
                for step, loss in enumerate(result):
                    rec.log_metrics({"loss": loss}, step=step)
                return result

    class Trainer:
        lr = 0.1

        def train(self, epochs):
            return [1.0 / (e + 1) for e in range(epochs)]

    register(Toy())
    try:
        assert mlo.autolog()["toy"] == "on"
        Trainer().train(3)
        run = mlo.get_run(mlo.runs().run_id[0])
        assert run.name == "Trainer" and run.params == {"lr": 0.1} and len(run.history("loss")) == 3
    finally:
        mlo.autolog(disable=True)
        from mlo.tracking import autolog as module

        module._registry.pop("toy", None)
    assert "train" in Trainer.__dict__ and not hasattr(Trainer.__dict__["train"], "raw")


def test_disable_restores_plain_fit(sqlite_ws):
    from sklearn.linear_model import LinearRegression

    mlo.autolog()
    mlo.autolog(disable=True)
    LinearRegression().fit([[0], [1]], [0, 1])
    assert mlo.runs().empty
    assert np.isclose(LinearRegression().fit([[0], [1]], [0, 1]).coef_[0], 1.0)
