"""Where entity rows come from: a DataFrame, an Arrow table, Parquet files (a file, a folder, a glob) or a
snapshot, read as a stream of Arrow batches by DuckDB within a memory limit."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput, MloError
from .pointintime import NO_TIME

BATCH_ROWS = 65_536  # entity rows per batch when streaming: a few MB each


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_path(path: Path | str) -> str:
    return str(path).replace("'", "''")


def require_duckdb():
    try:
        import duckdb
    except ImportError:
        raise MloError(
            "training frames and materialization need DuckDB: pip install 'mlo-workbench[features]'"
        ) from None
    return duckdb


def connect(memory_limit: str | None = None, temp_directory: str | os.PathLike | None = None):
    """A DuckDB connection in UTC; ``memory_limit`` (or ``MLO_DUCKDB_MEMORY_LIMIT``) caps what it holds, and what
    does not fit spills to ``temp_directory``."""
    duckdb = require_duckdb()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC, as everywhere in mlo
    threads = os.environ.get("MLO_DUCKDB_THREADS")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    limit = memory_limit or os.environ.get("MLO_DUCKDB_MEMORY_LIMIT")
    if limit:
        try:
            con.execute("SET memory_limit = ?", [str(limit)])
        except duckdb.Error:
            con.close()
            raise InvalidInput(f"memory_limit takes a size like '512MB' or '2GB', got {limit!r}") from None
    if temp_directory is not None:
        con.execute("SET temp_directory = ?", [str(temp_directory)])
    return con


def _is_path(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and (
        value.endswith(".parquet") or "/" in value or os.sep in value or any(ch in value for ch in "*?[")
    )


def _parquet_files(spec: str | os.PathLike) -> list[str]:
    text = str(Path(spec).expanduser()) if not isinstance(spec, str) else os.path.expanduser(spec)
    if any(ch in text for ch in "*?["):
        found = sorted(glob.glob(text, recursive=True))
    elif os.path.isdir(text):
        found = sorted(glob.glob(os.path.join(text, "**", "*.parquet"), recursive=True))
    else:
        found = [text] if os.path.isfile(text) else []
    if not found:
        raise InvalidInput(
            f"no Parquet file at {str(spec)!r}: give a file, a folder of them or a glob like 'x/*.parquet'"
        )
    return found


def _snapshot_source(snap) -> tuple[str, list[str]] | None:
    """For a snapshot stored as one Parquet file, the file and the SQL that selects its columns by their names;
    None when it must be loaded (an array, a folder, a frame whose columns are not plain names)."""
    import json

    ws = snap._ws
    if snap.kind == "file":
        path = str(ws.blobs.verify(snap._row.blob))
        try:
            pq.read_schema(path)
        except (pa.ArrowInvalid, OSError):
            raise InvalidInput(
                f"snapshot {snap.ref} is a file that is not Parquet: entities are rows"
            ) from None
        return path, ["*"]
    if snap.kind not in ("frame", "table") or snap._row.format != "parquet":
        return None
    path = str(ws.blobs.verify(snap._row.blob))
    meta = json.loads(pq.read_schema(path).metadata[b"mlo"])
    if meta["kind"] == "table":
        return path, ["*"]
    select = []
    for col in meta["columns"]:
        label = col["label"]
        if not (isinstance(label, list) and len(label) == 2 and isinstance(label[1], str)):
            return None
        select.append(f"{_quote(col['fields'][0])} AS {_quote(label[1])}")
    return path, select


def snapshot_frame(entities: Any) -> pd.DataFrame | None:
    """The data of a DataFrame or table snapshot that ``entities`` names, loaded as it was snapshotted (its index
    and dtypes too); None when ``entities`` names no such snapshot."""
    from ..data.snapshots import Snapshot, get_snapshot

    if not (isinstance(entities, Snapshot) or (isinstance(entities, str) and not _is_path(entities))):
        return None
    snap = get_snapshot(entities)
    if snap.kind not in ("frame", "table"):
        return None
    data = snap.load()
    return data if isinstance(data, pd.DataFrame) else data.to_pandas()


def reader_of(entities: Any, con) -> pa.RecordBatchReader | None:
    """Entity rows as a stream of Arrow batches, read by DuckDB; None for a DataFrame (taken as it is)."""
    from ..data.snapshots import Snapshot, get_snapshot

    if isinstance(entities, pd.DataFrame):
        return None
    if isinstance(entities, (pa.Table, pa.RecordBatch)):
        table = pa.Table.from_batches([entities]) if isinstance(entities, pa.RecordBatch) else entities
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(BATCH_ROWS))
    if isinstance(entities, Snapshot) or (isinstance(entities, str) and not _is_path(entities)):
        snap = get_snapshot(entities)
        found = _snapshot_source(snap)
        if found is None:
            data = snap.load()
            if isinstance(data, pd.DataFrame):
                return reader_of(data.reset_index(drop=True), con) or frame_reader(data)
            if isinstance(data, pa.Table):
                return reader_of(data, con)
            raise InvalidInput(f"snapshot {snap.ref} holds a {snap.kind}: entities are rows of a table")
        path, select = found
        sql = f"SELECT {', '.join(select)} FROM read_parquet('{_sql_path(path)}')"
    elif _is_path(entities):
        files = ", ".join(f"'{_sql_path(f)}'" for f in _parquet_files(entities))
        sql = f"SELECT * FROM read_parquet([{files}], union_by_name = true)"
    else:
        raise InvalidInput(
            "entities must be a DataFrame, an Arrow table, a Parquet path or glob, or a snapshot reference, got "
            f"{type(entities).__name__}"
        )
    try:
        return con.sql(sql).to_arrow_reader(BATCH_ROWS)
    except require_duckdb().Error as exc:
        raise InvalidInput(f"cannot read the entities: {first_line(exc)}") from None


def frame_reader(df: pd.DataFrame) -> pa.RecordBatchReader:
    first = pa.RecordBatch.from_pandas(df.iloc[:BATCH_ROWS], preserve_index=False)

    def batches():
        yield first
        for i in range(BATCH_ROWS, len(df), BATCH_ROWS):
            yield pa.RecordBatch.from_pandas(
                df.iloc[i : i + BATCH_ROWS], schema=first.schema, preserve_index=False
            )

    return pa.RecordBatchReader.from_batches(first.schema, batches())


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def batch_times(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    import pyarrow.compute as pc

    us = pc.cast(col, pa.timestamp("us", col.type.tz), safe=False)
    return pc.fill_null(us.cast(pa.int64()), NO_TIME).to_numpy()
