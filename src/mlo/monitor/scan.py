"""Monitoring figures out of core: DuckDB scans a prediction log's Parquet files, so a report's memory depends on
its windows' samples, not on the size of the log.

Two kinds of reads:

- one aggregate query over the whole span: per window (and per route inside it) the record count, versions,
  latency percentiles, error and missing-value rates, and quality where labels arrived — labels joined by id
  (the latest label of an id wins) inside DuckDB, which spills to disk rather than grow past its memory limit;
- per window, the inputs of the drift engine and of the unseen-category rate: the window's records without an
  error, their features and point predictions. A window of more than :data:`SAMPLE_ROWS` such records is
  sampled: a record is kept when a hash of its id falls under the window's sampling fraction, so the same
  records are kept every time (a Bernoulli sample, fixed by the ids).

Figures from the aggregate query are exact (the same numbers the in-memory path computes); drift and unseen
rates of a sampled window are estimates from :data:`SAMPLE_ROWS` records (docs/monitoring.md states the error).

Logs this module cannot read exactly — files where an older server stored a feature's numbers as text — fall
back to reading the log into memory (:func:`mlo.monitor.log.read_log`); :func:`open_scan` returns None for them.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from .log import FEATURE_PREFIX, LABELS, _footer, _list, _numbers_as_text, _unify

SAMPLE_ROWS = 100_000  # records per window given to the drift engine (a fixed sample above that)
MEMORY_LIMIT = "512MB"  # DuckDB's own memory; beyond it joins and sorts spill to a temporary folder
_HASH_RANGE = 1_000_000


@dataclass
class WindowScan:
    """One window: its bounds, its exact figures, and how to read its records."""

    start: pd.Timestamp
    end: pd.Timestamp
    figures: dict[str, Any]
    routes: dict[str, dict[str, Any]]
    where: str  # SQL condition selecting the window's records
    files: list[str]
    ok: int  # records without an error (what drift compares)


@dataclass
class LogScan:
    """What one aggregate pass learned about a log between two times."""

    rows: int
    refused: int
    features: list[str]
    task: str
    last_version: int | None
    windows: list[WindowScan] = field(default_factory=list)
    dropped_windows: int = 0
    _con: Any = None
    _schema: pa.Schema | None = None
    _tmp: Any = None
    _order: dict[str, int] | None = None

    def sample(self, w: WindowScan) -> pd.DataFrame:
        """The window's records without an error: ``f.<feature>`` columns and ``prediction`` (point
        predictions), at most about :data:`SAMPLE_ROWS` of them (a fixed sample of larger windows)."""
        cols = [FEATURE_PREFIX + f for f in self.features]
        present = _columns(w.files)
        select = [(_q(c) if c in present else f"NULL AS {_q(c)}") for c in cols]
        select.append(f"{_point(self._schema)} AS prediction")
        cond = f"({w.where}) AND error IS NULL AND NOT {_REFUSED}"
        if w.ok > SAMPLE_ROWS:
            keep = math.ceil(SAMPLE_ROWS / w.ok * _HASH_RANGE)
            cond += f" AND hash(id) % {_HASH_RANGE} < {keep}"
        source = _source(w.files, self._order if "__fi" in w.where else None)
        sql = f"SELECT {', '.join(select)} FROM {source} WHERE {cond}"
        return _query(self._con, sql).to_pandas()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


_REFUSED = "(error IS NOT NULL AND latency_ms IS NULL AND coalesce(route, '') <> 'batch')"


def _query(con, sql: str) -> pa.Table:
    rel = con.sql(sql)
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # DuckDB 2 renamed it
    return fetch()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _columns(files: list[str]) -> set[str]:
    out: set[str] = set()
    for f in files:
        out.update(_footer(Path(f)).schema.names)
    return out


def _source(files: list[str], order: dict[str, int] | None = None) -> str:
    """SQL: the records of ``files``; with ``order`` (file → its place in the log) also ``__fi`` and
    ``file_row_number``, which put records in log order (ts, then file, then position in the file)."""
    listed = "[" + ", ".join(_lit(f) for f in files) + "]"
    if order is None:
        return f"read_parquet({listed}, union_by_name = true)"
    pairs = ", ".join(f"({_lit(f)}, {order[f]})" for f in files)
    order_sql = f"(VALUES {pairs}) AS __files(__fn, __fi)"
    return (
        f"(SELECT __p.*, __files.__fi FROM read_parquet({listed}, union_by_name = true, filename = true, "
        f"file_row_number = true) AS __p JOIN {order_sql} ON __p.filename = __files.__fn)"
    )


def _is_float(t: pa.DataType | None) -> bool:
    return t is not None and pa.types.is_floating(t)


def _present(col: str, t: pa.DataType | None) -> str:
    """SQL: the value is there (pandas' notna: NaN counts as missing)."""
    return f"({col} IS NOT NULL AND NOT isnan({col}))" if _is_float(t) else f"({col} IS NOT NULL)"


def _point(schema: pa.Schema | None) -> str:
    """SQL: one value per record; a list (probabilities) becomes the position of its largest entry."""
    t = schema.field("prediction").type if schema is not None and "prediction" in schema.names else None
    if t is not None and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return "(list_position(prediction, list_max(prediction)) - 1)"
    return "prediction"


def _segments(folder: Path, prefix: str, lo: int | None, hi: int | None) -> tuple[list[str], list[pa.Schema]]:
    segs = [s for s in _list(folder, prefix) if (lo is None or s.hi >= lo) and (hi is None or s.lo < hi)]
    footers = [_footer(s.path) for s in segs]
    replaced = frozenset().union(*(f.replaces for f in footers))
    keep = [(s, f) for s, f in zip(segs, footers, strict=True) if s.path.name not in replaced]
    return [str(s.path) for s, _ in keep], [f.schema for _, f in keep]


def _quality_sql(label: str, lt: pa.DataType | None, pt: pa.DataType | None, point: str) -> dict[str, str]:
    have = f"({_present(label, lt)} AND {_present(point, pt)})"
    yn, pn = f"TRY_CAST({label} AS DOUBLE)", f"TRY_CAST({point} AS DOUBLE)"
    err = f"({pn} - {yn})"
    return {
        "labeled": f"count(*) FILTER (WHERE {have})",
        "numeric": f"bool_and({yn} IS NOT NULL AND {pn} IS NOT NULL) FILTER (WHERE {have})",
        "same_num": f"count(*) FILTER (WHERE {have} AND {yn} = {pn})",
        "same_str": f"count(*) FILTER (WHERE {have} AND CAST({label} AS VARCHAR) = CAST({point} AS VARCHAR))",
        "mae": f"avg(abs({err})) FILTER (WHERE {have} AND {err} IS NOT NULL AND NOT isnan({err}))",
        "mse": f"avg({err} * {err}) FILTER (WHERE {have} AND {err} IS NOT NULL AND NOT isnan({err}))",
    }


def quality_of(r: dict[str, Any], task: str) -> dict[str, float]:
    """:func:`mlo.monitor.windows.quality` from the aggregate query's counts."""
    n = int(r["labeled"] or 0)
    if n == 0:
        return {"labeled": 0}
    if task == "classification":
        same = r["same_num"] if r["numeric"] else r["same_str"]
        return {"labeled": n, "accuracy": float(same) / n}
    mae = math.nan if r["mae"] is None else float(r["mae"])
    rmse = math.nan if r["mse"] is None else math.sqrt(float(r["mse"]))
    return {"labeled": n, "mae": mae, "rmse": rmse}


def _connect():
    import duckdb

    tmp = tempfile.TemporaryDirectory(prefix="mlo-monitor-")
    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("MLO_MONITOR_MEMORY", MEMORY_LIMIT),
            "temp_directory": tmp.name,
            "preserve_insertion_order": False,
        }
    )
    return con, tmp


def open_scan(folder: Path, window, lo: int | None, hi: int | None, max_windows: int) -> LogScan | None:
    """The aggregate pass over ``folder``'s log in ``[lo, hi)`` cut by ``window``; None when the log is empty
    or needs the in-memory path (see the module's note)."""
    files, schemas = _segments(folder, "seg", lo, hi)
    if not files:
        return None
    schema = _unify(schemas)
    if _numbers_as_text(schema, schemas, None):
        return None
    lab_files, lab_schemas = _segments(folder / LABELS, "lab", None, None)
    lab_schema = _unify(lab_schemas) if lab_files else None
    features = [c[len(FEATURE_PREFIX) :] for c in schema.names if c.startswith(FEATURE_PREFIX)]
    con, tmp = _connect()
    try:
        return _scan(con, tmp, files, schema, lab_files, lab_schema, features, window, lo, hi, max_windows)
    except BaseException:
        con.close()
        tmp.cleanup()
        raise


def _scan(con, tmp, files, schema, lab_files, lab_schema, features, window, lo, hi, max_windows) -> LogScan:
    ordered = window.rows is not None
    order = {f: i for i, f in enumerate(files)} if ordered else None
    span = []
    if lo is not None:
        span.append(f"ts >= {_ts(lo)}")
    if hi is not None:
        span.append(f"ts < {_ts(hi)}")
    cond = " AND ".join([f"NOT {_REFUSED}", *span])
    point = _point(schema)
    pt = _point_type(schema)
    lt = lab_schema.field("label").type if lab_schema is not None and "label" in lab_schema.names else None
    if lab_files:
        listed = "[" + ", ".join(_lit(f) for f in lab_files) + "]"
        labels = (
            f"(SELECT id AS __lid, arg_max(label, ts) AS label FROM read_parquet({listed}, union_by_name = true) "
            "GROUP BY id)"
        )
        joined = f"SELECT __r.*, __l.label FROM __recs AS __r LEFT JOIN {labels} AS __l ON __r.id = __l.__lid"
    else:
        lt = pa.null()
        joined = "SELECT __r.*, NULL AS label FROM __recs AS __r"
    if ordered:
        step = int(window.rows)
        key = "[epoch_us(ts), __fi, file_row_number]"
        wexpr = f"(row_number() OVER (ORDER BY epoch_us(ts), __fi, file_row_number) - 1) // {step}"
    else:
        step = int(round(window.seconds * 1e6))
        wexpr = f"epoch_us(ts) // {step}"
    feats = [FEATURE_PREFIX + f for f in features]
    missing = " + ".join(
        f"count(*) FILTER (WHERE error IS NULL AND NOT {_present(_q(c), schema.field(c).type)})"
        for c in feats
    )
    q = _quality_sql("label", lt, pt, point)
    base = (
        f"WITH __recs AS (SELECT * FROM {_source(files, order)} WHERE {cond}), __j AS ({joined}), "
        f"__w AS (SELECT *, {wexpr} AS __win FROM __j) "
    )
    aggregates = [
        "count(*) AS n",
        "count(*) FILTER (WHERE error IS NULL) AS ok",
        "count(*) FILTER (WHERE error IS NOT NULL) AS errors",
        f"quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE {_present('latency_ms', pa.float64())}) AS lat",
        "list_sort(list(DISTINCT version) FILTER (WHERE version IS NOT NULL)) AS versions",
        f"({missing or '0'}) AS missing",
        "min(ts) AS first_ts",
        "max(ts) AS last_ts",
        *(f"{expr} AS {name}" for name, expr in q.items()),
        f"min({key}) AS first_key" if ordered else "NULL AS first_key",
    ]
    sql = (
        base + "SELECT __win, CASE WHEN GROUPING(route) = 1 THEN '*' ELSE route END AS __route, "
        f"{', '.join(aggregates)} FROM __w GROUP BY GROUPING SETS ((__win), (__win, route)) ORDER BY __win"
    )
    by_win: dict[int, dict[str, dict]] = {}
    for r in _query(con, sql).to_pylist():
        by_win.setdefault(r["__win"], {})[r.pop("__route") or ""] = r
    whole = " AND ".join(span) or "TRUE"
    refused, last = con.sql(
        f"SELECT count(*) FILTER (WHERE {_REFUSED}), arg_max(version, ts) FILTER (WHERE NOT {_REFUSED} "
        f"AND version IS NOT NULL AND coalesce(route, '') <> 'canary') FROM {_source(files)} WHERE {whole}"
    ).fetchall()[0]
    task = _task(
        con,
        f"WITH __recs AS (SELECT * FROM {_source(files)} WHERE {cond}), __j AS ({joined}) ",
        lt,
        pt,
        point,
    )

    wins = sorted(by_win)
    dropped = max(0, len(wins) - max_windows)
    windows: list[WindowScan] = []
    for i in range(dropped, len(wins)):
        parts = dict(by_win[wins[i]])
        total = parts.pop("*")
        first_us, last_us = _us(total["first_ts"]), _us(total["last_ts"])
        if ordered:
            start, end = pd.Timestamp(total["first_ts"]), pd.Timestamp(total["last_ts"])
            a = total["first_key"]
            where = f"{key} >= [{a[0]}, {a[1]}, {a[2]}]"
            if i + 1 < len(wins):
                b = by_win[wins[i + 1]]["*"]["first_key"]
                where += f" AND {key} < [{b[0]}, {b[1]}, {b[2]}]"
        else:
            wlo = wins[i] * step
            start = pd.Timestamp(wlo, unit="us", tz="UTC")
            end = start + pd.Timedelta(microseconds=step)
            where = "TRUE"
        # a ts range DuckDB can check against the files' row-group statistics
        where += f" AND ts >= {_ts(first_us)} AND ts <= {_ts(last_us)}"
        windows.append(
            WindowScan(
                start, end, total, parts, where, _overlapping(files, first_us, last_us), int(total["ok"])
            )
        )
    return LogScan(
        rows=int(sum(int(by_win[w]["*"]["n"]) for w in wins)),
        refused=int(refused or 0),
        features=features,
        task=task,
        last_version=None if last is None else int(last),
        windows=windows,
        dropped_windows=dropped,
        _con=con,
        _schema=schema,
        _tmp=tmp,
        _order=order,
    )


def _ts(us: int) -> str:
    """SQL: a TIMESTAMPTZ literal (with its offset, so the session's time zone plays no part)."""
    return "TIMESTAMPTZ '" + pd.Timestamp(int(us), unit="us", tz="UTC").isoformat() + "'"


def _us(t) -> int:
    return int(pd.Timestamp(t).value // 1000)


def _overlapping(files: list[str], lo: int, hi: int) -> list[str]:
    """The files whose time range (from their names) meets ``[lo, hi]``."""
    from .log import _NAME_RE

    out = []
    for f in files:
        m = _NAME_RE.match(os.path.basename(f))
        if m is None or (int(m.group(3)) >= lo and int(m.group(2)) <= hi):
            out.append(f)
    return out


def _point_type(schema: pa.Schema) -> pa.DataType | None:
    t = schema.field("prediction").type if "prediction" in schema.names else None
    if t is not None and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return pa.int64()
    return t


def _task(con, base: str, lt: pa.DataType | None, pt: pa.DataType | None, point: str) -> str:
    """:func:`mlo.monitor.windows.task_of` over the whole span: from the labels when any arrived, else from the
    (point) predictions."""
    labeled = 0
    if lt is not None and not pa.types.is_null(lt):
        labeled = con.sql(base + f"SELECT count(*) FROM __j WHERE {_present('label', lt)}").fetchall()[0][0]
    value, t = ("label", lt) if labeled else (point, pt)
    if t is None or not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        return "classification"
    whole, distinct = con.sql(
        base
        + f"SELECT bool_and(__v = floor(__v)), count(DISTINCT __v) FROM (SELECT {value} AS __v FROM __j) "
        f"WHERE {_present('__v', t)}"
    ).fetchall()[0]
    if whole is None:
        return "classification"
    return "classification" if whole and distinct <= 50 else "regression"
