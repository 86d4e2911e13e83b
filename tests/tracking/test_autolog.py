import pytest

import mlo

sklearn = pytest.importorskip("sklearn")


@pytest.fixture
def autolog(sqlite_ws):
    mlo.autolog()
    yield
    mlo.autolog(disable=True)


def test_fit_without_a_run_gets_its_own_run(autolog):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

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
    assert run.tags["estimator_name"] == "LogisticRegression"


def test_pipeline_logs_once_into_the_active_run(autolog):
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_regression(n_samples=100, n_features=3, random_state=0)
    with mlo.start_run("pipe") as run:
        make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X, y)
    assert len(mlo.runs()) == 1  # inner fits did not start runs
    assert run.params["ridge__alpha"] == 2.0 and run.params["steps"]
    assert run.metrics["training_r2"] > 0.9 and run.metrics["training_rmse"] >= 0


def test_disable_restores_plain_fit(sqlite_ws):
    from sklearn.linear_model import LinearRegression

    mlo.autolog()
    mlo.autolog(disable=True)
    LinearRegression().fit([[0], [1]], [0, 1])
    assert mlo.runs().empty
