"""Metric names resolve to scikit-learn's functions (or mlo's rates) with the right output and direction."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from mlo import InvalidInput
from mlo.validate.metrics import known_names, resolve_metric


@pytest.mark.parametrize(
    "name, func, response, higher",
    [
        ("accuracy", skm.accuracy_score, "label", True),
        ("accuracy_score", skm.accuracy_score, "label", True),
        ("roc_auc", skm.roc_auc_score, "score", True),
        ("average_precision", skm.average_precision_score, "score", True),
        ("log_loss", skm.log_loss, "proba", False),
        ("neg_log_loss", skm.log_loss, "proba", False),
        ("neg_mean_absolute_error", skm.mean_absolute_error, "label", False),
        ("mean_squared_error", skm.mean_squared_error, "label", False),
        ("rmse", skm.root_mean_squared_error, "label", False),
        ("r2", skm.r2_score, "label", True),
        ("f1_macro", skm.f1_score, "label", True),
        ("brier_score_loss", skm.brier_score_loss, "score", False),
        ("matthews_corrcoef", skm.matthews_corrcoef, "label", True),
        ("d2_absolute_error_score", skm.d2_absolute_error_score, "label", True),
    ],
)
def test_names_resolve_to_sklearn(name, func, response, higher):
    m = resolve_metric(name)
    assert m.func is func
    assert m.response == response
    assert m.greater_is_better is higher


def test_scorer_suffixes_set_the_average():
    assert resolve_metric("f1_macro").kwargs == {"average": "macro"}
    assert resolve_metric("precision_weighted").kwargs == {"average": "weighted"}
    assert resolve_metric("roc_auc_ovr").kwargs == {"multi_class": "ovr"}


def test_own_rates():
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([1, 0, 1, 0, 1])
    assert resolve_metric("selection_rate")(y, p) == pytest.approx(3 / 5)
    assert resolve_metric("tpr")(y, p) == pytest.approx(2 / 3)
    assert resolve_metric("fpr")(y, p) == pytest.approx(1 / 2)
    assert resolve_metric("error_rate")(y, p) == pytest.approx(2 / 5)
    assert resolve_metric("fpr").greater_is_better is False


def test_callable_keeps_its_name_and_options():
    def hit_rate(y_true, y_pred):
        return float(np.mean(y_true == y_pred))

    m = resolve_metric(hit_rate, greater_is_better=True)
    assert m.name == "hit_rate" and m.response == "label"
    assert m(np.array([1, 0]), np.array([1, 1])) == 0.5
    assert resolve_metric(lambda a, b: 0.0, response="score").name == "custom"
    assert resolve_metric("recall", pos_label="yes").kwargs == {"pos_label": "yes"}


def test_unknown_name_lists_close_matches():
    with pytest.raises(InvalidInput) as info:
        resolve_metric("acuracy")
    msg = str(info.value)
    assert "unknown metric 'acuracy'" in msg and "'accuracy'" in msg
    assert "\n" not in msg
    with pytest.raises(InvalidInput, match="roc_auc"):
        resolve_metric("roc_acu")
    with pytest.raises(InvalidInput, match="unknown metric 'confusion_matrix'"):
        resolve_metric("confusion_matrix")  # a function of sklearn.metrics, but not a score
    with pytest.raises(InvalidInput, match="response must be one of"):
        resolve_metric("accuracy", response="probabilities")
    with pytest.raises(InvalidInput, match="a name .* or a callable"):
        resolve_metric(3)


def test_known_names_cover_the_table_and_sklearn():
    names = known_names()
    assert {"accuracy", "roc_auc", "mean_absolute_error", "f1_micro", "selection_rate"} <= set(names)
    assert "make_scorer" not in names and "confusion_matrix" not in names
