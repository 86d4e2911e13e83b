"""The prediction log: every prediction a server made (or a notebook scored), with its inputs, its latency
and, later, its label — what monitoring reads.

Layout, under the workspace home (``.mlo/``)::

    monitor/<model name>/seg-<min ts>-<max ts>-<8 hex>.parquet          predictions
    monitor/<model name>/labels/lab-<min ts>-<max ts>-<8 hex>.parquet   labels arriving later (id, label, ts)

Timestamps in file names are microseconds since the epoch (UTC), so a read for a time window opens only the
files whose range overlaps it. Files are Parquet (zstd), written to a temporary name and renamed, so a reader
never sees half a file; they are immutable once written. :func:`compact` merges small files (a server writes
one a second) into larger ones: the merged file lists the files it replaces in its footer (``mlo.replaces``),
readers skip those, and the compaction deletes them afterwards, so a reader never sees a record twice or
misses one.

Columns of a prediction file: ``id`` (a UUIDv7 as 32 hex digits: unique and sortable by time), ``ts``
(timestamp, µs, UTC), ``model``, ``version``, ``alias`` (the alias the request came through, or null),
``route`` (``stable``, ``canary`` or ``batch``), ``latency_ms`` (the time of the model call, signature check
included; null for batch records), ``error`` (why the model failed, else null; input a server refuses is not
logged), ``prediction`` (one value per row; a model output with several values per row — probabilities, multi-output
regression — is stored as a list) and ``f.<feature>`` per input column, with the signature's dtypes. Files of
different versions may hold different features; reading unifies them (a missing column reads as null, integers
widen to floats, clashing types become strings). A feature's type comes from the signature and never widens
because of one record; files written by older servers that stored a feature's numbers as text read back as
numbers.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import workspace
from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ..registry.versions import ModelVersion

log_ = logging.getLogger("mlo.monitor")

FOLDER = "monitor"
LABELS = "labels"
FEATURE_PREFIX = "f."
BASE_COLUMNS = ["id", "ts", "model", "version", "alias", "route", "latency_ms", "error", "prediction"]
TS_TYPE = pa.timestamp("us", tz="UTC")
ROW_GROUP = 131_072  # rows per row group: time filters skip row groups by their ts statistics
FLUSH_SECONDS = 1.0
FLUSH_RECORDS = 10_000
COMPACT_EVERY = 600  # segments a logger writes for a model before it compacts that model's folder
COMPACT_ROWS = 1_000_000
_NAME_RE = re.compile(r"^(seg|lab)-(-?\d+)-(-?\d+)-[0-9a-f]{8}\.parquet$")
_REPLACES = b"mlo.replaces"
_VARIANT = "89ab"
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2").view(np.uint16)


# -- ids -----------------------------------------------------------------------------------------------------
def new_ids(n: int, ts_us: int | None = None) -> list[str]:
    """``n`` record ids: UUIDv7 layout (48-bit milliseconds, then random bits) as 32 lowercase hex digits."""
    ms = time.time_ns() // 1_000_000 if ts_us is None else max(ts_us // 1000, 0)
    head = f"{ms & 0xFFFFFFFFFFFF:012x}7"
    r = os.urandom(10 * n).hex()
    return [
        head + r[i : i + 3] + _VARIANT[int(r[i + 3], 16) & 3] + r[i + 4 : i + 19]
        for i in range(0, 20 * n, 20)
    ]


def _id_array(ts_us: np.ndarray) -> pa.Array:
    """:func:`new_ids` for a whole column at once (one id per timestamp), built without Python strings."""
    n = len(ts_us)
    if n > 1 << 24:  # keep each string array's int32 offsets small
        parts = [_id_array(ts_us[i : i + (1 << 24)]) for i in range(0, n, 1 << 24)]
        return pa.chunked_array(parts, pa.string())
    ms = np.maximum(np.asarray(ts_us, dtype=np.int64) // 1000, 0).astype(np.uint64)
    b = np.empty((n, 16), np.uint8)
    for k in range(6):
        b[:, k] = (ms >> np.uint64(8 * (5 - k))) & np.uint64(0xFF)
    rnd = np.frombuffer(os.urandom(10 * n), np.uint8).reshape(n, 10)
    b[:, 6] = 0x70 | (rnd[:, 0] & 0x0F)
    b[:, 7] = rnd[:, 1]
    b[:, 8] = 0x80 | (rnd[:, 2] & 0x3F)
    b[:, 9:] = rnd[:, 3:]
    data = np.ascontiguousarray(_HEX[b]).view(np.uint8)
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


# -- time ----------------------------------------------------------------------------------------------------
def now_us() -> int:
    return time.time_ns() // 1000


def _to_us(value: Any, what: str) -> int:
    """Microseconds since the epoch of a datetime, Timestamp, ISO string or epoch seconds; a timedelta counts
    back from now (``since=timedelta(hours=1)``: the last hour)."""
    if isinstance(value, (timedelta, pd.Timedelta, np.timedelta64)):
        return now_us() - int(pd.Timedelta(value).value // 1000)
    if isinstance(value, bool):
        raise InvalidInput(f"{what}= takes a datetime, an ISO string or a timedelta, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{what}={value!r} is not a time: pass a datetime, an ISO string like '2025-01-31T12:00' or a "
            "timedelta (the last hour: timedelta(hours=1))"
        ) from None
    if ts is pd.NaT:
        raise InvalidInput(f"{what}= cannot be missing (NaT)")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1000)


def _timestamps(timestamps: Any, n: int) -> np.ndarray:
    if timestamps is None:
        return np.full(n, now_us(), dtype=np.int64)
    if isinstance(timestamps, (datetime, date, str, pd.Timestamp, np.datetime64)):
        return np.full(n, _to_us(timestamps, "timestamps"), dtype=np.int64)
    values = timestamps if isinstance(timestamps, (pd.Series, pd.Index, np.ndarray)) else list(timestamps)
    if len(values) != n:
        raise InvalidInput(
            f"timestamps has {len(values)} values for {n} rows; pass one per row (or none: now)"
        )
    try:
        if pd.api.types.is_numeric_dtype(np.asarray(values).dtype):
            idx = pd.to_datetime(np.asarray(values, dtype=float), unit="s", utc=True)
        else:
            idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"timestamps are not times ({exc}); pass datetimes or ISO strings") from None
    if idx.hasnans:
        raise InvalidInput("timestamps has missing values; give every row a time")
    return idx.as_unit("us").asi8


# -- model references ----------------------------------------------------------------------------------------
def resolve_model(ref: Any) -> tuple[ModelVersion, str | None]:
    """The version a reference names and the selector it was named by: an alias, ``"latest"``, or None for a
    pinned version. Takes what :func:`mlo.get_model_version` takes, plus ``NAME@vN`` (version N, unless the
    model has an alias literally called ``vN``)."""
    from ..registry.versions import ModelVersion, parse_ref, resolve

    if isinstance(ref, ModelVersion):
        return ref, None
    ws = workspace.current(create=False)
    if isinstance(ref, tuple) and len(ref) == 2:
        row = resolve(ws, ref[0], ref[1])
        sel = ref[1] if isinstance(ref[1], str) and not ref[1].isdigit() else None
        return ModelVersion(ws, row), sel
    if not isinstance(ref, str):
        raise InvalidInput(
            "a model reference is 'churn@production', 'churn@v3', 'churn/3' or a ModelVersion, "
            f"got {type(ref).__name__}"
        )
    name, sel = parse_ref(ref)
    if isinstance(sel, str) and re.fullmatch(r"v\d+", sel) and ws.models.alias_version(name, sel) is None:
        sel = int(sel[1:])
    return ModelVersion(ws, resolve(ws, name, sel)), sel if isinstance(sel, str) else None


def model_folder(name: str, home: Path | None = None) -> Path:
    """Where the log of model ``name`` lives."""
    from ..registry.versions import check_name

    check_name(name)
    return Path(home if home is not None else workspace.current(create=False).home) / FOLDER / name


# -- columns -------------------------------------------------------------------------------------------------
def arrow_type(dtype: str | None, kind: str | None) -> pa.DataType | None:
    """The Arrow type logged for a signature column (None: inferred from the values)."""
    if kind in ("integer", "float"):
        try:
            return pa.from_numpy_dtype(np.dtype(str(dtype)))
        except (TypeError, ValueError, pa.ArrowNotImplementedError):
            return pa.int64() if kind == "integer" else pa.float64()
    return {"boolean": pa.bool_(), "string": pa.string(), "category": pa.string()}.get(kind or "")


_CONVERT = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


def _values_array(values: Sequence[Any], type_: pa.DataType | None = None) -> pa.Array:
    """An Arrow column from Python values. With ``type_`` (a feature's type, from the signature) the column
    keeps that type whatever the values: one that does not fit is stored as null (a server refuses such values
    before they get here, so this is a last line of defence), never widening the column. Without one, values
    that do not fit one type are stored as text."""
    try:
        return pa.array(values, type=type_, from_pandas=True)
    except _CONVERT:
        if type_ is not None:
            return _fitting(values, type_)
        return pa.array([None if v is None else json.dumps(v, default=str) for v in values], pa.string())


def _fitting(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    kept: list[Any] = []
    for v in values:
        try:
            pa.scalar(v, type_, from_pandas=True)
        except _CONVERT:
            v = None
        kept.append(v)
    dropped = sum(1 for a, b in zip(values, kept, strict=True) if b is None and a is not None)
    log_.warning("prediction log: %d value(s) did not fit %s and were stored as null", dropped, type_)
    return pa.array(kept, type=type_, from_pandas=True)


def _frame_column(s: pd.Series) -> pa.Array:
    try:
        arr = pa.Array.from_pandas(s)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return pa.array(s.map(lambda v: None if v is None or v is pd.NA else str(v)).tolist(), pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _output_array(values: Any, n: int, what: str, of: str = "features has") -> pa.Array:
    """An array-like of per-row outputs (predictions or labels) as one Arrow column; 2-D becomes lists."""
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    if isinstance(values, (pd.Series, pd.Index)):
        if len(values) != n:
            raise InvalidInput(f"{what} has {len(values)} rows but {of} {n}; pass one per row")
        return _frame_column(pd.Series(values))
    if isinstance(values, pa.Array):
        if len(values) != n:
            raise InvalidInput(f"{what} has {len(values)} rows but {of} {n}; pass one per row")
        return values
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise InvalidInput(f"{what} must be array-like with one value per row, got a scalar")
    if len(arr) != n:
        raise InvalidInput(f"{what} has {len(arr)} rows but {of} {n}; pass one per row")
    if arr.ndim == 1:
        return _frame_column(pd.Series(arr)) if arr.dtype == object else pa.array(arr)
    if arr.ndim == 2:
        flat = pa.array(arr.reshape(-1)) if arr.dtype != object else _values_array(arr.reshape(-1).tolist())
        offsets = pa.array(np.arange(0, arr.size + 1, arr.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, flat)
    raise InvalidInput(f"{what} must have one value (or one row of values) per row; got shape {arr.shape}")


def _constant(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    return pa.nulls(n, type_) if value is None else pa.repeat(pa.scalar(value, type_), n)


# -- files ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Segment:
    path: Path
    lo: int
    hi: int


@dataclass(frozen=True)
class _Footer:
    schema: pa.Schema
    replaces: frozenset
    rows: int


_footers: dict[str, _Footer] = {}  # files never change once written: their footers are read once per process
_footers_lock = threading.Lock()


def _footer(path: Path) -> _Footer:
    key = str(path)
    hit = _footers.get(key)
    if hit is not None:
        return hit
    md = pq.read_metadata(path)
    schema = md.schema.to_arrow_schema()
    meta = md.metadata or {}
    replaces = frozenset(json.loads(meta[_REPLACES])) if _REPLACES in meta else frozenset()
    footer = _Footer(schema.remove_metadata(), replaces, md.num_rows)
    with _footers_lock:
        if len(_footers) > 100_000:
            _footers.clear()
        _footers[key] = footer
    return footer


def _list(folder: Path, prefix: str) -> list[_Segment]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    out = []
    for e in entries:
        m = _NAME_RE.match(e.name)
        if m and m.group(1) == prefix:
            out.append(_Segment(Path(e.path), int(m.group(2)), int(m.group(3))))
    out.sort(key=lambda s: (s.lo, s.hi, s.path.name))
    return out


def write_segment(
    folder: Path, table: pa.Table, prefix: str = "seg", replaces: Iterable[str] = ()
) -> Path | None:
    """Write ``table`` (which has a ``ts`` column) as one immutable file of ``folder``: temporary name, fsync,
    rename."""
    if table.num_rows == 0:
        return None
    lo, hi = pc.min_max(table.column("ts").cast(pa.int64())).values()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{lo.as_py()}-{hi.as_py()}-{uuid.uuid4().hex[:8]}.parquet"
    replaces = sorted(replaces)
    if replaces:
        table = table.replace_schema_metadata({_REPLACES: json.dumps(replaces).encode()})
    tmp = folder / f".tmp-{uuid.uuid4().hex}.parquet"
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP, **_encodings(table.schema))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _encodings(schema: pa.Schema) -> dict[str, Any]:
    """Dictionary pages only for text that repeats (not the ids); floats byte-split, which zstd packs tighter
    and decodes faster than the default (measured on 1M rows x 10 float features: about half the read
    time)."""
    text = [f.name for f in schema if f.name != "id" and pa.types.is_string(f.type)]
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    return {"use_dictionary": text, "use_byte_stream_split": floats or False}


def _unify(schemas: list[pa.Schema]) -> pa.Schema:
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    fields: dict[str, list[pa.DataType]] = {}
    for s in schemas:
        for f in s:
            fields.setdefault(f.name, []).append(f.type)
    out = []
    for name, types in fields.items():
        try:
            merged = pa.unify_schemas([pa.schema([(name, t)]) for t in types], promote_options="permissive")
            out.append(merged.field(name))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            out.append(pa.field(name, pa.string()))
    return pa.schema(out)


def _numbers_as_text(schema: pa.Schema, schemas: list[pa.Schema], cols: list[str] | None) -> dict:
    """Features that some files hold as numbers and others as text, read as text by the unified schema:
    ``{name: the numbers' type}``. Older servers stored a second's worth of a feature as JSON text when one
    request's value did not fit its type (an integer above 2⁶³); :func:`_read_repairing` reads those back."""
    out: dict[str, pa.DataType] = {}
    for field in schema:
        name = field.name
        if not name.startswith(FEATURE_PREFIX) or not pa.types.is_string(field.type):
            continue
        if cols is not None and name not in cols:
            continue
        types = [s.field(name).type for s in schemas if name in s.names]
        numbers = [t for t in types if pa.types.is_integer(t) or pa.types.is_floating(t)]
        others = [t for t in types if not (t in numbers or pa.types.is_string(t) or pa.types.is_null(t))]
        if numbers and not others:
            try:
                merged = pa.unify_schemas(
                    [pa.schema([(name, t)]) for t in numbers], promote_options="permissive"
                )
                out[name] = merged.field(name).type
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                out[name] = pa.float64()
    return out


def _with_types(schema: pa.Schema, types: dict) -> pa.Schema:
    return pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in schema])


def _numbers_from_text(column: pa.ChunkedArray | pa.Array, type_: pa.DataType) -> pa.Array | None:
    """Numbers written as text, as ``type_`` (a value outside its range reads as null); None when a value is
    not a number (the column is genuinely text)."""
    integer = pa.types.is_integer(type_)
    lo, hi = (
        (np.iinfo(type_.to_pandas_dtype()).min, np.iinfo(type_.to_pandas_dtype()).max) if integer else (0, 0)
    )
    out: list[Any] = []
    for text in column.to_pylist():
        if text is None:
            out.append(None)
            continue
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if value is None:
            out.append(None)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        elif integer:
            out.append(int(value) if float(value).is_integer() and lo <= value <= hi else None)
        else:
            out.append(float(value) if abs(value) < 1.8e308 and value == value else None)
    return pa.array(out, type_)


def _read_repairing(
    paths: list[Path], schema: pa.Schema, repair: dict, cols: list[str] | None, cond: Any
) -> pa.Table | None:
    """:func:`_read` of files some of which hold numbers as text (see :func:`_numbers_as_text`), file by file,
    turning that text back into numbers; None when one of them holds real text (then the column stays text)."""
    target = _with_types(schema, repair)
    if cols is not None:
        target = pa.schema([target.field(c) for c in cols])
    parts = []
    for path in paths:
        names = pq.read_schema(path).names
        table = ds.dataset(str(path), format="parquet").to_table(
            columns=[c for c in target.names if c in names], filter=cond
        )
        arrays = []
        for field in target:
            if field.name not in table.column_names:
                arrays.append(pa.nulls(table.num_rows, field.type))
                continue
            column = table.column(field.name)
            if field.name in repair and pa.types.is_string(column.type):
                column = _numbers_from_text(column, field.type)
                if column is None:
                    return None
            arrays.append(column.cast(field.type))
        parts.append(pa.Table.from_arrays(arrays, schema=target))
    return pa.concat_tables(parts)


def _read(
    folder: Path, prefix: str, lo: int | None, hi: int | None, columns: list[str] | None
) -> tuple[pa.Table | None, pa.Schema | None]:
    """The records of ``folder`` with ``lo <= ts < hi``, in file order, and the unified schema of the
    files."""
    for attempt in range(10):
        segs = [s for s in _list(folder, prefix) if (lo is None or s.hi >= lo) and (hi is None or s.lo < hi)]
        try:
            footers = [_footer(s.path) for s in segs]
            replaced = frozenset().union(*(f.replaces for f in footers))
            keep = [(s, f) for s, f in zip(segs, footers, strict=True) if s.path.name not in replaced]
            if not keep:
                return None, None
            schema = _unify([f.schema for _, f in keep])
            cols = None if columns is None else [c for c in columns if c in schema.names]
            cond = None
            if lo is not None:
                cond = ds.field("ts") >= pa.scalar(lo, TS_TYPE)
            if hi is not None:
                upper = ds.field("ts") < pa.scalar(hi, TS_TYPE)
                cond = upper if cond is None else cond & upper
            repair = _numbers_as_text(schema, [f.schema for _, f in keep], cols)
            if repair:
                table = _read_repairing([s.path for s, _ in keep], schema, repair, cols, cond)
                if table is not None:
                    return table, _with_types(schema, repair)
            dataset = ds.dataset([str(s.path) for s, _ in keep], schema=schema, format="parquet")
            return dataset.to_table(columns=cols, filter=cond), schema
        except FileNotFoundError:  # a compaction replaced a file between listing and reading: list again
            if attempt == 9:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _sorted_by_ts(table: pa.Table) -> pa.Table:
    ts = table.column("ts")
    if len(ts) < 2:
        return table
    as_int = ts.cast(pa.int64())
    if pc.all(pc.greater_equal(as_int[1:], as_int[:-1])).as_py():
        return table
    return table.take(pc.sort_indices(as_int))


# -- reading -------------------------------------------------------------------------------------------------
def read_log(
    name: str, since: Any = None, until: Any = None, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The prediction log of model ``name`` (every version), oldest first, with labels joined.

    Parameters
    ----------
    name : str
        The registered model.
    since, until : datetime, str, Timestamp or timedelta, optional
        Only records with ``since <= ts < until`` (UTC; naive times are taken as UTC). A timedelta counts back
        from now: ``since=timedelta(hours=1)`` is the last hour. Files outside the window are not opened.
    columns : list of str, optional
        Only these columns (e.g. ``["ts", "prediction", "label", "f.age"]``); default all.

    Returns
    -------
    pandas.DataFrame
        ``id, ts, model, version, alias, route, latency_ms, error, prediction, label, f.<feature>…``;
        ``label`` is the latest label given for the record's id (null when none yet).
    """
    home = workspace.current(create=False).home
    folder = model_folder(name, home)
    _sync(home, name)
    lo = None if since is None else _to_us(since, "since")
    hi = None if until is None else _to_us(until, "until")
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("columns= takes a list of column names, e.g. ['ts', 'prediction', 'label']")
        columns = list(dict.fromkeys(columns))
    want_label = columns is None or "label" in columns
    read_cols = None
    if columns is not None:
        read_cols = list(
            dict.fromkeys([*(c for c in columns if c != "label"), "ts", *(["id"] if want_label else [])])
        )
    table, schema = _read(folder, "seg", lo, hi, read_cols)
    if table is None:
        if not folder.is_dir() and not workspace.current(create=False).models.model_exists(name):
            raise NotFound(f"no model {name!r} and no prediction log for it; check the name (mlo.models())")
        return _empty(columns)
    if columns is not None:
        unknown = [c for c in columns if c != "label" and c not in schema.names]
        if unknown:
            raise InvalidInput(
                f"the log of {name!r} has no column {', '.join(map(repr, unknown))}; it has "
                + ", ".join(
                    [*BASE_COLUMNS, "label", *(c for c in schema.names if c.startswith(FEATURE_PREFIX))]
                )
            )
    table = _sorted_by_ts(table)
    if want_label:
        table = _join_labels(table, folder / LABELS)
    names = columns if columns is not None else _order(table.column_names)
    return table.select(names).to_pandas()


def _order(names: list[str]) -> list[str]:
    base = [c for c in BASE_COLUMNS if c in names] + ["label"]
    return base + [c for c in names if c not in base]


def _join_labels(table: pa.Table, folder: Path) -> pa.Table:
    labels, _ = _read(folder, "lab", None, None, ["id", "label", "ts"])
    if labels is None or labels.num_rows == 0:
        return table.append_column("label", pa.nulls(table.num_rows))
    # the latest label of an id wins: newest first, and index_in finds the first occurrence
    labels = labels.take(pc.sort_indices(labels, sort_keys=[("ts", "descending")]))
    idx = pc.index_in(table.column("id"), value_set=labels.column("id"))
    return table.append_column("label", labels.column("label").take(idx))


def _empty(columns: list[str] | None) -> pd.DataFrame:
    types = {
        "id": pa.string(),
        "ts": TS_TYPE,
        "model": pa.string(),
        "version": pa.int64(),
        "alias": pa.string(),
        "route": pa.string(),
        "latency_ms": pa.float64(),
        "error": pa.string(),
        "prediction": pa.null(),
        "label": pa.null(),
    }
    names = columns if columns is not None else [*BASE_COLUMNS, "label"]
    return pa.schema([(c, types.get(c, pa.null())) for c in names]).empty_table().to_pandas()


# -- batch logging and labels --------------------------------------------------------------------------------
def log(
    model_ref: Any, features: Any, predictions: Any, labels: Any = None, timestamps: Any = None
) -> list[str]:
    """Log predictions scored outside a server (batch scoring in a notebook or a job).

    Parameters
    ----------
    model_ref : str or ModelVersion
        The version that predicted: ``"churn@production"``, ``"churn@v3"``, ``"churn/3"`` or a ModelVersion.
    features : DataFrame or dict of columns
        The model's input, one row per prediction; every column is logged (as ``f.<column>``).
    predictions : array-like
        One prediction per row (a 2-D array, e.g. probabilities, is stored as one list per row).
    labels : array-like, optional
        The true outcomes, when already known (stored as labels of the same records).
    timestamps : array-like of datetimes, or one datetime, optional
        When each prediction was made; default now.

    Returns
    -------
    list of str
        The record ids, in row order: give them to :func:`label` when the outcomes arrive.
    """
    mv, sel = resolve_model(model_ref)
    if isinstance(features, dict):
        try:
            features = pd.DataFrame(features)
        except ValueError as exc:
            raise InvalidInput(f"features: cannot read the dict as columns ({exc})") from None
    if not isinstance(features, pd.DataFrame):
        raise InvalidInput(
            f"features must be a DataFrame or a dict of columns, got {type(features).__name__}"
        )
    n = len(features)
    pred = _output_array(predictions, n, "predictions")
    lab = None if labels is None else _output_array(labels, n, "labels")
    ts = _timestamps(timestamps, n)
    names = [str(c) for c in features.columns]
    if len(set(names)) != len(names):
        raise InvalidInput("features has duplicate column names; give each column its own name")
    ids = _id_array(ts)
    ts_arr = pa.array(ts, TS_TYPE)
    cols: dict[str, pa.Array] = {
        "id": ids,
        "ts": ts_arr,
        "model": _constant(mv.name, n, pa.string()),
        "version": _constant(mv.version, n, pa.int64()),
        "alias": _constant(sel, n, pa.string()),
        "route": _constant("batch", n, pa.string()),
        "latency_ms": pa.nulls(n, pa.float64()),
        "error": pa.nulls(n, pa.string()),
        "prediction": pred,
    }
    for name, (_, col) in zip(names, features.items(), strict=True):
        cols[FEATURE_PREFIX + name] = _frame_column(col)
    table = pa.table(cols)
    order = None if n < 2 or bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
    home = workspace.current(create=False).home
    folder = model_folder(mv.name, home)
    written = [write_segment(folder, table if order is None else table.take(order))]
    if lab is not None:
        labels_table = pa.table({"id": ids, "label": lab, "ts": ts_arr})
        written.append(
            write_segment(folder / LABELS, labels_table if order is None else labels_table.take(order), "lab")
        )
    for path in written:  # on object storage too, when the workspace's artifacts are there
        _publish(home, path, strict=True)
    return ids.to_pylist()


def label(ids: Any, y: Any, timestamps: Any = None, *, model: str | None = None) -> None:
    """Record the true outcomes of logged predictions, joined to them by id (the latest label of an id wins).

    Parameters
    ----------
    ids : list of str
        Record ids, as returned by :func:`log` or by the server's ``/predict`` (``"ids"``).
    y : array-like
        One label per id.
    timestamps : array-like of datetimes, or one datetime, optional
        When each label became known; default now.
    model : str, optional
        The model the records belong to; default: found from the ids (every id must have been logged).
    """
    write_labels(workspace.current(create=False).home, ids, y, timestamps, model=model)


def write_labels(home: Path, ids: Any, y: Any, timestamps: Any = None, *, model: str | None = None) -> int:
    """:func:`label` for the workspace at ``home``; returns how many labels were written."""
    if isinstance(ids, str):
        ids = [ids]
    try:
        id_arr = pa.array(list(ids) if not isinstance(ids, (np.ndarray, pd.Series)) else ids, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        raise InvalidInput(
            "ids must be record ids (strings), as returned by mlo.monitor.log or /predict"
        ) from None
    n = len(id_arr)
    if n == 0:
        return 0
    lab = _output_array(y, n, "y", of="ids has")
    ts_arr = pa.array(_timestamps(timestamps, n), TS_TYPE)
    table = pa.table({"id": id_arr, "label": lab, "ts": ts_arr})
    if model is not None:
        _publish(home, write_segment(model_folder(model, home) / LABELS, table, "lab"), strict=True)
        return n
    _sync(home, None)
    owners = _owners(Path(home) / FOLDER, id_arr)
    missing = pc.is_null(owners)
    if pc.any(missing).as_py():
        lost = table.filter(missing).column("id")
        raise NotFound(
            f"{len(lost)} of {n} ids were never logged (e.g. {lost[0].as_py()!r}); label ids returned by "
            "mlo.monitor.log or the server, or pass model= to label records still in a server's buffer"
        )
    for name in pc.unique(owners).to_pylist():
        path = write_segment(model_folder(name, home) / LABELS, table.filter(pc.equal(owners, name)), "lab")
        _publish(home, path, strict=True)
    return n


# -- object storage ------------------------------------------------------------------------------------------
def _publish(home: Path, path: Path | None, strict: bool = False) -> bool:
    """:func:`.storage.publish`; False when the file waits for the store. Only an imported name: a local
    workspace never loads fsspec."""
    from .storage import publish

    return publish(home, path, strict=strict)


def _upload_pending(home: Path) -> bool:
    from .storage import upload_pending

    try:
        return upload_pending(home) == 0
    except Exception as exc:  # the server's logger must keep going; the next flush retries
        log_.warning("prediction log: pending files not uploaded (%s)", exc)
        return False


def _sync(home: Path, name: str | None) -> None:
    """Fetch the log files the object store has and this machine lacks (see :mod:`.storage`); a store that
    cannot be reached leaves the read to the local files, with a warning."""
    from ..errors import MloError
    from .storage import sync

    try:
        sync(home, name)
    except MloError as exc:
        log_.warning("prediction log: reading the local files only (%s)", exc)


def _owners(root: Path, ids: pa.Array) -> pa.Array:
    """The model each id was logged under (null when none), newest files first."""
    owners: list[str | None] = [None] * len(ids)
    left = ids
    positions = np.arange(len(ids))
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name) if root.is_dir() else []
    for folder in folders:
        table, _ = _read(folder, "seg", None, None, ["id"])
        if table is None:
            continue
        found = pc.is_in(left, value_set=table.column("id")).to_numpy(zero_copy_only=False)
        for i in positions[found]:
            owners[i] = folder.name
        left, positions = left.filter(pa.array(~found)), positions[~found]
        if len(left) == 0:
            break
    return pa.array(owners, pa.string())


# -- compaction ----------------------------------------------------------------------------------------------
def compact(name: str, *, target_rows: int = COMPACT_ROWS) -> dict[str, int]:
    """Merge the small files of model ``name``'s log (a server writes one a second) into files of up to
    ``target_rows`` rows, never across an hour (UTC), so time windows still prune well. Safe while servers
    write and readers read; a second compaction running at the same time skips.

    Returns ``{"files_before", "files_after", "merged"}`` (prediction and label files together).
    """
    folder = model_folder(name)
    out = {"files_before": 0, "files_after": 0, "merged": 0}
    for sub, prefix in ((folder, "seg"), (folder / LABELS, "lab")):
        for k, v in _compact_folder(sub, prefix, target_rows).items():
            out[k] += v
    return out


def _compact_folder(folder: Path, prefix: str, target_rows: int) -> dict[str, int]:
    before = len(_list(folder, prefix))
    merged = 0
    if before < 2:
        return {"files_before": before, "files_after": before, "merged": 0}
    with _FolderLock(folder) as locked:
        if not locked:
            return {"files_before": before, "files_after": before, "merged": 0}
        segs = _list(folder, prefix)
        footers = {s.path.name: _footer(s.path) for s in segs}
        replaced = frozenset().union(*(f.replaces for f in footers.values()))
        for s in segs:  # what an interrupted compaction left behind
            if s.path.name in replaced:
                s.path.unlink(missing_ok=True)
        for tmp in folder.glob(".tmp-*.parquet"):  # writes cut short by a crash (never renamed, never read)
            try:
                if time.time() - tmp.stat().st_mtime > 3600:
                    tmp.unlink()
            except OSError:
                pass
        segs = [s for s in segs if s.path.name not in replaced]
        groups: list[list[_Segment]] = []
        current: list[_Segment] = []
        rows = 0
        for s in segs:
            n = footers[s.path.name].rows
            if n >= target_rows:
                continue
            hour = s.lo // 3_600_000_000
            if current and (hour != current[0].lo // 3_600_000_000 or rows + n > target_rows):
                groups.append(current)
                current, rows = [], 0
            current.append(s)
            rows += n
        groups.append(current)
        for group in groups:
            if len(group) < 2:
                continue
            schemas = [footers[s.path.name].schema for s in group]
            schema = _unify(schemas)
            repair = _numbers_as_text(schema, schemas, None)  # numbers an older server wrote as text
            table = _read_repairing([s.path for s in group], schema, repair, None, None) if repair else None
            if table is None:
                table = ds.dataset([str(s.path) for s in group], schema=schema, format="parquet").to_table()
            write_segment(folder, _sorted_by_ts(table), prefix, replaces=[s.path.name for s in group])
            for s in group:
                s.path.unlink(missing_ok=True)
            merged += len(group)
    return {"files_before": before, "files_after": len(_list(folder, prefix)), "merged": merged}


class _FolderLock:
    """An exclusive, non-blocking lock on a folder (released by the OS if the process dies)."""

    def __init__(self, folder: Path):
        self.path = folder / ".compact.lock"
        self.fd: int | None = None

    def __enter__(self) -> bool:
        try:
            import fcntl
        except ImportError:  # not POSIX: compactions are not serialized across processes
            return True
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock


# -- the server's logger -------------------------------------------------------------------------------------
class _Buffer:
    __slots__ = ("ids", "ts", "latency", "error", "prediction", "features", "n")

    def __init__(self, features: Sequence[str]):
        self.ids: list[str] = []
        self.ts: list[int] = []
        self.latency: list[float | None] = []
        self.error: list[str | None] = []
        self.prediction: list[Any] = []
        self.features: dict[str, list[Any]] = {f: [] for f in features}
        self.n = 0


class LogStream:
    """Where one deployment (model version, alias, route) appends its records; made by
    :meth:`PredictionLogger.stream`."""

    def __init__(
        self,
        logger: PredictionLogger,
        model: str,
        version: int,
        alias: str | None,
        route: str,
        features: dict[str, pa.DataType | None],
    ):
        self.logger = logger
        self.model = model
        self.version = version
        self.alias = alias
        self.route = route
        self.types = dict(features)
        self._buf = _Buffer(self.types)

    def append(
        self,
        features: dict[str, Sequence[Any]] | None,
        predictions: Sequence[Any] | None,
        *,
        n: int,
        latency_ms: float | None = None,
        error: str | None = None,
        ts_us: int | None = None,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Add ``n`` records (one request) and return their ids (``ids`` when given, else new ones).
        ``features`` maps a feature name to its ``n`` values (None: not known); ``predictions`` has ``n`` values
        or is None."""
        ts = now_us() if ts_us is None else ts_us
        if ids is None:
            ids = new_ids(n, ts)
        logger = self.logger
        with logger._lock:
            b = self._buf
            b.ids.extend(ids)
            if n == 1:
                b.ts.append(ts)
                b.latency.append(latency_ms)
                b.error.append(error)
                b.prediction.append(None if predictions is None else predictions[0])
            else:
                b.ts.extend([ts] * n)
                b.latency.extend([latency_ms] * n)
                b.error.extend([error] * n)
                b.prediction.extend([None] * n if predictions is None else predictions)
            for name, col in b.features.items():
                values = None if features is None else features.get(name)
                col.extend([None] * n if values is None else values)
            b.n += n
            logger._pending += n
            if logger._pending >= logger.flush_records:
                logger._wake.set()
        return ids

    def _take(self) -> _Buffer | None:
        """The buffered records, leaving an empty buffer (the caller holds the logger's lock)."""
        if self._buf.n == 0:
            return None
        b, self._buf = self._buf, _Buffer(self.types)
        return b

    def _table(self, b: _Buffer) -> pa.Table:
        n = b.n
        cols: dict[str, pa.Array] = {
            "id": pa.array(b.ids, pa.string()),
            "ts": pa.array(b.ts, pa.int64()).cast(TS_TYPE),
            "model": _constant(self.model, n, pa.string()),
            "version": _constant(self.version, n, pa.int64()),
            "alias": _constant(self.alias, n, pa.string()),
            "route": _constant(self.route, n, pa.string()),
            "latency_ms": pa.array(b.latency, pa.float64()),
            "error": pa.array(b.error, pa.string()),
            "prediction": _values_array(b.prediction),
        }
        for name, values in b.features.items():
            cols[FEATURE_PREFIX + name] = _values_array(values, self.types.get(name))
        return pa.table(cols)


_open_loggers: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


class PredictionLogger:
    """Buffers prediction records in memory and writes them to the log from a background thread.

    Appending (:meth:`LogStream.append`) only extends Python lists under a lock; every ``flush_seconds`` (or
    as soon as ``flush_records`` records wait) the thread turns the buffer into one Parquet file per model.
    :meth:`close` writes what is left (and so does interpreter exit), so nothing is lost on a clean shutdown.
    Every ``compact_every`` files it writes for a model, it compacts that model's log in another thread.

    Parameters
    ----------
    home : path, optional
        The workspace folder (``.mlo``); default the current workspace's.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        flush_records: int = FLUSH_RECORDS,
        compact_every: int = COMPACT_EVERY,
    ):
        self.home = Path(home) if home is not None else workspace.current().home
        self.flush_seconds = flush_seconds
        self.flush_records = flush_records
        self.compact_every = compact_every
        self.records_written = 0
        self.segments_written = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._streams: dict[tuple, LogStream] = {}
        self._pending = 0
        self._retry: list[tuple[str, pa.Table]] = []
        self._offsite_waiting = True  # files a previous process left pending (see .storage)
        self._since_compact: dict[str, int] = {}
        self._compacting: set[str] = set()
        self._compactions: list[threading.Thread] = []
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mlo-prediction-log", daemon=True)
        self._thread.start()
        _open_loggers.add(self)

    def stream(
        self,
        model: str,
        version: int,
        alias: str | None,
        route: str,
        features: dict[str, pa.DataType | None] | None = None,
    ) -> LogStream:
        """The stream of one deployment; ``features`` maps each logged feature to its Arrow type (None:
        infer)."""
        features = dict(features or {})
        key = (model, version, alias, route, tuple(features.items()))
        with self._lock:
            found = self._streams.get(key)
            if found is None:
                found = self._streams[key] = LogStream(self, model, version, alias, route, features)
            return found

    @property
    def pending(self) -> int:
        """Records appended and not yet written."""
        return self._pending

    def flush(self) -> int:
        """Write every buffered record now; returns how many were written."""
        with self._flush_lock:
            with self._lock:
                taken = [(s, b) for s in self._streams.values() if (b := s._take()) is not None]
                self._pending = 0
            by_model: dict[str, list[pa.Table]] = {}
            for s, b in taken:
                by_model.setdefault(s.model, []).append(s._table(b))
            for name, table in self._retry:
                by_model.setdefault(name, []).append(table)
            self._retry = []
            written = 0
            if self._offsite_waiting:  # files the object store could not take before: try again
                self._offsite_waiting = not _upload_pending(self.home)
            for name, tables in by_model.items():
                try:
                    table = pa.concat_tables(tables, promote_options="permissive")
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    parts = tables
                else:
                    parts = [table]
                for part in parts:
                    try:
                        path = write_segment(model_folder(name, self.home), part)
                    except OSError as exc:
                        self.failures += 1
                        log_.error("prediction log of %s: cannot write (%s); will retry", name, exc)
                        if sum(t.num_rows for _, t in self._retry) < 1_000_000:
                            self._retry.append((name, part))
                        continue
                    written += part.num_rows
                    self.segments_written += 1
                    try:
                        sent = _publish(self.home, path)
                    except Exception as exc:  # written here all the same: it goes up with the pending ones
                        log_.warning("prediction log of %s: not sent to the object store (%s)", name, exc)
                        sent = False
                    self._offsite_waiting = self._offsite_waiting or not sent
                    self._since_compact[name] = self._since_compact.get(name, 0) + 1
            self.records_written += written
        for name, count in list(self._since_compact.items()):
            if self.compact_every and count >= self.compact_every and not self._closed:
                self._since_compact[name] = 0
                self._start_compaction(name)
        return written

    def _start_compaction(self, name: str) -> None:
        if name in self._compacting:
            return
        self._compacting.add(name)
        folder = model_folder(name, self.home)

        def run() -> None:
            try:
                _compact_folder(folder, "seg", COMPACT_ROWS)
            except Exception as exc:  # compaction is an optimization; the log stays readable without it
                log_.warning("compacting the prediction log of %s failed: %s", name, exc)
            finally:
                self._compacting.discard(name)

        thread = threading.Thread(target=run, name=f"mlo-compact-{name}", daemon=True)
        self._compactions = [t for t in self._compactions if t.is_alive()] + [thread]
        thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.flush()
            except Exception as exc:  # never let the thread die: the next round retries
                log_.exception("prediction log flush failed: %s", exc)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the background thread and write what is left."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        self.flush()
        for thread in self._compactions:  # a compaction cut short at exit would leave work for the next one
            thread.join(timeout)
        _open_loggers.discard(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<PredictionLogger {self.home / FOLDER} {state}: {self.records_written} records in "
            f"{self.segments_written} files, {self._pending} pending>"
        )


@atexit.register
def _close_all() -> None:
    for logger in list(_open_loggers):
        try:
            logger.close(timeout=5)
        except Exception:
            pass
