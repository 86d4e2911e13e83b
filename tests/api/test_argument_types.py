"""Every public function answers an argument of the wrong type, or a name with control characters in it, with a
one-line MloError (InvalidInput, NotFound) — never a raw TypeError, AttributeError or a driver error."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mlo

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression  # noqa: E402

HOSTILE = [5, None, 3.5, b"bytes", ["list"], {"d": 1}, object(), "bad\nname", "nul\x00", "", True]
# classes, and functions that take no data of their own or start servers and widgets (tested where they live)
NOT_PLAIN_FUNCTIONS = {
    "Lineage",
    "Snapshot",
    "DriftReport",
    "ModelVersion",
    "Run",
    "ValidationReport",
    "Workspace",
    "checks",
    "serve",
    "compare",
    "browse_models",
    "reproduce",
    "record_cell",
    "log_figure",
}


@pytest.fixture
def world(sqlite_ws):
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0)})
    y = (X.a > 10).astype(int)
    with mlo.start_run("r", experiment="e") as run:
        mlo.log_metric("m", 1.0)
    model = LogisticRegression().fit(X, y)
    mv = mlo.register_model(model, "lr", input_example=X.head())
    mlo.snapshot(X, "x")
    mlo.prompts.register("p", "Hello {{ who }}")
    mlo.snapshot(
        pd.DataFrame({"k": [1, 2], "t": pd.to_datetime(["2024-01-01", "2024-01-02"]), "v": [1.0, 2.0]}), "tx"
    )
    return {"X": X, "y": y, "run": run, "model": model, "mv": mv}


def valid_arguments(name: str, w: dict) -> dict:
    X, y = w["X"], w["y"]
    return {
        "register_model": dict(model=w["model"], name="lr"),
        "log_metric": dict(key="k", value=1.0),
        "log_param": dict(key="k", value=1),
        "set_tag": dict(key="k", value="v"),
        "log_text": dict(text="t", path="p.txt"),
        "log_dict": dict(data={}, path="d.json"),
        "log_artifact": dict(local_path=__file__),
        "snapshot": dict(obj=X, name="x"),
        "load_snapshot": dict(ref="x"),
        "get_snapshot": dict(ref="x"),
        "promote": dict(name="lr", version=1, alias="staging"),
        "set_alias": dict(name="lr", alias="staging", version=1),
        "delete_alias": dict(name="lr", alias="staging"),
        "rollback": dict(name="lr", alias="staging"),
        "load_model": dict(uri="lr/1"),
        "get_model_version": dict(ref="lr/1"),
        "model_card": dict(name="lr", version=1),
        "drift": dict(reference=X, current=X),
        "validate": dict(model=w["model"], X=X, y=y, checks=[mlo.checks.threshold("accuracy", min=0.1)]),
        "lineage": dict(ref="lr/1"),
        "get_run": dict(ref=w["run"].id),
        "set_policy": dict(alias="staging"),
        "log_params": dict(params={}),
        "log_metrics": dict(metrics={}),
        "set_tags": dict(tags={}),
        "init": dict(path="."),
        "set_note": dict(text="a note", run=w["run"].id),
        "note": dict(run=w["run"].id),
        "set_experiment": dict(name="e"),
        "load_prompt": dict(ref="p"),
        "traces": dict(where="status = 'ok'"),
        "trace": dict(name="t"),
        "autolog": dict(disable=True),  # every framework off: a hostile value of one argument is the probe
        "sweep": dict(objective=lambda trial: 1.0, n_trials=1),
        "explain": dict(model=w["model"], X=X, y=y),
        "problem": dict(objective="Rank the leads"),
        "FeatureView": dict(name="fv", source="tx", entity="k", timestamp="t", transform=_double),
        "feature": dict(source="tx", entity="k", timestamp="t"),
    }.get(name, {})


def _double(df):
    return df[["v"]] * 2


def test_wrong_types_and_hostile_names_are_one_line_errors(world, monkeypatch):
    monkeypatch.setenv("MLO_NO_PROGRESS", "1")
    raw = []
    for name in sorted(mlo._API):
        if name in NOT_PLAIN_FUNCTIONS:
            continue
        fn = getattr(mlo, name)
        base = valid_arguments(name, world)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        for p in params:
            if name == "validate" and p.name == "model":
                continue  # any object with predict is a model
            for bad in HOSTILE:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fn(**{**base, p.name: bad})
                except mlo.MloError as exc:
                    if "\n" in str(exc).strip():
                        raw.append(f"{name}({p.name}={bad!r:.20}): a message of several lines: {exc!r:.120}")
                except Exception as exc:
                    raw.append(f"{name}({p.name}={bad!r:.20}): {type(exc).__name__}: {str(exc)[:80]}")
                finally:
                    while mlo.active_run() is not None:
                        mlo.end_run()
                    if name == "autolog":
                        mlo.autolog(disable=True)
    assert not raw, "\n".join(raw)


def test_the_probes_of_the_issue(world):
    with pytest.raises(mlo.InvalidInput, match="experiment must be a name or a list of names, got int 5"):
        mlo.runs(experiment=5)
    with pytest.raises(mlo.InvalidInput, match="register_model needs a model: got None"):
        mlo.register_model(None, "nothing")
    assert "nothing" not in set(mlo.models().name)


@pytest.mark.parametrize("bad", ["churn\n", "a\x00b", "tab\there", "esc\x1b[31m", "bidi\u202etxt", "del\x7f"])
def test_names_refuse_control_characters(world, bad):
    attempts = {
        "experiment": lambda: mlo.start_run("r", experiment=bad),
        "set_experiment": lambda: mlo.set_experiment(bad),
        "run": lambda: mlo.start_run(bad),
        "model": lambda: mlo.register_model(world["model"], bad),
        "snapshot": lambda: mlo.snapshot(world["X"], bad),
        "alias": lambda: mlo.set_alias("lr", bad, 1),
        "tag": lambda: mlo.set_tags({bad: "v"}),
        "param": lambda: mlo.log_params({bad: 1}),
        "metric": lambda: mlo.log_metric(bad, 1.0),
        "artifact": lambda: mlo.log_text("x", f"{bad}.txt"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(mlo.InvalidInput) as info:
            attempt()
        assert "\n" not in str(info.value), what
        while mlo.active_run() is not None:
            mlo.end_run()
    with pytest.raises(mlo.InvalidInput, match="NUL"):
        mlo.set_tags({"note": "a\x00b"})
    mlo.end_run()
    # what was there is untouched, and nothing new was recorded by the refusals
    assert mlo.runs().name.tolist() == ["r"]
    assert mlo.models().name.tolist() == ["lr"] and mlo.snapshots().name.tolist() == ["tx", "x"]


def test_audit_of_an_unknown_model_is_not_found(world):
    with pytest.raises(mlo.NotFound, match="no model named 'ghost'"):
        mlo.audit("ghost")
    out = subprocess.run(
        [sys.executable, "-m", "mlo", "audit", "ghost"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and out.stderr.strip() == (
        "mlo: no model named 'ghost' (registered models: lr)"
    )
    assert subprocess.run([sys.executable, "-m", "mlo", "audit", "lr"], capture_output=True).returncode == 0


def test_methods_of_the_returned_objects_check_their_arguments_too(world):
    run = mlo.get_run(world["run"].id)
    objects = {
        "Run": run,
        "ModelVersion": world["mv"],
        "Snapshot": mlo.get_snapshot("x"),
        "ModelCard": mlo.model_card("lr", 1),
        "LoadedModel": world["mv"].load(),
    }
    raw = []
    for label, obj in objects.items():
        for name, fn in inspect.getmembers(obj, predicate=inspect.ismethod):
            if name.startswith("_") or name == "end":
                continue
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            for p in params:
                for bad in (5, None, b"b", ["l"], {"d": 1}, object(), "bad\nname", True):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            fn(**{p.name: bad})
                    except mlo.MloError:
                        pass
                    except TypeError as exc:
                        if "required positional argument" not in str(exc):  # other arguments not given
                            raw.append(f"{label}.{name}({p.name}={bad!r:.15}): TypeError: {exc}")
                    except Exception as exc:
                        raw.append(
                            f"{label}.{name}({p.name}={bad!r:.15}): {type(exc).__name__}: {str(exc)[:80]}"
                        )
    assert not raw, "\n".join(raw)
