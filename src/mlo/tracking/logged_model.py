"""A fitted model kept with the run that trained it (autolog's ``log_models``), and loading it back.

The run gets two artifacts under ``model/``: the model file and ``model.json`` (its flavor, class, the signature
of the data it was fit on, the package versions). scikit-learn estimators are stored as skops (loaded without
pickle); one that skops cannot hold is stored with cloudpickle, which loads only with ``trust=True``, as in the
registry. Frameworks with a format of their own (XGBoost's UBJSON, LightGBM's text) store that, through their
integration's ``save_model`` / ``load_model``.

To keep a logged model as a registered version: ``mlo.register_model(run.load_model(), "churn", run=run)``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from .run import Run

MODEL_PATH = "model"
_EXTENSIONS = {"skops": "skops", "cloudpickle": "pkl", "joblib": "joblib"}


def signature_of(X: Any, model: Any, output: Any = None) -> dict | None:
    """The signature (as a dict) of training data ``X`` and of ``model``'s output (``output``: its prediction on
    ``X``, when known); None for data whose shape cannot be told."""
    import numpy as np
    import pandas as pd

    from ..registry import signature as sig

    if X is None:
        return None
    source = "training data"
    if isinstance(X, pd.DataFrame):
        base = sig.from_frame(X, source)
    elif isinstance(X, pd.Series):
        base = sig.from_frame(X.to_frame(), source)
    elif hasattr(X, "dtype") and hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1:
        base = sig.Signature("array", dtype=str(X.dtype), shape=(-1, *X.shape[1:]), source=source)
    elif isinstance(X, (list, tuple)) and X:
        head = np.asarray(X[:5])
        base = sig.Signature("array", dtype=str(head.dtype), shape=(-1, *head.shape[1:]), source=source)
    else:
        return None
    outputs = sig.outputs_of(model, output)
    return sig.Signature(base.type, base.columns, base.dtype, base.shape, outputs, source).to_dict()


def log_model(
    run: Run,
    model: Any,
    *,
    X: Any = None,
    output: Any = None,
    flavor: str | None = None,
    path: str = MODEL_PATH,
) -> str:
    """Store ``model`` as the artifacts ``<path>/model.<ext>`` and ``<path>/model.json`` of ``run``; returns the
    flavor used."""
    from ..registry import flavors
    from ..registry.errors import UntrustedModel
    from . import session

    ws = run._ws
    details: dict[str, Any] = {}
    if flavor is None:
        try:
            stored = flavors.store(ws, model, None, trust=False)
        except (
            UntrustedModel,
            InvalidInput,
        ) as exc:  # skops cannot hold it safely: a pickle, loaded with trust
            stored = flavors.store(ws, model, "cloudpickle")
            stored.details["pickle_reason"] = str(exc).split(". ")[0][:300]
        flavor, digest, size, details = stored.flavor, stored.digest, stored.size, stored.details
        file_name = f"model.{_EXTENSIONS[flavor]}"
        env = flavors.environment(model, flavor)
    else:
        from .autolog import integration

        data, file_name, details = integration(flavor).save_model(model)
        digest, size = ws.blobs.put_bytes(data), len(data)
        env = flavors.environment(model, "cloudpickle")
    meta = {
        "flavor": flavor,
        "file": file_name,
        "model_class": flavors.class_name(model),
        "signature": signature_of(X, model, output),
        "details": details,
        "env": env,
    }
    ws.runs.add_artifacts(
        run.id, [{"path": f"{path}/{file_name}", "digest": digest, "size": size, "media_type": None}]
    )
    session.store_bytes(ws, run.id, json.dumps(meta, indent=1, default=str).encode(), f"{path}/model.json")
    return flavor


def model_info(run: Run, path: str = MODEL_PATH) -> dict:
    """What ``model.json`` says about the model logged at ``path`` of ``run``."""
    try:
        meta_artifact = run.artifact(f"{path}/model.json")
    except NotFound:
        raise NotFound(
            f"run {run.id} has no model at {path!r}: autolog stores one when a fit ends "
            "(mlo.autolog(log_models=True), the default)"
        ) from None
    return json.loads(meta_artifact.read_bytes())


def load_model(run: Run, path: str = MODEL_PATH, *, trust: bool = False) -> Any:
    """The model logged at ``path`` of ``run``; a pickle loads only with ``trust=True`` (or a trusted flavor in
    ``mlo.toml``), as in the registry."""
    from ..registry import flavors

    if not isinstance(trust, bool):
        raise InvalidInput(f"trust must be True or False, got {trust!r}")
    meta = model_info(run, path)
    artifact = run.artifact(f"{path}/{meta['file']}")
    label = f"run {run.id} {path}"
    flavor = meta["flavor"]
    if flavor in flavors.FLAVORS:
        who = f"by autolog in run {run.id}"
        flavors.check_trusted(run._ws, flavor, meta.get("details") or {}, label, who, trust)
        return flavors.load(run._ws, flavor, artifact.digest, meta.get("details") or {}, label, trust=trust)
    from .autolog import integration

    return integration(flavor).load_model(artifact.read_bytes(), meta)
