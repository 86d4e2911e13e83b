"""Signatures: inferred from the example, the run's input snapshot or the model; enforced with one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.registry import Signature, SignatureError


@pytest.fixture
def churn_v1(sqlite_ws, data, pipeline):
    X, _ = data
    mlo.register_model(pipeline, "churn", input_example=X.head(10))
    return mlo.load_model("churn/1")


def test_signature_from_the_input_example_has_columns_dtypes_and_outputs(churn_v1, data):
    sig = churn_v1.model_version.signature
    assert sig.source == "input_example" and sig.type == "frame"
    assert [(c.name, c.dtype, c.kind) for c in sig.columns] == [
        ("tenure", "int64", "integer"),
        ("plan", str(data[0].plan.dtype), "string"),
        ("spend", "float64", "float"),
    ]
    assert sig.outputs == {
        "kind": "label",
        "classes": [0, 1],
        "n_classes": 2,
        "dtype": "int64",
        "probabilities": True,
    }
    example = churn_v1.model_version.input_example
    assert example.shape == (5, 3) and list(example.columns) == ["tenure", "plan", "spend"]


def test_missing_column_is_named(churn_v1, data):
    X, _ = data
    with pytest.raises(SignatureError) as err:
        churn_v1.predict(X.drop(columns=["plan"]))
    msg = str(err.value)
    assert (
        msg
        == "model churn/1 needs column 'plan', missing from the input (it takes 'tenure', 'plan', 'spend')"
    )
    assert isinstance(err.value, mlo.InvalidInput)


def test_wrong_dtype_is_named_with_the_fix(churn_v1, data):
    X, _ = data
    bad = X.assign(tenure=X.tenure.astype(str))
    with pytest.raises(
        SignatureError, match=r"column 'tenure' must be integer \(int64\), got .*astype\('int64'\)"
    ):
        churn_v1.predict(bad)
    with pytest.raises(SignatureError, match="column 'spend' must be float"):
        churn_v1.predict_proba(X.assign(spend=X.spend.astype(str).astype(object)))


def test_missing_values_in_an_integer_column_are_explained(churn_v1, data):
    X, _ = data
    holes = X.assign(tenure=X.tenure.where(X.tenure > 5))
    with pytest.raises(
        SignatureError, match=r"column 'tenure' has \d+ missing values, but the model takes int64"
    ):
        churn_v1.predict(holes)


def test_several_problems_are_reported_together(churn_v1, data):
    X, _ = data
    bad = X.assign(tenure=X.tenure.astype(float) + 0.5, spend=X.spend.astype(str).astype(object))
    with pytest.raises(SignatureError) as err:
        churn_v1.predict(bad)
    assert "'tenure'" in str(err.value) and "'spend'" in str(err.value) and "\n" not in str(err.value)


def test_conforming_input_reorders_drops_extras_and_widens(churn_v1, data, pipeline):
    X, _ = data
    shuffled = X[["spend", "tenure", "plan"]].assign(extra=1, tenure=X.tenure.astype("int32"))
    np.testing.assert_array_equal(churn_v1.predict(shuffled), pipeline.predict(X))
    records = X.head(3).to_dict("records")
    np.testing.assert_array_equal(churn_v1.predict(records), pipeline.predict(X.head(3)))
    np.testing.assert_array_equal(churn_v1.predict(X.iloc[0].to_dict()), pipeline.predict(X.head(1)))
    arr = X.to_numpy(dtype=object)
    np.testing.assert_array_equal(churn_v1.predict(arr), pipeline.predict(X))


def test_wrong_shapes_and_types_are_refused(churn_v1, data):
    X, _ = data
    with pytest.raises(SignatureError, match=r"got an array of shape \(300, 2\)"):
        churn_v1.predict(X[["tenure", "spend"]].to_numpy())
    with pytest.raises(SignatureError, match="got a Series"):
        churn_v1.predict(X.tenure)
    with pytest.raises(SignatureError, match="got str"):
        churn_v1.predict("tenure=3")


def test_array_signature_checks_shape_and_kind(sqlite_ws):
    mlo.register_model(lambda X: np.asarray(X).mean(axis=1), "mean", input_example=np.zeros((2, 3)))
    h = mlo.load_model("mean/1", trust=True)
    assert h.model_version.signature.describe() == "array[n×3] of float64 → number (float64)"
    with pytest.raises(SignatureError, match=r"takes an array of shape \(n, 3\); got shape \(2, 4\)"):
        h.predict(np.zeros((2, 4)))
    with pytest.raises(SignatureError, match="takes float64 values; got string"):
        h.predict(pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}, dtype="string"))
    np.testing.assert_array_equal(h.predict(np.ones((2, 3), dtype=int)), [1.0, 1.0])


def test_enforce_false_passes_input_through(churn_v1, data):
    X, _ = data
    raw = mlo.load_model("churn/1", enforce=False)
    assert raw.signature is None
    with pytest.raises(Exception) as err:  # the model's own error, not ours
        raw.predict(X.drop(columns=["plan"]))
    assert not isinstance(err.value, SignatureError)


def test_signature_from_the_runs_input_snapshot_leaves_the_target_out(sqlite_ws, data, pipeline):
    X, y = data
    with mlo.start_run("train"):
        snap = mlo.snapshot(X.assign(churned=y), "train")
        mv = mlo.register_model(pipeline, "churn")
    sig = mv.signature
    assert sig.source == f"snapshot:train@{snap.version}"
    assert sig.names == ["tenure", "plan", "spend"]  # as the model was fit, without "churned"
    assert sig.columns[0].dtype == "int64" and sig.outputs["kind"] == "label"
    with pytest.raises(SignatureError, match="needs column 'spend'"):
        mv.load().predict(X.drop(columns=["spend"]))


def test_signature_from_the_models_feature_names_only(sqlite_ws, data, pipeline):
    X, _ = data
    mv = mlo.register_model(pipeline, "churn")
    assert mv.signature.source == "model" and mv.signature.names == ["tenure", "plan", "spend"]
    assert all(c.dtype is None for c in mv.signature.columns)
    h = mv.load()
    with pytest.raises(SignatureError, match="needs column 'tenure'"):
        h.predict(X[["plan", "spend"]])
    h.predict(X)  # no dtypes to check


def test_no_signature_for_a_callable_without_example(sqlite_ws):
    mv = mlo.register_model(lambda X: X, "identity")
    assert mv.signature is None
    assert mv.load(trust=True).predict([1, 2]) == [1, 2]


def test_given_signature_shorthand_and_errors(sqlite_ws, data, pipeline):
    X, _ = data
    mv = mlo.register_model(
        pipeline, "churn", signature={"tenure": "int64", "plan": "object", "spend": "float64"}
    )
    assert mv.signature.source == "given" and mv.signature.outputs["kind"] == "label"
    round_trip = Signature.from_dict(mv.signature.to_dict())
    assert round_trip == mv.signature
    with pytest.raises(mlo.InvalidInput, match="lacks columns the model was fit on: spend"):
        mlo.register_model(pipeline, "churn", signature={"tenure": "int64", "plan": "object"})
    with pytest.raises(mlo.InvalidInput, match="failed on its input_example"):
        mlo.register_model(pipeline, "churn", input_example=X[["tenure"]].head())
    assert mlo.models("churn").version.tolist() == [1]
