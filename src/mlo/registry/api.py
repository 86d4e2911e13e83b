"""Registering, finding and loading model versions."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from .. import workspace
from ..errors import InvalidInput
from . import flavors
from . import signature as sig
from .errors import ModelIntegrityError, PromotionRefused
from .handle import LoadedModel
from .versions import ModelVersion, check_alias, check_name, resolve, who

if TYPE_CHECKING:
    import pandas as pd

    from ..store.models import VersionRow
    from ..tracking.run import Run

log = logging.getLogger("mlo")


def register_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Any = None,
    alias: str | None = None,
    tags: dict[str, Any] | None = None,
    run: Run | str | None = None,
    flavor: str | None = None,
    description: str | None = None,
    trust: bool = False,
    features: Any = None,
) -> ModelVersion:
    """Store ``model`` as the next version of ``name``.

    Parameters
    ----------
    model : object
        A fitted scikit-learn estimator or pipeline (stored with skops when it can be loaded safely), or any
        other Python object, e.g. a function (stored with cloudpickle).
    name : str
        The registered model; created on first use. Letters, digits, ``_``, ``-``, ``.``.
    input_example : DataFrame, dict, records or array, optional
        A few input rows. The signature is inferred from it, the model is called on it once (which tells the
        output), and its first rows are kept for the model card.
    signature : Signature or dict, optional
        The signature, instead of inferring it (a ``Signature``, its ``to_dict()``, or ``{column: dtype}``).
    alias : str, optional
        Point this alias at the new version (not for aliases a policy governs: those need :func:`promote`).
    tags : dict, optional
        Free-form labels (values are stored as text).
    run : Run or str, optional
        The run the model came from. Default: the active run, else the run whose notebook cell last bound or
        changed this very object (a ``%%mlo run`` cell that trained it), else the latest run of this process in
        which ``mlo.autolog()`` recorded the fit of this very model.
    flavor : {"skops", "cloudpickle", "joblib"}, optional
        How to store it; chosen automatically by default.
    description : str, optional
    trust : bool
        Vouch for the model's own types: a scikit-learn pipeline with a custom step is stored with skops,
        trusting the step's type, and one that skops cannot hold at all is stored as a pickle (the reason is kept
        in ``details``). Without it, such a model is refused with what to do, never silently pickled.
    features : list, optional
        The feature views (``"spend"``, ``"spend@2"``, ``"spend:amount_usd"``) whose values are input columns of
        the model, as in the training frame it was fit on. ``mlo serve`` then fills those columns for a request
        by entity id (or computes them from the request's own inputs), and the model card lists the versions.

    Returns
    -------
    ModelVersion
    """
    check_name(name)
    if model is None:
        raise InvalidInput("register_model needs a model: got None (pass the fitted estimator or function)")
    if not isinstance(trust, bool):
        raise InvalidInput(f"trust must be True or False, got {trust!r}")
    for label, value in (("description", description), ("flavor", flavor)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{label} must be a string, got {type(value).__name__}")
    ws = workspace.current()
    latest = ws.models.versions(name)[:1]
    if latest and latest[0].flavor == "prompt":
        raise InvalidInput(f"{name!r} is a registered prompt (mlo.load_prompt): give the model another name")
    if isinstance(model, LoadedModel):
        model = model.raw
    if isinstance(model, ModelVersion):
        raise InvalidInput("register_model takes the model object; to copy a version, load it first")
    if alias is not None:
        check_alias(alias)
        from .policy import policy_for

        policy = policy_for(ws, name, alias)
        if policy is not None and policy.requirements:
            raise PromotionRefused(
                f"alias {alias!r} of {name!r} needs evidence ({policy.describe()}) that a new version cannot have "
                f"yet: register without alias=, validate the version, then mlo.promote({name!r}, <version>, "
                f"{alias!r})"
            )
    tag_values = _tags(tags)
    run_id = _run_id(ws, model, run)

    example_json = None
    if signature is not None:
        signature_obj = sig.Signature.coerce(signature)
        if not signature_obj.outputs:
            signature_obj = sig.Signature(
                signature_obj.type,
                signature_obj.columns,
                signature_obj.dtype,
                signature_obj.shape,
                sig.outputs_of(model),
                signature_obj.source,
            )
    elif input_example is not None:
        signature_obj = _from_example(model, input_example)
    else:
        signature_obj = _from_run_inputs(ws, model, run_id) or sig.from_model(model)
    if input_example is not None:
        example_json = sig.example_to_json(input_example)
    if signature_obj is not None and signature_obj.type == "frame":
        names = sig.feature_names(model)
        if names is not None:
            missing = [n for n in names if n not in signature_obj.names]
            if missing:
                raise InvalidInput(
                    f"the signature lacks columns the model was fit on: {', '.join(missing)}; pass an "
                    "input_example (or signature) with every feature column"
                )

    used = _feature_columns(signature_obj, features) if features is not None else []
    if used:
        signature_obj = dataclasses.replace(signature_obj, features=tuple(used))

    stored = flavors.store(ws, model, flavor, trust=trust)
    values = {
        "run_id": run_id,
        "flavor": stored.flavor,
        "blob": stored.digest,
        "size": stored.size,
        "model_class": flavors.class_name(model),
        "signature": signature_obj.to_dict() if signature_obj is not None else None,
        "input_example": example_json,
        "env": flavors.environment(model, stored.flavor),
        "details": stored.details,
        "tags": tag_values,
        "description": description,
    }

    def link(conn, version: int) -> None:
        if run_id:
            ws.lineage.link([(f"run:{run_id}", f"model:{name}/{version}", "model")], conn=conn)
        if used:
            edges = [(f"feature:{f['id']}", f"model:{name}/{version}", "features") for f in used]
            ws.lineage.link(edges, conn=conn)

    if workspace.reproducing():  # a replay registers nothing: the version is kept with its run instead
        return _scratch_version(ws, name, values)
    row = ws.models.add_version(name, values, user=who(), alias=alias, link=link)
    return ModelVersion(ws, row)


def _feature_columns(signature_obj: sig.Signature | None, features: Any) -> list[dict[str, Any]]:
    """What the signature records of the feature views the model reads; each asked column must be an input."""
    from ..features.offline import _selection

    if signature_obj is None or signature_obj.type != "frame":
        raise InvalidInput(
            "features= needs a model that takes named columns: pass input_example= with the training frame's "
            "columns (or a signature)"
        )
    out = []
    for view, cols in _selection(features):
        missing = [c for c in cols if c not in signature_obj.names]
        if missing:
            raise InvalidInput(
                f"the model takes no column {', '.join(missing)} of feature view {view.ref}; name only the "
                f"features it was fit on (e.g. '{view.name}:{next(iter(signature_obj.names), 'column')}')"
            )
        out.append(
            {
                "view": view.name,
                "version": view.version,
                "id": view.id,
                "entity": view.entity,
                "columns": cols,
            }
        )
    return out


def _scratch_version(ws, name: str, values: dict[str, Any]) -> ModelVersion:
    """A version that is not registered (number 0), its model stored and described on the reproduction's run
    (artifact ``mlo/models/<name>.json``) so the verdict can compare it with what the original registered."""
    import json

    from ..store.ids import new_id
    from ..store.models import VersionRow
    from ..store.runs import now_us

    row = VersionRow(
        id=new_id(),
        name=name,
        version=0,
        created_at=now_us(),
        created_by=who(),
        **{k: values.get(k) for k in VersionRow.__dataclass_fields__ if k in values},
    )
    if values.get("run_id"):
        from ..tracking import session

        record = {k: values[k] for k in ("flavor", "blob", "size", "model_class")}
        session.store_bytes(ws, values["run_id"], json.dumps(record).encode(), f"mlo/models/{name}.json")
    return ModelVersion(ws, row)


def _tags(tags: dict[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and k for k in tags):
        raise InvalidInput("tags must be a dict with non-empty string keys")
    return {k: str(v) for k, v in tags.items()}


def _run_id(ws, model: Any, run: Any) -> str | None:
    from ..tracking import capture, session

    if run is not None:
        ref = getattr(run, "id", run)
        if not isinstance(ref, str):
            raise InvalidInput(f"run= takes a Run or a run id, got {type(run).__name__}")
        return ws.runs.resolve_run_id(ref)
    active = session.active_run()
    if active is not None:
        return active.id
    # the run whose notebook cell last bound or changed this very object (a model trained in a %%mlo run cell)
    from ..tracking import provenance

    bound = provenance.run_of(model)
    if bound is not None:
        return bound
    # the latest run of this process in which autolog recorded fitting this model (same class, same params)
    cls = flavors.class_name(model)
    candidates = ws.models.runs_with_tag("estimator_class", cls, owner=capture.owner())
    if not candidates:
        return None
    try:
        from ..tracking.fit_run import param_value

        params = {k: param_value(v) for k, v in model.get_params(deep=True).items()}
    except Exception:
        return None
    from ..store import schema
    from ..tracking.run import decode_param

    for run_id in candidates:
        logged = {k: decode_param(v) for k, v in ws.runs.key_values(schema.params, run_id).items()}
        if all(logged.get(k) == v for k, v in params.items()):
            return run_id
    return None


def _from_example(model: Any, example: Any) -> sig.Signature:
    signature_obj = sig.from_example(example)
    data = sig.as_frame_or_array(example)
    fn = getattr(model, "predict", None) or (model if callable(model) else None)
    out = None
    if fn is not None:
        try:
            out = fn(data)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise InvalidInput(
                f"the model failed on its input_example ({type(exc).__name__}: {first}); pass an example the "
                "model takes, e.g. X_train.head()"
            ) from None
    return sig.Signature(
        signature_obj.type,
        signature_obj.columns,
        signature_obj.dtype,
        signature_obj.shape,
        sig.outputs_of(model, out),
        signature_obj.source,
    )


def _from_run_inputs(ws, model: Any, run_id: str | None) -> sig.Signature | None:
    """The signature from the run's input snapshots (the first one holding the model's columns)."""
    if not run_id:
        return None
    ids = ws.models.run_inputs(run_id)
    try:  # snapshots in memory become a live run's inputs only when it ends
        from ..data import snapshots as data_snapshots
        from ..tracking import session

        active = session.active_run()
        if active is not None and active.id == run_id:
            ids += [i for i in data_snapshots.in_scope(ws) if i not in ids]
    except ImportError:
        pass
    for snap_id in ids:
        try:
            row = ws.snapshots.get(snap_id)
        except Exception as exc:  # a snapshot table from another mlo; not worth failing the registration
            log.debug("snapshot %s unreadable for a signature: %s", snap_id, exc)
            continue
        if row.kind not in ("frame", "table") or not row.schema:
            continue
        found = sig.from_snapshot(row.schema, model, f"snapshot:{row.name}@{row.version}")
        if found is not None:
            return found
    return None


# -- finding and loading -------------------------------------------------------------------------------------------
def get_model_version(ref: Any, version: Any = None) -> ModelVersion:
    """The version a reference names: ``"churn/3"``, ``"churn@production"``, ``"models:/churn@production"``,
    ``"churn@latest"``, or ``("churn", 3)``."""
    ws = workspace.current(create=False)
    return ModelVersion(ws, resolve(ws, ref, version))


def load_model(uri: Any, *, enforce: bool = True, trust: bool = False) -> LoadedModel:
    """Load a registered model.

    Parameters
    ----------
    uri : str or ModelVersion
        ``"churn@production"``, ``"churn/3"``, ``"models:/churn@production"``, ``"models:/churn/3"``,
        ``"churn@latest"``.
    enforce : bool
        Check inputs against the signature (default). With False, inputs go to the model as given.
    trust : bool
        Load it although loading runs code or constructs types nobody trusted: a pickle (cloudpickle, joblib)
        or a skops file with custom types. Without it, such a model loads only when ``mlo.toml`` ``[registry]``
        trusts its flavor (``trusted_flavors``) or types (``trusted_types``); otherwise
        :class:`~mlo.registry.UntrustedModel` says why, before a byte of it is read.

    Returns
    -------
    LoadedModel
        ``.predict``, ``.predict_proba`` (when the model has it), ``.raw`` (the model), ``.model_version``.
    """
    ws = workspace.current(create=False)
    return load_version(ws, resolve(ws, uri), enforce=enforce, trust=trust)


def load_version(ws, row: VersionRow, *, enforce: bool = True, trust: bool = False) -> LoadedModel:
    """The model of a stored version, once its record matches its audited registration and it is trusted: the
    one way every loader (``load_model``, ``mlo serve``, validation) takes, so they share the trust rule."""
    if not isinstance(trust, bool):
        raise InvalidInput(f"trust must be True or False, got {trust!r}")
    if not isinstance(enforce, bool):
        raise InvalidInput(f"enforce must be True or False, got {enforce!r}")
    from ..store.models import record_mismatch

    label = f"{row.name}/{row.version}"
    if row.flavor == "prompt":
        raise InvalidInput(f"{label} is a prompt, not a model: load it with mlo.load_prompt('{label}')")
    changed = record_mismatch(row, ws.models.registration(row.name, row.version))
    if changed is not None:
        raise ModelIntegrityError(
            f"model {label}: its version record does not match its registration in the audit log ({changed}); "
            "refusing to load it. The database was changed outside mlo: restore it from a backup, or register "
            "the model again"
        )
    registered = ModelVersion(ws, row)
    who = f"by {row.created_by or 'an unknown user'} on {registered.created_at:%Y-%m-%d %H:%M} UTC"
    if row.run_id:
        who += f" from run {row.run_id}"
    flavors.check_trusted(ws, row.flavor, row.details, label, who, trust)
    raw = flavors.load(ws, row.flavor, row.blob, row.details, label, trust=trust)
    flavors.check_environment(row.env, label)
    return LoadedModel(raw, registered, enforce=enforce)


def models(name: str | None = None) -> pd.DataFrame:
    """Registered versions as a DataFrame, newest first per model: name, version, aliases, flavor, run_id,
    digest, size, created_by, created_at and the run's ``metrics.*``."""
    import pandas as pd

    ws = workspace.current(create=False)
    if name is not None:
        check_name(name)
    store = ws.models
    rows = [r for r in store.versions(name) if r.flavor != "prompt"]  # prompts: mlo.prompts.versions()
    if name is not None and not rows and not store.model_exists(name):
        from ..errors import NotFound

        raise NotFound(store._no_model(name))
    aliases = store.aliases(name)
    metrics = store.run_metrics([r.run_id for r in rows if r.run_id])
    records = []
    keys: set[str] = set()
    for r in rows:
        held = sorted(a for a, v in aliases.get(r.name, {}).items() if v == r.version)
        rec = {
            "name": r.name,
            "version": r.version,
            "aliases": ", ".join(held),
            "flavor": r.flavor,
            "model_class": r.model_class.rsplit(".", 1)[-1],
            "run_id": r.run_id,
            "digest": r.blob,
            "size": r.size,
            "created_by": r.created_by,
            "created_at": pd.Timestamp(r.created_at, unit="us", tz="UTC"),
        }
        for k, v in metrics.get(r.run_id or "", {}).items():
            rec[f"metrics.{k}"] = v
            keys.add(f"metrics.{k}")
        records.append(rec)
    base = [
        "name",
        "version",
        "aliases",
        "flavor",
        "model_class",
        "run_id",
        "digest",
        "size",
        "created_by",
        "created_at",
    ]
    return pd.DataFrame.from_records(records, columns=base + sorted(keys))
