"""Each check on data with a known answer: values equal an independent computation (scikit-learn on the same
rows, counts of what was injected), and bounds decide pass or fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, recall_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

import mlo
from mlo import InvalidInput, checks


def run(model, X, y=None, *cs, **kw):
    return mlo.validate(model, X, y, checks=list(cs), store=False, **kw)


# -- thresholds ------------------------------------------------------------------------------------------------
def test_thresholds_equal_sklearn(churn):
    X, y, _, model = churn
    proba = model.predict_proba(X)
    rep = run(
        model,
        X,
        y,
        checks.threshold("accuracy", 0.7),
        checks.threshold("roc_auc", min=0.99),
        checks.threshold("log_loss", 0.6),
        checks.threshold("recall", min=0.2, max=0.9),
        checks.threshold(lambda t, p: float((t == p).mean()), min=0.0, name="hits"),
    )
    acc = accuracy_score(y, model.predict(X))
    assert rep["threshold.accuracy"].value == pytest.approx(acc, rel=1e-12)
    assert rep["threshold.accuracy"].op == ">=" and rep["threshold.accuracy"].passed is True
    assert rep["threshold.roc_auc"].value == pytest.approx(roc_auc_score(y, proba[:, 1]), rel=1e-12)
    assert rep["threshold.roc_auc"].passed is False  # 0.99 is out of reach
    assert rep["threshold.log_loss"].value == pytest.approx(log_loss(y, proba), rel=1e-12)
    assert rep["threshold.log_loss"].op == "<="  # a loss: the bound is a ceiling
    rec = rep["threshold.recall"]
    assert (
        rec.op == "between"
        and rec.bound == [0.2, 0.9]
        and rec.value == pytest.approx(recall_score(y, model.predict(X)))
    )
    assert rep["hits"].value == pytest.approx(acc)
    assert rep.passed is False and [r.name for r in rep.failures] == ["threshold.roc_auc"]


def test_regression_threshold_and_string_labels():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=500)})
    y = 3 * X.x + rng.normal(scale=0.5, size=500)
    reg = LinearRegression().fit(X, y)
    rep = run(reg, X, y, checks.threshold("mae", 0.5))
    assert rep.rows[0].value == pytest.approx(mean_absolute_error(y, reg.predict(X)))
    assert rep.rows[0].op == "<=" and rep.passed

    labels = np.where(X.x > 0, "yes", "no")
    clf = LogisticRegression().fit(X, labels)
    rep = run(
        clf, X, labels, checks.threshold("roc_auc", 0.9), checks.threshold("recall", 0.5, pos_label="yes")
    )
    assert rep["threshold.roc_auc"].value == pytest.approx(roc_auc_score(labels, clf.predict_proba(X)[:, 1]))
    assert rep["threshold.recall"].value == pytest.approx(
        recall_score(labels, clf.predict(X), pos_label="yes")
    )
    # "no" as the positive class: its own probability column, and the same AUC
    flipped = run(clf, X, labels, checks.threshold("roc_auc", 0.9), pos_label="no")
    expected = roc_auc_score(labels == "no", clf.predict_proba(X)[:, 0])
    assert flipped.rows[0].value == pytest.approx(expected)
    assert flipped.rows[0].value == pytest.approx(rep["threshold.roc_auc"].value)


def test_metric_without_predict_proba_uses_decision_function_or_says_what_to_do(churn):
    from sklearn.svm import LinearSVC

    X, y, _, _ = churn
    Xn = X[["tenure", "charges"]]
    svc = LinearSVC().fit(Xn, y)
    rep = run(svc, Xn, y, checks.threshold("roc_auc", 0.5))
    assert rep.rows[0].value == pytest.approx(roc_auc_score(y, svc.decision_function(Xn)))
    with pytest.raises(InvalidInput, match="has no predict_proba"):
        run(svc, Xn, y, checks.threshold("log_loss", 1.0))


# -- no_regression ---------------------------------------------------------------------------------------------
def test_no_regression_against_a_model_object(churn):
    X, y, _, model = churn
    weak = DummyClassifier(strategy="prior").fit(X, y)
    rep = run(model, X, y, checks.no_regression(weak, "roc_auc"), checks.no_regression(weak, "log_loss"))
    row = rep["no_regression.roc_auc"]
    assert row.value == pytest.approx(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    assert row.bound == pytest.approx(0.5)  # the dummy's AUC
    assert row.passed and rep["no_regression.log_loss"].passed
    assert row.data["against"] == "DummyClassifier"

    # the other way round it is a regression; a tolerance as large as the gap lets it through
    back = run(weak, X, y, checks.no_regression(model, "roc_auc"))
    assert back.passed is False and back.rows[0].data["delta"] < -0.2
    gap = -back.rows[0].data["delta"]
    assert run(weak, X, y, checks.no_regression(model, "roc_auc", tolerance=gap + 1e-9)).passed


def test_no_regression_champion_that_cannot_predict_fails_the_row(churn):
    X, y, _, model = churn
    other = LogisticRegression().fit(X[["tenure"]].rename(columns={"tenure": "months"}), y)
    rep = run(model, X, y, checks.no_regression(other, "accuracy"))
    assert rep.passed is False
    assert "could not predict" in rep.rows[0].detail


# -- slices ----------------------------------------------------------------------------------------------------
def test_slices_find_the_worst_slice(churn):
    X, y, _, model = churn
    pred = model.predict(X)
    rep = run(
        model, X, y, checks.slices("region", "accuracy", min_size=50, max_gap=0.1), checks.slices("plan")
    )
    row = rep["slices.region.accuracy"]
    south = (X.region == "south").to_numpy()
    expected = accuracy_score(y, pred) - accuracy_score(y[south], pred[south])
    assert row.data["worst"]["slice"] == "south"  # the coin-flip region
    assert row.value == pytest.approx(expected, rel=1e-12)
    assert row.passed is False and "worst region=south" in row.detail
    table = {s["slice"]: s for s in row.data["slices"]}
    assert table["south"]["size"] == int(south.sum())
    assert table["north"]["value"] == pytest.approx(
        accuracy_score(y[X.region == "north"], pred[X.region == "north"])
    )
    assert rep["slices.plan.accuracy"].passed is True


def test_small_slices_are_listed_not_judged_and_numeric_columns_are_binned(churn):
    X, y, _, model = churn
    region = X.region.where(np.arange(len(X)) >= 10, "rare")  # ten rows in a slice of their own
    rep = run(
        model,
        X,
        y,
        checks.slices(region.rename("region2"), "roc_auc", min_size=11, max_gap=0.5),
        checks.slices("charges", "recall", bins=4),
    )
    row = rep["slices.region2.roc_auc"]
    rare = next(s for s in row.data["slices"] if s["slice"] == "rare")
    assert rare["eligible"] is False and row.data["n_small"] == 1
    assert row.data["worst"]["slice"] != "rare"
    charges = rep["slices.charges.recall"]
    assert charges.data["n_slices"] == 4 and all(s["slice"].startswith("[") for s in charges.data["slices"])

    nothing = run(model, X, y, checks.slices("plan", min_size=10_000))
    assert nothing.rows[0].passed is None and nothing.passed  # skipped, not failed
    assert "no slice" in nothing.rows[0].detail


def test_slice_column_missing_from_x_is_a_one_line_hint(churn):
    X, y, _, model = churn
    with pytest.raises(InvalidInput) as info:
        run(model, X, y, checks.slices("regoin"))
    assert "column 'regoin' is not in X; did you mean 'region'?" in str(info.value)
    with pytest.raises(InvalidInput, match="3 values given for 4000 rows"):
        run(model, X, y, checks.slices(pd.Series([1, 2, 3])))
    with pytest.raises(InvalidInput, match="needs the true targets"):
        run(model, X, None, checks.slices("region"))


# -- robustness ------------------------------------------------------------------------------------------------
def test_noise_agreement_of_a_linear_regression_has_a_known_value():
    # y = x: noise of 0.1 std moves each prediction by N(0, 0.1 std); it "agrees" within 0.1 std of the
    # predictions, so the agreement is P(|Z| <= 1) = 0.6827
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=50_000)})
    reg = LinearRegression().fit(X, X.x)
    rep = run(
        reg, X, None, checks.robustness(noise=0.1, missing=None, swap=None, tolerance=0.1, min_agreement=0.6)
    )
    assert [r.name for r in rep.rows] == ["robustness.noise"]
    assert rep.rows[0].value == pytest.approx(0.6827, abs=0.01)
    assert rep.passed


def test_category_swaps_change_a_category_model_as_often_as_asked():
    rng = np.random.default_rng(1)
    n = 20_000
    X = pd.DataFrame({"plan": rng.choice(["a", "b", "c", "d"], n)})
    y = X.plan.map(
        {"a": 0, "b": 1, "c": 2, "d": 3}
    )  # one class per category: every swap changes the prediction
    model = make_pipeline(OneHotEncoder(), DecisionTreeClassifier()).fit(X, y)
    rep = run(model, X, y, checks.robustness(swap=0.2, noise=None, missing=None, min_agreement=0.9))
    assert rep.rows[0].value == pytest.approx(0.8, abs=0.01)
    assert rep.rows[0].passed is False and rep.rows[0].data["changed"] == round((1 - rep.rows[0].value) * n)


def test_model_that_breaks_on_missing_values_fails_the_missing_row(churn):
    X, y, _, _ = churn
    Xn = X[["tenure", "charges"]]
    bare = LogisticRegression().fit(Xn, y)  # no imputer
    rep = run(bare, Xn, y, checks.robustness(max_rows=500))
    row = rep["robustness.missing"]
    assert row.passed is False and row.value == 0.0 and "raised ValueError" in row.detail
    assert rep["robustness.swap"].passed is None  # no categorical columns: skipped
    assert rep["robustness.noise"].passed is True
    dummy = DummyClassifier().fit(X, y)
    assert all(r.value == 1.0 for r in run(dummy, X, y, checks.robustness()).rows)


def test_robustness_samples_rows_and_reuses_the_shared_predictions(churn, counting):
    X, y, _, model = churn
    wrapped = counting(model)
    run(wrapped, X, y, checks.robustness(max_rows=300), checks.threshold("accuracy", 0.5))
    # one predict on all rows (shared by the threshold), then one per perturbation on the 300-row sample
    assert wrapped.calls == [("predict", 4000)] + [("predict", 300)] * 3


# -- data checks -----------------------------------------------------------------------------------------------
def damaged(X: pd.DataFrame) -> pd.DataFrame:
    cur = X.copy()
    n = len(cur)
    cur.loc[cur.index[:80], "charges"] = np.nan  # 2% more missing
    cur.loc[cur.index[100:140], "tenure"] = 500  # 1% out of range
    cur.loc[cur.index[200:300], "plan"] = "enterprise"  # 2.5% unseen
    assert n == 4000
    return cur


def test_data_checks_against_a_reference_frame(churn):
    X, y, _, model = churn
    cur = damaged(X)
    rep = run(
        model, cur, y, checks.data(reference=X, null_tolerance=0.01, max_out_of_range=0.02, max_unseen=0.05)
    )
    by = {r.name: r for r in rep.rows}
    assert by["data.schema"].value == 0 and by["data.schema"].passed
    assert by["data.nulls"].value == pytest.approx(80 / 4000) and by["data.nulls"].passed is False
    assert "worst charges" in by["data.nulls"].detail
    assert by["data.ranges"].value == pytest.approx(40 / 4000) and by["data.ranges"].passed
    assert by["data.ranges"].data["columns"]["tenure"]["out"] == 40
    assert by["data.unseen"].value == pytest.approx(100 / 4000) and by["data.unseen"].passed
    assert by["data.unseen"].data["columns"]["plan"]["examples"] == ["enterprise"]


def test_schema_problems(churn):
    X, y, _, model = churn
    cur = X.drop(columns=["plan"]).assign(tenure=X.tenure.astype(str), extra=1)
    rep = mlo.validate(DummyClassifier().fit(X, y), cur, y, checks=[checks.data(X)], store=False)
    schema = rep["data.schema"]
    assert schema.value == 2 and schema.passed is False
    assert schema.data["problems"] == ["tenure: text (str), expected numeric", "plan: missing"]
    assert "extra" in schema.detail


def test_data_checks_against_a_snapshot(sqlite_ws, churn):
    X, y, _, model = churn
    snap = mlo.snapshot(X, "train")
    cur = damaged(X)
    for ref in (snap, "train"):
        rep = mlo.validate(model, cur, y, checks=[checks.data(reference=ref)])
        by = {r.name: r for r in rep.rows}
        assert by["data.schema"].passed and "snapshot train@1" in by["data.schema"].detail
        assert by["data.nulls"].value == pytest.approx(80 / 4000)
        assert by["data.ranges"].value == pytest.approx(40 / 4000)
        assert by["data.unseen"].value == pytest.approx(100 / 4000)  # the profile lists every plan


def test_data_check_without_a_reference_says_what_to_pass(churn):
    X, y, _, model = churn
    with pytest.raises(InvalidInput, match="no reference: pass reference="):
        run(model, X, y, checks.data())
    with pytest.raises(InvalidInput, match="cannot read a reference from int"):
        checks.data(reference=3)


def test_signature_with_only_names_and_dtypes_skips_what_it_cannot_know(churn):
    X, y, _, model = churn
    signature = {"inputs": [{"name": c, "dtype": str(X[c].dtype)} for c in X.columns]}
    rep = run(model, X, y, checks.data(reference=signature))
    assert [r.status for r in rep.rows] == ["passed", "skipped", "skipped", "skipped"]
    assert rep.passed


# -- rules -----------------------------------------------------------------------------------------------------
def test_rules(churn):
    X, y, _, model = churn

    def positive_share(ctx):
        return float((ctx.y_pred == 1).mean())

    rep = run(
        model,
        X,
        y,
        checks.rule(positive_share, max=0.3),
        checks.rule(lambda ctx: (len(ctx.X) == 4000, "row count"), name="rows"),
        lambda ctx: bool(ctx.proba.shape[1] == 2),
    )
    share = rep["rule.positive_share"]
    assert share.value == pytest.approx(float((model.predict(X) == 1).mean())) and share.passed is False
    assert rep["rows"].passed is True and rep["rows"].detail == "row count"
    assert rep["rule.rule"].passed is True
    with pytest.raises(InvalidInput, match="returned a number; give min= or max="):
        run(model, X, y, checks.rule(positive_share))
    with pytest.raises(InvalidInput, match="returned str"):
        run(model, X, y, checks.rule(lambda ctx: "ok"))


def test_bad_arguments_fail_at_construction():
    with pytest.raises(InvalidInput, match="unknown metric 'acuracy'.*'accuracy'"):
        checks.threshold("acuracy", 0.8)
    with pytest.raises(InvalidInput, match="give a bound"):
        checks.threshold("accuracy")
    with pytest.raises(InvalidInput, match="min=0.9 is above max=0.1"):
        checks.threshold("accuracy", min=0.9, max=0.1)
    with pytest.raises(InvalidInput, match="tolerance must be a finite number >= 0"):
        checks.no_regression("churn@production", "accuracy", tolerance=-1)
    with pytest.raises(InvalidInput, match="all off"):
        checks.robustness(noise=0, missing=None, swap=0)
    with pytest.raises(InvalidInput, match="needs checks="):
        mlo.validate(DummyClassifier(), pd.DataFrame({"a": [1]}), [1])


def test_every_check_on_a_fresh_sample_keeps_its_verdict(make_churn):
    # same generator, other seed: the verdicts are properties of the data, not of one draw
    X, y, sex, model = make_churn(3000, 5)
    rep = run(model, X, y, checks.slices("region", max_gap=0.1), checks.fairness(pd.Series(sex, name="sex")))
    assert rep["slices.region.accuracy"].passed is False
    assert rep["fairness.sex.demographic_parity_difference"].passed is False
