"""Offline feature values and point-in-time training frames.

A view's feature rows over its whole source are computed once per version and kept as a Parquet file in the
workspace (``features/<digest>.s1.parquet``: a cache, made again when missing), sorted by entity and time, with one
row per entity and time (the last source row wins a tie). A training frame finds, for each entity row and each
view, the latest feature row of the same entity at or before the entity row's time (:mod:`.pointintime`): a
feature row from after it is never used, so no label leaks back from the future. Aggregate views sum, count or
average the entity's rows inside the window instead (:mod:`.aggregates`).

The entities need not fit in memory: given as a Parquet file, a glob of them or a snapshot, and with ``to=`` a
file or a snapshot, they stream through in batches (DuckDB reads them, within ``memory_limit``, spilling to the
workspace's ``tmp/``), and each batch's result is written as it is made. The views' feature rows are held in
memory (they were computed in memory by the transform).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput, MloError
from . import aggregates
from .pointintime import NO_TIME, ViewIndex, latest, locate
from .views import FeatureView, get_feature_view, parse_ref

FORMAT = "s1"  # sorted by (entity, time), one row per pair; the time as UTC microseconds
BATCH_ROWS = 65_536  # entity rows per batch when streaming: a few MB each


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


# -- a view's feature rows -------------------------------------------------------------------------------------
def utc_us(values: Any) -> np.ndarray:
    """Datetimes (naive are UTC) as int64 microseconds since the epoch; missing ones as ``NO_TIME``."""
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy().astype("datetime64[us]").view(np.int64)


def feature_file(view: FeatureView) -> Path:
    """The Parquet file of ``view``'s feature rows (entity, timestamp, :attr:`~FeatureView.event_columns`), sorted
    by entity and time; made when missing."""
    folder = view._ws.home / "features"
    path = folder / f"{view.digest}.{FORMAT}.parquet"
    if path.exists():
        return path
    data = view.source.load()
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas()
    events = view.events(data)
    keys = data[view.entity].reset_index(drop=True)
    times = utc_us(data[view.timestamp])
    keep = keys.notna().to_numpy() & (times != NO_TIME)
    codes, _ = pd.factorize(keys, sort=True)
    order = np.lexsort((times, codes))  # stable: among rows of one entity and time, the source order stays
    order = order[keep[order]]
    if not view.aggregated and len(order):  # one row per (entity, time): the last one, as a later write wins
        c, t = codes[order], times[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (c[1:] != c[:-1]) | (t[1:] != t[:-1])
        order = order[last]
    table = pa.Table.from_pandas(events.take(order).reset_index(drop=True), preserve_index=False)
    table = table.add_column(0, view.timestamp, pa.array(times[order].view("datetime64[us]")))
    table = table.add_column(0, view.entity, pa.Array.from_pandas(keys.take(order).reset_index(drop=True)))
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="lz4")  # read at every join: fast to decode beats small
        os.replace(tmp, path)  # whole or not at all
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def feature_frame(view: FeatureView) -> pd.DataFrame:
    """Every feature row of ``view``: entity, timestamp (UTC) and its columns, sorted by entity and time."""
    return pq.read_table(feature_file(view)).to_pandas()


class _Recent:
    """The views read lately, kept while they fit in ``MLO_FEATURE_CACHE_MB`` (default 1024; 0 keeps none): a
    notebook that builds training frames again and again reads each view version's file once. What is kept is
    never written to, and a view version's rows never change (its file is named by its digest)."""

    def __init__(self):
        import threading
        from collections import OrderedDict

        self.items: OrderedDict[tuple, tuple[ViewIndex, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> ViewIndex | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
            return hit[0] if hit else None

    def put(self, key: tuple, index: ViewIndex) -> None:
        budget = int(float(os.environ.get("MLO_FEATURE_CACHE_MB", "1024")) * 2**20)
        size = index.nbytes()
        with self.lock:
            self.items[key] = (index, size)
            while self.items and sum(n for _, n in self.items.values()) > budget:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


recent = _Recent()


def view_index(view: FeatureView, columns: list[str], *, block: bool = True) -> ViewIndex:
    """The sorted feature rows of ``view`` (the ``columns`` asked), ready for point-in-time lookups. Float
    columns are read one at a time into a block of rows (``block=True``), so a view never sits in memory
    twice. Kept for the next call while it fits (:class:`_Recent`)."""
    path = feature_file(view)
    key = (str(path), tuple(columns), block)
    index = recent.get(key)
    if index is None:
        index = _read_index(view, path, columns, block)
        recent.put(key, index)
    return index


def _read_index(view: FeatureView, path: Path, columns: list[str], block: bool) -> ViewIndex:
    pf = pq.ParquetFile(path)
    head = pf.read(columns=[view.entity, view.timestamp])
    keys = head.column(view.entity).to_numpy(zero_copy_only=False)
    times = head.column(view.timestamp).cast(pa.int64()).to_numpy()
    del head
    types = {f.name: f.type for f in pf.schema_arrow}
    if block and columns and all(types[c] == pa.float64() for c in columns):
        values = np.empty((len(times) + 1, len(columns)), dtype=np.float64)
        for i, c in enumerate(columns):
            values[:-1, i] = pf.read(columns=[c]).column(0).to_numpy()
        values[-1] = np.nan
        return ViewIndex.build(view.ref, keys, times, None, values, tuple(columns))
    return ViewIndex.build(view.ref, keys, times, pf.read(columns=columns))


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_path(path: Path | str) -> str:
    return str(path).replace("'", "''")


# -- which features --------------------------------------------------------------------------------------------
def _selection(features: Any) -> list[tuple[FeatureView, list[str]]]:
    """``[(view, columns)]`` for the features asked: ``"spend"``, ``"spend@2"``, ``"spend:amount_usd"`` or
    :class:`FeatureView` objects; columns of one view are gathered in the order asked."""
    if isinstance(features, (str, FeatureView)):
        features = [features]
    if not isinstance(features, (list, tuple)) or not features:
        raise InvalidInput("features takes a list like ['spend', 'profile:age'] (views, or view:column)")
    chosen: dict[str, tuple[FeatureView, list[str]]] = {}
    for f in features:
        if isinstance(f, FeatureView):
            view, column = f, None
        else:
            _, _, column = parse_ref(f)
            view = get_feature_view(f.partition(":")[0])
        have = chosen.get(view.name)
        if have is not None and have[0].version != view.version:
            raise InvalidInput(f"two versions of feature view {view.name!r} asked: pick one")
        cols = have[1] if have else []
        if column is None:
            cols.extend(c for c in view.features if c not in cols)
        elif column not in view.features:
            raise InvalidInput(
                f"feature view {view.ref} has no feature {column!r} (it has {', '.join(view.features)})"
            )
        elif column not in cols:
            cols.append(column)
        chosen[view.name] = (view, cols)
    seen: dict[str, str] = {}
    for view, cols in chosen.values():
        for c in cols:
            if c in seen:
                raise InvalidInput(
                    f"feature {c!r} is in both {seen[c]} and {view.name}: ask for one of them as 'view:{c}'"
                )
            seen[c] = view.name
    return list(chosen.values())


class Joiner:
    """The views of a training frame, loaded once, applied to entity rows batch by batch."""

    def __init__(self, chosen: list[tuple[FeatureView, list[str]]]):
        self.parts = []
        for view, cols in chosen:
            if view.aggregated:
                specs = {a["name"]: a for a in view.aggregations}
                wanted = list(dict.fromkeys(specs[c]["of"] for c in cols))
                self.parts.append(
                    (view, cols, view_index(view, wanted, block=False), [specs[c] for c in cols])
                )
            else:
                self.parts.append((view, cols, view_index(view, cols), None))
        self.dtypes = {c["name"]: c["dtype"] for v, _ in chosen for c in v.output_schema}

    def features(self, keys: dict[str, np.ndarray], times: np.ndarray) -> list[tuple[Any, Any]]:
        """The feature columns for entity rows of ``keys`` (per entity column) at ``times`` (UTC microseconds):
        ``(name, array)`` pairs, or ``(names, 2-D float array)`` for a view of float columns. The views are
        searched side by side, on threads (numpy and Arrow let go of the GIL)."""

        def one(part) -> list[tuple[Any, Any]]:
            view, cols, index, specs = part
            where = locate(index, keys[view.entity], times, view.entity)
            if specs is None:
                return list(latest(index, where, cols).items())
            got = aggregates.compute(index, where, specs, cols)
            return [(c, got[c].astype(self.dtypes[c], copy=False)) for c in cols]

        if len(self.parts) == 1 or len(times) < 100_000:
            done = [one(p) for p in self.parts]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(
                min(len(self.parts), os.cpu_count() or 1), thread_name_prefix="mlo-pit"
            ) as pool:
                done = list(pool.map(one, self.parts))
        return [pair for pairs in done for pair in pairs]


def _arrays(pairs: list[tuple[Any, Any]]) -> tuple[list[str], list[pa.Array]]:
    """The feature columns as Arrow arrays (a NaN where nothing matched becomes a null)."""
    names, arrays = [], []
    for name, value in pairs:
        if isinstance(name, tuple):
            for i, n in enumerate(name):
                names.append(n)
                arrays.append(pa.array(value[:, i], from_pandas=True))
        else:
            names.append(name)
            arrays.append(value if isinstance(value, pa.Array) else pa.array(value, from_pandas=True))
    return names, arrays


# -- the entities ------------------------------------------------------------------------------------------------
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


def _reader(entities: Any, con) -> pa.RecordBatchReader | None:
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
                return _reader(data.reset_index(drop=True), con) or _frame_reader(data)
            if isinstance(data, pa.Table):
                return _reader(data, con)
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
        raise InvalidInput(f"cannot read the entities: {_first_line(exc)}") from None


def _frame_reader(df: pd.DataFrame) -> pa.RecordBatchReader:
    first = pa.RecordBatch.from_pandas(df.iloc[:BATCH_ROWS], preserve_index=False)

    def batches():
        yield first
        for i in range(BATCH_ROWS, len(df), BATCH_ROWS):
            yield pa.RecordBatch.from_pandas(
                df.iloc[i : i + BATCH_ROWS], schema=first.schema, preserve_index=False
            )

    return pa.RecordBatchReader.from_batches(first.schema, batches())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_columns(names: list[str], types: dict[str, Any], ts: str, chosen) -> None:
    if ts not in names:
        raise InvalidInput(
            f"the entities have no timestamp column {ts!r}: pass timestamp='<column>' (the time each row's "
            "features must be as of)"
        )
    if not types[ts]:
        raise InvalidInput(f"timestamp column {ts!r} of the entities is not datetimes")
    for view, _ in chosen:
        if view.entity not in names:
            raise InvalidInput(
                f"the entities have no column {view.entity!r}, the entity of feature view {view.ref}"
            )
    extra = [c for _, cols in chosen for c in cols if c in names]
    if extra:
        raise InvalidInput(f"the entities already have columns named like features: {', '.join(extra)}")


def _batch_times(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    import pyarrow.compute as pc

    us = pc.cast(col, pa.timestamp("us", col.type.tz), safe=False)
    return pc.fill_null(us.cast(pa.int64()), NO_TIME).to_numpy()


# -- the training frame ------------------------------------------------------------------------------------------
def training_frame(
    entities: Any,
    features: Any,
    *,
    timestamp: str | None = None,
    snapshot: str | None = "training_frame",
    to: str | os.PathLike | None = None,
    memory_limit: str | None = None,
):
    """Each entity row joined with the latest value of each feature *as of* its timestamp.

    Parameters
    ----------
    entities : DataFrame, pyarrow.Table, str, Path or Snapshot
        One row per training example: the entity column of every view asked, a timestamp column, and anything
        else (labels), kept as they are, in their order. A DataFrame or an Arrow table in memory; a Parquet file,
        a folder of them or a glob (``"labels/*.parquet"``); or a snapshot (``"labels@2"``).
    features : list
        ``"spend"`` (every feature of the latest version), ``"spend@2"``, ``"spend:amount_usd"``, or
        :class:`FeatureView` objects.
    timestamp : str, optional
        The entities' timestamp column; by default the first view's timestamp column name.
    snapshot : str or None
        Snapshot the result under this name, with lineage to every feature view version it used (None: do not).
    to : None, "snapshot", str or Path
        None: return a DataFrame (the entities and the features, in memory). A path: stream the result into that
        Parquet file, batch by batch, without holding it in memory (and snapshot the file unless
        ``snapshot=None``); returns the path. ``"snapshot"``: the same into a snapshot named ``snapshot``; returns
        the :class:`~mlo.Snapshot`.
    memory_limit : str, optional
        What DuckDB may hold while reading the entities (``"512MB"``); beyond it, it spills to the workspace's
        ``tmp/``. Default: ``MLO_DUCKDB_MEMORY_LIMIT``, else DuckDB's own (80% of the machine's memory).

    Returns
    -------
    DataFrame, Path or Snapshot
        The DataFrame is ``entities`` with the feature columns added (missing where no feature row is at or
        before the time); ``.attrs["snapshot"]`` is the snapshot's reference.
    """
    from .. import workspace

    chosen = _selection(features)
    ts = timestamp or chosen[0][0].timestamp
    if to is not None and not (to == "snapshot" or isinstance(to, (str, os.PathLike))):
        raise InvalidInput(f"to takes None, 'snapshot' or the path of a Parquet file to write, got {to!r}")
    if to == "snapshot" and snapshot is None:
        raise InvalidInput("to='snapshot' needs snapshot='<name>'")
    if isinstance(entities, pd.DataFrame) and to is None:
        return _in_memory(entities, chosen, ts, snapshot)

    ws = workspace.current()
    scratch = Path(tempfile.mkdtemp(prefix="duckdb-", dir=_tmp(ws)))
    try:
        con = connect(memory_limit, scratch)
        try:
            reader = _reader(entities, con)
            if reader is None:  # a DataFrame, written to a file
                reader = _frame_reader(entities)
            schema = reader.schema
            names = schema.names
            _check_columns(names, {n: pa.types.is_timestamp(schema.field(n).type) for n in names}, ts, chosen)
            joiner = Joiner(chosen)
            if to is None:  # read from a file or a snapshot, returned in memory
                table = pa.Table.from_batches(list(reader), schema=schema)
                return _in_memory(table.to_pandas(), chosen, ts, snapshot, joiner=joiner)
            if to == "snapshot":
                target = scratch / "training_frame.parquet"
            else:
                target = Path(to).expanduser()
                if target.is_dir():
                    raise InvalidInput(
                        f"to={str(to)!r} is a folder: give the path of the Parquet file to write"
                    )
            _stream(reader, joiner, chosen, ts, target)
        finally:
            con.close()
        if snapshot is None:
            return target
        snap = _snapshot_file(target, snapshot, chosen)
        return snap if to == "snapshot" else target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _tmp(ws) -> Path:
    folder = ws.home / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stream(reader: pa.RecordBatchReader, joiner: Joiner, chosen, ts: str, target: Path) -> int:
    """Each batch of entity rows with its features, appended to a Parquet file written next to ``target`` and
    renamed onto it when whole. A batch is written on a second thread while the next one is joined (one in
    flight, so memory stays at two batches)."""
    from concurrent.futures import ThreadPoolExecutor

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    rows = 0
    writer = None
    pending = None
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="mlo-write") as pool:
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                keys = {v.entity: batch.column(v.entity).to_numpy(zero_copy_only=False) for v, _ in chosen}
                names, arrays = _arrays(joiner.features(keys, _batch_times(batch.column(ts))))
                out = pa.RecordBatch.from_arrays(
                    [*batch.columns, *arrays], names=[*batch.schema.names, *names]
                )
                if writer is None:  # lz4: a frame of features compresses little, and zstd would cost the most
                    writer = pq.ParquetWriter(tmp, out.schema, compression="lz4")
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_batch, out)
                rows += batch.num_rows
            if pending is not None:
                pending.result()
        if writer is None:
            raise InvalidInput("the entities hold no rows")
        writer.close()
        writer = None
        os.replace(tmp, target)
    except require_duckdb().Error as exc:
        raise InvalidInput(f"cannot read the entities: {_first_line(exc)}") from None
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return rows


def _snapshot_file(path: Path, name: str, chosen):
    from ..data.snapshots import snapshot as take

    snap = take(path, name)
    snap._ws.lineage.link([(view.node, snap.node, "features") for view, _ in chosen])
    return snap


def _in_memory(entities: pd.DataFrame, chosen, ts: str, snapshot: str | None, joiner: Joiner | None = None):
    names = list(entities.columns)
    if ts not in names:
        _check_columns(names, {}, ts, chosen)
    if not pd.api.types.is_datetime64_any_dtype(entities[ts].dtype):
        raise InvalidInput(f"timestamp column {ts!r} of the entities is {entities[ts].dtype}, not datetimes")
    _check_columns(names, {ts: True}, ts, chosen)
    joiner = joiner or Joiner(chosen)
    keys = {v.entity: entities[v.entity].to_numpy() for v, _ in chosen}
    pieces = [entities]
    for name, value in joiner.features(keys, utc_us(entities[ts])):
        if isinstance(name, tuple):  # one 2-D block: the frame takes it as it is
            pieces.append(pd.DataFrame(value, columns=list(name), index=entities.index, copy=False))
        elif isinstance(value, np.ndarray):
            pieces.append(pd.DataFrame({name: value}, index=entities.index, copy=False))
        else:
            pieces.append(pd.DataFrame({name: value.to_pandas()}).set_axis(entities.index))
    out = pd.concat(pieces, axis=1)
    if snapshot is not None:
        from ..data.snapshots import snapshot as take

        snap = take(out, snapshot)
        snap._ws.lineage.link([(view.node, snap.node, "features") for view, _ in chosen])
        out.attrs["snapshot"] = snap.ref
    return out
