"""``mlo.runs()``: every run as a row of a DataFrame in MLflow's ``search_runs`` shape.

Only the keys a caller asks for (``columns=``, plus those its ``where`` names) are read from the store, so
listings of large experiments stay fast.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from ..store import schema
from . import session
from . import where as where_mod

BASE_COLUMNS = where_mod.BASE_COLUMNS
KINDS = ("params", "metrics", "tags")
_RUN_ROW_COLUMNS = [c for c in BASE_COLUMNS if c != "duration"]  # the order of RunStore.run_rows
_TABLES = {"params": schema.params, "metrics": schema.latest_metrics, "tags": schema.tags}


def runs(
    experiment: str | Sequence[str] | None = None,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    order_by: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame: ``run_id, experiment, name, status, start_time, end_time, duration, …, params.*,
    metrics.*, tags.*``, newest first.

    Parameters
    ----------
    experiment : str or list of str, optional
        Only runs of these experiments (all experiments by default).
    where : str, optional
        A filter such as ``"metrics.acc > 0.8 or params.model = 'rf'"`` (see :mod:`mlo.tracking.where`).
    columns : list of str, optional
        Project to these columns (``run_id`` is always kept); shell patterns such as ``"metrics.*"`` work.
    order_by : str, optional
        A column, optionally followed by ``asc`` (the default) or ``desc`` (``"metrics.acc desc"``).
    limit : int, optional
        At most this many rows (after filtering and ordering).
    """
    ws = workspace.current()
    session.flush()
    session.wait_for_capture()
    session.reap(ws)
    store = ws.runs
    tree = where_mod.parse(where) if where else None
    order_col, ascending = _order(order_by)
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")

    if experiment is None:
        exp_ids = None
    else:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        exp_ids = [store.experiment_id(n, create=False) for n in names]

    wanted = _wanted_keys(columns, tree, order_col)
    base_rows = store.run_rows(exp_ids)
    base = pd.DataFrame(
        dict(zip(_RUN_ROW_COLUMNS, zip(*base_rows, strict=True), strict=True))
        if base_rows
        else {c: [] for c in _RUN_ROW_COLUMNS}
    )
    now_us = time.time() * 1e6
    end = base["end_time"].astype("float64")
    base["duration"] = (end.fillna(now_us) - base["start_time"].astype("float64")) / 1e6
    for c in ("start_time", "end_time"):
        base[c] = pd.to_datetime(base[c].astype("float64"), unit="us", utc=True)
    base = base[BASE_COLUMNS]
    index = pd.Index(base["run_id"])

    frames = [base.set_index("run_id", drop=False)]
    for kind in KINDS:
        keys = wanted.get(kind, "all")
        if keys == ():
            continue
        rows = store.long_values(_TABLES[kind], exp_ids, None if keys == "all" else list(keys))
        frames.append(_pivot(rows, kind, index))
    df = pd.concat(frames, axis=1) if len(frames) > 1 else frames[0]
    df = df.reset_index(drop=True)

    if tree is not None:
        df = df[where_mod.evaluate(tree, df).to_numpy()]
    if order_col:
        if order_col not in df.columns:
            raise InvalidInput(f"cannot order by {order_col!r}: no such column")
        df = df.sort_values(order_col, ascending=ascending, na_position="last", kind="stable")
    if limit is not None:
        df = df.head(limit)
    if columns is not None:
        df = df[_project(df.columns, columns)]
    elif tree is not None or limit is not None:
        # like search_runs: key columns come from the runs returned, not from every run read
        empty = [
            c for c in df.columns if c.startswith(("params.", "metrics.", "tags.")) and df[c].isna().all()
        ]
        df = df.drop(columns=empty)
    return df.reset_index(drop=True)


def _order(order_by: str | None) -> tuple[str | None, bool]:
    if not order_by:
        return None, False
    parts = order_by.split()
    direction = parts[-1].lower() if len(parts) > 1 and parts[-1].lower() in ("asc", "desc") else None
    name = " ".join(parts[:-1] if direction else parts)
    return where_mod.column_name(name), direction != "desc"  # ascending unless told, as in SQL


def _wanted_keys(columns, tree, order_col) -> dict:
    """Per kind: "all", or a tuple of keys to read (empty: skip the table)."""
    if columns is None:
        return {}
    if isinstance(columns, str):
        raise InvalidInput("columns must be a list of column names, e.g. ['metrics.acc', 'params.C']")
    needed = set(columns) | (where_mod.columns_of(tree) if tree is not None else set())
    if order_col:
        needed.add(order_col)
    out: dict = {}
    for kind in KINDS:
        pats = [c[len(kind) + 1 :] for c in needed if c.startswith(kind + ".")]
        if any(any(ch in p for ch in "*?[") for p in pats):
            out[kind] = "all"
        else:
            out[kind] = tuple(sorted(set(pats)))
    return out


def _project(available, columns) -> list[str]:
    chosen = ["run_id"]
    for pattern in columns:
        matches = [c for c in available if fnmatch.fnmatchcase(c, pattern)]
        if not matches and not any(ch in pattern for ch in "*?["):
            kind = pattern.split(".", 1)[0]
            if kind not in KINDS and pattern not in BASE_COLUMNS:
                raise InvalidInput(
                    f"unknown column {pattern!r}: use params.<key>, metrics.<key>, tags.<key> or one of "
                    f"{', '.join(BASE_COLUMNS)}"
                )
            continue  # a key no run has: nothing to show
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _pivot(rows, kind: str, index: pd.Index) -> pd.DataFrame:
    """Long (run_id, key, value) rows → one column per key, aligned to ``index`` (scatter into a 2-D array)."""
    if not rows:
        return pd.DataFrame(index=index)
    run_ids, keys, values = zip(*rows, strict=True)
    row_pos = index.get_indexer(run_ids)
    key_codes, key_names = pd.factorize(pd.Index(keys), sort=True)
    keep = row_pos >= 0
    if kind == "metrics":
        grid = np.full((len(index), len(key_names)), np.nan)
        vals = np.array(values, dtype="float64")  # None (a stored NaN) becomes nan
    else:
        grid = np.full((len(index), len(key_names)), None, dtype=object)
        vals = np.array(values, dtype=object)
    grid[row_pos[keep], key_codes[keep]] = vals[keep]
    wide = pd.DataFrame(grid, index=index, columns=[f"{kind}.{k}" for k in key_names])
    if kind == "params":
        wide = wide.apply(_decode_param_column)
    return wide


def _decode_param_column(col: pd.Series) -> pd.Series:
    """Params are stored as JSON text: turn a column back into numbers, strings or objects, vectorized."""
    present = col.dropna()
    if present.empty:
        return col
    text = present.astype(str)
    if text.str.startswith('"').all() and not text.str.contains("\\\\", regex=False).any():
        return col.where(col.isna(), col.astype(str).str[1:-1])
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        out = pd.Series(np.nan, index=col.index, dtype="float64")
        out[numeric.index] = numeric.astype("float64")
        if (numeric == numeric.round()).all() and not text.str.contains(r"[.eE]", regex=True).any():
            try:
                return out.astype("Int64")
            except (TypeError, ValueError):
                return out
        return out
    decoded = col.copy().astype(object)
    decoded[present.index] = [_loads(v) for v in present]
    return decoded


def _loads(text: str):
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value) if isinstance(value, (list, dict)) else value
