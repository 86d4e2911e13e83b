"""Per-group metrics, computed for all groups at once, equal scikit-learn's on each group's rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlo.validate.groups import MISSING, group_auc, group_metric, make_groups
from mlo.validate.metrics import resolve_metric


def per_group_reference(metric, g, y, out):
    expected = []
    for k in range(g.n_groups):
        idx = np.flatnonzero(g.codes == k)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected.append(metric(y[idx], out[idx]))
        except ValueError:
            expected.append(np.nan)
    return np.array(expected)


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(7)
    n = 3000
    group = pd.Series(rng.choice(["a", "b", "c", "d", "tiny"], n, p=[0.3, 0.3, 0.2, 0.199, 0.001]), name="g")
    y = rng.integers(0, 2, n)
    y[(group == "d").to_numpy()] = 0  # a group without positives: recall 0, AUC undefined
    pred = np.where(rng.random(n) < 0.7, y, 1 - y)
    score = np.round(rng.random(n) * 0.5 + y * 0.3, 2)  # rounded: many ties
    return make_groups(group), y, pred, score


@pytest.mark.parametrize(
    "name",
    ["accuracy", "error_rate", "precision", "recall", "f1", "balanced_accuracy", "selection_rate", "fpr"],
)
def test_label_metrics_match_sklearn_per_group(labelled, name):
    g, y, pred, _ = labelled
    m = resolve_metric(name)
    got = group_metric(m, g, y, pred)
    np.testing.assert_allclose(got, per_group_reference(m, g, y, pred), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", ["roc_auc", "average_precision"])
def test_score_metrics_match_sklearn_per_group(labelled, name):
    g, y, _, score = labelled
    m = resolve_metric(name)
    got = group_metric(m, g, y, score)
    expected = per_group_reference(m, g, y, score)
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[g.labels.index("d")]) == (name == "roc_auc")  # one class: AUC undefined


def test_auc_with_ties_equals_sklearn_on_all_rows():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 10_000)
    score = rng.integers(0, 5, 10_000).astype(float)  # five distinct scores only
    g = make_groups(pd.Series(np.zeros(10_000, dtype=int)))
    assert group_auc(g, y == 1, score)[0] == pytest.approx(roc_auc_score(y, score), rel=1e-12)


@pytest.mark.parametrize("name", ["mae", "mse", "rmse", "r2", "median_absolute_error"])
def test_regression_metrics_match_sklearn_per_group(name):
    rng = np.random.default_rng(3)
    n = 2000
    g = make_groups(pd.Series(rng.choice(["x", "y", "z", "one"], n, p=[0.4, 0.4, 0.1995, 0.0005]), name="g"))
    y = rng.normal(size=n)
    pred = y + rng.normal(scale=0.3, size=n)
    m = resolve_metric(name)
    got = group_metric(m, g, y, pred)
    np.testing.assert_allclose(got, per_group_reference(m, g, y, pred), rtol=1e-10, equal_nan=True)


def test_numeric_column_is_cut_into_quantile_bins_with_missing_apart():
    values = pd.Series(np.r_[np.arange(100, dtype=float), [np.nan] * 5], name="x")
    g = make_groups(values, bins=4)
    assert g.labels == ["[0, 24.75)", "[24.75, 49.5)", "[49.5, 74.25)", "[74.25, 99]", MISSING]
    assert g.counts.tolist() == [25, 25, 25, 25, 5]
    few = make_groups(pd.Series([3, 1, 2, 1, 3]), bins=4)  # few distinct values: one group each, in order
    assert few.labels == ["1", "2", "3"] and few.counts.tolist() == [2, 1, 2]


def test_categories_combinations_and_missing():
    df = pd.DataFrame(
        {"a": ["x", "y", None, "x"], "b": pd.Categorical(["p", "q", "q", "q"], categories=["q", "p", "r"])}
    )
    g = make_groups(df["a"])
    assert g.labels == ["x", "y", MISSING] and g.codes.tolist() == [0, 1, 2, 0]
    assert make_groups(df["b"]).labels == ["q", "p"]  # category order kept, unused dropped
    both = make_groups(df)
    assert both.labels == ["x, q", "x, p", "y, q", f"{MISSING}, q"]
    assert both.counts.tolist() == [1, 1, 1, 1]
