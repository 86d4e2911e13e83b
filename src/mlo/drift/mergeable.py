"""Mergeable sketches: what drift needs of a column, computed chunk by chunk and added up.

A :class:`DatasetSketch` holds, per column, exact counts (rows, missing, infinite values), exact moments (count,
mean, sum of squares, sum of absolute values, min, max) and either

- the exact value counts, when the column has few distinct values (categorical columns, booleans, and numeric
  columns with at most :data:`EXACT_VALUES_MAX` distinct values): comparisons are then exact; or
- a log-bucket histogram of the finite values: bucket ``k`` holds the values ``x`` with
  ``γ^(k-1) < |x - c| ≤ γ^k`` (``γ = (1 + α) / (1 - α)``, one grid per sign, one bucket for ``|x - c| ≤``
  :data:`TINY`), around a centre ``c`` fixed per column before the first chunk (0, or the reference's mean, so
  that values far from 0 but close together still spread over many buckets). Every value is represented by its
  bucket's centre, within ``α·|x - c|`` of it (the relative accuracy ``α``, by default :data:`ACCURACY`).

The buckets are fixed in advance (they depend only on ``α`` and ``c``), so sketches of any chunks — Dask partitions,
monitoring windows, days — merge by adding counts, in any order, with the same result. From two sketches with the
same centres:

- Kolmogorov–Smirnov: the statistic read at the bucket edges, ``D̂``, is a lower bound of the exact ``D`` and
  ``D ≤ D̂ + max_k max(r_k, c_k)`` where ``r_k, c_k`` are the shares of the two samples in bucket ``k``;
- Wasserstein: moving every value by at most ``α·|x - c|`` moves the distance by at most
  ``α·(E|X_ref - c| + E|X_cur - c|) + 2·TINY``; the normed distance divides this by the reference's standard
  deviation, which is exact (from the moments);
- counts, missing-value rates, means and standard deviations: exact.

The bounds are computed for each column and reported (``ColumnResult.error_bound``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput

ACCURACY = 1e-3  # relative accuracy α of the log buckets
TINY = 1e-12  # values with |x| at or below this share one bucket at 0
EXACT_VALUES_MAX = 24  # a numeric chunk with at most this many distinct values keeps them exactly
CATEGORIES_MAX = (
    100_000  # a text chunk with more distinct values than this (and than half its rows) is free text
)
VERSION = 1

_FAMILIES = ("float", "int", "bool", "category", "object", "datetime", "other")


def _gamma(accuracy: float) -> float:
    return (1.0 + accuracy) / (1.0 - accuracy)


def _sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if keys.size == 0:
        return keys.astype(np.int64), counts.astype(np.float64)
    uniq, inv = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inv, weights=counts, minlength=uniq.size)


@dataclass
class ColumnSketch:
    """One column's sketch. ``values`` (exact distinct numeric values and counts) or the buckets hold the finite
    values of a numeric column; ``counts`` the values of a categorical one (None: too many to keep)."""

    name: str
    family: str
    rows: int = 0
    missing: int = 0
    # numeric part
    infinite: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    abs_sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    center: float = 0.0  # the buckets' origin c
    zero: float = 0.0
    pos_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)
    pos_counts: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    neg_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)
    neg_counts: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    values: pd.Series | None = field(default=None, repr=False)  # exact numeric value → count, when few
    # categorical part
    counts: pd.Series | None = field(default=None, repr=False)
    text: bool = False  # too many distinct strings to keep: free text

    @property
    def numeric(self) -> bool:
        return self.family in ("float", "int", "datetime")

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values (exact, from the moments)."""
        return math.sqrt(max(self.m2 / self.n, 0.0)) if self.n else 0.0

    @property
    def mean_abs(self) -> float:
        """E|X - c|: the mean distance of the values from the buckets' origin."""
        return self.abs_sum / self.n if self.n else 0.0

    @property
    def n_buckets(self) -> int:
        return int(self.pos_keys.size + self.neg_keys.size + (self.zero > 0))

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        if other.name != self.name:
            raise InvalidInput(f"cannot merge sketches of columns {self.name!r} and {other.name!r}")
        a, b = self, other
        if a.center != b.center and a.n and b.n:
            raise InvalidInput(
                f"column {self.name!r}: sketches around different centres ({a.center:g}, {b.center:g}) do not "
                "merge; sketch every chunk with the same center= (e.g. center=reference_sketch)"
            )
        out = replace(
            a, rows=a.rows + b.rows, missing=a.missing + b.missing, infinite=a.infinite + b.infinite
        )
        out.family = a.family if a.family == b.family or b.rows == b.missing else b.family
        if a.rows == a.missing and b.rows != b.missing:
            out.family = b.family
        n = a.n + b.n
        if n:
            delta = b.mean - a.mean
            out.mean = a.mean + delta * (b.n / n)
            out.m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
        out.n, out.abs_sum = n, a.abs_sum + b.abs_sum
        out.min, out.max = min(a.min, b.min), max(a.max, b.max)
        out.center = a.center if a.n else b.center
        out.zero = a.zero + b.zero
        out.pos_keys, out.pos_counts = _sum_by_key(
            np.concatenate([a.pos_keys, b.pos_keys]), np.concatenate([a.pos_counts, b.pos_counts])
        )
        out.neg_keys, out.neg_counts = _sum_by_key(
            np.concatenate([a.neg_keys, b.neg_keys]), np.concatenate([a.neg_counts, b.neg_counts])
        )
        if a.values is not None and b.values is not None:
            vals = a.values.add(b.values, fill_value=0.0)
            out.values = vals if len(vals) <= EXACT_VALUES_MAX else None
        else:
            out.values = None
        out.text = a.text or b.text
        if out.text:
            out.counts = None
        elif a.counts is None or b.counts is None:
            out.counts = a.counts if b.counts is None else b.counts
        else:
            out.counts = a.counts.add(b.counts, fill_value=0.0)
        return out

    def to_dict(self) -> dict[str, Any]:
        def series(s):
            return None if s is None else [[_plain(k), float(v)] for k, v in s.items()]

        return {
            "name": self.name,
            "family": self.family,
            "rows": self.rows,
            "missing": self.missing,
            "infinite": self.infinite,
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "abs_sum": self.abs_sum,
            "min": None if math.isinf(self.min) else self.min,
            "max": None if math.isinf(self.max) else self.max,
            "center": self.center,
            "zero": self.zero,
            "pos": [self.pos_keys.tolist(), self.pos_counts.tolist()],
            "neg": [self.neg_keys.tolist(), self.neg_counts.tolist()],
            "values": series(self.values),
            "counts": series(self.counts),
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnSketch:
        def series(pairs):
            if pairs is None:
                return None
            return pd.Series(
                [float(c) for _, c in pairs], index=pd.Index([k for k, _ in pairs], dtype=object)
            )

        try:
            return cls(
                name=str(d["name"]),
                family=str(d["family"]),
                rows=int(d["rows"]),
                missing=int(d["missing"]),
                infinite=int(d.get("infinite", 0)),
                n=int(d.get("n", 0)),
                mean=float(d.get("mean", 0.0)),
                m2=float(d.get("m2", 0.0)),
                abs_sum=float(d.get("abs_sum", 0.0)),
                min=math.inf if d.get("min") is None else float(d["min"]),
                max=-math.inf if d.get("max") is None else float(d["max"]),
                center=float(d.get("center", 0.0)),
                zero=float(d.get("zero", 0.0)),
                pos_keys=np.asarray(d["pos"][0], dtype=np.int64),
                pos_counts=np.asarray(d["pos"][1], dtype=np.float64),
                neg_keys=np.asarray(d["neg"][0], dtype=np.int64),
                neg_counts=np.asarray(d["neg"][1], dtype=np.float64),
                values=None if d.get("values") is None else series(d["values"]).astype(np.float64),
                counts=series(d.get("counts")),
                text=bool(d.get("text", False)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(
                f"not a column sketch ({type(exc).__name__}: {exc}); make one with mlo.drift.sketch"
            ) from None

    # -- the finite values as weighted points (bucket centres, or the exact values) ------------------------------------
    def points(self, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
        """Sorted values and their counts: the exact values when kept, else the bucket centres."""
        if self.values is not None:
            v = self.values.sort_index()
            return v.index.to_numpy(dtype=np.float64), v.to_numpy(dtype=np.float64)
        g = _gamma(accuracy)
        centre = 2.0 / (g + 1.0)  # centre of (γ^(k-1), γ^k] relative to γ^k: within α of every value in it
        neg = -centre * np.power(g, self.neg_keys[::-1].astype(np.float64))
        pos = centre * np.power(g, self.pos_keys.astype(np.float64))
        zero = np.array([0.0]) if self.zero else np.empty(0)
        values = np.concatenate([neg, zero, pos]) + self.center
        counts = np.concatenate([self.neg_counts[::-1], [self.zero] if self.zero else [], self.pos_counts])
        return values, counts


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _family(dtype) -> str:
    from .methods import dtype_family

    fam = dtype_family(dtype)
    return fam if fam in _FAMILIES else "other"


def _as_float(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[us]")
        arr = stamps.astype(np.int64).astype(np.float64)
        arr[np.isnat(stamps)] = np.nan
        return arr
    if series.dtype == np.float64:
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _numeric_sketch(
    name: str, family: str, arr: np.ndarray, accuracy: float, center: float = 0.0
) -> ColumnSketch:
    """Counts, moments and log buckets of a float array, in a few vectorised passes (one ``log``)."""
    rows = arr.size
    nan_mask = np.isnan(arr)
    nan = int(np.count_nonzero(nan_mask))
    x = arr[~nan_mask] if nan else arr
    out = ColumnSketch(name, family, rows, nan, center=float(center))
    if x.size == 0:
        out.values = pd.Series([], dtype=np.float64)
        return out
    lo, hi = float(x.min()), float(x.max())
    if math.isinf(lo) or math.isinf(hi):
        x = x[np.isfinite(x)]
        if x.size == 0:
            out.infinite = rows - nan
            out.values = pd.Series([], dtype=np.float64)
            return out
        lo, hi = float(x.min()), float(x.max())
    out.infinite, out.n = rows - nan - x.size, int(x.size)
    out.min, out.max = lo, hi
    out.mean = float(x.mean())
    work = x - out.mean
    np.square(work, out=work)
    out.m2 = float(work.sum())
    c = out.center
    np.subtract(x, c, out=work)
    np.abs(work, out=work)
    out.abs_sum = float(work.sum())
    if lo - c > TINY or hi - c < -TINY:  # no value near the centre
        neg = x < c if hi - c < -TINY else None
    else:
        keep = work > TINY
        out.zero = float(x.size - np.count_nonzero(keep))
        work, neg = work[keep], x[keep] < c
    if work.size:
        np.log(work, out=work)
        work *= 1.0 / math.log(_gamma(accuracy))
        np.ceil(work, out=work)
        keys = work.astype(np.int64)
        k_lo = int(keys.min())
        width = int(keys.max()) - k_lo + 1
        keys -= k_lo
        if neg is not None and neg.any():
            keys[neg] += width  # negative values in the second half
        counts = np.bincount(keys, minlength=2 * width).astype(np.float64)
        pos, negc = counts[:width], counts[width:]
        nz = np.flatnonzero(pos)
        out.pos_keys, out.pos_counts = nz + k_lo, pos[nz]
        nz = np.flatnonzero(negc)
        out.neg_keys, out.neg_counts = nz + k_lo, negc[nz]
    if out.n_buckets <= EXACT_VALUES_MAX:
        vals, cnts = np.unique(x, return_counts=True)
        if vals.size <= EXACT_VALUES_MAX:
            out.values = pd.Series(cnts.astype(np.float64), index=pd.Index(vals, dtype=np.float64))
    return out


def sketch_column(
    series: pd.Series, name: str | None = None, accuracy: float = ACCURACY, center: float = 0.0
) -> ColumnSketch:
    """The sketch of one column (a chunk of it); ``center`` is the origin of a numeric column's buckets."""
    name = str(series.name if name is None else name)
    family = _family(series.dtype)
    rows = len(series)
    if family in ("float", "int", "datetime"):
        return _numeric_sketch(name, family, _as_float(series), accuracy, center)
    counts = series.value_counts(dropna=True, sort=False)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]
    counts.index = counts.index.astype(object)
    n_valid = int(counts.sum())
    out = ColumnSketch(name, family, rows, rows - n_valid)
    if len(counts) > max(CATEGORIES_MAX, n_valid // 2):
        out.text = True
    else:
        out.counts = counts.astype(np.float64)
    return out


@dataclass
class DatasetSketch:
    """Mergeable sketches of a dataset's columns: ``a.merge(b)`` is the sketch of ``a``'s rows and ``b``'s."""

    columns: dict[str, ColumnSketch]
    rows: int = 0
    accuracy: float = ACCURACY

    def merge(self, other: DatasetSketch) -> DatasetSketch:
        if not isinstance(other, DatasetSketch):
            raise InvalidInput(f"can only merge a DatasetSketch with another, got {type(other).__name__}")
        if other.accuracy != self.accuracy:
            raise InvalidInput(
                f"sketches of different accuracy ({self.accuracy} and {other.accuracy}) do not merge; "
                "make both with the same accuracy="
            )
        cols = dict(self.columns)
        for name, col in other.columns.items():
            if name in cols:
                cols[name] = cols[name].merge(col)
            else:  # a column only some chunks have: its counts cover those chunks
                cols[name] = replace(col)
        return DatasetSketch(cols, self.rows + other.rows, self.accuracy)

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def centers(self) -> dict[str, float]:
        """The origin of each numeric column's buckets (pass as ``center=`` to sketch matching chunks)."""
        return {n: c.center for n, c in self.columns.items() if c.numeric}

    def __getitem__(self, name: str) -> ColumnSketch:
        return self.columns[name]

    def __len__(self) -> int:
        return self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "rows": self.rows,
            "accuracy": self.accuracy,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetSketch:
        if not isinstance(d, Mapping) or "columns" not in d:
            raise InvalidInput("not a dataset sketch: expected the dict of DatasetSketch.to_dict()")
        cols = [ColumnSketch.from_dict(c) for c in d["columns"]]
        return cls({c.name: c for c in cols}, int(d.get("rows", 0)), float(d.get("accuracy", ACCURACY)))

    def __repr__(self) -> str:
        return f"DatasetSketch({self.rows:,} rows, {len(self.columns)} columns, accuracy={self.accuracy:g})"


def _check_accuracy(accuracy: float) -> float:
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 < accuracy < 0.5:
        raise InvalidInput(f"accuracy must be a relative error in (0, 0.5), e.g. 0.001; got {accuracy!r}")
    return float(accuracy)


def sketch_frame(
    frame: pd.DataFrame,
    columns: Iterable[str] | None = None,
    accuracy: float = ACCURACY,
    centers: Mapping[str, float] | None = None,
) -> DatasetSketch:
    """The sketch of an in-memory DataFrame (or one chunk of a larger dataset); ``centers`` maps numeric columns
    to the origin of their buckets (0 when absent)."""
    names = [str(c) for c in frame.columns] if columns is None else [str(c) for c in columns]
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    centers = centers or {}
    cols = {
        name: sketch_column(frame[name], name, accuracy, centers.get(name, 0.0))
        for name in names
        if name in frame.columns
    }
    return DatasetSketch(cols, len(frame), accuracy)


def centers_of(frame: pd.DataFrame) -> dict[str, float]:
    """The mean of every numeric (and datetime) column's finite values: centres that keep the buckets tight."""
    out = {}
    for name in frame.columns:
        if _family(frame[name].dtype) in ("float", "int", "datetime"):
            arr = _as_float(frame[name])
            finite = arr[np.isfinite(arr)]
            out[str(name)] = float(finite.mean()) if finite.size else 0.0
    return out


def _resolve_centers(center: Any, data: Any) -> dict[str, float] | None:
    if center is None:
        return None
    if isinstance(center, DatasetSketch):
        return center.centers
    if isinstance(center, Mapping):
        return {str(k): float(v) for k, v in center.items()}
    if center == "mean":
        if is_dask_frame(data):
            from .distributed import first_partition_centers

            return first_partition_centers(data)
        return centers_of(data)
    raise InvalidInput(
        f"center must be None, 'mean', a dict {{column: value}} or a DatasetSketch to match; got {center!r:.40}"
    )


def merge_all(sketches: Iterable[DatasetSketch]) -> DatasetSketch:
    """Merge any number of sketches (pairwise, in a balanced tree)."""
    items = list(sketches)
    if not items:
        raise InvalidInput("nothing to merge: give at least one sketch")
    while len(items) > 1:
        items = [
            items[i].merge(items[i + 1]) if i + 1 < len(items) else items[i] for i in range(0, len(items), 2)
        ]
    return items[0]


def sketch(
    data: Any, columns: Iterable[str] | None = None, accuracy: float = ACCURACY, center: Any = None
) -> DatasetSketch:
    """A mergeable sketch of ``data``: a pandas DataFrame, a Dask DataFrame (one sketch per partition, computed
    where the data lives — on the active ``dask.distributed`` client when there is one — and merged here), or an
    existing sketch (returned as it is).

    Parameters
    ----------
    data : pandas or Dask DataFrame, or DatasetSketch
    columns : list of str, optional
        The columns to sketch (default: all).
    accuracy : float, default 0.001
        Relative accuracy α of the numeric buckets; sketches merge and compare only with the same accuracy.
    center : None, "mean", dict or DatasetSketch
        The origin of each numeric column's buckets: 0 (None), the data's mean (``"mean"``; for a Dask DataFrame,
        its first partition's), given values, or those of another sketch — so that a current window's sketch
        matches the reference's: ``sketch(window, center=reference_sketch)``.

    Merge sketches of chunks with :meth:`DatasetSketch.merge` or :func:`merge_all`; compare two with
    ``mlo.drift(reference_sketch, current_sketch)``.
    """
    accuracy = _check_accuracy(accuracy)
    if isinstance(data, DatasetSketch):
        return data
    if isinstance(center, DatasetSketch) and center.accuracy != accuracy:
        accuracy = center.accuracy
    centers = _resolve_centers(center, data) if not isinstance(data, pd.Series) else None
    if is_dask_frame(data):
        from .distributed import sketch_dask

        return sketch_dask(data, columns, accuracy, centers)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else "value")
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"can sketch a pandas or Dask DataFrame, got {type(data).__name__}")
    if columns is not None:
        unknown = [c for c in columns if str(c) not in {str(x) for x in data.columns}]
        if unknown:
            raise InvalidInput(f"columns not in the data: {', '.join(map(repr, unknown))}")
    if centers is None and center is not None:
        centers = _resolve_centers(center, data)
    return sketch_frame(data, columns, accuracy, centers)


def is_dask_frame(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("dask") and hasattr(obj, "npartitions") and hasattr(obj, "columns")
