"""``mlo.explain``: permutation importance equal to scikit-learn's, importance without labels, one prediction by
ablation against background rows; validation keeps it (and the worst slice's) for the model card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput

HOSTILE = "<img src=x onerror=alert(1)>"


def data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"signal": rng.normal(size=n), "weak": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (2 * X.signal + 0.5 * X.weak + rng.normal(scale=0.3, size=n) > 0).astype(int)
    return X, y


@pytest.fixture
def model():
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    return LogisticRegression().fit(X, y), X, y


def test_permutation_importance_is_scikit_learns(model):
    from sklearn.inspection import permutation_importance

    m, X, y = model
    e = mlo.explain(m, X, y, method="permutation")
    ref = permutation_importance(m, X, y, n_repeats=5, random_state=0)
    expected = dict(zip(X.columns, ref.importances_mean, strict=True))
    assert e.method == "permutation" and e.scoring == "accuracy" and e.n_rows == 500
    assert e.importances.feature.tolist() == ["signal", "weak", "noise"]
    assert dict(zip(e.importances.feature, e.importances.importance, strict=True)) == pytest.approx(expected)
    auc = mlo.explain(m, X, y, method="permutation", scoring="roc_auc")
    assert auc.scoring == "roc_auc" and auc.importances.feature[0] == "signal"


def test_without_labels_it_measures_reliance_on_the_features_and_says_so(model):
    m, X, _ = model
    e = mlo.explain(m, X, method="permutation")
    assert (
        e.importances.feature[0] == "signal"
        and abs(e.importances.set_index("feature").importance["noise"]) < 0.02
    )
    assert any("without labels" in n for n in e.notes)


def test_one_prediction_by_ablation_against_background_rows(model):
    m, X, _ = model
    row = X.iloc[[7]]
    e = mlo.explain(m, row, background=X, method="ablation")
    assert e.method == "ablation" and e.values.shape == (1, 3) and e.importances.feature[0] == "signal"
    assert "not a Shapley value" in e.notes[0]
    with pytest.raises(InvalidInput, match="background="):
        mlo.explain(m, row, method="ablation")
    with pytest.raises(InvalidInput, match="method='ablation'"):
        mlo.explain(m, row, method="permutation")


def test_bad_requests_are_one_line(model):
    m, X, y = model
    for call, message in (
        (lambda: mlo.explain(m, X, y, method="lime"), "method must be one of"),
        (lambda: mlo.explain(object(), X), "needs a model with predict"),
        (lambda: mlo.explain(m, X, y, method="permutation", scoring="nope"), "unknown scoring"),
        (lambda: mlo.explain(m, X.iloc[:0]), "at least one row"),
        (lambda: mlo.explain(m, X, y[:10]), "one target per row"),
    ):
        with pytest.raises(InvalidInput, match=message):
            call()


def test_large_frames_are_sampled_with_a_fixed_seed(model):
    m, X, y = model
    e = mlo.explain(m, pd.concat([X] * 5, ignore_index=True), np.tile(y, 5), method="permutation")
    assert e.n_rows == 2000 and "sample of 2,000 rows (seed 0)" in e.notes[0]


def test_validation_keeps_importance_for_the_card_with_the_worst_slice(sqlite_ws, model):
    from mlo import checks

    m, X, y = model
    X = X.rename(columns={"noise": HOSTILE}).assign(group=np.where(X.weak > 0.8, "b", "a"))
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression().fit(X.drop(columns="group"), y)

    class Framed:  # a model reading only its own columns, as a pipeline with a column selector would
        classes_ = m.classes_

        def predict(self, frame):
            return m.predict(frame.drop(columns="group"))

        def predict_proba(self, frame):
            return m.predict_proba(frame.drop(columns="group"))

    mv = mlo.register_model(m, "churn", input_example=X.drop(columns="group").head())
    rep = mlo.validate(Framed(), X, y, checks=[checks.slices("group", min_size=30)], model_version=mv)
    assert set(rep.importance) == {"all", "worst_slice"}
    assert rep.importance["all"]["importances"][0]["feature"] == "signal"
    assert rep.importance["worst_slice"]["slice"].startswith("group=")
    stored = mlo.ValidationReport.load(rep.id)
    assert stored.importance == rep.importance
    card = mlo.model_card("churn", 1)
    html, md = card.to_html(), card.to_markdown()
    assert "Feature importance" in html and "worst slice" in html and "Maturity" in html
    assert HOSTILE not in html and "&lt;img" in html  # a hostile feature name is text
    assert "## Feature importance" in md and "| signal |" in md
    # no model version, no labels: no importance unless asked
    assert mlo.validate(Framed(), X, y, checks=[checks.threshold("accuracy", 0.5)]).importance is None
    assert mlo.validate(Framed(), X, y, checks=[checks.threshold("accuracy", 0.5)], explain=True).importance


def test_shap_values_when_shap_is_installed_and_a_clean_fallback_when_it_cannot(model):
    import importlib.util

    from strict import need

    need(importlib.util.find_spec("shap") is not None, "shap is not installed (pip install -e '.[dev]')")
    from sklearn.ensemble import RandomForestClassifier

    m, X, y = model
    e = mlo.explain(m, X, y)  # auto: SHAP for a model it explains
    assert e.method == "shap" and e.values.shape == (500, 3) and e.importances.feature[0] == "signal"
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    one = mlo.explain(forest, X.iloc[[3]], background=X)
    assert one.method == "shap" and one.values.shape == (1, 3)

    class Opaque:  # nothing SHAP can wrap: auto falls back to permutation and says why
        def predict(self, frame):
            return (frame["signal"] > 0).astype(int).to_numpy()

    fallback = mlo.explain(Opaque(), X, y)
    assert fallback.method == "permutation" and fallback.importances.feature[0] == "signal"
    with pytest.raises(InvalidInput, match="shap cannot explain Opaque"):
        mlo.explain(Opaque(), X, y, method="shap")
    assert "shap could not explain it" in fallback.notes[0]
