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

TOP_K = 50
BINS = 50
QUANTILES = [i / 100 for i in range(101)]
SAMPLE_ROWS = 1_000_000
CATEGORICAL_MAX_SHARE = (
    0.05  # an object/string column is categorical when distinct <= 5% of rows (or <= TOP_K)
)


def kind_of(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text"
    return "other"


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


def _sample(values: pd.Series, seed: int) -> pd.Series:
    if len(values) <= SAMPLE_ROWS:
        return values
    idx = np.random.default_rng(seed).choice(len(values), SAMPLE_ROWS, replace=False)
    idx.sort()
    return values.iloc[idx]


def _distinct(valid: pd.Series, n_valid: int) -> tuple[int, bool]:
    if len(valid) == n_valid:
        return int(valid.nunique(dropna=True)), True
    # Estimated from a sample: values seen once or twice tell how many were missed (Chao1)
    counts = valid.value_counts(dropna=True).to_numpy()
    d = len(counts)
    f1 = int((counts == 1).sum())
    f2 = int((counts == 2).sum())
    if f1 == 0:
        return d, False
    if f2 == 0:  # almost all values unique: scale up
        return int(min(n_valid, round(d * n_valid / max(len(valid), 1)))), False
    return int(min(n_valid, round(d + f1 * f1 / (2 * f2)))), False


def _top(valid: pd.Series, n_valid_total: int) -> tuple[list, int]:
    vc = valid.value_counts(dropna=True, sort=True)
    head = vc.iloc[:TOP_K]
    scale = n_valid_total / max(len(valid), 1)
    top = [[_json_value(k), int(round(int(c) * scale))] for k, c in head.items()]
    return top, max(0, n_valid_total - sum(c for _, c in top))


def _numeric(prof: dict, arr: np.ndarray, sample: np.ndarray) -> None:
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    prof["min"], prof["max"] = lo, hi
    prof["mean"] = float(finite.mean(dtype=np.float64))
    prof["std"] = float(finite.std(dtype=np.float64, ddof=1)) if finite.size > 1 else 0.0
    fs = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    if fs.size:
        prof["quantiles"] = {"q": QUANTILES, "values": [float(v) for v in np.quantile(fs, QUANTILES)]}
    if hi > lo:
        counts, edges = np.histogram(finite, bins=BINS, range=(lo, hi))
    else:
        counts, edges = np.array([finite.size]), np.array([lo, hi])
    prof["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def profile_column(series: pd.Series, seed: int = 0) -> dict[str, Any]:
    """The profile of one column (see the module docstring for the fields)."""
    dtype = series.dtype
    kind = kind_of(dtype)
    n = len(series)
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
    sample = _sample(valid, seed)
    if len(sample) < n_valid:
        prof["sampled"] = len(sample)
    try:
        prof["distinct"], prof["distinct_exact"] = _distinct(sample, n_valid)
    except TypeError:  # unhashable values (lists, dicts)
        prof["distinct"], prof["distinct_exact"] = None, False
        return prof

    if kind == "numeric":
        arr = valid.to_numpy(dtype=np.float64)
        _numeric(prof, arr, sample.to_numpy(dtype=np.float64))
    elif kind == "datetime":
        values = valid.to_numpy()
        if getattr(dtype, "tz", None) is not None:
            values = valid.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        us = values.astype("datetime64[us]").astype(np.int64).astype(np.float64)
        _numeric(prof, us, us if len(sample) == n_valid else us[:: max(1, n_valid // SAMPLE_ROWS)])
        prof["min_iso"] = pd.Timestamp(int(prof["min"]), unit="us").isoformat()
        prof["max_iso"] = pd.Timestamp(int(prof["max"]), unit="us").isoformat()

    if kind == "text" and prof["distinct"] is not None:
        if prof["distinct"] <= max(TOP_K, CATEGORICAL_MAX_SHARE * n_valid):
            prof["kind"] = kind = "categorical"
    if kind in ("categorical", "boolean", "text") or (prof["distinct"] or 0) <= TOP_K:
        if kind != "datetime":
            prof["top"], prof["other"] = _top(sample, n_valid)
    return prof


def profile_frame(df: pd.DataFrame, seed: int = 0) -> list[dict[str, Any]]:
    """Profiles of every column of ``df``, in column order."""
    return [profile_column(df.iloc[:, i].rename(str(c)), seed=seed) for i, c in enumerate(df.columns)]
