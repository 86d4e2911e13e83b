"""``mlo import mlflow`` against a real MLflow tracking store (SQLite), written by MLflow's own client."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import mlo
from mlo.errors import InvalidInput, NotFound
from strict import need

try:
    from mlflow.tracking import MlflowClient
except ImportError:  # pragma: no cover - reported by the fixture
    MlflowClient = None


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """An MLflow store with two experiments: a finished run with a 50-point history, params, tags and nested
    artifacts; a failed child run; a run in another experiment; and a run still running."""
    need(MlflowClient is not None, "the MLflow import tests need mlflow-skinny (pip install -e '.[dev]')")
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri)
    churn = c.create_experiment("churn", artifact_location=(folder / "artifacts").as_uri())
    other = c.create_experiment("other", artifact_location=(folder / "artifacts2").as_uri())
    base = c.create_run(
        churn, run_name="baseline", tags={"team": "risk", "mlflow.note.content": "first\ntry"}
    )
    rid = base.info.run_id
    c.log_param(rid, "C", "1.0")
    c.log_param(rid, "model", "logistic régression")
    for i in range(50):
        c.log_metric(rid, "loss", 1.0 / (i + 1), step=i, timestamp=1_700_000_000_000 + i * 1000)
    c.log_metric(rid, "auc", float("nan"), step=0)
    (folder / "plots").mkdir()
    (folder / "plots" / "roc.txt").write_text("auc 0.91")
    (folder / "report.json").write_text('{"ok": true}')
    c.log_artifact(rid, str(folder / "report.json"))
    c.log_artifacts(rid, str(folder / "plots"), artifact_path="plots")
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = (X[:, 0] > 19).astype(int)
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(run_id=rid):  # ends FINISHED
            mlflow.sklearn.log_model(
                LogisticRegression().fit(X, y), name="model", registered_model_name="churn"
            )
            mlflow.sklearn.log_model(
                LogisticRegression(C=0.01).fit(X, y),
                name="model2",
                registered_model_name="churn",
                serialization_format="cloudpickle",
            )
    finally:
        mlflow.set_tracking_uri(None)
    c.set_registered_model_alias("churn", "production", "1")
    c.set_registered_model_alias("churn", "staging", "2")
    child = c.create_run(churn, run_name="fold-1", tags={"mlflow.parentRunId": rid})
    c.log_metric(child.info.run_id, "loss", 0.5)
    c.set_terminated(child.info.run_id, "FAILED")
    o = c.create_run(other, run_name="elsewhere")
    c.log_param(o.info.run_id, "k", "3")
    c.set_terminated(o.info.run_id, "FINISHED")
    live = c.create_run(churn, run_name="still-going")
    return {
        "uri": uri,
        "client": c,
        "base": rid,
        "child": child.info.run_id,
        "live": live.info.run_id,
        "X": X,
    }


def _by_name(experiment=None):
    df = mlo.runs(experiment=experiment)
    return {row["name"]: row for _, row in df.iterrows()}


def test_an_import_copies_runs_whole_and_again_only_what_is_new(ws, mlflow_store):
    from mlo.interop.mlflow_import import import_mlflow

    first = import_mlflow(mlflow_store["uri"])
    assert (first.runs, first.skipped, first.running) == (3, 0, 1)
    assert first.metric_points == 52 and first.artifacts == 2 and first.params == 3
    runs = _by_name("churn")
    assert set(runs) == {"baseline", "fold-1"}
    base = mlo.get_run(runs["baseline"]["run_id"])
    assert (
        base.status == "finished"
        and base.params["C"] == "1.0"
        and base.params["model"] == "logistic régression"
    )
    assert base.tags["team"] == "risk" and base.tags["mlo.imported_from"] == f"mlflow:{mlflow_store['base']}"
    history = base.history("loss")
    assert list(history["step"]) == list(range(50))
    assert history["value"].iloc[-1] == pytest.approx(1 / 50)
    assert history["timestamp"].iloc[0].timestamp() == pytest.approx(1_700_000_000)
    assert math.isnan(base.metrics["auc"])
    assert {a.path for a in base.artifacts} == {"report.json", "plots/roc.txt"}
    assert base.artifact("plots/roc.txt").read_bytes() == b"auc 0.91"
    child = mlo.get_run(runs["fold-1"]["run_id"])
    assert child.status == "failed"
    assert mlo.runs(experiment="other")["name"].tolist() == ["elsewhere"]

    c = mlflow_store["client"]
    c.set_terminated(mlflow_store["live"], "KILLED")  # ended since: the next import takes it
    try:
        again = import_mlflow(mlflow_store["uri"])
    finally:
        c.update_run(mlflow_store["live"], "RUNNING")
    assert (again.runs, again.skipped) == (1, 3)
    assert _by_name("churn")["still-going"]["status"] == "killed"
    assert len(mlo.runs()) == 4  # nothing imported twice


def test_registered_models_come_with_their_aliases_and_pickles_only_when_trusted(sqlite_ws, mlflow_store):
    from mlo.interop.mlflow_import import import_mlflow

    X = mlflow_store["X"]
    first = import_mlflow(mlflow_store["uri"], artifacts=False)
    assert (first.model_versions, first.aliases) == (1, 1)
    assert any("churn/2" in why and "--trust-models" in why for why in first.left)
    loaded = mlo.load_model("churn@production")
    assert list(loaded.predict(X)) == [int(v > 19) for v in X[:, 0]]
    again = import_mlflow(mlflow_store["uri"], artifacts=False, trust_models=True)
    assert (again.model_versions, again.model_versions_skipped, again.aliases) == (1, 1, 1)
    assert not again.left
    assert mlo.load_model("churn@staging").model_version.version == 2


def test_the_cli_imports_one_experiment_and_says_what_is_wrong(sqlite_ws, mlflow_store, tmp_path):
    def mlo_cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "mlo", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )

    out = mlo_cli(
        "import", "mlflow", "--tracking-uri", mlflow_store["uri"], "--experiment", "other", "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["runs"] == 1 and summary["experiments"] == ["other"]
    out = mlo_cli("import", "mlflow", "--tracking-uri", mlflow_store["uri"], "--experiment", "nope")
    assert out.returncode == 2 and "no MLflow experiment named 'nope'" in out.stderr
    assert "churn" in out.stderr and "Traceback" not in out.stderr
    out = mlo_cli("import", "mlflow", "--tracking-uri", f"sqlite:///{tmp_path / 'missing.db'}")
    assert out.returncode == 2 and "no MLflow database" in out.stderr
    assert not (tmp_path / "missing.db").exists()  # not created by looking


def test_a_blank_uri_is_refused():
    from mlo.interop.mlflow_import import import_mlflow

    with pytest.raises(InvalidInput, match="--tracking-uri"):
        import_mlflow("  ")
    with pytest.raises(NotFound):
        import_mlflow("no/such/mlruns")
