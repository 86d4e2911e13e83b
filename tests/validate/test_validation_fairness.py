"""Fairness numbers equal fairlearn's on the same predictions (fairlearn's real functions)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo import InvalidInput, checks

fl = pytest.importorskip("fairlearn.metrics")


def fairlearn_numbers(y, pred, sensitive, method, agg, pos_label=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "demographic_parity_difference": fl.demographic_parity_difference(
                y, pred, sensitive_features=sensitive, method=method
            ),
            "demographic_parity_ratio": fl.demographic_parity_ratio(
                y, pred, sensitive_features=sensitive, method=method
            ),
            "equalized_odds_difference": fl.equalized_odds_difference(
                y, pred, sensitive_features=sensitive, method=method, agg=agg
            ),
        }


def fairness_rows(rep, column):
    return {k: rep[f"fairness.{column}.{k}"].value for k in fairness_keys()}


def fairness_keys():
    return ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("agg", ["worst_case", "mean"])
def test_numbers_equal_fairlearn(churn, method, agg):
    X, y, sex, model = churn
    rep = mlo.validate(
        model, X, y, checks=[checks.fairness(pd.Series(sex, name="sex"), method=method, agg=agg)], store=False
    )
    expected = fairlearn_numbers(y, model.predict(X), sex, method, agg)
    got = fairness_rows(rep, "sex")
    for key in fairness_keys():
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15), key
    assert expected["demographic_parity_difference"] > 0.1  # the biased label shows up…
    assert rep["fairness.sex.demographic_parity_difference"].passed is False  # …and fails the default bound


def test_per_group_table_equals_metric_frame(churn):
    X, y, sex, model = churn
    sensitive = pd.Series(sex, name="sex")
    rep = mlo.validate(model, X, y, checks=[checks.fairness(sensitive)], store=False)
    pred = model.predict(X)
    mf = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "tpr": fl.true_positive_rate,
            "fpr": fl.false_positive_rate,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=sensitive,
    )
    table = pd.DataFrame(rep.rows[0].data["groups"]).set_index("group")
    for col in ("selection_rate", "tpr", "fpr"):
        np.testing.assert_allclose(table[col].to_numpy(), mf.by_group[col].to_numpy(), rtol=1e-12)
        assert rep.rows[0].data["overall"][col] == pytest.approx(mf.overall[col], rel=1e-12)
    assert table["size"].tolist() == [int((sex == "F").sum()), int((sex == "M").sum())]


def test_group_without_positives_and_several_columns_match_fairlearn(churn):
    X, y, sex, model = churn
    y = y.copy()
    y[(X.plan == "pro").to_numpy()] = 0  # no positives in one plan: TPR 0 there, as fairlearn counts it
    pred = model.predict(X)
    frame = pd.DataFrame({"sex": sex, "plan": X.plan})
    for sensitive, label in ((X.plan, "plan"), (frame, "sex+plan")):
        rep = mlo.validate(
            model, X, y, checks=[checks.fairness(sensitive, max_eo_difference=1.0, agg="mean")], store=False
        )
        expected = fairlearn_numbers(y, pred, sensitive, "between_groups", "mean")
        got = fairness_rows(rep, label)
        for key in fairness_keys():
            assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15), (label, key)
    assert len(rep.rows[0].data["groups"]) == 6


def test_string_labels_with_pos_label(churn):
    X, y, sex, _ = churn
    from sklearn.tree import DecisionTreeClassifier

    labels = np.where(y == 1, "churned", "stayed")
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X[["tenure", "charges"]], labels)
    Xn = X[["tenure", "charges"]]
    rep = mlo.validate(
        model,
        Xn,
        labels,
        checks=[checks.fairness(pd.Series(sex, name="sex"), pos_label="churned")],
        store=False,
    )
    pred = model.predict(Xn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr = fl.MetricFrame(
            metrics=lambda t, p: fl.selection_rate(t, p, pos_label="churned"),
            y_true=labels,
            y_pred=pred,
            sensitive_features=sex,
        )
        eo = fl.MetricFrame(
            metrics={
                "tpr": lambda t, p: fl.true_positive_rate(t, p, pos_label="churned"),
                "fpr": lambda t, p: fl.false_positive_rate(t, p, pos_label="churned"),
            },
            y_true=labels,
            y_pred=pred,
            sensitive_features=sex,
        )
    assert rep["fairness.sex.demographic_parity_difference"].value == pytest.approx(
        sr.difference(), rel=1e-12
    )
    assert rep["fairness.sex.demographic_parity_ratio"].value == pytest.approx(sr.ratio(), rel=1e-12)
    assert rep["fairness.sex.equalized_odds_difference"].value == pytest.approx(
        max(eo.difference()), rel=1e-12
    )
    # without pos_label the model's second class is the favourable one
    default = mlo.validate(
        model, Xn, labels, checks=[checks.fairness(pd.Series(sex, name="sex"))], store=False
    )
    assert default.rows[0].data["pos_label"] == "stayed"


def test_only_demographic_parity_needs_no_truth(churn):
    X, _, sex, model = churn
    rep = mlo.validate(
        model, X, checks=[checks.fairness(pd.Series(sex, name="sex"), max_eo_difference=None)], store=False
    )
    assert [r.name for r in rep.rows] == [
        "fairness.sex.demographic_parity_difference",
        "fairness.sex.demographic_parity_ratio",
    ]
    assert "tpr" not in rep.rows[0].data["groups"][0]
    with pytest.raises(InvalidInput, match="needs the true targets"):
        mlo.validate(model, X, checks=[checks.fairness(pd.Series(sex, name="sex"))], store=False)


def test_bad_arguments_are_refused(churn):
    X, y, sex, model = churn
    with pytest.raises(InvalidInput, match="method must be one of between_groups, to_overall"):
        checks.fairness("sex", method="pairwise")
    with pytest.raises(InvalidInput, match="agg must be one of"):
        checks.fairness("sex", agg="max")
    with pytest.raises(InvalidInput, match="keep at least one"):
        checks.fairness("sex", max_dp_difference=None, min_dp_ratio=None, max_eo_difference=None)
    with pytest.raises(InvalidInput, match=r"column 'sex' is not in X.*by=df\['sex'\]"):
        mlo.validate(model, X, y, checks=[checks.fairness("sex")], store=False)
    from sklearn.linear_model import LinearRegression

    reg = LinearRegression().fit(X[["tenure"]], X.charges)
    with pytest.raises(InvalidInput, match="pass pos_label="):
        mlo.validate(reg, X[["tenure"]], X.charges, checks=[checks.fairness(X.region)], store=False)
