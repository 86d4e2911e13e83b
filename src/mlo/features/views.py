"""Feature views: a named, versioned transform over a source snapshot, keyed by an entity and a timestamp.

A view's version is the digest of its definition: the transform's source code (and the plain constants it reads
from its module), the entity and timestamp columns, and the digest of the source snapshot it reads. Running the
defining cell again finds the same version; editing the function (or snapshotting new source data and defining the
view again) adds the next one. The transform itself is stored too (cloudpickle), so a serving process applies the
very function the notebook defined.

Transforms are row-wise: ``transform(frame) -> frame`` with one output row per input row, each depending on its
own input row only. That is what lets the same function compute features offline over the whole source and at
request time over the rows a client sends. A view given ``aggregations=[mlo.features.agg(...)]`` is an aggregate
view: its features are sums, counts, means, minima or maxima over each entity's events in a time window
(:mod:`.aggregates`), of its transform's outputs (or of source columns, without a transform).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any

import pandas as pd

from .. import workspace
from ..errors import InvalidInput, NotFound
from ..store.features import FeatureViewRow
from ..store.snapshots import check_name

SAMPLE_ROWS = 1_000  # rows the transform is tried on when the view is defined (its output schema)
_PLAIN = (int, float, str, bool, bytes, type(None))


def _code(fn: Callable) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise InvalidInput(
            f"cannot read the source code of {getattr(fn, '__name__', fn)!r}: define the transform with def in a "
            "notebook cell or a module (its source is its version)"
        ) from None


def _constants(fn: Callable) -> dict[str, str]:
    """The plain values (numbers, text, tuples of them) the function reads from its module: changing
    ``THRESHOLD = 5`` changes the features as surely as editing the function."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    names: set[str] = set(code.co_names)
    for const in code.co_consts:  # nested functions and comprehensions
        if inspect.iscode(const):
            names.update(const.co_names)
    glb = getattr(fn, "__globals__", {})
    out = {}
    for n in sorted(names):
        v = glb.get(n)
        if isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(isinstance(x, _PLAIN) for x in v)):
            out[n] = repr(v)
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _schema(df: pd.DataFrame) -> list[dict[str, str]]:
    return [{"name": str(c), "dtype": str(df[c].dtype)} for c in df.columns]


def _is_time(s: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(s.dtype)


class FeatureView:
    """One version of a feature view. Defining one (``FeatureView(...)`` or ``@mlo.feature``) records it.

    Parameters
    ----------
    name : str
        Letters, digits, ``_ - .``; versions are numbered per name.
    source : str or Snapshot
        The snapshot it reads (``"transactions"`` is the latest version when the view is defined).
    entity : str
        The column that identifies what the features describe (a customer id).
    timestamp : str
        The column saying when each source row became true (a datetime column).
    transform : callable, optional
        ``transform(frame) -> DataFrame``: one output row per input row, each from its own row only. Its columns
        other than ``entity`` and ``timestamp`` are the features (or, with ``aggregations``, what they aggregate).
        Optional with ``aggregations``: they then aggregate source columns.
    aggregations : list, optional
        ``[mlo.features.agg("amount", "sum", window="7d"), ...]``: the view's features are these aggregates over
        each entity's events in the window before each row's time, instead of the transform's columns.
    inputs : list of str, optional
        The source columns the transform reads (default: all). A request that sends them has its features
        computed by the transform at request time; others are looked up in the online table.
    description : str, optional
    """

    def __init__(
        self,
        name: str,
        *,
        source: Any,
        entity: str,
        timestamp: str,
        transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        aggregations: list | None = None,
        inputs: list[str] | None = None,
        description: str | None = None,
    ):
        row, self.created = _define(
            name, source, entity, timestamp, transform, inputs, description, aggregations
        )
        self._init(workspace.current(), row, transform)

    @classmethod
    def _from_row(cls, ws: workspace.Workspace, row: FeatureViewRow) -> FeatureView:
        self = cls.__new__(cls)
        self.created = False
        self._init(ws, row, None)
        return self

    def _init(self, ws, row: FeatureViewRow, fn: Callable | None) -> None:
        self._ws = ws
        self._row = row
        self._fn = fn
        self._loaded = fn is not None or not row.code  # a view with no transform has none to load

    name = property(lambda self: self._row.name)
    version = property(lambda self: self._row.version)
    digest = property(lambda self: self._row.digest)
    entity = property(lambda self: self._row.entity)
    timestamp = property(lambda self: self._row.timestamp)
    code = property(lambda self: self._row.code)
    inputs = property(lambda self: [c["name"] for c in self._row.inputs])
    input_schema = property(lambda self: list(self._row.inputs))
    output_schema = property(lambda self: list(self._row.outputs))
    features = property(lambda self: [c["name"] for c in self._row.outputs])
    id = property(lambda self: self._row.id)
    description = property(lambda self: self._row.description)

    @property
    def aggregations(self) -> list[dict[str, Any]]:
        """The aggregate features (``of``, ``fn``, ``window``), empty for a row-wise view."""
        return [{"name": c["name"], **c["agg"]} for c in self._row.outputs if "agg" in c]

    @property
    def aggregated(self) -> bool:
        return any("agg" in c for c in self._row.outputs)

    @property
    def event_columns(self) -> list[str]:
        """The columns of the feature rows kept per source row: the features of a row-wise view, the aggregated
        columns of an aggregate view."""
        return [c["name"] for c in _event_schema(self._row)]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def node(self) -> str:
        """The lineage node of this version."""
        return f"feature:{self.id}"

    @property
    def source(self):
        """The source snapshot this version reads."""
        from ..data.snapshots import Snapshot

        return Snapshot(self._ws, self._ws.snapshots.get(self._row.snapshot_id))

    @property
    def transform(self) -> Callable:
        """The registered function (loaded from the store when this version was not defined here); None for an
        aggregate view over source columns."""
        if not self._loaded:
            import cloudpickle

            self._fn = cloudpickle.loads(self._ws.blobs.get_bytes(self._row.blob))
            self._loaded = True
        return self._fn

    # -- computing -------------------------------------------------------------------------------------------------
    def apply(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The features of ``rows`` (source-shaped rows: the input columns), computed by the registered transform
        and cast to the recorded output types; the same code offline and at request time."""
        if self.aggregated:
            raise InvalidInput(
                f"feature view {self.ref} aggregates over time, so a row alone has no value: use "
                "mlo.features.training_frame or mlo.features.lookup"
            )
        return _apply(self.transform, rows, self._row)

    def events(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The per-row columns kept of source-shaped ``rows``: :meth:`apply` for a row-wise view, the aggregated
        columns for an aggregate view."""
        return _apply(self.transform, rows, self._row, _event_schema(self._row))

    def frame(self) -> pd.DataFrame:
        """Every source row's features: the entity, the timestamp and the feature columns."""
        from .rows import feature_frame

        return feature_frame(self)

    def to_dict(self) -> dict[str, Any]:
        r = self._row
        return {
            "id": r.id,
            "name": r.name,
            "version": r.version,
            "ref": self.ref,
            "digest": r.digest,
            "code_digest": r.code_digest,
            "source": self.source.ref,
            "entity": r.entity,
            "timestamp": r.timestamp,
            "inputs": r.inputs,
            "outputs": r.outputs,
            "aggregations": self.aggregations,
            "code": r.code,
            "description": r.description,
            "created_at": pd.Timestamp(r.created_at, unit="us", tz="UTC").isoformat(),
            "created_by": r.created_by,
        }

    def _repr_html_(self) -> str:
        from .render import view_html

        return view_html(self)

    def __repr__(self) -> str:
        return (
            f"<FeatureView {self.ref} {', '.join(self.features)} by {self.entity} "
            f"from {self.source.ref} {self.digest[:12]}>"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureView) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def _event_schema(row: FeatureViewRow) -> list[dict[str, str]]:
    aggs = [c["agg"] for c in row.outputs if "agg" in c]
    if not aggs:
        return list(row.outputs)
    seen: dict[str, str] = {}
    for a in aggs:
        seen.setdefault(a["of"], a["of_dtype"])
    return [{"name": k, "dtype": v} for k, v in seen.items()]


def _apply(
    fn: Callable | None, rows: pd.DataFrame, row: FeatureViewRow, want: list[dict[str, str]] | None = None
) -> pd.DataFrame:
    names = [c["name"] for c in row.inputs]
    if row.entity not in rows.columns:  # request-time rows may come without an id: the transform gets none
        names = [n for n in names if n != row.entity]
    missing = [n for n in names if n not in rows.columns]
    if missing:
        raise InvalidInput(f"feature view {row.name}@{row.version} needs the columns {', '.join(missing)}")
    X = rows[names].copy()
    for c in row.inputs:
        if c["name"] not in X.columns:
            continue
        if str(X[c["name"]].dtype) != c["dtype"]:
            try:
                X[c["name"]] = X[c["name"]].astype(c["dtype"])
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"column {c['name']!r} cannot be read as {c['dtype']} for feature view {row.name}: {exc}"
                ) from None
    X = X.reset_index(drop=True)
    want = row.outputs if want is None else want
    out = fn(X) if fn is not None else X
    if isinstance(out, pd.Series):
        out = out.to_frame()
    if not isinstance(out, pd.DataFrame):
        raise InvalidInput(
            f"the transform of feature view {row.name!r} returned a {type(out).__name__}: return a DataFrame "
            "with one row per input row"
        )
    if len(out) != len(X):
        raise InvalidInput(
            f"the transform of feature view {row.name!r} returned {len(out)} rows for {len(X)}: it must be "
            "row-wise (one output row per input row, e.g. no groupby or filtering)"
        )
    out = out.drop(columns=[c for c in (row.entity, row.timestamp) if c in out.columns]).reset_index(
        drop=True
    )
    if fn is None or any("agg" in c for c in row.outputs):
        missing = [c["name"] for c in want if c["name"] not in out.columns]
        if not missing:
            out = out[[c["name"] for c in want]]
    names = [c["name"] for c in want]
    if [str(c) for c in out.columns] != names:
        raise InvalidInput(
            f"the transform of feature view {row.name}@{row.version} returned columns "
            f"{', '.join(map(str, out.columns))}, not {', '.join(names)}: define the view again after editing it"
        )
    for c in want:
        if str(out[c["name"]].dtype) != c["dtype"]:
            out[c["name"]] = out[c["name"]].astype(c["dtype"])
    return out


# -- defining --------------------------------------------------------------------------------------------------------
def _define(
    name: str,
    source: Any,
    entity: str,
    timestamp: str,
    transform: Callable | None,
    inputs: list[str] | None,
    description: str | None,
    aggregations: list | None = None,
) -> tuple[FeatureViewRow, bool]:
    from ..data.snapshots import get_snapshot
    from ..tracking import capture
    from .aggregates import Aggregation, check_column, output_dtype

    check_name(name)
    if aggregations is not None:
        if isinstance(aggregations, Aggregation):
            aggregations = [aggregations]
        if not isinstance(aggregations, (list, tuple)) or not aggregations:
            raise InvalidInput(
                "aggregations takes a list like [mlo.features.agg('amount', 'sum', window='7d')]"
            )
        bad = [a for a in aggregations if not isinstance(a, Aggregation)]
        if bad:
            raise InvalidInput(
                f"aggregations holds {bad[0]!r}: make each with mlo.features.agg(column, fn, window=...)"
            )
    if transform is None and not aggregations:
        raise InvalidInput("a feature view needs transform= (a function of the source rows) or aggregations=")
    if transform is not None and not callable(transform):
        raise InvalidInput(f"transform must be a function taking a DataFrame, got {type(transform).__name__}")
    for label, value in (("entity", entity), ("timestamp", timestamp)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{label} must name a column of the source, got {value!r}")
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"description must be a string, got {type(description).__name__}")
    if isinstance(source, pd.DataFrame):
        raise InvalidInput(
            "source takes a snapshot: mlo.snapshot(df, 'transactions'), then source='transactions'"
        )
    snap = get_snapshot(source)
    if snap.kind not in ("frame", "table"):
        raise InvalidInput(f"source {snap.ref} is a {snap.kind}; a feature view reads a DataFrame snapshot")
    data = snap.load()
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas()
    for label, col in (("entity", entity), ("timestamp", timestamp)):
        if col not in data.columns:
            raise InvalidInput(
                f"{label} column {col!r} is not in {snap.ref} (columns: {', '.join(map(str, data.columns))})"
            )
    if not _is_time(data[timestamp]):
        raise InvalidInput(
            f"timestamp column {timestamp!r} of {snap.ref} is {data[timestamp].dtype}: it must hold datetimes "
            "(pd.to_datetime(...) before snapshotting)"
        )
    if inputs is None:
        names = [str(c) for c in data.columns]
    else:
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(c, str) for c in inputs):
            raise InvalidInput("inputs takes a list of column names")
        unknown = [c for c in inputs if c not in data.columns]
        if unknown:
            raise InvalidInput(f"inputs {', '.join(unknown)} are not columns of {snap.ref}")
        names = list(dict.fromkeys([entity, timestamp, *inputs]))
    input_schema = _schema(data[names])
    code = _code(transform) if transform is not None else ""
    constants = _constants(transform) if transform is not None else {}
    code_digest = _sha(json.dumps({"code": code, "constants": constants}, sort_keys=True))
    sample = data[names].head(SAMPLE_ROWS).reset_index(drop=True)
    try:
        out = transform(sample.copy()) if transform is not None else sample.copy()
    except Exception as exc:
        raise InvalidInput(
            f"the transform of feature view {name!r} failed on {snap.ref}: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(out, pd.Series):
        out = out.to_frame()
    if not isinstance(out, pd.DataFrame) or len(out) != len(sample):
        raise InvalidInput(
            f"the transform of feature view {name!r} must return a DataFrame with one row per input row "
            f"(got {type(out).__name__}{'' if not hasattr(out, '__len__') else f' of {len(out)} rows'} for "
            f"{len(sample)})"
        )
    out = out.drop(columns=[c for c in (entity, timestamp) if c in out.columns])
    if out.shape[1] == 0:
        raise InvalidInput(f"the transform of feature view {name!r} returned no feature columns")
    if len(set(map(str, out.columns))) != out.shape[1]:
        raise InvalidInput(f"the transform of feature view {name!r} returned duplicate column names")
    output_schema = _schema(out)
    if aggregations:
        output_schema = []
        for a in aggregations:
            if a.of not in out.columns:
                where = "the transform's outputs" if transform is not None else "the source's columns"
                raise InvalidInput(
                    f"feature view {name!r} aggregates {a.of!r}, which is not among {where} "
                    f"({', '.join(map(str, out.columns))})"
                )
            check_column(a, out[a.of].dtype, name)
            of_dtype = str(out[a.of].dtype)
            output_schema.append(
                {"name": a.name, "dtype": output_dtype(a.fn, of_dtype), "agg": a.spec(of_dtype)}
            )
        names_out = [c["name"] for c in output_schema]
        if len(set(names_out)) != len(names_out):
            raise InvalidInput(f"feature view {name!r} names two aggregates alike: give them name=")
    definition = {
        "code": code_digest,
        "entity": entity,
        "timestamp": timestamp,
        "inputs": input_schema,
        "outputs": output_schema,
        "source": snap.digest,
    }
    ws = workspace.current()
    blob = ws.blobs.put_bytes(_pickled(transform) if transform is not None else _pickled_none())
    fields = {
        "digest": _sha(json.dumps(definition, sort_keys=True)),
        "code_digest": code_digest,
        "snapshot_id": snap.id,
        "entity": entity,
        "timestamp": timestamp,
        "inputs": input_schema,
        "outputs": output_schema,
        "code": code,
        "blob": blob,
        "description": description,
        "created_by": capture.user(),
    }
    return ws.features.add(name, fields, lambda vid, _v: [(snap.node, f"feature:{vid}", "source")])


def _pickled_none() -> bytes:
    import cloudpickle

    return cloudpickle.dumps(None)


def _pickled(fn: Callable) -> bytes:
    """The transform by value: a function from a notebook, a script or a project module that another process
    may not be able to import (a serving process, a test run elsewhere). Installed packages stay by reference."""
    import sys

    import cloudpickle

    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    path = str(getattr(module, "__file__", "") or "")
    own = (
        module is not None
        and module.__name__ != "__main__"
        and path
        and not any(part in path for part in ("site-packages", "dist-packages"))
    )
    if not own:
        return cloudpickle.dumps(fn)
    cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(fn)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def feature(
    *,
    source: Any,
    entity: str,
    timestamp: str,
    name: str | None = None,
    aggregations: list | None = None,
    inputs: list[str] | None = None,
    description: str | None = None,
) -> Callable[[Callable], FeatureView]:
    """Decorator form of :class:`FeatureView`: the function is the transform, its name the view's name
    (unless ``name`` is given); the decorated name holds the :class:`FeatureView`.

    >>> @mlo.feature(source="transactions", entity="customer_id", timestamp="ts")  # doctest: +SKIP
    ... def spend(df):
    ...     return pd.DataFrame({"amount_usd": df.amount * df.rate})
    """

    def wrap(fn: Callable) -> FeatureView:
        return FeatureView(
            name or fn.__name__,
            source=source,
            entity=entity,
            timestamp=timestamp,
            transform=fn,
            aggregations=aggregations,
            inputs=inputs,
            description=description,
        )

    return wrap


# -- reading ---------------------------------------------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``"spend"``, ``"spend@2"``, ``"spend:amount_usd"``, ``"spend@2:amount_usd"`` → (name, version, column)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"a feature is named 'view', 'view@VERSION' or 'view:column', got {ref!r}")
    head, _, column = ref.partition(":")
    name, at, version = head.partition("@")
    if at and not version.isdigit():
        raise InvalidInput(f"feature view version must be a number in {ref!r}, e.g. 'spend@2'")
    check_name(name)
    return name, int(version) if at else None, column or None


def get_feature_view(ref: str | FeatureView) -> FeatureView:
    """The feature view ``ref`` names: ``"spend"`` (latest version) or ``"spend@2"``."""
    if isinstance(ref, FeatureView):
        return ref
    name, version, _ = parse_ref(ref)
    ws = workspace.current(create=False)
    return FeatureView._from_row(ws, ws.features.get(name, version))


def feature_views(name: str | None = None) -> pd.DataFrame:
    """Every feature view version (or those of ``name``): features, entity, source snapshot, digest."""
    ws = workspace.current(create=False)
    rows = ws.features.list(name)
    snaps: dict[str, str] = {}
    data = []
    for r in rows:
        if r.snapshot_id not in snaps:
            try:
                srow = ws.snapshots.get(r.snapshot_id)
                snaps[r.snapshot_id] = f"{srow.name}@{srow.version}"
            except NotFound:
                snaps[r.snapshot_id] = r.snapshot_id
        data.append(
            {
                "name": r.name,
                "version": r.version,
                "features": ", ".join(c["name"] for c in r.outputs),
                "entity": r.entity,
                "timestamp": r.timestamp,
                "source": snaps[r.snapshot_id],
                "digest": r.digest,
                "created_at": pd.Timestamp(r.created_at, unit="us", tz="UTC"),
                "id": r.id,
            }
        )
    cols = ["name", "version", "features", "entity", "timestamp", "source", "digest", "created_at", "id"]
    return pd.DataFrame(data, columns=cols)


# -- lineage: the ``feature`` node kind --------------------------------------------------------------------------
def _resolve_node(ws, text: str) -> str:
    name, version, _ = parse_ref(text)
    return f"feature:{ws.features.get(name, version).id}"


def _describe_nodes(ws, ids: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for vid in ids:
        try:
            r = ws.features.by_id(vid)
        except NotFound:
            continue
        out[vid] = {
            "label": f"{r.name}@{r.version}",
            "detail": f"{len(r.outputs)} features by {r.entity} · {r.digest[:10]}",
            "attrs": {"name": r.name, "version": r.version, "digest": r.digest,
                      "features": [c["name"] for c in r.outputs]},
        }  # fmt: skip
    return out


def _register_kind() -> None:
    from ..data.lineage import register_kind

    register_kind("feature", resolve=_resolve_node, describe=_describe_nodes)


_register_kind()

__all__ = ["FeatureView", "feature", "feature_views", "get_feature_view"]
