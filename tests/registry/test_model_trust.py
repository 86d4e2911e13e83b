"""Model trust: a pickle runs no code unless the loader opts in, and a version whose record was changed behind
mlo's back (its flavor, its blob) does not load at all, trusted or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sqlalchemy import update

import mlo
from mlo import workspace
from mlo.registry import ModelIntegrityError, UntrustedModel
from mlo.store import schema


class Payload:
    """A pickle that writes a file when it is loaded: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _set(ws, mv, **values) -> None:
    """Change a version's row directly in the database, as someone with write access to it could."""
    t = schema.model_versions
    ws.db.write(lambda c: c.execute(update(t).where(t.c.id == mv.id).values(**values)))


def test_a_malicious_pickle_is_refused_without_opt_in_and_no_code_runs(ws, tmp_path):
    marker = tmp_path / "pwned"
    mv = mlo.register_model(Payload(str(marker)), "evil")
    assert mv.flavor == "cloudpickle" and not marker.exists()
    with pytest.raises(UntrustedModel) as info:
        mlo.load_model("evil/1")
    message = str(info.value)
    assert "\n" not in message
    for part in (
        "model evil/1 is a cloudpickle pickle",
        "runs any code it holds",
        "not a scikit-learn estimator",  # why it is a pickle
        "registered by ",  # who, so the loader can judge
        'mlo.load_model("evil/1", trust=True)',
        '"cloudpickle" to [registry] trusted_flavors',
    ):
        assert part in message, part
    with pytest.raises(UntrustedModel):
        mv.load()
    assert not marker.exists()
    # the same in another process, through the CLI's error path: one line, exit 2, still nothing ran
    code = "import mlo; mlo.load_model('evil/1')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    assert out.returncode != 0 and "UntrustedModel" in out.stderr and not marker.exists()
    # the opt-in is explicit, and then it is the user's call
    mlo.load_model("evil/1", trust=True)
    assert marker.exists()


def test_serving_takes_the_same_trust_decision(sqlite_ws, tmp_path):
    pytest.importorskip("uvicorn")
    marker = tmp_path / "pwned-by-serve"
    mlo.register_model(Payload(str(marker)), "evil", alias="production")
    with pytest.raises(UntrustedModel, match="cloudpickle pickle"):
        mlo.serve("evil@production")
    assert not marker.exists()


def test_trusted_flavors_in_mlo_toml_are_the_standing_opt_in(ws):
    mlo.register_model(lambda X: [x * 2 for x in X], "double")
    with pytest.raises(UntrustedModel):
        mlo.load_model("double/1")
    (ws.home / "mlo.toml").write_text('[registry]\ntrusted_flavors = ["cloudpickle"]\n')
    workspace.reset_cache()
    assert mlo.load_model("double/1").predict([1, 2]) == [2, 4]
    mlo.register_model({"a": 1}, "joblibbed", flavor="joblib")
    with pytest.raises(UntrustedModel, match="joblib pickle"):
        mlo.load_model("joblibbed/1")  # trusting one flavor trusts no other
    (ws.home / "mlo.toml").write_text('[registry]\ntrusted_flavors = ["cloudpickel"]\n')
    workspace.reset_cache()
    with pytest.raises(mlo.InvalidInput, match="unknown flavor 'cloudpickel' — did you mean 'cloudpickle'"):
        mlo.load_model("double/1")


def test_trust_must_be_a_bool(sqlite_ws, logreg):
    mlo.register_model(logreg, "lr")
    with pytest.raises(mlo.InvalidInput, match="trust must be True or False"):
        mlo.load_model("lr/1", trust="yes")
    with pytest.raises(mlo.InvalidInput, match="trust must be True or False"):
        mlo.register_model(logreg, "lr", trust=1)


def test_a_changed_flavor_is_refused_even_with_trust(ws, logreg, tmp_path):
    mv = mlo.register_model(logreg, "lr")
    assert mv.flavor == "skops"
    event = mlo.audit("lr").iloc[0]
    assert event.action == "register"
    # someone with write access to the database points the version at a pickle of their own
    marker = tmp_path / "pwned"
    import cloudpickle

    evil = ws.blobs.put_bytes(cloudpickle.dumps(Payload(str(marker))))
    _set(ws, mv, flavor="cloudpickle")
    with pytest.raises(
        ModelIntegrityError, match="its flavor was skops at registration and is cloudpickle now"
    ):
        mlo.load_model("lr/1", trust=True)
    _set(ws, mv, flavor="skops", blob=evil)
    with pytest.raises(ModelIntegrityError, match="its digest was .* at registration"):
        mlo.load_model("lr/1", trust=True)
    assert not marker.exists()


def test_every_field_that_decides_how_bytes_load_is_covered(ws, logreg):
    mv = mlo.register_model(logreg, "lr")
    details = {**mv.details, "trusted_types": ["builtins.eval"]}
    _set(ws, mv, details=json.dumps(details))
    with pytest.raises(ModelIntegrityError, match="changed after registration") as info:
        mlo.load_model("lr/1")
    assert isinstance(info.value, mlo.StoreError) and info.value.exit_code == 3
    from mlo.store.doctor import examine

    report = examine()
    assert report.exit_code == 3
    models = [f for f in report.findings if f.check == "models"]
    assert models[0].level == "fault" and models[0].details == [
        "lr/1: its stored fields (signature, checks or size) changed after registration"
    ]


class Scaler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) / 10


def test_a_custom_step_defined_in_a_notebook_needs_trust_and_then_is_pickled_with_the_reason(sqlite_ws, data):
    """A class defined in ``__main__`` cannot be imported by another process, so skops cannot hold it."""
    home = str(sqlite_ws.home)
    script = textwrap.dedent(
        f"""
        import os; os.environ["MLO_HOME"] = {home!r}
        import numpy as np, mlo
        from sklearn.base import BaseEstimator, TransformerMixin
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        class Halver(TransformerMixin, BaseEstimator):
            def fit(self, X, y=None):
                return self
            def transform(self, X):
                return np.asarray(X, dtype=float) / 2
        X = np.arange(20.0).reshape(10, 2); y = np.array([0, 1] * 5)
        model = make_pipeline(Halver(), LogisticRegression()).fit(X, y)
        try:
            mlo.register_model(model, "halved")
        except mlo.InvalidInput as exc:
            print("refused:", exc)
        mv = mlo.register_model(model, "halved", trust=True)
        print(mv.flavor, "|", mv.details["skops_fallback"])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    refused, stored = out.stdout.strip().splitlines()
    assert "refused: " in refused and "__main__.Halver is defined in the notebook or script itself" in refused
    assert stored.startswith("cloudpickle | __main__.Halver is defined in the notebook")
    # this process never saw Halver: the pickle brings it by value, once trusted
    h = mlo.load_model("halved/1", trust=True)
    assert h.predict(np.arange(4.0).reshape(2, 2)).shape == (2,)


def test_an_importable_custom_step_trusted_at_registration_stays_skops(sqlite_ws, data):
    X, y = data
    model = make_pipeline(Scaler(), LogisticRegression()).fit(X[["tenure", "spend"]], y)
    mv = mlo.register_model(model, "scaled", trust=True)
    assert mv.flavor == "skops"
    assert f"{Scaler.__module__}.Scaler" in mv.details["trusted_types"]
    h = mlo.load_model("scaled/1", trust=True)
    np.testing.assert_array_equal(h.predict(X[["tenure", "spend"]]), model.predict(X[["tenure", "spend"]]))
