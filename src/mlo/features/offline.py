"""Offline feature values and point-in-time training frames.

A view's features over its whole source are computed once per version and kept as a Parquet file in the
workspace (``features/<digest>.parquet``: a cache, made again when missing). A training frame joins each entity
row with, per view, the latest feature row of the same entity whose timestamp is at or before the entity row's
(DuckDB's ASOF JOIN, which streams from the Parquet files): a feature row from after an entity row's time is
never used, so no label leaks back from the future.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput, MloError
from .views import FeatureView, get_feature_view, parse_ref

if TYPE_CHECKING:
    import duckdb

ROW = "__mlo_row"
KEY = "__mlo_key"
TIME = "__mlo_time"


def require_duckdb():
    try:
        import duckdb
    except ImportError:
        raise MloError(
            "training frames and materialization need DuckDB: pip install 'mlo-workbench[features]'"
        ) from None
    return duckdb


def connect() -> duckdb.DuckDBPyConnection:
    con = require_duckdb().connect()
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC, as everywhere in mlo
    threads = os.environ.get("MLO_DUCKDB_THREADS")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def feature_file(view: FeatureView) -> Path:
    """The Parquet file of ``view``'s features over its source (entity, timestamp, features), made when missing."""
    folder = view._ws.home / "features"
    path = folder / f"{view.digest}.parquet"
    if path.exists():
        return path
    data = view.source.load()
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas()
    out = view.apply(data)
    frame = pd.concat(
        [data[[view.entity, view.timestamp]].reset_index(drop=True), out.reset_index(drop=True)], axis=1
    )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp, compression="zstd")
        os.replace(tmp, path)  # whole or not at all
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def feature_frame(view: FeatureView) -> pd.DataFrame:
    return pq.read_table(feature_file(view)).to_pandas()


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


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


def training_frame(
    entities: Any,
    features: Any,
    *,
    timestamp: str | None = None,
    snapshot: str | None = "training_frame",
) -> pd.DataFrame:
    """Each entity row joined with the latest value of each feature *as of* its timestamp.

    Parameters
    ----------
    entities : DataFrame, or a snapshot reference
        One row per training example: the entity column of every view asked, a timestamp column, and anything
        else (labels); kept as they are, in their order.
    features : list
        ``"spend"`` (every feature of the latest version), ``"spend@2"``, ``"spend:amount_usd"``, or
        :class:`FeatureView` objects.
    timestamp : str, optional
        The entities' timestamp column; by default the first view's timestamp column name.
    snapshot : str or None
        Snapshot the result under this name, with lineage to every feature view version it used (None: do not).

    Returns
    -------
    DataFrame
        ``entities`` with the feature columns added (missing where no feature row is at or before the time);
        ``.attrs["snapshot"]`` is the snapshot's reference.
    """
    from ..data.snapshots import get_snapshot

    chosen = _selection(features)
    if isinstance(entities, str):
        entities = get_snapshot(entities).load()
    if isinstance(entities, pa.Table):
        entities = entities.to_pandas()
    if not isinstance(entities, pd.DataFrame):
        raise InvalidInput(
            f"entities must be a DataFrame (or a snapshot reference), got {type(entities).__name__}"
        )
    ts = timestamp or chosen[0][0].timestamp
    if ts not in entities.columns:
        raise InvalidInput(
            f"the entities have no timestamp column {ts!r}: pass timestamp='<column>' (the time each row's "
            "features must be as of)"
        )
    if not pd.api.types.is_datetime64_any_dtype(entities[ts].dtype):
        raise InvalidInput(f"timestamp column {ts!r} of the entities is {entities[ts].dtype}, not datetimes")
    for view, _ in chosen:
        if view.entity not in entities.columns:
            raise InvalidInput(
                f"the entities have no column {view.entity!r}, the entity of feature view {view.ref}"
            )
    extra = [c for _, cols in chosen for c in cols if c in entities.columns]
    if extra:
        raise InvalidInput(f"the entities already have columns named like features: {', '.join(extra)}")

    con = connect()
    keys = list(dict.fromkeys(v.entity for v, _ in chosen))
    left = pd.DataFrame({ROW: range(len(entities)), TIME: entities[ts].to_numpy()})
    for k in keys:
        left[k] = entities[k].to_numpy()
    con.register("entities_in", left)
    joins, select = [], []
    for i, (view, cols) in enumerate(chosen):
        path = feature_file(view)
        f = f"f{i}"
        inner = ", ".join(_quote(c) for c in cols)
        joins.append(
            f"ASOF LEFT JOIN (SELECT {_quote(view.entity)} AS {KEY}, "
            f"CAST({_quote(view.timestamp)} AS TIMESTAMPTZ) AS {TIME}, {inner} "
            f"FROM read_parquet('{_sql_path(path)}')) {f} "
            f"ON e.{_quote(view.entity)} = {f}.{KEY} AND e.{TIME} >= {f}.{TIME}"
        )
        select.extend(f"{f}.{_quote(c)}" for c in cols)
    sql = (
        f"SELECT e.{ROW}, {', '.join(select)} FROM "
        f"(SELECT {ROW}, CAST({TIME} AS TIMESTAMPTZ) AS {TIME}, {', '.join(_quote(k) for k in keys)} "
        f"FROM entities_in) e {' '.join(joins)}"
    )
    try:
        joined = con.sql(sql).to_arrow_table()
    except require_duckdb().Error as exc:  # a key type that cannot be compared, mostly
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot join the entities with the features: {first}") from None
    finally:
        con.close()
    # back in the entities' order: each column scattered by its row numbers, cheaper than sorting or taking
    rows = joined.column(ROW).to_numpy()
    if len(rows) != len(entities):  # an ASOF LEFT JOIN keeps each entity row once
        raise MloError(f"the join returned {len(rows)} rows for {len(entities)} entity rows")
    columns = {}
    for name in joined.column_names:
        if name == ROW:
            continue
        values = joined.column(name).to_pandas().to_numpy()
        columns[name] = np.empty(len(rows), dtype=values.dtype)
        columns[name][rows] = values
    out = pd.concat([entities, pd.DataFrame(columns, index=entities.index, copy=False)], axis=1)
    if snapshot is not None:
        from ..data.snapshots import snapshot as take

        snap = take(out, snapshot)
        snap._ws.lineage.link([(view.node, snap.node, "features") for view, _ in chosen])
        out.attrs["snapshot"] = snap.ref
    return out


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
