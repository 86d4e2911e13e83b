"""``mlo.runs()``: every run as a row of a DataFrame in MLflow's ``search_runs`` shape.

Only the keys a caller asks for (``columns=``, plus those its ``where`` names) are read from the store, so
listings of large experiments stay fast.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from . import session
from . import where as where_mod

BASE_COLUMNS = where_mod.BASE_COLUMNS
KINDS = ("params", "metrics", "tags")
_RUN_ROW_COLUMNS = [*(c for c in BASE_COLUMNS if c != "duration"), "lifecycle"]  # as RunStore.run_rows


def runs(
    experiment: str | Sequence[str] | None = None,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    *,
    include: str | Sequence[str] | None = None,
    count_up_to: int | None = None,
    experiment_names: Sequence[str] | None = None,
    filter_string: str | None = None,
    max_results: int | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame: ``run_id, experiment, name, status, start_time, end_time, duration, …, params.*,
    metrics.*, tags.*``, newest first.

    Parameters
    ----------
    experiment : str or list of str, optional
        Only runs of these experiments (all experiments by default).
    where : str, optional
        A filter such as ``"metrics.acc > 0.8 or params.model = 'rf'"`` (see :mod:`mlo.tracking.where`).
        Statuses compare in any case: ``status = 'FINISHED'`` finds finished runs.
    columns : list of str, optional
        Project to these columns (``run_id`` is always kept); shell patterns such as ``"metrics.*"`` work.
    order_by : str or list of str, optional
        Columns, each optionally followed by ``asc`` (the default) or ``desc``: ``"metrics.acc desc"`` or
        ``["metrics.acc desc", "start_time"]``.
    limit, offset : int, optional
        A page: at most ``limit`` rows after skipping ``offset`` (after filtering and ordering). The number of
        runs that matched is in ``df.attrs["total"]``. Only the keys the filter and the order need are read
        for every run; the page's runs alone are read in full.
    include : str or list of str, optional
        Runs that listings leave out unless asked: ``"archived"``, ``"deleted"`` or ``"all"``. With it the
        frame gains a ``lifecycle`` column (``active``, ``archived`` or ``deleted``).
    count_up_to : int, optional
        Count the matching runs only up to this many (or to the page's end, if further), as a search engine
        does: counting a million matches exactly costs more than the page. ``df.attrs["total_exact"]`` is
        False when the count stopped there; ``df.attrs["total"]`` is then a lower bound. By default every
        match is counted (``total_exact`` is True).
    experiment_names, filter_string, max_results
        MLflow's ``search_runs`` spellings of ``experiment``, ``where`` and ``limit``.
    """
    experiment = _alias("experiment", experiment, "experiment_names", experiment_names)
    where = _alias("where", where, "filter_string", filter_string)
    limit = _alias("limit", limit, "max_results", max_results)
    _check_args(experiment, where, columns, order_by)
    from ..store.lifecycle import check_include, hidden_condition

    ws = workspace.current()
    session.flush()
    session.wait_for_capture()
    session.reap(ws)
    store = ws.runs
    included = check_include(include)
    tree = where_mod.parse(where) if where else None
    orders = where_mod.parse_order(order_by)
    order_cols = [c for c, _ in orders]
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0
        ):
            raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
    if count_up_to is not None and (
        isinstance(count_up_to, bool) or not isinstance(count_up_to, (int, np.integer)) or count_up_to < 1
    ):
        raise InvalidInput(
            f"count_up_to must be a positive integer (or None to count every match), got {count_up_to!r}"
        )

    if experiment is None:
        exp_ids = None
    else:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        exp_ids = [store.experiment_id(n, create=False) for n in names]
    shown = hidden_condition(store.db, included)
    read = _Reader(store, exp_ids, shown, columns, tree, order_cols)

    # the whole listing this process read last, while the database is unchanged since (see _Memo)
    memo = _Memo(store, exp_ids, included)
    whole = memo.get()
    paged = limit is not None and limit <= PAGE_READ_LIMIT
    # a page: the database filters, orders, counts and slices when it can give what pandas would (see
    # mlo.store.run_filter); the page's runs alone are read in full
    found = None
    if paged and whole is None:
        found = store.page_ids(
            exp_ids, orders, offset, limit, where=tree, shown=shown, count_up_to=count_up_to
        )
    exact = True
    if found is not None:
        total, ids, exact = found
    else:
        # a page: order and filter every run on the few keys that takes, then read the page's runs in full
        if whole is not None:
            df = whole
            if paged:  # the ids and the count are all a page takes from it: the columns that decide them
                needed = ["run_id", *(where_mod.columns_of(tree) if tree is not None else ()), *order_cols]
                df = df[[c for c in dict.fromkeys(needed) if c in df.columns]]
        else:
            df = read(None, _wanted_keys([] if paged else columns, tree, order_cols))
            if columns is None and not paged:
                memo.keep(df)
        if tree is not None:
            df = df[where_mod.evaluate(tree, df).to_numpy()]
        if orders:
            missing = [c for c in order_cols if c not in df.columns]
            if missing:
                raise InvalidInput(f"cannot order by {missing[0]!r}: no such column")
            try:
                df = df.sort_values(
                    order_cols, ascending=[a for _, a in orders], na_position="last", kind="stable"
                )
            except TypeError:  # a column of numbers and strings (or other objects)
                mixed = next(c for c in order_cols if df[c].dtype == object) if order_cols else "?"
                raise InvalidInput(
                    f"cannot order by {mixed!r}: its values mix numbers and strings (filter to one kind first)"
                ) from None
        total = len(df)
        if limit is not None or offset:
            df = df.iloc[offset : None if limit is None else offset + limit]
        ids = df["run_id"].tolist()
    if paged:
        # (an empty page reads every run, so its columns are those of the whole listing)
        page = read(ids or None, _wanted_keys(columns, tree, order_cols))
        df = page.set_index("run_id").loc[ids].reset_index() if ids else page.iloc[0:0]
    if not included:
        df = df.drop(columns="lifecycle")
    if columns is not None:
        df = df[_project(df.columns, columns)]
    elif tree is not None or limit is not None or offset:
        # like search_runs: key columns come from the runs returned, not from every run read
        empty = [
            c for c in df.columns if c.startswith(("params.", "metrics.", "tags.")) and df[c].isna().all()
        ]
        df = df.drop(columns=empty)
    df = df.reset_index(drop=True)
    df.attrs["total"] = total
    df.attrs["total_exact"] = exact
    return df


class _Memo:
    """The whole listing of one scope (experiments, lifecycles) kept in this process between calls, for as long
    as the database is unchanged: SQLite tells that for free (``PRAGMA data_version`` on a connection of the
    store's own, see :meth:`RunStore.change_token`), so pages and listings of a big workspace that a notebook or
    the REST server asks for again and again filter, order and count the frame in memory instead of reading.
    One scope per store is kept; the frame handed out is a copy (pandas copies on write), never the kept one."""

    def __init__(self, store, exp_ids, included):
        self.store = store
        self.key = (None if exp_ids is None else tuple(exp_ids), tuple(sorted(included)))
        self.token = store.change_token()  # before any read: a commit during the read voids what it read

    def get(self) -> pd.DataFrame | None:
        if self.token is None:
            return None
        kept = self.store.listing_memo.get(self.key)
        if kept is None or kept[0] != self.token:
            return None
        return _fresh_durations(kept[1].copy(deep=False))

    def keep(self, df: pd.DataFrame) -> None:
        if self.token is not None and len(df) >= self.store.CACHE_MIN_RUNS:
            self.store.listing_memo = {self.key: (self.token, df.copy(deep=False))}


def _fresh_durations(df: pd.DataFrame) -> pd.DataFrame:
    """``duration`` of the runs still running, as of now (as :func:`_frame` computes it)."""
    end = df["end_time"]
    running = end.isna().to_numpy()
    if running.any():
        start = df["start_time"].array.asi8.astype("float64")
        duration = df["duration"].to_numpy(dtype="float64", copy=True)
        duration[running] = (time.time() * 1e6 - start[running]) / 1e6
        df["duration"] = duration
    return df


def _alias(name: str, value, alias: str, alias_value):
    if alias_value is None:
        return value
    if value is not None:
        raise InvalidInput(f"give {name}= or {alias}= (its MLflow spelling), not both")
    return alias_value


class _Reader:
    """Reads the base columns and chosen ``kind.key`` columns of the listed runs."""

    def __init__(self, store, exp_ids, shown, columns, tree, order_cols):
        self.store, self.exp_ids, self.shown = store, exp_ids, shown
        self.columns, self.tree, self.order_cols = columns, tree, order_cols

    def __call__(self, run_ids, wanted: dict) -> pd.DataFrame:
        return _frame(
            self.store, self.exp_ids, run_ids, wanted, self.columns, self.tree, self.order_cols, self.shown
        )


PAGE_READ_LIMIT = 2000  # pages up to this many runs are read by run id (an IN list) in a second query


def _frame(store, exp_ids, run_ids, wanted: dict, columns, tree, order_cols, shown=None) -> pd.DataFrame:
    """The base columns (and ``lifecycle``) and the ``kind.key`` columns ``wanted`` (see :func:`_wanted_keys`)
    of the runs."""
    read = {}
    for kind in KINDS:
        keys = wanted.get(kind, "all")
        if keys != ():
            read[kind] = None if keys == "all" else list(keys)
    listing = store.listing(exp_ids, read, run_ids=run_ids, shown=shown)
    base = pd.DataFrame(
        dict(zip(_RUN_ROW_COLUMNS, listing.columns, strict=True))
        if len(listing.columns[0])
        else {c: [] for c in _RUN_ROW_COLUMNS}
    )
    now_us = time.time() * 1e6
    end = base["end_time"].astype("float64")
    base["duration"] = (end.fillna(now_us) - base["start_time"].astype("float64")) / 1e6
    for c in ("start_time", "end_time"):
        base[c] = pd.to_datetime(base[c].astype("float64"), unit="us", utc=True)
    base = base[[*BASE_COLUMNS, "lifecycle"]]

    shown = _shown(columns, tree, order_cols)
    frames = [base]
    for kind in KINDS:
        if kind in listing.values:
            names, grid = listing.values[kind]
            frames.append(_wide(kind, names, grid, shown))
    return pd.concat(frames, axis=1) if len(frames) > 1 else frames[0]


def _check_args(experiment, where, columns, order_by) -> None:
    """One-line errors for arguments of the wrong type (before anything is read)."""
    if experiment is not None and not isinstance(experiment, str):
        if not isinstance(experiment, (list, tuple, set)) or not all(isinstance(e, str) for e in experiment):
            raise InvalidInput(
                f"experiment must be a name or a list of names, got {type(experiment).__name__} {experiment!r}"
            )
    if where is not None and not isinstance(where, str):
        raise InvalidInput(f"where must be a string, got {type(where).__name__} {where!r}")
    if order_by is not None and not isinstance(order_by, str):
        if not isinstance(order_by, (list, tuple)) or not all(isinstance(o, str) for o in order_by):
            raise InvalidInput(
                f"order_by must be a string or a list of them, e.g. ['metrics.acc desc'], got {order_by!r}"
            )
    if columns is not None and not isinstance(columns, str):
        if not isinstance(columns, (list, tuple)) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("columns must be a list of column names, e.g. ['metrics.acc', 'params.C']")


def _wanted_keys(columns, tree, order_cols) -> dict:
    """Per kind: "all", or a tuple of keys to read (empty: skip the table)."""
    if columns is None:
        return {}
    if isinstance(columns, str):
        raise InvalidInput("columns must be a list of column names, e.g. ['metrics.acc', 'params.C']")
    needed = set(columns) | (where_mod.columns_of(tree) if tree is not None else set()) | set(order_cols)
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
            if kind not in KINDS and pattern not in (*BASE_COLUMNS, "lifecycle"):
                raise InvalidInput(
                    f"unknown column {pattern!r}: use params.<key>, metrics.<key>, tags.<key> or one of "
                    f"{', '.join(BASE_COLUMNS)}"
                )
            continue  # a key no run has: nothing to show
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _shown(columns, tree, order_cols):
    """A test for the ``kind.key`` columns worth building: those the projection keeps, the filter reads or the
    order uses (all of them when there is no projection)."""
    if columns is None:
        return None
    needed = (where_mod.columns_of(tree) if tree is not None else set()) | set(order_cols)
    return lambda name: name in needed or any(fnmatch.fnmatchcase(name, p) for p in columns)


def _wide(kind: str, names: list[str], grid, shown) -> pd.DataFrame:
    """One column per key of a :class:`~mlo.store.runs.RunListing` grid (a row per run), or of its list of
    columns (a listing from the cache)."""
    labels = [f"{kind}.{k}" for k in names]
    if isinstance(grid, list):
        if shown is not None:
            grid = [c for c, label in zip(grid, labels, strict=True) if shown(label)]
            labels = [label for label in labels if shown(label)]
        if kind == "params":
            columns = {label: _decode_codes(*c) for c, label in zip(grid, labels, strict=True)}
        else:
            columns = dict(zip(labels, grid, strict=True))
        n = len(grid[0][0] if kind == "params" else grid[0]) if grid else 0
        if kind != "params" and columns:
            return pd.DataFrame(np.column_stack(grid) if len(grid) > 1 else columns, columns=labels)
        return pd.DataFrame(columns, index=pd.RangeIndex(n), columns=labels)
    if shown is not None:
        keep = [j for j, label in enumerate(labels) if shown(label)]
        if len(keep) < len(labels):
            labels, grid = [labels[j] for j in keep], grid[:, keep]
    if kind != "params":
        return pd.DataFrame(grid, columns=labels)
    columns = {label: _decode_texts(grid[:, j]) for j, label in enumerate(labels)}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(grid)), columns=labels)


# JSON numbers, as json.dumps writes them; integers of up to 15 digits are exact in float64
_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _decode_texts(texts: np.ndarray) -> pd.Series:
    """A column of param texts (None where a run lacks the key) → its values, as :func:`_decode_param_column`
    gives them. Params repeat a lot (``"adam"``, ``true``, ``32``): decode each distinct text once, then spread
    the results over the runs."""
    codes, distinct = pd.factorize(texts)  # None → -1
    if len(distinct) == 0:
        return pd.Series(texts, dtype=object)
    return _decode_codes(codes, distinct)


def _decode_codes(codes: np.ndarray, distinct) -> pd.Series:
    """:func:`_decode_texts` of the column whose run ``i`` holds ``distinct[codes[i]]`` (None at -1); ``distinct``
    an array of texts, or Arrow strings (a listing from the cache), classified in C++ then."""
    if len(distinct) == 0:
        return pd.Series(np.full(len(codes), None, dtype=object), dtype=object)
    missing = codes < 0
    # fast paths for columns of plain numbers, with the results _decode_param_column gives for them
    if isinstance(distinct, (np.ndarray, pd.Index)):
        numbers = distinct.tolist()
        if all(_JSON_INT.fullmatch(t) for t in numbers):
            values = np.array([int(t) for t in numbers] + [0], dtype=np.int64)[codes]
            return pd.Series(pd.arrays.IntegerArray(values, missing))
        decimal = all(_JSON_NUMBER.fullmatch(t) for t in numbers) and any(
            c in t for t in numbers for c in ".eE"
        )
    else:
        import pyarrow as pa
        import pyarrow.compute as pc

        def every(pattern: str) -> bool:
            return pc.all(pc.match_substring_regex(distinct, f"^(?:{pattern})$")).as_py()

        if every(_JSON_INT.pattern):
            values = np.append(pc.cast(distinct, pa.int64()).to_numpy(), 0)[codes]
            return pd.Series(pd.arrays.IntegerArray(values, missing))
        decimal = every(_JSON_NUMBER.pattern) and pc.any(pc.match_substring_regex(distinct, "[.eE]")).as_py()
        distinct = distinct.to_numpy(zero_copy_only=False)
    if decimal:
        parsed = pd.to_numeric(distinct, errors="coerce")  # the parser _decode_param_column uses
        if parsed.dtype == np.float64 and not np.isnan(parsed).any():
            values = np.append(parsed.astype("float64"), np.nan)[codes]
            return pd.Series(values)
    # the column as the grid frame of the listing holds it: the distinct texts, then a missing value (at -1)
    holder = np.empty((len(distinct) + 1, 1), dtype=object)
    holder[:-1, 0] = distinct
    decoded = _decode_param_column(pd.DataFrame(holder)[0])
    return decoded.take(codes).reset_index(drop=True)


def _decode_param_column(col: pd.Series) -> pd.Series:
    """Params are stored as JSON text: turn a column back into numbers, strings or objects, vectorized."""
    present = col.dropna()
    if present.empty:
        return col
    text = present.astype(str)
    if text.str.startswith('"').all() and not text.str.contains("\\", regex=False).any():  # no JSON escape
        return col.where(col.isna(), col.astype(str).str[1:-1])
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        out = pd.Series(np.nan, index=col.index, dtype="float64")
        out[numeric.index] = numeric.astype("float64")
        finite = np.isfinite(out[numeric.index]).all()  # ±Infinity is no integer (Int64 would raise)
        integral = finite and (numeric == numeric.round()).all()
        if integral and not text.str.contains(r"[.eE]", regex=True).any():
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
