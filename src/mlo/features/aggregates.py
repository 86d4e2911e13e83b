"""Aggregates over time: a sum, count, mean, min or max of a column over each entity's events in a window.

``mlo.features.agg("amount", "sum", window="7d")`` declares one; a feature view given ``aggregations=[...]``
computes them, for an entity row at time ``t``, over that entity's events in the window ``(t - 7 days, t]``:
nothing after ``t`` (no leak from the future), nothing older than the window. One function computes them for a
training frame (each row as of its own time) and for the online table (each entity as of the materialization),
so the served value is the very number a training row at that time holds.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .pointintime import Located, ViewIndex, window_start

FUNCTIONS = ("sum", "count", "mean", "min", "max")
CHUNK = 4_000_000  # events gathered at once: bounds the memory of a batch whose windows hold many events
_WINDOW = re.compile(r"^\s*(\d+)\s*(w|d|h|m|min|s)\s*$", re.IGNORECASE)
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}


@dataclass(frozen=True)
class Aggregation:
    """One aggregate feature: ``fn`` of column ``of`` over the window; ``name`` is the feature's column."""

    of: str
    fn: str
    window: str  # as written: "7d"
    window_us: int
    name: str

    def spec(self, of_dtype: str) -> dict[str, Any]:
        return {
            "of": self.of,
            "fn": self.fn,
            "window": self.window,
            "us": self.window_us,
            "of_dtype": of_dtype,
        }


def _window(window: Any) -> tuple[str, int]:
    if isinstance(window, (dt.timedelta, pd.Timedelta, np.timedelta64)):
        td = pd.Timedelta(window)
        us = int(td.value // 1000)
        label = (
            next(
                f"{us // (n * 1_000_000)}{unit}"
                for unit, n in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
                if us % (n * 1_000_000) == 0
            )
            if us % 1_000_000 == 0
            else f"{us}us"
        )
    elif isinstance(window, str) and (m := _WINDOW.match(window)):
        us = int(m.group(1)) * _UNITS[m.group(2).lower()] * 1_000_000
        label = f"{int(m.group(1))}{m.group(2).lower()}"
    else:
        raise InvalidInput(
            f"window takes a length like '7d', '12h', '30m', '90s', '2w' or a timedelta, got {window!r}"
        )
    if us <= 0:
        raise InvalidInput(f"window must be longer than zero, got {window!r}")
    return label, us


def agg(column: str, fn: str, *, window: Any, name: str | None = None) -> Aggregation:
    """An aggregate feature over time, for ``FeatureView(..., aggregations=[...])``.

    Parameters
    ----------
    column : str
        The column aggregated: an output of the view's transform, or a source column when the view has none.
    fn : {"sum", "count", "mean", "min", "max"}
    window : str or timedelta
        ``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"``: the events in ``(t - window, t]`` count for a row at
        time ``t``.
    name : str, optional
        The feature's column name (default ``"{column}_{fn}_{window}"``, e.g. ``amount_sum_7d``).
    """
    if not isinstance(column, str) or not column:
        raise InvalidInput(f"agg() takes the name of the column to aggregate, got {column!r}")
    if fn not in FUNCTIONS:
        raise InvalidInput(f"agg() function must be one of {', '.join(FUNCTIONS)}, got {fn!r}")
    label, us = _window(window)
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidInput(f"agg() name must be a column name, got {name!r}")
    return Aggregation(column, fn, label, us, name or f"{column}_{fn}_{label}")


def output_dtype(fn: str, of_dtype: str) -> str:
    if fn == "count":
        return "int64"
    if fn == "sum" and getattr(pd.api.types.pandas_dtype(of_dtype), "kind", "O") in "iub":
        return "int64"
    return "float64"


def check_column(a: Aggregation, dtype: Any, view: str) -> None:
    numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    if a.fn != "count" and not numeric:
        raise InvalidInput(
            f"feature view {view!r}: {a.fn} of {a.of!r} needs numbers, and {a.of!r} is {dtype}; count works on any "
            "column"
        )


def _values(index: ViewIndex, spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The column's values as int64 (whole numbers with no gap) or float64, and where they are present."""
    col = index.table.column(spec["of"])
    present = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if spec["fn"] == "count":
        return present.astype(np.int64), present
    if output_dtype(spec["fn"], spec["of_dtype"]) == "int64" and col.null_count == 0:
        return np.asarray(col.to_numpy(zero_copy_only=False)).astype(np.int64, copy=False), present
    values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, present & ~np.isnan(values)


def compute(
    index: ViewIndex, where: Located, specs: list[dict[str, Any]], names: list[str]
) -> dict[str, np.ndarray]:
    """Each aggregate of ``specs`` (with the feature names ``names``) for every located entity row."""
    out: dict[str, np.ndarray] = {}
    firsts: dict[int, np.ndarray] = {}
    for spec, name in zip(specs, names, strict=True):
        first = firsts.get(spec["us"])
        if first is None:
            first = firsts[spec["us"]] = window_start(index, where, spec["us"])
        values, present = _values(index, spec)
        out[name] = _reduce(spec["fn"], values, present, first, where.upto)
    return out


def _reduce(
    fn: str, values: np.ndarray, present: np.ndarray, first: np.ndarray, upto: np.ndarray
) -> np.ndarray:
    """``fn`` over ``values[first[i]:upto[i]]`` for each row i, each window summed in time order."""
    n = len(first)
    lengths = upto - first
    if fn == "count":
        total = np.zeros(n, dtype=np.int64)
    elif fn == "sum":
        total = np.zeros(n, dtype=values.dtype if values.dtype == np.int64 else np.float64)
    else:
        total = np.full(n, np.nan)
    counts = np.zeros(n, dtype=np.int64)
    ends = np.cumsum(lengths)
    lo = 0
    while lo < n:  # rows in chunks whose windows hold at most CHUNK events together
        base = ends[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(ends, base + CHUNK, side="right")), lo + 1)
        _reduce_rows(fn, values, present, first[lo:hi], lengths[lo:hi], total[lo:hi], counts[lo:hi])
        lo = hi
    if fn == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    return total


def _reduce_rows(fn, values, present, first, lengths, total, counts) -> None:
    some = lengths > 0
    if not some.any():
        return
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - first, lengths)
    heads = offsets[some]
    if fn == "count":
        total[some] = np.add.reduceat(values[positions], heads)
        return
    got = present[positions]
    counts[some] = np.add.reduceat(got.astype(np.int64), heads)
    if fn in ("sum", "mean"):
        picked = values[positions]
        if picked.dtype == np.float64:
            picked = np.where(got, picked, 0.0)
        total[some] = np.add.reduceat(picked, heads)
    else:
        picked = np.where(got, values[positions].astype(np.float64), np.nan)
        reduce = np.fmin if fn == "min" else np.fmax
        total[some] = reduce.reduceat(picked, heads)
