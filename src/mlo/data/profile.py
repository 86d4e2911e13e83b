"""Column profiles: what a snapshot remembers about its data, for listings, drift references and signatures.

One profile is a JSON-able dict per column::

    {"name", "dtype", "kind", "count", "nulls", "distinct", "distinct_exact",
     # numeric and datetime columns (datetimes in epoch microseconds):
     "min", "max", "mean", "std", "quantiles": {"q": [...], "values": [...]}, "histogram": {"edges", "counts"},
     # every column with at most TOP_K distinct values, and every categorical/text/boolean column:
     "top": [[value, count], ...], "other": count outside top,
     "sampled": rows the sampled statistics (distinct, quantiles, top) were computed from, when not all}

``kind`` is one of numeric, boolean, categorical, datetime, text, other. Counts, nulls, min, max, mean, std and the
histogram are always exact over every row; above :data:`SAMPLE_ROWS` rows the distinct count, the quantiles and the
top values come from a fixed-seed sample of that many rows, and ``sampled`` says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .dtypes import dtype_kind

TOP_K = 50
BINS = 50
QUANTILES = [i / 100 for i in range(101)]
SAMPLE_ROWS = 1_000_000
CATEGORICAL_MAX_SHARE = (
    0.05  # an object/string column is categorical when distinct <= 5% of rows (or <= TOP_K)
)


_KINDS = {
    "category": "categorical",
    "boolean": "boolean",
    "integer": "numeric",
    "float": "numeric",
    "complex": "numeric",
    "string": "text",
    "object": "text",
}


def kind_of(dtype: Any) -> str:
    """numeric, boolean, categorical, datetime, text or other (see :func:`mlo.data.dtypes.dtype_kind`)."""
    kind = dtype_kind(dtype)
    if kind == "datetime":
        return "datetime" if pd.api.types.is_datetime64_any_dtype(dtype) else "other"
    return _KINDS.get(kind, "other")


def _json_value(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (str, int)) or v is None:
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def sample_rows(n: int, seed: int) -> np.ndarray | None:
    """Sorted row positions of the fixed-seed sample of a frame with ``n`` rows (None: use every row)."""
    if n <= SAMPLE_ROWS:
        return None
    idx = np.random.default_rng(seed).choice(n, SAMPLE_ROWS, replace=False)
    idx.sort()
    return idx


def _chao1(counts: np.ndarray, n_sample: int, n_valid: int) -> int:
    """Distinct values of the whole column estimated from a sample's value counts: the values seen once or twice
    tell how many were missed (Chao1); a sample of nearly all-unique values scales up."""
    d = len(counts)
    f1 = int((counts == 1).sum())
    f2 = int((counts == 2).sum())
    if f1 == 0:
        return d
    if f2 == 0:
        return int(min(n_valid, round(d * n_valid / max(n_sample, 1))))
    return int(min(n_valid, round(d + f1 * f1 / (2 * f2))))


def _top(vc: pd.Series, n_sample: int, n_valid_total: int) -> tuple[list, int]:
    head = vc.iloc[:TOP_K]
    scale = n_valid_total / max(n_sample, 1)
    top = [[_json_value(k), int(round(int(c) * scale))] for k, c in head.items()]
    return top, max(0, n_valid_total - sum(c for _, c in top))


def _numeric(prof: dict, arr: np.ndarray, sample: np.ndarray, n_valid: int, as_int: bool = False) -> None:
    """Exact moments and histogram over ``arr``; distinct, quantiles and top values from the sorted sample."""
    if arr.dtype.kind == "f":
        finite_mask = np.isfinite(arr)
        finite = arr if finite_mask.all() else arr[finite_mask]  # copy only when there are infinities
    else:
        finite = arr
    ordered = np.sort(sample)
    # distinct and value counts from the sorted sample (one pass, no hashing)
    starts = (
        np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))) if ordered.size else ordered
    )
    counts = np.diff(np.append(starts, ordered.size))
    exact = ordered.size == n_valid
    prof["distinct"] = int(len(starts)) if exact else _chao1(counts, ordered.size, n_valid)
    prof["distinct_exact"] = exact
    if prof["distinct"] <= TOP_K and len(starts):
        order = np.argsort(-counts, kind="stable")
        keys = ordered[starts][order]
        if as_int:
            keys = keys.astype(np.int64)
        vc = pd.Series(counts[order], index=keys)
        prof["top"], prof["other"] = _top(vc, ordered.size, n_valid)
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    prof["min"], prof["max"] = lo, hi
    prof["mean"] = float(finite.mean(dtype=np.float64))
    prof["std"] = float(finite.std(dtype=np.float64, ddof=1)) if finite.size > 1 else 0.0
    fs = ordered[np.isfinite(ordered)] if ordered.dtype.kind == "f" else ordered
    if fs.size:  # linear interpolation between order statistics (numpy's default method)
        pos = np.asarray(QUANTILES) * (fs.size - 1)
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, fs.size - 1)
        values = fs[below] + (pos - below) * (fs[above] - fs[below])
        prof["quantiles"] = {"q": QUANTILES, "values": [float(v) for v in values]}
    if hi > lo:
        hist, edges = np.histogram(finite, bins=BINS, range=(lo, hi))
    else:
        hist, edges = np.array([finite.size]), np.array([lo, hi])
    prof["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in hist]}


def profile_column(series: pd.Series, seed: int = 0, rows: np.ndarray | None = None) -> dict[str, Any]:
    """The profile of one column (see the module docstring for the fields); ``rows`` are the sampled row
    positions (:func:`sample_rows`), drawn once per frame."""
    dtype = series.dtype
    kind = kind_of(dtype)
    n = len(series)
    if rows is None:
        rows = sample_rows(n, seed)
    isna = series.isna().to_numpy()
    nulls = int(isna.sum())
    prof: dict[str, Any] = {
        "name": str(series.name),
        "dtype": str(dtype),
        "kind": kind,
        "count": n,
        "nulls": nulls,
    }
    n_valid = n - nulls
    if n_valid == 0:
        prof["distinct"], prof["distinct_exact"] = 0, True
        return prof
    valid = series[~isna] if nulls else series
    sample = series.iloc[rows] if rows is not None else series
    if rows is not None:
        sample = sample[~isna[rows]] if nulls else sample
        prof["sampled"] = len(sample)

    if kind in ("numeric", "datetime"):
        if kind == "numeric":
            arr = valid.to_numpy(dtype=np.float64)
            sarr = arr if rows is None else sample.to_numpy(dtype=np.float64)
        else:
            stamps = (
                valid
                if getattr(dtype, "tz", None) is None
                else valid.dt.tz_convert("UTC").dt.tz_localize(None)
            )
            arr = stamps.to_numpy().astype("datetime64[us]").astype(np.int64).astype(np.float64)
            if rows is None:
                sarr = arr
            else:
                ss = (
                    sample
                    if getattr(dtype, "tz", None) is None
                    else sample.dt.tz_convert("UTC").dt.tz_localize(None)
                )
                sarr = ss.to_numpy().astype("datetime64[us]").astype(np.int64).astype(np.float64)
        _numeric(prof, arr, sarr, n_valid, as_int=kind == "numeric" and pd.api.types.is_integer_dtype(dtype))
        if kind == "datetime":
            prof.pop("top", None)
            prof.pop("other", None)
            prof["min_iso"] = pd.Timestamp(int(prof["min"]), unit="us").isoformat()
            prof["max_iso"] = pd.Timestamp(int(prof["max"]), unit="us").isoformat()
        return prof

    try:
        vc = sample.value_counts(dropna=True, sort=True)
    except TypeError:  # unhashable values (lists, dicts)
        prof["distinct"], prof["distinct_exact"] = None, False
        return prof
    exact = len(sample) == n_valid
    prof["distinct"] = len(vc) if exact else _chao1(vc.to_numpy(), len(sample), n_valid)
    prof["distinct_exact"] = exact
    if kind == "text" and prof["distinct"] <= max(TOP_K, CATEGORICAL_MAX_SHARE * n_valid):
        prof["kind"] = kind = "categorical"
    prof["top"], prof["other"] = _top(vc, len(sample), n_valid)
    return prof


def profile_frame(df: pd.DataFrame, seed: int = 0) -> list[dict[str, Any]]:
    """Profiles of every column of ``df``, in column order (one row sample shared by all columns)."""
    rows = sample_rows(len(df), seed)
    return [
        profile_column(df.iloc[:, i].rename(str(c)), seed=seed, rows=rows) for i, c in enumerate(df.columns)
    ]
