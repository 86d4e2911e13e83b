"""Register → load round trips for every flavor, and what loading refuses (changed bytes, untrusted types and
pickles, changed version records)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlo
from mlo import workspace
from mlo.registry import ModelIntegrityError, UntrustedModel


class Doubler(TransformerMixin, BaseEstimator):
    """A user-defined transformer: skops does not trust it unless told to."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2


def _tamper(ws, digest: str, data: bytes) -> None:
    path = ws.blobs.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_sklearn_estimator_round_trips_through_skops(ws, data, logreg):
    X, _ = data
    mv = mlo.register_model(logreg, "lr", input_example=X[["tenure", "spend"]].head())
    assert (mv.name, mv.version, mv.flavor) == ("lr", 1, "skops")
    assert mv.model_class == "sklearn.linear_model._logistic.LogisticRegression"
    assert mv.digest.startswith("blake3:") and ws.blobs.verify(mv.digest) == ws.blobs.path(mv.digest)
    assert mv.env["packages"]["scikit-learn"]
    h = mlo.load_model("lr/1")
    assert isinstance(h.raw, LogisticRegression) and h.raw is not logreg
    np.testing.assert_array_equal(h.predict(X[["tenure", "spend"]]), logreg.predict(X[["tenure", "spend"]]))
    np.testing.assert_allclose(
        h.predict_proba(X[["tenure", "spend"]]), logreg.predict_proba(X[["tenure", "spend"]])
    )
    assert h.model_version == mv and h.classes_.tolist() == [0, 1]


def test_pipeline_with_trees_round_trips_through_skops_with_the_allowlist(ws, data, pipeline):
    X, _ = data
    mv = mlo.register_model(pipeline, "churn", input_example=X.head())
    assert mv.flavor == "skops"
    assert "sklearn.tree._tree.Tree" in mv.details["trusted_types"]
    for uri in ("churn/1", "churn@latest", "models:/churn/1", "churn@1"):
        h = mlo.load_model(uri)
        np.testing.assert_array_equal(h.predict(X), pipeline.predict(X))
    np.testing.assert_allclose(h.predict_proba(X), pipeline.predict_proba(X))


def test_versions_count_up_and_latest_follows(ws, logreg):
    versions = [mlo.register_model(logreg, "lr").version for _ in range(3)]
    assert versions == [1, 2, 3]
    assert mlo.load_model("lr@latest").model_version.version == 3
    assert mlo.get_model_version("lr", 2).version == 2


def test_plain_callable_round_trips_through_cloudpickle(ws):
    offset = 10.0
    model = lambda X: np.asarray(X).sum(axis=1) + offset  # noqa: E731 - a closure pickled by value
    mv = mlo.register_model(model, "summer", input_example=np.ones((3, 4)))
    assert mv.flavor == "cloudpickle"
    assert "not a scikit-learn estimator" in mv.details["pickle_reason"]
    # the whole BLAKE3 of the stored bytes, of which the blob's name is the first 224 bits (one hash, not two)
    import blake3

    whole = blake3.blake3(ws.blobs.get_bytes(mv.digest)).hexdigest()
    assert mv.details["blake3"] == whole and mv.digest == "blake3:" + whole[:56]
    assert mv.signature.type == "array" and mv.signature.shape == (-1, 4)
    h = mlo.load_model("summer/1", trust=True)
    np.testing.assert_array_equal(h.predict(np.ones((2, 4))), [14.0, 14.0])
    assert not hasattr(h, "predict_proba")


def test_function_defined_in_a_script_loads_in_another_process(sqlite_ws):
    home = str(sqlite_ws.home)
    register = textwrap.dedent(
        f"""
        import os; os.environ["MLO_HOME"] = {home!r}
        import mlo
        def score(X):
            return [len(str(x)) for x in X]
        print(mlo.register_model(score, "scorer").ref)
        """
    )
    out = subprocess.run([sys.executable, "-c", register], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scorer/1"
    # this process never saw `score`: it comes back by value
    assert mlo.load_model("scorer/1", trust=True).predict(["a", "abc"]) == [1, 3]


def test_tampered_pickle_is_refused_before_it_is_unpickled(ws, tmp_path):
    mv = mlo.register_model(lambda X: X, "identity")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    _tamper(ws, mv.digest, pickle.dumps(Exploit()))
    with pytest.raises(ModelIntegrityError, match="no longer matches the digest"):
        mlo.load_model("identity/1", trust=True)  # trusted as registered, not as changed since
    assert not marker.exists()


def test_tampered_skops_file_is_refused(ws, logreg):
    mv = mlo.register_model(logreg, "lr")
    data = bytearray(ws.blobs.get_bytes(mv.digest))
    data[len(data) // 2] ^= 0xFF
    _tamper(ws, mv.digest, bytes(data))
    with pytest.raises(mlo.CorruptBlob, match="refusing to load"):
        mlo.load_model("lr/1")


def test_missing_blob_is_a_clear_not_found(ws, logreg):
    mv = mlo.register_model(logreg, "lr")
    path = ws.blobs.path(mv.digest)
    os.chmod(path, 0o644)
    path.unlink()
    with pytest.raises(mlo.NotFound, match="missing from the blob store"):
        mlo.load_model("lr/1")


def test_pipeline_with_a_custom_step_is_not_silently_pickled(ws, data):
    X, y = data
    model = make_pipeline(Doubler(), LogisticRegression()).fit(X[["tenure", "spend"]], y)
    name = f"{Doubler.__module__}.{Doubler.__qualname__}"
    with pytest.raises(UntrustedModel, match=rf"types that skops does not trust: {name}.*trust=True"):
        mlo.register_model(model, "doubled")
    with pytest.raises(mlo.InvalidInput, match="trusted_types"):
        mlo.register_model(model, "doubled", flavor="skops")
    assert "doubled" not in set(mlo.models().name)  # nothing registered by the refusals

    # trusting it at registration keeps skops, with the custom type allowed for this model only
    mv = mlo.register_model(model, "doubled", trust=True)
    assert mv.flavor == "skops" and mv.details["trusted_at_registration"] == [name]
    with pytest.raises(UntrustedModel, match=rf"types that are not trusted: {name}"):
        mlo.load_model("doubled/1")
    h = mlo.load_model("doubled/1", trust=True)
    np.testing.assert_array_equal(h.predict(X[["tenure", "spend"]]), model.predict(X[["tenure", "spend"]]))

    # a pickle only when asked for, and then it loads only with trust
    mv = mlo.register_model(model, "doubled", flavor="cloudpickle")
    assert mv.flavor == "cloudpickle" and "was asked for" in mv.details["pickle_reason"]
    with pytest.raises(UntrustedModel, match="cloudpickle pickle, and loading a pickle runs any code"):
        mlo.load_model("doubled/2")
    assert isinstance(mlo.load_model("doubled/2", trust=True).raw[0], Doubler)


def test_trusted_types_in_mlo_toml_let_skops_store_a_custom_class(ws, data):
    X, y = data
    name = f"{Doubler.__module__}.{Doubler.__qualname__}"
    (ws.home / "mlo.toml").write_text(f'[registry]\ntrusted_types = ["{name}"]\n')
    workspace.reset_cache()
    model = make_pipeline(Doubler(), LogisticRegression()).fit(X[["tenure", "spend"]], y)
    mv = mlo.register_model(model, "doubled")
    assert mv.flavor == "skops" and name in mv.details["trusted_types"]
    np.testing.assert_array_equal(
        mlo.load_model("doubled/1").predict(X[["tenure", "spend"]]), model.predict(X[["tenure", "spend"]])
    )
    # trust withdrawn: the stored file is refused instead of constructing the type
    (ws.home / "mlo.toml").write_text("")
    workspace.reset_cache()
    with pytest.raises(UntrustedModel, match="not trusted"):
        mlo.load_model("doubled/1")


def test_joblib_flavor_on_request(ws, data, logreg):
    X, _ = data
    mv = mlo.register_model(logreg, "lr", flavor="joblib")
    assert mv.flavor == "joblib"
    import joblib

    # the blob is an ordinary joblib file
    raw = joblib.load(ws.blobs.path(mv.digest))
    np.testing.assert_array_equal(raw.predict(X[["tenure", "spend"]]), logreg.predict(X[["tenure", "spend"]]))


def test_bad_names_flavors_and_refs_are_one_line_errors(ws, logreg):
    with pytest.raises(mlo.InvalidInput, match="model name 'bad/name' is not valid"):
        mlo.register_model(logreg, "bad/name")
    with pytest.raises(mlo.InvalidInput, match="flavor must be one of"):
        mlo.register_model(logreg, "lr", flavor="onnx")
    with pytest.raises(mlo.InvalidInput, match="cannot store .* with skops"):
        mlo.register_model(lambda X: X, "f", flavor="skops")
    mlo.register_model(logreg, "lr")
    with pytest.raises(mlo.InvalidInput, match="names no version"):
        mlo.load_model("lr")
    with pytest.raises(mlo.NotFound, match="has no version 7 .its versions are 1 to 1"):
        mlo.load_model("lr/7")
    with pytest.raises(mlo.NotFound, match="has no alias 'production'"):
        mlo.load_model("lr@production")
    with pytest.raises(mlo.NotFound, match="no model named 'nope'"):
        mlo.load_model("nope@latest")
    assert mlo.models().version.tolist() == [1]  # nothing half-written by the failures


def test_loading_under_other_package_versions_warns(ws, logreg):
    import json

    from sqlalchemy import update

    from mlo.registry.flavors import ModelEnvironmentWarning
    from mlo.store import schema

    mv = mlo.register_model(logreg, "lr")
    env = {**mv.env, "packages": {**mv.env["packages"], "scikit-learn": "0.1.0"}}
    ws.db.write(
        lambda c: c.execute(
            update(schema.model_versions)
            .where(schema.model_versions.c.id == mv.id)
            .values(env=json.dumps(env))
        )
    )
    with pytest.warns(ModelEnvironmentWarning, match=r"registered with scikit-learn 0.1.0 \(here "):
        mlo.load_model("lr/1")
