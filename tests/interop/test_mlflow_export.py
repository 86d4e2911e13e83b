"""``mlo export mlflow``: runs and scikit-learn model versions written into a real MLflow store, read back by
MLflow's own client and ``mlflow.pyfunc.load_model``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from strict import need

try:
    from mlflow.tracking import MlflowClient
except ImportError:  # pragma: no cover - reported by need()
    MlflowClient = None


def test_runs_and_models_reach_mlflow_once(sqlite_ws, tmp_path):
    need(MlflowClient is not None, "the MLflow export tests need mlflow-skinny (pip install -e '.[dev]')")
    import mlflow.pyfunc
    from sklearn.linear_model import LogisticRegression

    from mlo.interop.mlflow_export import export_mlflow

    X = pd.DataFrame({"x": np.arange(40, dtype=float)})
    y = (X.x > 19).astype(int)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.txt").write_text("auc 0.9")
    with mlo.start_run("baseline", experiment="churn") as run:
        mlo.log_params({"C": 0.5, "solver": "lbfgs"})
        for step in range(20):
            mlo.log_metric("loss", 1 / (step + 1), step=step)
        mlo.set_tags({"team": "risk"})
        mlo.log_artifact(tmp_path / "plots" / "roc.txt", "plots/roc.txt")
        model = LogisticRegression(C=0.5).fit(X, y)
        mlo.register_model(model, "churn", input_example=X.head(), alias="production")
    with pytest.raises(RuntimeError), mlo.start_run("broken", experiment="churn"):
        raise RuntimeError("diverged")
    live = mlo.start_run("still-going", experiment="churn")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = export_mlflow(uri)
    assert (first.runs, first.model_versions, first.aliases) == (2, 1, 1) and first.skipped == 1
    assert first.metric_points == 20 and first.artifacts == 1
    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name("churn")
    exported = {r.info.run_name: r for r in c.search_runs([exp.experiment_id])}
    assert set(exported) == {"baseline", "broken"}
    base = exported["baseline"]
    assert base.info.status == "FINISHED" and exported["broken"].info.status == "FAILED"
    assert base.data.params == {"C": "0.5", "solver": "lbfgs"} and base.data.tags["team"] == "risk"
    assert base.data.tags["mlo.run_id"] == run.id
    history = c.get_metric_history(base.info.run_id, "loss")
    assert [m.step for m in history] == list(range(20)) and history[-1].value == pytest.approx(1 / 20)
    assert [a.path for a in c.list_artifacts(base.info.run_id, "plots")] == ["plots/roc.txt"]

    mlflow.set_tracking_uri(uri)
    try:
        loaded = mlflow.pyfunc.load_model("models:/churn@production")
        assert list(loaded.predict(X)) == list(model.predict(X))
    finally:
        mlflow.set_tracking_uri(None)

    mlo.end_run()
    assert live.status == "finished"
    again = export_mlflow(uri)
    assert (again.runs, again.model_versions, again.aliases) == (1, 0, 0)  # only the run that has ended since
    assert len(c.search_runs([exp.experiment_id])) == 3
