"""``mlo import mlflow`` beyond runs and scikit-learn models: models of other flavors (pyfunc, xgboost) as opaque
artifacts with their MLmodel, dataset inputs as snapshots or references in the lineage, and traces as mlo traces —
against a real MLflow store (SQLite) written by MLflow's own client."""

from __future__ import annotations

import json
import os

import pytest

import mlo
from strict import need

try:
    import mlflow
except ImportError:  # pragma: no cover - reported by the fixture
    mlflow = None


class Doubler(mlflow.pyfunc.PythonModel if mlflow is not None else object):
    def predict(self, context, model_input: list[float], params=None) -> list[float]:
        return [2 * v for v in model_input]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    need(mlflow is not None, "the MLflow import tests need mlflow-skinny (pip install -e '.[dev]')")
    import numpy as np
    import pandas as pd

    folder = tmp_path_factory.mktemp("mlflow-more")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING")
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"  # traces written before the fixture returns
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    client.create_experiment("rag", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("rag")
    train_csv = folder / "train.csv"
    pd.DataFrame({"q": ["why?", "how?"], "label": [1, 0]}).to_csv(train_csv, index=False)
    try:
        with mlflow.start_run(run_name="answerer") as run:

            @mlflow.trace(span_type="CHAIN")
            def answer(q):
                with mlflow.start_span("retrieve", span_type="RETRIEVER") as sp:
                    sp.set_inputs({"q": q})
                    sp.set_outputs(["doc " * 1000])  # large: kept as a blob
                with mlflow.start_span("chat", span_type="CHAT_MODEL") as sp:
                    sp.set_attributes(
                        {
                            "mlflow.llm.model": "gpt-4o-mini",
                            "mlflow.chat.tokenUsage": {
                                "input_tokens": 12,
                                "output_tokens": 3,
                                "total_tokens": 15,
                            },
                        }
                    )
                    sp.set_outputs("because")
                return "because"

            answer("why?")
            with pytest.raises(ValueError), mlflow.start_span("broken", span_type="TOOL"):
                raise ValueError("tool down")
            df = pd.read_csv(train_csv)
            mlflow.log_input(
                mlflow.data.from_pandas(df, source=str(train_csv), name="train"), context="training"
            )
            mlflow.log_input(
                mlflow.data.from_pandas(pd.DataFrame({"x": [1.0]}), name="held out", targets="x"),
                context="eval",
            )
            mlflow.pyfunc.log_model(name="doubler", python_model=Doubler(), registered_model_name="doubler")
            import xgboost

            X = np.arange(40, dtype=float).reshape(-1, 1)
            booster = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, (X[:, 0] > 19).astype(int))
            from mlflow import xgboost as mlflow_xgboost

            mlflow_xgboost.log_model(booster, name="xgb", registered_model_name="churn-xgb")
        client.set_registered_model_alias("doubler", "production", "1")
    finally:
        mlflow.set_tracking_uri(None)
        if old is None:
            os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", None)
        else:
            os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = old
    return {"uri": uri, "run": run.info.run_id, "csv": train_csv}


def test_other_flavors_datasets_and_traces_come_along_once(sqlite_ws, store, tmp_path):
    from mlo.interop.mlflow_import import import_mlflow

    s = import_mlflow(store["uri"])
    assert (s.runs, s.models_as_artifacts, s.model_versions) == (1, 2, 0) and not s.left
    assert (s.datasets_snapshotted, s.datasets_referenced) == (1, 1)
    assert (s.traces, s.trace_spans) == (2, 4)
    run = mlo.get_run(mlo.runs(experiment="rag")["run_id"].iloc[0])

    # models of other flavors: a run of their own, child of the run that logged them, the folder as artifacts
    models = {r["name"]: r for _, r in mlo.runs(experiment="mlflow-models").iterrows()}
    assert set(models) == {"doubler/1 (MLflow model)", "churn-xgb/1 (MLflow model)"}
    xgb = mlo.get_run(models["churn-xgb/1 (MLflow model)"]["run_id"])
    assert xgb.parent_id == run.id and "xgboost" in xgb.tags["mlo.mlflow.flavors"]
    paths = [a.path for a in xgb.artifacts]
    assert "model/MLmodel" in paths and any(p.startswith("model/model.") for p in paths)
    assert "flavors:" in xgb.artifact("model/MLmodel").read_text()
    import xgboost

    name = next(p for p in paths if p.startswith("model/model."))
    local = tmp_path / name.rsplit("/", 1)[1]  # xgboost reads the format from the file's suffix
    local.write_bytes(xgb.artifact(name).read_bytes())
    loaded = xgboost.XGBClassifier()
    loaded.load_model(str(local))  # the copy is whole: xgboost reads it back
    assert loaded.predict([[30.0]])[0] == 1

    # datasets: the readable file became a snapshot read by the run; the other is a reference with its metadata
    snap = mlo.load_snapshot("train")
    assert list(snap["q"]) == ["why?", "how?"]
    up = mlo.lineage(f"run:{run.id}")
    names = {n.id for n in up.upstream()}
    assert any(n.startswith("snapshot:") for n in names)
    assert any(n.startswith("dataset:mlflow/held out@") for n in names)
    ref = json.loads(run.tags["mlo.dataset.held out"])
    assert ref["context"] == "eval" and ref["profile"]["num_rows"] == 1

    # traces: the span tree, kinds, usage, the run, inputs/outputs (the large one as a blob), and the error
    df = mlo.traces()
    assert set(df["name"]) == {"answer", "broken"}
    t = mlo.llm.get_trace(df[df["name"] == "answer"]["trace_id"].iloc[0])
    assert t.run_id == run.id
    spans = {sp.name: sp for sp in t.spans}
    assert spans["retrieve"].parent_id == spans["answer"].span_id and spans["retrieve"].kind == "retrieval"
    chat = spans["chat"]
    assert chat.kind == "llm" and chat.model == "gpt-4o-mini" and chat.usage.input == 12 and t.cost > 0
    assert spans["answer"].attributes["mlo.inputs"] == {"q": "why?"}
    broken = mlo.llm.get_trace(df[df["name"] == "broken"]["trace_id"].iloc[0])
    assert broken.status == "error" and "tool down" in (broken.spans[0].error or "")

    again = import_mlflow(store["uri"])  # nothing twice
    assert (again.runs, again.models_as_artifacts, again.traces) == (0, 0, 0)
    assert (again.skipped, again.model_versions_skipped, again.traces_skipped) == (1, 2, 2)
    assert len(mlo.traces()) == 2 and len(mlo.runs(experiment="mlflow-models")) == 2
