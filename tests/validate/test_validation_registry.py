"""Validation with the real model registry: champions loaded by ref, reports as evidence for versions, the
signature as the data reference, and the promotion policy reading the stored verdicts."""

from __future__ import annotations

import pytest
from sklearn.dummy import DummyClassifier

import mlo
from mlo import GateFailed, checks


@pytest.fixture
def registry(sqlite_ws, churn):
    X, y, _, model = churn
    weak = mlo.register_model(DummyClassifier(strategy="prior").fit(X, y), "churn", input_example=X.head())
    mlo.set_alias("churn", "production", weak.version)
    strong = mlo.register_model(model, "churn", input_example=X.head())
    return weak, strong


def test_no_regression_against_the_production_model(registry, churn):
    X, y, _, model = churn
    weak, strong = registry
    rep = mlo.validate(
        model, X, y, checks=[checks.no_regression("churn@production", "roc_auc")], model_version=strong
    )
    row = rep.rows[0]
    assert row.passed and row.data["against"] == f"churn/{weak.version}"
    assert row.bound == pytest.approx(0.5)  # the production dummy's AUC on the same rows

    # the dummy validated against the strong model (by version ref) is a regression
    back = mlo.validate(
        mlo.load_model(f"churn/{weak.version}"),
        X,
        y,
        checks=[checks.no_regression(f"churn/{strong.version}", "roc_auc")],
    )
    assert back.passed is False and back.model_version == f"churn/{weak.version}"


def test_missing_champion_fails_unless_told_otherwise(registry, churn):
    X, y, _, model = churn
    rep = mlo.validate(model, X, y, checks=[checks.no_regression("churn@champion", "accuracy")], store=False)
    assert rep.passed is False and "if_missing='pass'" in rep.rows[0].detail
    rep = mlo.validate(
        model,
        X,
        y,
        checks=[checks.no_regression("churn@champion", "accuracy", if_missing="pass")],
        store=False,
    )
    assert rep.passed is True and rep.rows[0].op is None


def test_reports_are_the_evidence_the_promotion_policy_reads(registry, churn, sqlite_ws):
    X, y, sex, model = churn
    _, strong = registry
    mlo.set_policy("production", validation=True)
    gate = [checks.threshold("accuracy", 0.6), checks.slices("region", max_gap=0.05)]
    failing = mlo.validate(model, X, y, checks=gate, model_version=f"churn/{strong.version}")
    assert failing.passed is False and failing.model_version == strong.ref
    with pytest.raises(GateFailed, match=failing.id):
        mlo.promote("churn", strong.version, "production")

    passing = mlo.validate(model, X, y, checks=[checks.threshold("accuracy", 0.6)], model_version=strong)
    assert passing.passed
    mlo.promote("churn", strong.version, "production")
    assert mlo.get_model_version("churn@production").version == strong.version
    assert {r.id for r in sqlite_ws.reports.list(kind="validation", subject=strong.node)} == {
        failing.id,
        passing.id,
    }


def test_loaded_model_handle_brings_its_version_and_signature(registry, churn):
    X, y, _, _ = churn
    _, strong = registry
    handle = mlo.load_model("churn@latest")
    rep = mlo.validate(handle, X, y, checks=[checks.data(), checks.robustness(max_rows=500)])
    assert rep.model_version == strong.ref
    assert rep["data.schema"].passed and "4 columns as in the model signature" in rep["data.schema"].detail
    assert rep["data.ranges"].passed is None  # five example rows say nothing about ranges
    # robustness goes through the handle's signature check: injected missing values keep each column's kind
    assert rep["robustness.missing"].passed is True


def test_signature_from_the_training_snapshot_gives_ranges_and_categories(sqlite_ws, churn):
    X, y, _, model = churn
    with mlo.start_run("train", experiment="churn"):
        mlo.snapshot(X, "train")
        mv = mlo.register_model(
            model, "churn"
        )  # no example: the signature comes from the run's input snapshot
    assert mv.signature.source.startswith("snapshot:train@")
    cur = X.copy()
    cur.loc[cur.index[:40], "tenure"] = 500
    cur.loc[cur.index[40:60], "plan"] = "enterprise"
    rep = mlo.validate(model, cur, y, checks=[checks.data()], model_version=mv)
    assert rep["data.ranges"].value == pytest.approx(40 / 4000)
    assert rep["data.unseen"].value == pytest.approx(20 / 4000)
    assert rep["data.nulls"].passed is True
    assert "snapshot:train@1" in rep["data.schema"].detail
