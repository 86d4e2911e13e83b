"""Point-in-time training frames.

A training frame finds, for each entity row and each view, the latest feature row of the same entity at or
before the entity row's time (:mod:`.pointintime`, over the view's rows sorted once per version, :mod:`.rows`):
a feature row from after it is never used, so no label leaks back from the future. Aggregate views sum, count or
average the entity's rows inside the window instead (:mod:`.aggregates`).

The entities need not fit in memory: given as a Parquet file, a glob of them or a snapshot (:mod:`.entities`),
and with ``to=`` a file or a snapshot, they stream through in batches, and each batch's result is written as it
is made. A view's feature rows are searched in memory while they fit the budget, and joined by DuckDB out of
core when they do not (:mod:`.asof`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput
from . import aggregates, asof
from .entities import (
    batch_times,
    connect,
    first_line,
    frame_reader,
    reader_of,
    require_duckdb,
    snapshot_frame,
)
from .pointintime import latest, locate
from .rows import feature_file, feature_frame, recent, utc_us, view_index
from .spill import spill_folder
from .views import FeatureView, get_feature_view, parse_ref

__all__ = ["feature_file", "feature_frame", "recent", "training_frame", "view_index"]


# -- a view's feature rows -------------------------------------------------------------------------------------
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
    """The views of a training frame, loaded once, applied to entity rows batch by batch. A view whose rows are
    over the memory budget (:func:`.asof.budget`) is joined by DuckDB instead (:class:`.asof.AsofJoin`): its
    entity rows must first go through :meth:`prepare`, all of them, in order."""

    def __init__(self, chosen: list[tuple[FeatureView, list[str]]], memory_limit: str | None = None):
        limit = asof.budget(memory_limit)
        self.parts = []
        big = []
        for view, cols in chosen:
            path = feature_file(view)
            if view.aggregated:
                specs = {a["name"]: a for a in view.aggregations}
                wanted = list(dict.fromkeys(specs[c]["of"] for c in cols))
                size = asof.view_bytes(path, wanted)
                if size > limit:
                    raise InvalidInput(
                        f"feature view {view.ref}'s rows take about {size / 2**20:.0f} MB, over the memory budget "
                        f"of {limit / 2**20:.0f} MB, and its aggregates are computed in memory: raise "
                        "memory_limit= or MLO_FEATURE_VIEW_MB"
                    )
                self.parts.append(
                    (view, cols, view_index(view, wanted, block=False), [specs[c] for c in cols])
                )
            elif asof.view_bytes(path, cols) > limit:
                self.parts.append((view, cols, len(big), None))
                big.append((view, cols, path))
            else:
                self.parts.append((view, cols, view_index(view, cols), None))
        self.asof = asof.AsofJoin(big) if big else None
        self.dtypes = {c["name"]: c["dtype"] for v, _ in chosen for c in v.output_schema}

    def prepare(self, con, scratch: Path, batches) -> None:
        """Join the views over the budget in DuckDB, over every entity row of ``batches`` (``(keys, times)`` as
        :meth:`features` takes them, in order); :meth:`features` then reads their results in the same order."""
        if self.asof is not None:
            self.asof.run(con, scratch, batches)

    def features(self, keys: dict[str, np.ndarray], times: np.ndarray) -> list[tuple[Any, Any]]:
        """The feature columns for entity rows of ``keys`` (per entity column) at ``times`` (UTC microseconds):
        ``(name, array)`` pairs, or ``(names, 2-D float array)`` for a view of float columns. The views are
        searched side by side, on threads (numpy and Arrow let go of the GIL)."""
        joined = self.asof.take(len(times)) if self.asof is not None else []

        def one(part) -> list[tuple[Any, Any]]:
            view, cols, index, specs = part
            if isinstance(index, int):  # joined by DuckDB
                return joined[index]
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
    if to is None:
        frame = entities if isinstance(entities, pd.DataFrame) else snapshot_frame(entities)
        if frame is not None:  # in memory: the frame as it is, index and dtypes included
            return _in_memory(frame, chosen, ts, snapshot, memory_limit=memory_limit)

    ws = workspace.current()
    with spill_folder(ws.home) as scratch:
        con = connect(memory_limit, scratch)
        try:

            def open_reader() -> pa.RecordBatchReader:
                return reader_of(entities, con) or frame_reader(entities)  # a DataFrame: written to a file

            reader = open_reader()
            schema = reader.schema
            names = schema.names
            _check_columns(names, {n: pa.types.is_timestamp(schema.field(n).type) for n in names}, ts, chosen)
            joiner = Joiner(chosen, memory_limit)
            if to is None:  # read from a file or a snapshot, returned in memory
                table = pa.Table.from_batches(list(reader), schema=schema)
                return _in_memory(table.to_pandas(), chosen, ts, snapshot, joiner=joiner, duck=(con, scratch))
            if to == "snapshot":
                target = scratch / "training_frame.parquet"
            else:
                target = Path(to).expanduser()
                if target.is_dir():
                    raise InvalidInput(
                        f"to={str(to)!r} is a folder: give the path of the Parquet file to write"
                    )
            if joiner.asof is not None:  # a first pass over the entities for DuckDB's join, then the second
                joiner.prepare(con, scratch, _keys_and_times(reader, chosen, ts))
                reader = open_reader()
            _stream(reader, joiner, chosen, ts, target)
        finally:
            con.close()
        if snapshot is None:
            return target
        snap = _snapshot_file(target, snapshot, chosen)
        return snap if to == "snapshot" else target


def _keys_and_times(reader: pa.RecordBatchReader, chosen, ts: str):
    """Each non-empty batch's entity keys (per entity column) and times (UTC microseconds)."""
    for batch in reader:
        if batch.num_rows:
            keys = {v.entity: batch.column(v.entity).to_numpy(zero_copy_only=False) for v, _ in chosen}
            yield keys, batch_times(batch.column(ts))


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
                (keys, times), *_ = _keys_and_times([batch], chosen, ts)
                names, arrays = _arrays(joiner.features(keys, times))
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
        raise InvalidInput(f"cannot read the entities: {first_line(exc)}") from None
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


def _in_memory(
    entities: pd.DataFrame,
    chosen,
    ts: str,
    snapshot: str | None,
    joiner: Joiner | None = None,
    memory_limit: str | None = None,
    duck: tuple | None = None,
):
    names = list(entities.columns)
    if ts not in names:
        _check_columns(names, {}, ts, chosen)
    if not pd.api.types.is_datetime64_any_dtype(entities[ts].dtype):
        raise InvalidInput(f"timestamp column {ts!r} of the entities is {entities[ts].dtype}, not datetimes")
    _check_columns(names, {ts: True}, ts, chosen)
    joiner = joiner or Joiner(chosen, memory_limit)
    keys = {v.entity: entities[v.entity].to_numpy() for v, _ in chosen}
    times = utc_us(entities[ts])
    if joiner.asof is None:
        found = joiner.features(keys, times)
    elif duck is not None:
        joiner.prepare(*duck, [(keys, times)])
        found = joiner.features(keys, times)
    else:
        from .. import workspace

        with spill_folder(workspace.current().home) as scratch:
            con = connect(memory_limit, scratch)
            try:
                joiner.prepare(con, scratch, [(keys, times)])
                found = joiner.features(keys, times)
            finally:
                con.close()
    pieces = [entities]
    for name, value in found:
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
