"""The report: verdict, dict and HTML forms, the gate, and what is kept in the workspace (report row, lineage
edges, the active run's metrics). Predictions are shared between checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

import mlo
from mlo import GateFailed, checks, workspace


def suite(sex):
    return [
        checks.threshold("accuracy", 0.6),
        checks.threshold("roc_auc", 0.7),
        checks.slices("region", "accuracy", max_gap=0.05),
        checks.fairness(pd.Series(sex, name="sex")),
        checks.robustness(max_rows=1000),
    ]


class Version:
    """What a registered model version looks like to validate: a name, a number, a signature."""

    def __init__(self, name, version, signature=None):
        self.name, self.version, self.signature = name, version, signature


def edges_of(ws, node):
    with ws.db.read() as c:
        return set(ws.lineage.edges_touching([node], c))


def test_checks_share_one_predict_and_one_predict_proba(churn, counting):
    X, y, sex, model = churn
    wrapped = counting(model)
    champion = counting(DummyClassifier().fit(X, y))
    mlo.validate(
        wrapped,
        X,
        y,
        checks=[
            checks.threshold("accuracy", 0.5),
            checks.threshold("roc_auc", 0.5),
            checks.threshold("log_loss", 1.0),
            checks.slices("region", "roc_auc"),
            checks.slices("plan", "accuracy"),
            checks.fairness(pd.Series(sex, name="sex")),
            checks.no_regression(champion, "roc_auc"),
            checks.no_regression(champion, "accuracy"),
            checks.data(reference=X),
        ],
        store=False,
    )
    assert sorted(wrapped.calls) == [("predict", 4000), ("predict_proba", 4000)]
    assert sorted(champion.calls) == [("predict", 4000), ("predict_proba", 4000)]


def test_report_forms_and_gate(churn):
    X, y, sex, model = churn
    rep = mlo.validate(model, X, y, checks=suite(sex), store=False)
    assert rep.passed is False and rep.id is None
    failed = {r.name for r in rep.failures}
    assert {"slices.region.accuracy", "fairness.sex.demographic_parity_difference"} <= failed
    assert rep["threshold.accuracy"].passed is True

    d = rep.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d  # plain JSON: no NaN, no numpy
    assert d["passed"] is False and d["n_checks"] == len(rep.rows) and d["n_failed"] == len(failed)
    row = d["rows"][0]
    assert set(row) >= {"name", "value", "bound", "op", "passed", "detail", "status"}
    assert d["timing"]["predict_seconds"] > 0 and d["timing"]["calls"]

    frame = rep.to_frame()
    assert list(frame.columns) == ["name", "check", "value", "op", "bound", "passed", "detail"]
    assert len(frame) == len(rep.rows)

    with pytest.raises(GateFailed) as info:
        rep.raise_for_failures()
    msg = str(info.value)
    assert "\n" not in msg and f"failed {len(failed)} of {len(rep.rows)} checks" in msg
    assert "slices.region.accuracy" in msg and info.value.exit_code == 1

    ok = mlo.validate(model, X, y, checks=[checks.threshold("accuracy", 0.5)], store=False)
    assert ok.raise_for_failures() is ok


def test_html_is_small_self_contained_and_shows_the_evidence(churn):
    X, y, sex, model = churn
    html = mlo.validate(model, X, y, checks=suite(sex), store=False)._repr_html_()
    assert "<script" not in html.lower() and "http" not in html
    assert html.count("<svg") >= len(suite(sex))
    assert "Worst slices of region by accuracy" in html and "<b>south</b>" in html
    assert "Fairness by sex" in html and "selection rate" in html
    assert ">failed<" in html and ">passed<" in html
    assert len(html) < 40_000


def test_stored_report_links_model_version_and_run(sqlite_ws, churn):
    X, y, sex, model = churn
    snap = mlo.snapshot(X, "reference")
    with mlo.start_run("validate", experiment="churn") as run:
        rep = mlo.validate(
            model,
            X,
            y,
            checks=[
                checks.threshold("accuracy", 0.6),
                checks.slices("region", max_gap=0.05),
                checks.data(snap),
            ],
            model_version=Version("churn", 3),
        )
    assert rep.id and rep.run_id == run.id and rep.model_version == "churn/3"

    record = sqlite_ws.reports.get(rep.id)
    assert record.kind == "validation" and record.subject == "model:churn/3" and record.run_id == run.id
    assert record.passed is False
    s = record.summary
    assert s["passed"] is False and s["n_checks"] == 6 and s["n_failed"] == 1
    assert s["checks"] == rep.names and s["failed"] == ["slices.region.accuracy"]
    assert sqlite_ws.reports.payload(record)["rows"][1]["data"]["worst"]["slice"] == "south"
    assert [r.id for r in sqlite_ws.reports.list(kind="validation", subject="model:churn/3")] == [rep.id]

    node = f"report:{rep.id}"
    assert edges_of(sqlite_ws, node) == {
        (node, "model:churn/3", "evidence"),
        (f"run:{run.id}", node, "report"),
        (snap.node, node, "reference"),
    }
    again = mlo.ValidationReport.load(rep.id[:12])  # a stored report reads back whole
    assert again.id == rep.id and again.passed is False and again.names == rep.names
    assert again["slices.region.accuracy"].data["worst"] == rep["slices.region.accuracy"].data["worst"]
    assert "Worst slices of region" in again._repr_html_()

    metrics = mlo.get_run(run.id).metrics
    assert metrics["validation.passed"] == 0.0
    assert metrics["validation.threshold.accuracy"] == pytest.approx(rep["threshold.accuracy"].value)
    assert metrics["validation.slices.region.accuracy"] == pytest.approx(rep["slices.region.accuracy"].value)


def test_model_version_from_a_ref_string_or_the_model_handle(sqlite_ws, churn):
    X, y, _, model = churn

    class Handle:  # the shape of mlo.load_model(...)'s result
        def __init__(self, raw, mv):
            self.raw, self.model_version = raw, mv

        def predict(self, X):
            return self.raw.predict(X)

        def predict_proba(self, X):
            return self.raw.predict_proba(X)

    signature = {"inputs": [{"name": c, "dtype": str(X[c].dtype)} for c in X.columns]}
    handle = Handle(model, Version("churn", 7, signature))
    rep = mlo.validate(handle, X.drop(columns=["plan"]), y, checks=[checks.data()])
    assert rep.model_version == "churn/7"  # the handle's version, and its signature is the data reference
    assert rep["data.schema"].passed is False and rep["data.schema"].data["problems"] == ["plan: missing"]
    assert sqlite_ws.reports.get(rep.id).subject == "model:churn/7"


def test_not_stored_without_a_workspace_version_or_run(churn, tmp_path):
    X, y, _, model = churn
    rep = mlo.validate(model, X, y, checks=[checks.threshold("accuracy", 0.5)])
    assert rep.id is None and not (tmp_path / ".mlo").exists()
    forced = mlo.validate(model, X, y, checks=[checks.threshold("accuracy", 0.5)], store=True)
    assert forced.id and (tmp_path / ".mlo").is_dir()
    again = mlo.validate(model, X, y, checks=[checks.threshold("accuracy", 0.5)])  # a workspace now exists
    assert again.id and workspace.current().reports.get(again.id).subject is None


def test_duplicate_names_are_numbered(churn):
    X, y, _, model = churn
    rep = mlo.validate(
        model,
        X,
        y,
        checks=[checks.threshold("accuracy", 0.5), checks.threshold("accuracy", 0.9)],
        store=False,
    )
    assert rep.names == ["threshold.accuracy", "threshold.accuracy#2"]


def test_mlo_validate_stays_callable_whatever_is_imported_first(tmp_path):
    # `mlo.validate` is a package and a function; importing the package first must not hide the function
    import subprocess
    import sys

    code = (
        "import mlo\n"
        "from mlo import checks\n"
        "import mlo.validate.report\n"
        "from sklearn.dummy import DummyClassifier\n"
        "X, y = [[0], [1], [2], [3]], [0, 1, 0, 1]\n"
        "rep = mlo.validate(DummyClassifier().fit(X, y), X, y, checks=[checks.threshold('accuracy', 0.4)], store=False)\n"
        "print(rep.passed, rep.rows[0].value)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "0.5"]
