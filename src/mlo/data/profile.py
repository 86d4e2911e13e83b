"""Column profiles: what a snapshot remembers about its data, for listings, drift references and signatures.

One profile is a JSON-able dict per column::

    {"name", "dtype", "kind", "count", "nulls", "distinct", "distinct_exact",
     # numeric and datetime columns (datetimes in epoch microseconds):
     "min", "max", "mean", "std", "quantiles": {"q": [...], "values": [...]}, "histogram": {"edges", "counts"},
     # every column with at most TOP_K distinct values, and every categorical/text/boolean column:
     "top": [[value, count], ...], "other": count outside top,
     "sampled": rows the sampled statistics (distinct, quantiles, top, histogram counts) came from, when not all}

``kind`` is one of numeric, boolean, categorical, datetime, text or other. Counts, nulls, min, max, mean and std
are always exact over every row. Up to :data:`SAMPLE_ROWS` rows everything else is exact too; above, the distinct
count, the quantiles, the top values and the histogram's counts come from a fixed-seed sample of that many rows
(one row drawn from each of that many equal stretches of the frame), and ``sampled`` says how many rows of the
column it held. A sampled histogram keeps the exact min and max as its outer edges, and its counts are scaled to
sum to the exact number of finite values. How far off a sampled figure can be: with 1,000,000 rows, any share
read from the sample (a bin's, a top value's, the rank of a quantile) is within ±0.2 percentage points of the
column's with probability 99.9% (the Dvoretzky–Kiefer–Wolfowitz bound for a simple random sample,
ε = √(ln(2/0.001) / 2·10⁶) ≈ 0.0019; a stratified sample is at least as accurate); a bin's share, the difference
of two such figures, within ±0.4 points.
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
CHUNK_ROWS = 1 << 18  # rows read at a time for the exact moments of a sampled column (2 MB of float64)
_MOMENT_ROWS = 1 << 16  # float64 values per stretch of an all-finite column's moments (512 KB: in the cache)
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
    """Sorted row positions of the fixed-seed sample of a frame with ``n`` rows (None: use every row).

    One row drawn at random from each of :data:`SAMPLE_ROWS` equal stretches of the frame (a stratified sample: at
    least as accurate as a simple random one, sorted as drawn, and of a size that does not grow with ``n``)."""
    if n <= SAMPLE_ROWS:
        return None
    rng = np.random.default_rng(seed)
    return ((np.arange(SAMPLE_ROWS) + rng.random(SAMPLE_ROWS)) * (n / SAMPLE_ROWS)).astype(np.int64)


def _chao1(counts: np.ndarray, n_sample: int, n_valid: int) -> int:
    """Distinct values of the whole column estimated from a sample's value counts: the values seen once or twice
    tell how many were missed (Chao1); a sample of nearly all-unique values scales up."""
    return _chao1_of(len(counts), int((counts == 1).sum()), int((counts == 2).sum()), n_sample, n_valid)


def _chao1_of(d: int, f1: int, f2: int, n_sample: int, n_valid: int) -> int:
    """:func:`_chao1` from the number of distinct values and of those seen once (``f1``) and twice (``f2``)."""
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


class _Floats:
    """A numeric or datetime column read as float64 (nulls as NaN, datetimes in epoch microseconds), a stretch
    at a time: the profile of a large column never holds a full-size copy of it."""

    def __init__(self, series: pd.Series, kind: str, known=None):
        self.known = known  # the moments, when computed already (:func:`_all_finite_moments`)
        dtype = series.dtype
        if kind == "datetime":
            if getattr(dtype, "tz", None) is not None:
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            self._raw, self._how = series.to_numpy(), "datetime"
        elif isinstance(dtype, np.dtype):
            self._raw, self._how = series.to_numpy(), "numpy"
        else:  # masked and Arrow-backed numbers
            self._raw, self._how = series.array, "extension"

    def take(self, part, out: np.ndarray | None = None) -> np.ndarray:
        """float64 values of the rows ``part`` (a slice or sorted positions), into ``out`` (a buffer at least as
        long, reused from column to column) when given and the column is float64 already."""
        if (
            out is not None
            and self._how == "numpy"
            and self._raw.dtype == np.float64
            and not isinstance(part, slice)
        ):
            return np.take(self._raw, part, out=out[: len(part)])
        raw = self._raw[part]
        if self._how == "numpy":
            return raw.astype(np.float64, copy=False)
        if self._how == "extension":
            return raw.to_numpy(dtype=np.float64, na_value=np.nan)
        nat = np.isnat(raw)
        out = raw.astype("datetime64[us]").astype(np.int64).astype(np.float64)
        if nat.any():
            out[nat] = np.nan
        return out


def _all_finite_moments(
    series: pd.Series,
    total: float | None = None,
    rows: np.ndarray | None = None,
    sample: np.ndarray | None = None,
) -> tuple[int, float, float, float, float] | None:
    """The moments of a contiguous float64 column whose values are all finite (no NaN, no infinity), without a
    copy and without a null mask. The mean is the column's sum (``total``, which the digest computed while it
    checked the column for NaN, or :func:`~mlo.data.digest.float_sum`) over its length; then one pass in
    stretches of :data:`_MOMENT_ROWS` values (512 KB, in the core's cache) takes each stretch's min and max, its
    squared deviations from that mean and, when ``rows`` (sorted positions) are given, the values of the sampled
    rows into ``sample`` (a stratified sample touches every cache line of the column: read apart, it would cost
    one more pass over the column). A NaN or an infinity shows in a min or max (or in the sum), and then this
    gives None."""
    if series.dtype != np.float64 or len(series) < 2:
        return None
    raw = series.to_numpy()
    if raw.ndim != 1 or raw.strides[0] != 8:
        return None
    if total is None:
        from .digest import float_sum

        total = float_sum(raw)
    if not math.isfinite(total):
        return None
    n = len(raw)
    mean = total / n
    step = _MOMENT_ROWS
    buf = np.empty(min(n, step))
    if rows is not None:  # where each stretch's sampled rows start and end
        bounds = np.searchsorted(rows, np.arange(0, n + step, step)).tolist()
    lo, hi, m2 = math.inf, -math.inf, 0.0
    for k, start in enumerate(range(0, n, step)):
        part = raw[start : start + step]
        part_lo, part_hi = float(part.min()), float(part.max())
        if not (math.isfinite(part_lo) and math.isfinite(part_hi)):
            return None
        lo, hi = min(lo, part_lo), max(hi, part_hi)
        if rows is not None and bounds[k + 1] > bounds[k]:
            a, b = bounds[k], bounds[k + 1]
            np.take(raw, rows[a:b], out=sample[a:b])
        dev = np.subtract(part, mean, out=buf[: part.size])
        m2 += float(np.einsum("i,i->", dev, dev))  # numpy's own loop: BLAS's dot may start threads
    return n, lo, hi, mean, math.sqrt(m2 / (n - 1))


def _moments(values: _Floats, n: int) -> tuple[int, float, float, float, float]:
    """Exact (finite count, min, max, mean, sample std) over every finite value, one stretch at a time; the
    stretches' means and squared deviations are merged with Chan's formula."""
    if values.known is not None:
        return values.known
    count, lo, hi, mean, m2 = 0, math.inf, -math.inf, 0.0, 0.0
    for start in range(0, n, CHUNK_ROWS):
        part = values.take(slice(start, start + CHUNK_ROWS))
        if not part.size:
            continue
        part_lo, part_hi = part.min(), part.max()
        if not (math.isfinite(part_lo) and math.isfinite(part_hi)):  # a NaN or an infinity is in the stretch
            part = part[np.isfinite(part)]
            if not part.size:
                continue
            part_lo, part_hi = part.min(), part.max()
        k = part.size
        lo, hi = min(lo, float(part_lo)), max(hi, float(part_hi))
        part_mean = float(part.mean())
        dev = part - part_mean
        part_m2 = float(np.einsum("i,i->", dev, dev))
        delta = part_mean - mean
        total = count + k
        mean += delta * k / total
        m2 += part_m2 + delta * delta * count * k / total
        count = total
    std = math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
    return count, lo, hi, mean, std


def _scaled(counts: np.ndarray, total: int) -> list[int]:
    """Sample counts scaled to sum to ``total`` (largest remainders get the rounding)."""
    exact = counts * (total / counts.sum())
    out = np.floor(exact).astype(np.int64)
    short = total - int(out.sum())
    if short > 0:
        out[np.argsort(-(exact - out), kind="stable")[:short]] += 1
    return [int(c) for c in out]


def _numeric(
    prof: dict, values: _Floats, n: int, sample: np.ndarray, n_valid: int, sampled: bool, as_int: bool = False
) -> None:
    """Moments (exact), histogram (exact up to :data:`SAMPLE_ROWS` rows, then scaled from the sample), distinct,
    quantiles and top values (from the sorted sample)."""
    if sampled:  # the sample is a copy of the sampled rows (fancy indexing): sorted in place, no second copy
        sample.sort()
        ordered = sample
    else:  # may be a view of the caller's column
        ordered = np.sort(sample)
    # distinct and value counts from the sorted sample (one pass, no hashing); a sample of all-different values
    # (most float columns) needs no index of where each value starts
    same = ordered[1:] == ordered[:-1]  # a value equal to the one before it
    n_distinct = ordered.size - int(np.count_nonzero(same))
    exact = ordered.size == n_valid
    if exact:
        prof["distinct"] = n_distinct
    else:  # values seen once and twice, from the runs of equal values (no index of where each run starts)
        pad = np.concatenate(([False], same, [False]))
        after, before = pad[:-1], pad[1:]  # position i equals the value before it / the value after it
        f1 = int(np.count_nonzero(~after & ~before))
        f2 = int(np.count_nonzero(before[:-1] & ~after[:-1] & ~before[1:]))
        del pad, after, before
        prof["distinct"] = _chao1_of(n_distinct, f1, f2, ordered.size, n_valid)
    prof["distinct_exact"] = exact
    if prof["distinct"] <= TOP_K and n_distinct:
        starts = np.flatnonzero(np.concatenate(([True], ~same)))
        counts = np.diff(np.append(starts, ordered.size))
        order = np.argsort(-counts, kind="stable")
        keys = ordered[starts][order]
        if as_int:
            keys = keys.astype(np.int64)
        vc = pd.Series(counts[order], index=keys)
        prof["top"], prof["other"] = _top(vc, ordered.size, n_valid)
    del same
    if ordered.dtype.kind == "f":  # sorted: -inf first, then the finite values, +inf, NaN last
        fs = ordered[np.searchsorted(ordered, -np.inf, "right") : np.searchsorted(ordered, np.inf, "left")]
    else:
        fs = ordered
    if sampled:
        n_finite, lo, hi, mean, std = _moments(values, n)
        finite = fs
    else:
        arr = sample  # every valid value
        finite = arr if np.isfinite(arr).all() else arr[np.isfinite(arr)]
        n_finite = finite.size
        if n_finite:
            lo, hi = float(finite.min()), float(finite.max())
            mean = float(finite.mean(dtype=np.float64))
            std = float(finite.std(dtype=np.float64, ddof=1)) if n_finite > 1 else 0.0
    if n_finite == 0:
        return
    prof["min"], prof["max"], prof["mean"], prof["std"] = lo, hi, mean, std
    if fs.size:  # linear interpolation between order statistics (numpy's default method)
        pos = np.asarray(QUANTILES) * (fs.size - 1)
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, fs.size - 1)
        quantiles = fs[below] + (pos - below) * (fs[above] - fs[below])
        prof["quantiles"] = {"q": QUANTILES, "values": [float(v) for v in quantiles]}
    if hi > lo:
        if sampled and fs.size:  # the sample is sorted: a bin's count is the distance between its edges
            edges = np.linspace(lo, hi, BINS + 1)
            below = np.searchsorted(fs, edges[:-1], side="left")
            hist = np.diff(np.append(below, fs.size))
        elif finite.size:
            hist, edges = np.histogram(finite, bins=BINS, range=(lo, hi))
        else:  # the sample holds no finite value: count every row, a stretch at a time
            hist = np.zeros(BINS, dtype=np.int64)
            for start in range(0, n, CHUNK_ROWS):
                part = values.take(slice(start, start + CHUNK_ROWS))
                part_hist, edges = np.histogram(part[np.isfinite(part)], bins=BINS, range=(lo, hi))
                hist += part_hist
        counts_out = _scaled(hist, n_finite) if hist.sum() != n_finite else [int(c) for c in hist]
    else:
        counts_out, edges = [n_finite], np.array([lo, hi])
    prof["histogram"] = {"edges": [float(e) for e in edges], "counts": counts_out}


def profile_column(
    series: pd.Series,
    seed: int = 0,
    rows: np.ndarray | None = None,
    total: float | None = None,
    scratch: np.ndarray | None = None,
) -> dict[str, Any]:
    """The profile of one column (see the module docstring for the fields); ``rows`` are the sampled row
    positions (:func:`sample_rows`), drawn once per frame; ``total`` is the sum of a float64 column when known
    (:func:`mlo.data.digest.digest` gives it); ``scratch`` a float64 buffer as long as ``rows`` for the sample
    (shared by the columns of a frame, so no column allocates its own)."""
    dtype = series.dtype
    kind = kind_of(dtype)
    n = len(series)
    if rows is None:
        rows = sample_rows(n, seed)
    known, sample = None, None
    if kind == "numeric" and rows is not None and dtype == np.float64:
        sample = scratch[: len(rows)] if scratch is not None else np.empty(len(rows))
        known = _all_finite_moments(series, total, rows, sample)  # the sample comes along when all finite
    isna = None if known is not None else series.isna().to_numpy()  # all finite: no nulls
    nulls = 0 if isna is None else int(isna.sum())
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
    if rows is not None:
        keep = rows[~isna[rows]] if nulls else rows
        prof["sampled"] = len(keep)

    if kind in ("numeric", "datetime"):
        values = _Floats(series, kind, known)
        if rows is None:
            sample = values.take(np.flatnonzero(~isna)) if nulls else values.take(slice(None))
        else:
            sample = sample if known is not None else values.take(keep, out=scratch)
        _numeric(
            prof,
            values,
            n,
            sample,
            n_valid,
            rows is not None,
            as_int=kind == "numeric" and pd.api.types.is_integer_dtype(dtype),
        )
        if kind == "datetime":
            prof.pop("top", None)
            prof.pop("other", None)
            prof["min_iso"] = pd.Timestamp(int(prof["min"]), unit="us").isoformat()
            prof["max_iso"] = pd.Timestamp(int(prof["max"]), unit="us").isoformat()
        return prof

    sample = series.iloc[keep] if rows is not None else (series[~isna] if nulls else series)
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


def profile_frame(
    df: pd.DataFrame, seed: int = 0, sums: dict[int, float] | None = None
) -> list[dict[str, Any]]:
    """Profiles of every column of ``df``, in column order (one row sample shared by all columns); ``sums`` maps
    column positions to the sums of float64 columns, when known (the digest's by-product)."""
    rows = sample_rows(len(df), seed)
    scratch = np.empty(len(rows)) if rows is not None else None
    sums = sums or {}
    return [
        profile_column(df.iloc[:, i].rename(str(c)), seed=seed, rows=rows, total=sums.get(i), scratch=scratch)
        for i, c in enumerate(df.columns)
    ]


def profile_table(table, seed: int = 0, sums: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """Profiles of every column of a pyarrow Table, converted to pandas one column at a time."""
    rows = sample_rows(table.num_rows, seed)
    scratch = np.empty(len(rows)) if rows is not None else None
    sums = sums or {}
    return [
        profile_column(
            table.column(i).to_pandas().rename(name), seed=seed, rows=rows, total=sums.get(i), scratch=scratch
        )
        for i, name in enumerate(table.column_names)
    ]
