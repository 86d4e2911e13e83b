"""Data snapshots: content-hashed, versioned copies of the data a notebook holds, with profiles and lineage.

``mlo.snapshot(df, "train")`` hashes every value (see :mod:`mlo.data.digest`), stores the data once as Parquet
(a layout chosen per column) in the blob store, and records a new version of ``train`` unless the latest already
holds the same data.
A snapshot taken or loaded during a run is that run's input (or output). A run that takes or loads no input itself
gets, when it ends, the snapshots taken or loaded before it in the same process outside any run of its own (the
data held in memory; a newer version of a name replaces the older one).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import workspace
from ..errors import InvalidInput
from ..store.snapshots import SnapshotRow, check_name, parse_ref
from ..tracking import capture, provenance, session
from . import codec, files
from .digest import digest as digest_of
from .profile import profile_frame, profile_table

ROLES = ("input", "output")
ROW_GROUP_ROWS = 256 * 1024

_scope_lock = threading.Lock()
_scope: dict[
    tuple[str, str], str
] = {}  # (workspace home, snapshot name) -> snapshot id, for runs started later
_explicit: set[str] = set()  # runs that took or loaded an input snapshot themselves


class Snapshot:
    """One version of a named snapshot. ``load()`` returns the data; ``profile`` describes every column."""

    def __init__(self, ws: workspace.Workspace, row: SnapshotRow):
        self._ws = ws
        self._row = row

    id = property(lambda self: self._row.id)
    name = property(lambda self: self._row.name)
    version = property(lambda self: self._row.version)
    digest = property(lambda self: self._row.digest)
    kind = property(lambda self: self._row.kind)
    format = property(lambda self: self._row.format)
    blob = property(lambda self: self._row.blob)
    rows = property(lambda self: self._row.rows)
    n_columns = property(lambda self: self._row.n_columns)
    nbytes = property(lambda self: self._row.nbytes)
    size = property(lambda self: self._row.size)
    schema = property(lambda self: self._row.schema)
    profile = property(lambda self: self._row.profile or [])
    source = property(lambda self: self._row.source)
    run_id = property(lambda self: self._row.run_id)
    created_by = property(lambda self: self._row.created_by)

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._row.created_at / 1e6, tz=timezone.utc)

    @property
    def ref(self) -> str:
        """``snapshot:name@version``: how to name this version elsewhere (lineage, drift, load)."""
        return f"snapshot:{self.name}@{self.version}"

    @property
    def node(self) -> str:
        """The lineage node of this snapshot."""
        return f"snapshot:{self.id}"

    def load(self, *, to: str | os.PathLike | None = None):
        """The data: a DataFrame (or Series, Arrow Table, numpy array) identical to what was snapshotted; for a
        file or folder, the path of a verified copy (under ``to`` when given)."""
        return _load(self._ws, self._row, to)

    def column(self, name: str) -> dict[str, Any]:
        """The profile of one column."""
        for p in self.profile:
            if p["name"] == name:
                return p
        raise InvalidInput(f"snapshot {self.name}@{self.version} has no column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        r = self._row
        return {
            "id": r.id,
            "name": r.name,
            "version": r.version,
            "ref": self.ref,
            "digest": r.digest,
            "kind": r.kind,
            "format": r.format,
            "rows": r.rows,
            "columns": r.n_columns,
            "nbytes": r.nbytes,
            "size": r.size,
            "schema": r.schema,
            "profile": r.profile,
            "source": r.source,
            "run_id": r.run_id,
            "created_at": self.created_at.isoformat(),
            "created_by": r.created_by,
        }

    def _repr_html_(self) -> str:
        from ..report.snapshots import snapshot_html

        return snapshot_html(self)

    def __repr__(self) -> str:
        shape = f"{self.rows}×{self.n_columns}" if self.n_columns is not None else f"{self.rows or '-'} rows"
        return f"<Snapshot {self.name}@{self.version} {self.kind} {shape} {self.digest[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


# -- taking a snapshot ------------------------------------------------------------------------------------------------
def _encode(obj: Any) -> tuple[codec.Encoded, pd.DataFrame | None]:
    """Encoded data plus, for profiling, a DataFrame view of it (no copy where possible)."""
    if isinstance(obj, pd.DataFrame):
        return codec.encode_frame(obj), obj
    if isinstance(obj, pd.Series):
        frame = obj.to_frame(name=obj.name if obj.name is not None else 0)
        enc = codec.encode_frame(frame)
        enc.kind = "series"
        enc.meta["kind"] = "series"
        enc.meta["series_name"] = obj.name is not None
        return enc, frame
    if isinstance(obj, pa.Table):
        return codec.encode_table(obj), None
    if isinstance(obj, pa.RecordBatch):
        return codec.encode_table(pa.Table.from_batches([obj])), None
    if isinstance(obj, np.ndarray):
        enc = codec.encode_array(obj)
        view = None
        if obj.dtype.kind not in "biufmM":
            pass
        elif obj.ndim == 1:
            view = pd.DataFrame({"0": obj}, copy=False)
        elif obj.ndim == 2:
            view = pd.DataFrame(obj, columns=[str(i) for i in range(obj.shape[1])], copy=False)
        return enc, view
    raise InvalidInput(
        f"cannot snapshot a {type(obj).__module__}.{type(obj).__name__}: give a pandas DataFrame or Series, a pyarrow "
        "Table, a numpy array, or the path of a file or folder"
    )


def _schema(enc: codec.Encoded, frame: pd.DataFrame | None, obj: Any) -> list[dict[str, Any]]:
    if enc.kind in ("frame", "series"):
        return [{"name": str(c), "dtype": str(frame.iloc[:, i].dtype)} for i, c in enumerate(frame.columns)]
    if enc.kind == "table":
        return [{"name": f.name, "dtype": str(f.type)} for f in obj.schema]
    return [{"name": "array", "dtype": str(obj.dtype), "shape": list(obj.shape)}]


COMPRESSION = "lz4"  # pyarrow writes it as LZ4_RAW (no Hadoop framing); see _parquet_options
_REPEATS_PROBE = 65_536  # leading values of a string column looked at to decide on a dictionary
_SHRINK_PROBE = 3 * 16_384  # values of a column (three stretches) encoded to decide on its layout
# A column is compressed (or delta-encoded) only when that makes its probe at most this share of its plain size.
# LZ4 costs 1-2 CPU s per GB it reads on data it can shrink (rounded prices, small integers, ids: 0.4-0.6x),
# and a byte not written saves ~0.45 CPU s per GB (the page cache and the blob's hash): so compression never
# pays for its time here, and is kept for the disk (and an object store's upload) where it halves the bytes
# at least. Delta encoding of integers (~0.7 s per GB) is cheaper than LZ4 and, on small or sorted values,
# smaller: it is tried first.
SHRINK_AT_MOST = 0.5


def _repeats(arr: pa.Array) -> bool:
    """Whether a column repeats its values enough for a dictionary (its first values, at most half distinct)."""
    if pa.types.is_dictionary(arr.type) or pa.types.is_boolean(arr.type):
        return True
    head = arr.slice(0, _REPEATS_PROBE)
    return len(head) > 0 and pc.count_distinct(head).as_py() * 2 <= len(head)


def _probe(arr: pa.Array) -> pa.Array:
    """Three stretches of a column (start, middle, end): what a layout probe looks at."""
    n, k = len(arr), _SHRINK_PROBE // 3
    if n <= _SHRINK_PROBE:
        return arr
    return pa.concat_arrays([arr.slice(0, k), arr.slice(n // 2 - k // 2, k), arr.slice(n - k, k)])


def _encoded_size(field: pa.Field, probe: pa.Array, compression: str, encoding: str | None = None) -> int:
    sink = pa.BufferOutputStream()
    pq.write_table(
        pa.table({field.name: probe}),
        sink,
        compression=compression,
        use_dictionary=False,
        column_encoding={field.name: encoding} if encoding else None,
        write_statistics=False,
    )
    return sink.getvalue().size


def _layout(field: pa.Field, arr: pa.Array) -> tuple[str, str | None]:
    """(compression, encoding) of a column written without a dictionary, judged on a probe of it: for
    integers, delta encoding when it makes the probe at most :data:`SHRINK_AT_MOST` of its plain size; else LZ4
    when that does (with byte-stream split for floats when it is smaller: smooth or low-precision floats);
    else plainly (random floats, 64-bit keys, unique ids: compression would cost more time than the bytes it
    saves)."""
    probe = _probe(arr)
    if len(probe) == 0:
        return "none", None
    plain = _encoded_size(field, probe, "none")
    budget = SHRINK_AT_MOST * plain
    if (
        pa.types.is_integer(field.type)
        and _encoded_size(field, probe, "none", "DELTA_BINARY_PACKED") <= budget
    ):
        return "none", "DELTA_BINARY_PACKED"
    size, encoding = _encoded_size(field, probe, COMPRESSION), None
    if pa.types.is_floating(field.type):
        split = _encoded_size(field, probe, COMPRESSION, "BYTE_STREAM_SPLIT")
        if split < size:
            size, encoding = split, "BYTE_STREAM_SPLIT"
    return (COMPRESSION, encoding) if size <= budget else ("none", None)


def _text(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def _parquet_options(table: pa.Table) -> dict[str, Any]:
    """How each column is written, chosen by measurement (docs/performance.md): a dictionary for columns that
    repeat values (categoricals, booleans, strings whose first values do; over unique strings or high-cardinality
    numbers a dictionary is built and thrown away for every row group), with LZ4 (cheap on dictionary pages);
    numbers and strings without one by :func:`_layout` (delta-encoded integers, LZ4 only where it halves the
    bytes, else plainly); LZ4 for the other types (zstd level 1 costs twice the CPU time for 2% fewer bytes on
    floats); no page statistics (the profile has them, and the data is read whole)."""
    options: dict[str, Any] = {"compression": COMPRESSION, "write_statistics": False}
    names = table.schema.names
    if len(set(names)) != len(names):
        return options
    chunks = [
        col.chunk(0) if col.num_chunks else pa.array([], f.type)
        for f, col in zip(table.schema, table.columns, strict=True)
    ]
    dictionary = [
        f.name
        for f, arr in zip(table.schema, chunks, strict=True)
        if (_text(f.type) or pa.types.is_dictionary(f.type) or pa.types.is_boolean(f.type)) and _repeats(arr)
    ]
    layouts = {
        f.name: _layout(f, arr)
        for f, arr in zip(table.schema, chunks, strict=True)
        if f.name not in dictionary
        and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type) or _text(f.type))
    }
    if any(compression != COMPRESSION for compression, _ in layouts.values()):
        options["compression"] = {n: layouts.get(n, (COMPRESSION, None))[0] for n in names}
    options["use_dictionary"] = dictionary
    encodings = {n: encoding for n, (_, encoding) in layouts.items() if encoding}
    if encodings:
        options["column_encoding"] = encodings
    return options


def _required(table: pa.Table) -> pa.Table:
    """The same table with every column that holds no null declared required (``not null``): Parquet then
    writes no definition levels for it, a third of the time of encoding a float column. Reading gives the fields
    back as nullable (:func:`_load`), as they were."""
    fields = [
        f.with_nullable(False)
        if col.null_count == 0 and not pa.types.is_nested(f.type) and not pa.types.is_dictionary(f.type)
        else f
        for f, col in zip(table.schema, table.columns, strict=True)
    ]
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def _write_blob(ws: workspace.Workspace, enc: codec.Encoded) -> tuple[str, str, int]:
    """Store the data; return (format, blob digest, stored size)."""
    with ws.blobs.writer(
        background=True
    ) as w:  # BLAKE3 of the bytes on a second thread while Parquet encodes
        if enc.kind == "array":
            np.save(w, enc.array, allow_pickle=False)
            fmt = "npy"
        else:
            table = _required(enc.table())
            pq.write_table(table, w, row_group_size=ROW_GROUP_ROWS, **_parquet_options(table))
            fmt = "parquet"
    return fmt, w.digest, w.size


def snapshot(
    obj: Any,
    name: str,
    *,
    role: str = "input",
    run: session.Run | None = None,
    profile: bool = True,
) -> Snapshot:
    """Snapshot data under ``name``: a new version when the content changed, the latest one otherwise.

    Parameters
    ----------
    obj : DataFrame, Series, pyarrow.Table, numpy.ndarray, str or PathLike
        The data, or the path of a file or folder.
    name : str
        Letters, digits, ``_ - .``; versions are numbered per name.
    role : {"input", "output"}
        How the snapshot relates to the active run (or ``run``): read by it, or produced by it.
    profile : bool
        Compute the column profile (skip for very wide data you will never compare).

    Returns
    -------
    Snapshot
    """
    check_name(name)
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInput(f"role must be 'input' or 'output', not {role!r}")
    if run is not None and not isinstance(run, session.Run):
        raise InvalidInput(f"run= takes a Run (from mlo.start_run or mlo.get_run), got {type(run).__name__}")
    ws = workspace.current()
    run = run or session.active_run()
    if isinstance(obj, (str, os.PathLike)):
        ps = files.snapshot_path(ws, obj)
        fields = {
            "digest": ps.digest,
            "kind": ps.kind,
            "format": "file" if ps.kind == "file" else "manifest",
            "blob": ps.blob,
            "rows": None,
            "n_columns": None,
            "nbytes": ps.nbytes,
            "size": ps.nbytes,
            "schema": [],
            "profile": None,
            "source": ps.source,
        }
    else:
        enc, frame = _encode(obj)
        sums: dict[str, float] = {}  # float64 columns' sums, a by-product of the digest, for the profile
        digest = digest_of(enc, sums)
        fields = {
            "digest": digest,
            "kind": enc.kind,
            "rows": enc.rows,
            "n_columns": enc.n_columns,
            "nbytes": enc.nbytes,
            "source": None,
        }
        same = ws.snapshots.by_digest(digest)
        if same is not None and ws.blobs.exists(same.blob):
            fields.update(
                format=same.format, blob=same.blob, size=same.size, schema=same.schema, profile=same.profile
            )
        else:

            def profiled():
                seed = int(digest[:8], 16)
                if frame is not None:
                    fields = (m["fields"][0] for m in enc.meta["columns"]) if enc.kind != "array" else ()
                    known = {i: sums[f] for i, f in enumerate(fields) if f in sums}
                    return profile_frame(frame, seed=seed, sums=known)
                if enc.kind == "table":  # a column at a time: no pandas copy of the whole table
                    known = {i: sums[f] for i, f in enumerate(enc.names) if f in sums}
                    table = pa.Table.from_arrays(enc.arrays, names=enc.names)
                    return profile_table(table, seed=seed, sums=known)
                return None

            # the profile is computed while the Parquet file is written (both spend most time outside the GIL)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlo-profile") as pool:
                pending = pool.submit(profiled) if profile else None
                fmt, blob, size = _write_blob(ws, enc)
                column_profiles = pending.result() if pending is not None else None
            fields.update(
                format=fmt,
                blob=blob,
                size=size,
                schema=_schema(enc, frame, obj),
                profile=column_profiles,
            )
    fields.update(run_id=run.id if run is not None else None, created_by=capture.user())

    def edges(snapshot_id: str) -> list[tuple[str, str, str]]:
        if run is None:
            return []
        if role == "input":
            return [(f"snapshot:{snapshot_id}", f"run:{run.id}", "input")]
        return [(f"run:{run.id}", f"snapshot:{snapshot_id}", "output")]

    if workspace.reproducing():  # a replay adds no version: the same content's version, or one kept aside
        row = ws.snapshots.with_digest(name, fields["digest"]) or _scratch_row(name, fields)
    else:
        row, _created = ws.snapshots.add(name=name, fields=fields, edges=edges)
    if not isinstance(obj, (str, os.PathLike)):
        provenance.note_snapshot(obj, row.id, row.name, row.version)  # the cell that made it can be replaced
    if role == "input":
        if run is None or session.is_attached(run):
            _enter_scope(ws, row)  # held in memory for the runs started later in this notebook
        if run is not None:
            _mark_explicit(run.id)
    return Snapshot(ws, row)


def _scratch_row(name: str, fields: dict) -> SnapshotRow:
    """A snapshot that is not recorded (version 0): a reproduction's data that no version holds."""
    from ..store.ids import new_id
    from ..store.runs import now_us

    return SnapshotRow(id=new_id(), name=name, version=0, created_at=now_us(), **fields)


# -- reading --------------------------------------------------------------------------------------------------------
def get_snapshot(ref: str | Snapshot) -> Snapshot:
    """The snapshot ``ref`` names (``"train"``, ``"train@3"``, ``"train@<digest prefix>"``, ``"snapshot:…"``),
    without loading its data."""
    if isinstance(ref, Snapshot):
        return ref
    ws = workspace.current(create=False)
    pinned = _pinned(ref)
    return Snapshot(ws, ws.snapshots.get(pinned) if pinned else ws.snapshots.resolve(ref))


def _pinned(ref: str) -> str | None:
    """A reproduction (``mlo reproduce``) pins each name to the version the original run read:
    ``MLO_SNAPSHOT_PINS`` maps names to snapshot ids for references that do not name a version."""
    pins = os.environ.get("MLO_SNAPSHOT_PINS")
    if not pins or not isinstance(ref, str):
        return None
    name, selector = parse_ref(ref)
    if selector not in (None, "latest"):
        return None
    return json.loads(pins).get(name)


def load_snapshot(ref: str | Snapshot, *, to: str | os.PathLike | None = None):
    """The data of a snapshot, identical to what was snapshotted (see :meth:`Snapshot.load`).

    Loading records the snapshot as an input of the active run, or of later runs that name no input themselves.
    """
    snap = get_snapshot(ref)
    data = snap.load(to=to)
    ws = snap._ws
    run = session.active_run()
    if run is not None:
        ws.lineage.link([(snap.node, f"run:{run.id}", "input")])
        _mark_explicit(run.id)
    if run is None or session.is_attached(run):
        _enter_scope(ws, snap._row)
    return data


def _load(ws: workspace.Workspace, row: SnapshotRow, to: str | os.PathLike | None):
    if row.kind in ("file", "folder"):
        dest = Path(to) if to is not None else ws.home / "checkouts" / f"{row.name}@{row.version}"
        if row.kind == "file" and to is None:
            dest = dest / Path(row.source or row.name).name
        return files.restore(ws, row.kind, row.blob, row.name, dest)
    path = ws.blobs.verify(row.blob)
    if row.format == "npy":
        return np.load(path, allow_pickle=False)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"mlo"])
    if meta["kind"] == "table":  # required columns (see _required) come back nullable, as they were
        nullable = pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata)
        return codec.decode_table(pa.Table.from_arrays(table.columns, schema=nullable), meta)
    df = codec.decode_frame(table, meta)
    if meta["kind"] == "series":
        s = df.iloc[:, 0]
        return s if meta.get("series_name") else s.rename(None)
    return df


def snapshots(name: str | None = None) -> pd.DataFrame:
    """Every snapshot version (or those of ``name``) as a DataFrame, oldest first per name."""
    if name is not None:
        check_name(name)
    ws = workspace.current(create=False)
    rows = ws.snapshots.list(name)
    cols = ["name", "version", "digest", "kind", "rows", "columns", "size", "created_at", "run_id", "id"]
    data = [
        {
            "name": r.name,
            "version": r.version,
            "digest": r.digest,
            "kind": r.kind,
            "rows": r.rows,
            "columns": r.n_columns,
            "size": r.size,
            "created_at": pd.Timestamp(r.created_at, unit="us", tz="UTC"),
            "run_id": r.run_id,
            "id": r.id,
        }
        for r in rows
    ]
    df = pd.DataFrame(data, columns=cols)
    for c in ("rows", "columns"):
        df[c] = df[c].astype("Int64")
    return df


# -- runs started after a snapshot was taken or loaded ---------------------------------------------------------------
def _enter_scope(ws: workspace.Workspace, row: SnapshotRow) -> None:
    with _scope_lock:
        _scope[(str(ws.home), row.name)] = row.id


def in_scope(ws: workspace.Workspace) -> list[str]:
    with _scope_lock:
        return [sid for (home, _), sid in _scope.items() if home == str(ws.home)]


def _mark_explicit(run_id: str) -> None:
    with _scope_lock:
        _explicit.add(run_id)


def _link_scope(ws: workspace.Workspace, run: session.Run) -> None:
    """At the end of a run that took or loaded no input itself: the data in memory was its input."""
    with _scope_lock:
        if run.id in _explicit:
            _explicit.discard(run.id)
            return
    ids = in_scope(ws)
    if ids:
        ws.lineage.link([(f"snapshot:{sid}", f"run:{run.id}", "input") for sid in ids])


def clear_scope(names: Iterable[str] | None = None) -> None:
    """Forget the snapshots that runs started from now on would record as inputs."""
    with _scope_lock:
        if names is None:
            _scope.clear()
            _explicit.clear()
        else:
            for key in [k for k in _scope if k[1] in set(names)]:
                del _scope[key]


session.RUN_END_HOOKS.append(_link_scope)
