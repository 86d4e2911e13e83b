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

CHUNK_ROWS = 2_000_000  # records per aggregate query: one chunk's labels are joined in memory
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


def _quality_sql(lt: pa.DataType | None, pt: pa.DataType | None) -> dict[str, str]:
    """Sums that add up across groups: quality of any part of a window is the sum of its groups' (over the
    columns :func:`_projection` computes once per record)."""
    have = "(__lh AND __ph)"
    numeric = _numeric(lt) and _numeric(pt)
    good = f"{have} AND __e IS NOT NULL AND NOT isnan(__e)"
    return {
        "labeled": f"count_if({have})",
        # pandas compares 1 and 1.0 as numbers when every labeled value is one, else as text
        "numeric": "TRUE"
        if numeric
        else f"bool_and(__yn IS NOT NULL AND __pn IS NOT NULL) FILTER (WHERE {have})",
        "same_num": f"count_if({have} AND __yn = __pn)",
        "same_str": "0"
        if numeric
        else f"count_if({have} AND CAST(__lab AS VARCHAR) = CAST(__pt AS VARCHAR))",
        "err_n": f"count_if({good})",
        "abs_sum": f"sum(abs(__e)) FILTER (WHERE {good})",
        "sq_sum": f"sum(__e * __e) FILTER (WHERE {good})",
    }


def _projection(schema: pa.Schema, features: list[str], lt, point: str, pt) -> str:
    """SQL: what the aggregates need of each record, computed once."""
    missing = " + ".join(
        f"(NOT {_present(_q(c), schema.field(c).type)})::INTEGER"
        for c in (FEATURE_PREFIX + f for f in features)
    )
    return (
        "__win, route, version, ts, id, error IS NULL AS __ok, "
        f"({missing or '0'}) AS __miss, label AS __lab, {point} AS __pt, "
        f"{_present('label', lt)} AS __lh, {_present(point, pt)} AS __ph, "
        f"TRY_CAST(label AS DOUBLE) AS __yn, TRY_CAST({point} AS DOUBLE) AS __pn, "
        f"TRY_CAST({point} AS DOUBLE) - TRY_CAST(label AS DOUBLE) AS __e"
    )


def quality_of(r: dict[str, Any], task: str) -> dict[str, float]:
    """:func:`mlo.monitor.windows.quality` from the aggregate query's sums."""
    n = int(r["labeled"] or 0)
    if n == 0:
        return {"labeled": 0}
    if task == "classification":
        same = r["same_num"] if r["numeric"] else r["same_str"]
        return {"labeled": n, "accuracy": float(same) / n}
    k = int(r["err_n"] or 0)
    mae = float(r["abs_sum"]) / k if k else math.nan
    rmse = math.sqrt(float(r["sq_sum"]) / k) if k else math.nan
    return {"labeled": n, "mae": mae, "rmse": rmse}


_SUMS = ("n", "ok", "errors", "missing", "labeled", "same_num", "same_str", "err_n", "abs_sum", "sq_sum")
_SUMS += ("stray", "lab_n", "pred_n")


def _merge(groups: list[dict]) -> dict[str, Any]:
    """The figures of a union of groups (a window, or a route in it)."""
    out: dict[str, Any] = {k: sum((g[k] or 0) for g in groups) for k in _SUMS}
    for k in ("numeric", "lab_whole", "pred_whole"):
        seen = [g[k] for g in groups if g.get(k) is not None]
        out[k] = all(seen) if seen else None
    for k, pick in (("first_ts", min), ("last_ts", max), ("lab_min", min), ("pred_min", min)):
        seen = [g[k] for g in groups if g.get(k) is not None]
        out[k] = pick(seen) if seen else None
    for k in ("lab_max", "pred_max"):
        seen = [g[k] for g in groups if g.get(k) is not None]
        out[k] = max(seen) if seen else None
    out["versions"] = sorted({int(g["version"]) for g in groups if g["version"] is not None})
    out["lat"] = None
    return out


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
    live = " AND ".join([f"NOT {_REFUSED}", *span])
    refused, last = con.sql(
        f"SELECT count(*) FILTER (WHERE {_REFUSED}), arg_max(version, ts) FILTER (WHERE NOT {_REFUSED} "
        f"AND version IS NOT NULL AND coalesce(route, '') <> 'canary') FROM {_source(files)} "
        f"WHERE {' AND '.join(span) or 'TRUE'}"
    ).fetchall()[0]
    plan = (
        _row_windows(con, files, order, live, int(window.rows))
        if ordered
        else _time_windows(con, files, live, window)
    )
    rows = sum(p.n for p in plan)
    dropped = max(0, len(plan) - max_windows)
    plan = plan[dropped:]

    point, pt = _point(schema), _point_type(schema)
    lt = (
        lab_schema.field("label").type
        if lab_schema is not None and "label" in lab_schema.names
        else pa.null()
    )
    by_win: dict[int, dict[str, dict]] = {}
    for chunk in _chunks(plan):
        for r in _aggregate(
            con, files, order, live, chunk, schema, features, lab_files, lt, point, pt, window
        ):
            by_win.setdefault(r["__win"], {})[r.pop("__route") or ""] = r

    def distinct(name: str) -> int:
        """Distinct labels (of the span's records) or point predictions: a rare, slower query."""
        value = "label" if name == "lab" else point
        joined = "SELECT __r.*, NULL AS label FROM __recs AS __r"
        if lab_files:
            listed = "[" + ", ".join(_lit(f) for f in lab_files) + "]"
            joined = (
                "SELECT __r.*, __l.label FROM __recs AS __r LEFT JOIN (SELECT id AS __lid, arg_max(label, ts) "
                f"AS label FROM read_parquet({listed}, union_by_name = true) GROUP BY id) AS __l "
                "ON __r.id = __l.__lid"
            )
        t = lt if name == "lab" else pt
        return con.sql(
            f"WITH __recs AS (SELECT * FROM {_source(files)} WHERE {live}), __j AS ({joined}) "
            f"SELECT count(DISTINCT {value}) FILTER (WHERE {_present(value, t)}) FROM __j"
        ).fetchall()[0][0]

    windows: list[WindowScan] = []
    for p in plan:
        parts = dict(by_win.get(p.index, {}))
        total = parts.pop("*")
        if ordered:
            start, end = pd.Timestamp(total["first_ts"]), pd.Timestamp(total["last_ts"])
        else:
            start = pd.Timestamp(p.lo, unit="us", tz="UTC")
            end = start + pd.Timedelta(microseconds=p.hi - p.lo)
        files_w = _overlapping(files, p.lo, p.hi)
        where = " AND ".join([p.where, *span])
        windows.append(WindowScan(start, end, total, parts, where, files_w, int(total["ok"])))
    return LogScan(
        rows=rows,
        refused=int(refused or 0),
        features=features,
        task=_task([w.figures for w in windows], lt, pt, distinct),
        last_version=None if last is None else int(last),
        windows=windows,
        dropped_windows=dropped,
        _con=con,
        _schema=schema,
        _tmp=tmp,
        _order=order,
    )


@dataclass
class _Planned:
    index: int  # the window's number: epoch_us // step for time windows, its position for row windows
    n: int
    lo: int  # µs: the window's first possible time
    hi: int  # µs: its last possible time (inclusive for row windows, exclusive for time windows)
    where: str  # SQL selecting its records (with a ts range DuckDB checks against row-group statistics)
    offset: int = 0  # row windows: the position of its first record in the log


_KEY = "[epoch_us(ts), __fi, file_row_number]"


def _time_windows(con, files, live: str, window) -> list[_Planned]:
    step = int(round(window.seconds * 1e6))
    counts = con.sql(
        f"SELECT epoch_us(ts) // {step} AS w, count(*) FROM {_source(files)} WHERE {live} GROUP BY w ORDER BY w"
    ).fetchall()
    out = []
    for w, n in counts:
        lo, hi = int(w) * step, (int(w) + 1) * step
        out.append(_Planned(int(w), int(n), lo, hi, f"ts >= {_ts(lo)} AND ts < {_ts(hi)}"))
    return out


def _row_windows(con, files, order, live: str, size: int) -> list[_Planned]:
    """Windows of ``size`` consecutive records in log order: where each one starts (one sort of three
    integers per record)."""
    starts = con.sql(
        f"SELECT k, r FROM (SELECT {_KEY} AS k, row_number() OVER (ORDER BY epoch_us(ts), __fi, file_row_number) "
        f"- 1 AS r FROM {_source(files, order)} WHERE {live}) WHERE r % {size} = 0 ORDER BY r"
    ).fetchall()
    total = con.sql(f"SELECT count(*) FROM {_source(files)} WHERE {live}").fetchall()[0][0]
    out = []
    for i, (key, r) in enumerate(starts):
        nxt = starts[i + 1][0] if i + 1 < len(starts) else None
        where = f"{_KEY} >= {_list_lit(key)} AND ts >= {_ts(key[0])}"
        hi = _MAX_US
        if nxt is not None:
            where += f" AND {_KEY} < {_list_lit(nxt)} AND ts <= {_ts(nxt[0])}"
            hi = int(nxt[0])
        n = size if nxt is not None else int(total) - int(r)
        out.append(_Planned(i, n, int(key[0]), hi, where, offset=int(r)))
    return out


_MAX_US = 253402300799999999  # 9999-12-31


def _list_lit(key) -> str:
    return "[" + ", ".join(str(int(v)) for v in key) + "]"


def _chunks(plan: list[_Planned]) -> list[list[_Planned]]:
    """Consecutive windows grouped into queries of about :data:`CHUNK_ROWS` records (a window is never split)."""
    out: list[list[_Planned]] = []
    rows = 0
    for p in plan:
        if out and rows + p.n <= CHUNK_ROWS:
            out[-1].append(p)
            rows += p.n
        else:
            out.append([p])
            rows = p.n
    return out


def _id_prefix(us: int) -> str:
    """The first 12 hex digits of the ids of records made at ``us``: ids keep the UUIDv7 layout (milliseconds
    first), so the labels of a span of records are a range of ids."""
    return f"{max(us, 0) // 1000 & 0xFFFFFFFFFFFF:012x}"


def _aggregate(
    con, files, order, live, chunk, schema, features, lab_files, lt, point, pt, window
) -> list[dict]:
    """One query: the figures of each window of ``chunk`` and of each route in it, labels joined by id."""
    first, last = chunk[0], chunk[-1]
    lo_us, hi_us = first.lo, last.hi
    where = (
        " OR ".join(f"({p.where})" for p in chunk)
        if window.rows is not None
        else (f"ts >= {_ts(lo_us)} AND ts < {_ts(hi_us)}")
    )
    if window.rows is not None:
        wexpr = (
            f"(row_number() OVER (ORDER BY epoch_us(ts), __fi, file_row_number) - 1 + {first.offset}) "
            f"// {int(window.rows)} "
        )
        index = {p.offset // int(window.rows): p.index for p in chunk}
    else:
        wexpr = f"epoch_us(ts) // {int(round(window.seconds * 1e6))}"
        index = None
    # labels of this span only: a range of ids (records whose id is outside it are counted, and then the
    # chunk is joined with every label)
    id_lo, id_hi = _id_prefix(lo_us), _id_prefix(min(hi_us, _MAX_US) + 1000)
    source = _source(_overlapping(files, lo_us, hi_us), order)
    rows = _chunk_query(
        con, source, live, where, wexpr, schema, features, lab_files, lt, point, pt, (id_lo, id_hi)
    )
    if any(r["stray"] for r in rows if r["__route"] == "*"):
        rows = _chunk_query(con, source, live, where, wexpr, schema, features, lab_files, lt, point, pt, None)
    if index is not None:
        for r in rows:
            r["__win"] = index[r["__win"]]
    return rows


def _chunk_query(
    con, source, live, where, wexpr, schema, features, lab_files, lt, point, pt, ids
) -> list[dict]:
    """The chunk's figures per window and route: rows ``{"__win", "__route", figures…}`` (route ``"*"``: the
    whole window)."""
    if lab_files:
        listed = "[" + ", ".join(_lit(f) for f in lab_files) + "]"
        within = f"WHERE id >= {_lit(ids[0])} AND id < {_lit(ids[1])} " if ids else ""
        labels = (
            f"(SELECT id AS __lid, arg_max(label, ts) AS label FROM read_parquet({listed}, union_by_name = true) "
            f"{within}GROUP BY id)"
        )
        joined = f"SELECT __r.*, __l.label FROM __w AS __r LEFT JOIN {labels} AS __l ON __r.id = __l.__lid"
    else:
        joined = "SELECT __r.*, NULL AS label FROM __w AS __r"
    stray = f"count_if(id < {_lit(ids[0])} OR id >= {_lit(ids[1])})" if ids else "0"
    aggregates = [
        "count(*) AS n",
        "count_if(__ok) AS ok",
        "count_if(NOT __ok) AS errors",
        "sum(__miss) FILTER (WHERE __ok) AS missing",
        "min(ts) AS first_ts",
        "max(ts) AS last_ts",
        f"{stray} AS stray",
        *(f"{expr} AS {name}" for name, expr in _quality_sql(lt, pt).items()),
        *_task_sql("__yn", "__lh", lt, "lab"),
        *_task_sql("__pn", "__ph", pt, "pred"),
    ]
    recs = (
        f"WITH __recs AS (SELECT * FROM {source} WHERE {live} AND ({where})), "
        f"__w AS (SELECT *, {wexpr} AS __win FROM __recs) "
    )
    groups = _query(
        con,
        recs
        + f", __j AS ({joined}), __k AS (SELECT {_projection(schema, features, lt, point, pt)} FROM __j) "
        f"SELECT __win, route, version, {', '.join(aggregates)} FROM __k "
        "GROUP BY __win, route, version",
    ).to_pylist()
    # latency percentiles do not add up across groups: one small query over the records that have one
    lat_ok = _present("latency_ms", pa.float64())
    latency = _query(
        con,
        recs + "SELECT __win, CASE WHEN GROUPING(route) = 1 THEN '*' ELSE route END AS __route, "
        f"quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS lat FROM __w WHERE {lat_ok} "
        "GROUP BY GROUPING SETS ((__win), (__win, route))",
    ).to_pylist()
    by: dict[tuple, list[dict]] = {}
    for g in groups:
        by.setdefault((g["__win"], "*"), []).append(g)
        by.setdefault((g["__win"], g["route"] or ""), []).append(g)
    out = {key: _merge(parts) for key, parts in by.items()}
    for r in latency:
        hit = out.get((r["__win"], r["__route"] or ""))
        if hit is not None:
            hit["lat"] = r["lat"]
    return [{"__win": w, "__route": route, **figures} for (w, route), figures in out.items()]


def _numeric(t: pa.DataType | None) -> bool:
    return t is not None and (pa.types.is_integer(t) or pa.types.is_floating(t))


def _task_sql(value: str, have: str, t: pa.DataType | None, name: str) -> list[str]:
    """What :func:`mlo.monitor.windows.task_of` needs of a column, per group: how many values, whether all are
    whole numbers, and their range."""
    out = [f"count_if({have}) AS {name}_n"]
    if _numeric(t):
        out += [
            f"bool_and({value} = floor({value})) FILTER (WHERE {have}) AS {name}_whole",
            f"min({value}) FILTER (WHERE {have}) AS {name}_min",
            f"max({value}) FILTER (WHERE {have}) AS {name}_max",
        ]
    else:
        out += [f"NULL AS {name}_whole", f"NULL AS {name}_min", f"NULL AS {name}_max"]
    return out


def _task(figures: list[dict], lt: pa.DataType | None, pt: pa.DataType | None, distinct) -> str:
    """:func:`mlo.monitor.windows.task_of` over the windows: from the labels when any arrived, else from the
    (point) predictions. ``distinct(column)`` counts a column's distinct values when their range cannot tell."""
    name, t = ("lab", lt) if any(f["lab_n"] for f in figures) else ("pred", pt)
    seen = [f for f in figures if f[f"{name}_n"]]
    if not _numeric(t) or not seen:
        return "classification"
    if not all(f[f"{name}_whole"] for f in seen):
        return "regression"
    lo = min(f[f"{name}_min"] for f in seen)
    hi = max(f[f"{name}_max"] for f in seen)
    if hi - lo < 50:  # whole numbers in a range of at most 50: at most 50 values
        return "classification"
    return "classification" if distinct(name) <= 50 else "regression"


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
    """The type of the point predictions (class positions for probability lists)."""
    t = schema.field("prediction").type if "prediction" in schema.names else None
    if t is not None and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return pa.int64()
    return t
