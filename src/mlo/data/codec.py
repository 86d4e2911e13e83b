"""Exact conversion of in-memory data to Arrow columns (for Parquet and for hashing) and back.

Arrow's own pandas metadata loses things (object columns come back as strings, ``None`` and ``NaN`` merge, column
labels become strings, an index frequency disappears), so we keep what Arrow cannot say in our own JSON metadata
and rebuild the frame from it: the same dtypes, categories, index, column labels and order, and the same kind of
missing value in every cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InvalidInput

FORMAT = 1  # version of the metadata layout below

# kinds of missing value in object columns, in the order of their codes
_NULL_KINDS = ("None", "nan", "NA", "NaT")


@dataclass
class Encoded:
    """Data as Arrow columns plus the metadata needed to rebuild it exactly."""

    kind: str  # frame | table | array
    names: list[str] = field(default_factory=list)
    arrays: list[pa.Array] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    rows: int | None = None
    n_columns: int | None = None
    nbytes: int = 0
    array: np.ndarray | None = None  # kind == "array": the contiguous array itself

    def table(self) -> pa.Table:
        schema = pa.schema([pa.field(n, a.type) for n, a in zip(self.names, self.arrays, strict=True)])
        schema = schema.with_metadata({b"mlo": json.dumps(self.meta, sort_keys=True).encode()})
        return pa.Table.from_arrays(self.arrays, schema=schema)


# -- labels ---------------------------------------------------------------------------------------------------------
def _label(value: Any) -> list:
    if value is None:
        return ["none", None]
    if isinstance(value, (bool, np.bool_)):
        return ["bool", bool(value)]
    if isinstance(value, (int, np.integer)):
        return ["int", int(value)]
    if isinstance(value, (float, np.floating)):
        return ["float", float(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, tuple):
        return ["tuple", [_label(v) for v in value]]
    raise InvalidInput(
        f"column or index label {value!r} ({type(value).__name__}) cannot be stored: use str, int, float or tuple labels"
    )


def _unlabel(enc: list) -> Any:
    kind, value = enc
    if kind == "tuple":
        return tuple(_unlabel(v) for v in value)
    return value


# -- one column -----------------------------------------------------------------------------------------------------
def _object_column(values: np.ndarray, label: str) -> tuple[pa.Array, dict, pa.Array | None]:
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    supported = {"string", "bytes", "integer", "floating", "boolean", "decimal", "date", "empty"}
    if inferred not in supported:
        kinds = sorted({type(v).__name__ for v in values[:10000] if not _is_missing(v)})
        raise InvalidInput(
            f"column {label!r} holds values of several or unsupported types ({', '.join(kinds) or inferred}): "
            f"convert it to one type first, e.g. df[{label!r}] = df[{label!r}].astype(str)"
        )
    codes = np.full(len(values), -1, dtype=np.int8)
    for code, kind in enumerate(_NULL_KINDS):
        if kind == "nan" and inferred == "floating":
            continue  # NaN is a value of a float column, kept as such
        hit = _kind_mask(values, kind)
        codes[hit] = code
    missing = codes >= 0
    clean = values
    if missing.any():
        clean = values.copy()  # the column's own array may be read-only (pandas copy-on-write)
        clean[missing] = None
    try:
        arr = pa.array(clean, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise InvalidInput(
            f"column {label!r} cannot be stored exactly ({exc}); convert it to one type first"
        ) from None
    meta: dict[str, Any] = {"codec": "object", "infer": inferred}
    sidecar = None
    kinds = set(codes[missing].tolist())
    if len(kinds) == 1:
        meta["nulls"] = _NULL_KINDS[kinds.pop()]
    elif len(kinds) > 1:
        meta["nulls"] = "mixed"
        sidecar = pa.array(np.where(missing, codes, 0).astype(np.int8))
    return arr, meta, sidecar


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _kind_mask(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "None":
        return np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if kind == "NA":
        return np.fromiter((v is pd.NA for v in values), dtype=bool, count=len(values))
    if kind == "NaT":
        return np.fromiter((v is pd.NaT for v in values), dtype=bool, count=len(values))
    return np.fromiter((isinstance(v, float) and v != v for v in values), dtype=bool, count=len(values))


def encode_series(s: pd.Series, label: str) -> tuple[list[pa.Array], dict]:
    """Arrow arrays (the column, and a sidecar for mixed missing-value kinds) and the column's metadata."""
    dtype = s.dtype
    meta: dict[str, Any] = {"dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        cats_arrays, cats_meta = encode_series(pd.Series(dtype.categories), label)
        codes = s.cat.codes.to_numpy()
        mask = codes < 0
        indices = pa.array(codes, mask=mask if mask.any() else None)
        arr = pa.DictionaryArray.from_arrays(indices, cats_arrays[0], ordered=bool(dtype.ordered))
        meta.update(codec="category", ordered=bool(dtype.ordered), categories=cats_meta)
        return [arr], meta
    if pd.api.types.is_object_dtype(dtype):
        arr, m, sidecar = _object_column(s.to_numpy(), label)
        meta.update(m)
        return ([arr, sidecar] if sidecar is not None else [arr]), meta
    if isinstance(dtype, pd.StringDtype):
        meta.update(codec="string", storage=dtype.storage, na="NA" if dtype.na_value is pd.NA else "nan")
        return [pa.array(s)], meta
    if isinstance(dtype, pd.ArrowDtype):
        arr = s.array._pa_array  # the column's own Arrow data
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        meta.update(codec="arrow")
        return [arr], meta
    if isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype, pd.SparseDtype)):
        raise InvalidInput(
            f"column {label!r} has dtype {dtype}, which snapshots do not support yet; convert it"
        )
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.DatetimeTZDtype):
        # masked nullable types: Int64, Float64, boolean, …
        if not hasattr(s.array, "__arrow_array__"):
            raise InvalidInput(
                f"column {label!r} has dtype {dtype}, which snapshots do not support; convert it"
            )
        meta.update(codec="extension")
        return [pa.array(s.array)], meta
    if dtype.kind in "biufcmM" or isinstance(dtype, pd.DatetimeTZDtype):
        if dtype.kind == "c":
            raise InvalidInput(
                f"column {label!r} is complex; store its real and imaginary parts as two columns"
            )
        if dtype.kind in "biuf":
            values = s.to_numpy()
            if not values.dtype.isnative:
                values = values.astype(values.dtype.newbyteorder("="))
            arr = pa.array(values)
        else:
            arr = pa.array(s)
        meta.update(codec="numpy")
        return [arr], meta
    raise InvalidInput(f"column {label!r} has dtype {dtype}, which snapshots do not support; convert it")


def decode_series(arrays: list[pa.Array], meta: dict, name: Any) -> pd.Series:
    codec = meta["codec"]
    arr = arrays[0]
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dtype_text = meta["dtype"]
    if codec == "numpy":
        if pa.types.is_timestamp(arr.type) or pa.types.is_duration(arr.type):
            values = arr.to_pandas()
            return _as(pd.Series(values, name=name), dtype_text)
        return _as(pd.Series(arr.to_numpy(zero_copy_only=False), name=name), dtype_text)
    if codec == "string":
        dtype = pd.StringDtype(meta["storage"], na_value=pd.NA if meta["na"] == "NA" else np.nan)
        return pd.Series(dtype.__from_arrow__(arr), name=name)
    if codec in ("extension", "arrow"):
        dtype = pd.ArrowDtype(arr.type) if codec == "arrow" else pd.api.types.pandas_dtype(dtype_text)
        return pd.Series(dtype.__from_arrow__(arr), name=name)
    if codec == "category":
        cats = decode_series([arr.dictionary], meta["categories"], None)
        codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        cat_dtype = pd.CategoricalDtype(pd.Index(cats, dtype=cats.dtype), ordered=meta["ordered"])
        return pd.Series(pd.Categorical.from_codes(codes, dtype=cat_dtype), name=name)
    if codec == "object":
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_binary(arr.type):
            values = arr.to_numpy(zero_copy_only=False).astype(object, copy=False)
        else:
            values = np.empty(len(arr), dtype=object)
            values[:] = arr.to_pylist()
        nulls = meta.get("nulls")
        if nulls:
            missing = arr.is_null().to_numpy(zero_copy_only=False)
            if nulls == "mixed":
                codes = arrays[1].to_numpy(zero_copy_only=False)
                for code, kind in enumerate(_NULL_KINDS):
                    values[missing & (codes == code)] = _null_value(kind)
            else:
                values[missing] = _null_value(nulls)
        return pd.Series(values, name=name, dtype=object)
    raise InvalidInput(f"snapshot column codec {codec!r} is unknown to this mlo: upgrade mlo-workbench")


def _as(s: pd.Series, dtype_text: str) -> pd.Series:
    return s if str(s.dtype) == dtype_text else s.astype(dtype_text)


def _null_value(kind: str) -> Any:
    return {"None": None, "nan": np.nan, "NA": pd.NA, "NaT": pd.NaT}[kind]


# -- frames ---------------------------------------------------------------------------------------------------------
def encode_frame(df: pd.DataFrame) -> Encoded:
    enc = Encoded(kind="frame", rows=len(df), n_columns=df.shape[1])
    used: set[str] = set()

    def field_name(text: str) -> str:
        name, i = text, 1
        while name in used or name.startswith("__index_level_"):
            name, i = f"{text}__{i}", i + 1
        used.add(name)
        return name

    index = df.index
    if isinstance(index, pd.RangeIndex):
        index_meta: dict[str, Any] = {
            "kind": "range",
            "start": index.start,
            "stop": index.stop,
            "step": index.step,
            "name": _label(index.name),
        }
    else:
        levels = []
        for i in range(index.nlevels):
            level = index.get_level_values(i)
            fname = f"__index_level_{i}__"
            used.add(fname)
            arrays, m = encode_series(pd.Series(level, copy=False), f"index level {i}")
            m["fields"] = _add(enc, fname, arrays)
            levels.append(m)
        index_meta = {
            "kind": "multi" if isinstance(index, pd.MultiIndex) else "index",
            "names": [_label(n) for n in index.names],
            "levels": levels,
        }
        freq = getattr(index, "freqstr", None)
        if freq:
            index_meta["freq"] = freq

    columns = []
    for i in range(df.shape[1]):
        label = df.columns[i]
        arrays, m = encode_series(df.iloc[:, i], str(label))
        m["label"] = _label(label)
        m["fields"] = _add(enc, field_name(str(label)), arrays)
        columns.append(m)
    cols = df.columns
    if isinstance(cols, pd.RangeIndex):
        columns_meta: dict[str, Any] = {"kind": "range", "start": cols.start, "step": cols.step}
    else:
        columns_meta = {
            "kind": "multi" if isinstance(cols, pd.MultiIndex) else "labels",
            "dtype": str(cols.dtype),
        }
    columns_meta["names"] = [_label(n) for n in cols.names]
    enc.meta = {
        "format": FORMAT,
        "kind": "frame",
        "index": index_meta,
        "columns": columns,
        "axis": columns_meta,
    }
    enc.nbytes = int(df.memory_usage(index=True, deep=False).sum())
    return enc


def _add(enc: Encoded, name: str, arrays: list[pa.Array]) -> list[str]:
    names = [name] + [f"{name}__nulls" for _ in arrays[1:]]
    enc.names.extend(names)
    enc.arrays.extend(arrays)
    return names


def decode_frame(table: pa.Table, meta: dict) -> pd.DataFrame:
    fields = {n: i for i, n in enumerate(table.column_names)}

    def column(m: dict, name: Any) -> pd.Series:
        return decode_series([table.column(fields[f]) for f in m["fields"]], m, name)

    data = {i: column(m, None) for i, m in enumerate(meta["columns"])}
    im = meta["index"]
    if im["kind"] == "range":
        index = pd.RangeIndex(im["start"], im["stop"], im["step"], name=_unlabel(im["name"]))
    else:
        levels = [column(m, None) for m in im["levels"]]
        names = [_unlabel(n) for n in im["names"]]
        if im["kind"] == "multi":
            index = pd.MultiIndex.from_arrays([pd.Index(lv, dtype=lv.dtype) for lv in levels], names=names)
        else:
            index = pd.Index(levels[0], dtype=levels[0].dtype, name=names[0])
            if im.get("freq"):
                index = pd.DatetimeIndex(index, freq=im["freq"])
    df = pd.DataFrame(data, copy=False)
    df.index = index if len(df.columns) else index
    if not len(df.columns):
        df = pd.DataFrame(index=index)
    labels = [_unlabel(m["label"]) for m in meta["columns"]]
    am = meta["axis"]
    names = [_unlabel(n) for n in am["names"]]
    if am["kind"] == "range":
        df.columns = pd.RangeIndex(
            am["start"], am["start"] + am["step"] * len(labels), am["step"], name=names[0]
        )
    elif am["kind"] == "multi":
        df.columns = pd.MultiIndex.from_tuples(labels, names=names)
    else:
        df.columns = pd.Index(labels, dtype=am["dtype"], name=names[0])
    return df


# -- Arrow tables and numpy arrays ----------------------------------------------------------------------------------
def encode_table(table: pa.Table) -> Encoded:
    enc = Encoded(kind="table", rows=table.num_rows, n_columns=table.num_columns, nbytes=table.nbytes)
    enc.names = list(table.column_names)
    enc.arrays = [c.combine_chunks() for c in table.columns]
    user_meta = {
        k.decode(errors="replace"): v.decode(errors="replace")
        for k, v in (table.schema.metadata or {}).items()
    }
    enc.meta = {"format": FORMAT, "kind": "table", "metadata": user_meta}
    return enc


def decode_table(table: pa.Table, meta: dict) -> pa.Table:
    metadata = {k.encode(): v.encode() for k, v in meta.get("metadata", {}).items()}
    return table.replace_schema_metadata(metadata or None)


def encode_array(a: np.ndarray) -> Encoded:
    if a.dtype.hasobject:
        raise InvalidInput(
            "object arrays cannot be snapshotted exactly: convert to a numeric or string dtype first"
        )
    if a.dtype.kind == "V":
        raise InvalidInput("structured arrays are not supported: convert to a DataFrame first")
    arr = np.ascontiguousarray(a)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    enc = Encoded(kind="array", rows=arr.shape[0] if arr.ndim else None, nbytes=arr.nbytes, array=arr)
    enc.n_columns = arr.shape[1] if arr.ndim == 2 else None
    enc.meta = {"format": FORMAT, "kind": "array", "dtype": arr.dtype.str, "shape": list(arr.shape)}
    return enc
