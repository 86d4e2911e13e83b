"""Which params matter for a metric, over a set of runs: a random forest's impurity importance when
scikit-learn is installed and there are enough runs, else the absolute Spearman rank correlation. Either way the
result says which it is, since the two are not the same measure.

A param that some runs lack gets a "missing" level of its own (an indicator for a numeric param), so a param
set only in a few runs still counts, and runs without the metric are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InvalidInput

MIN_RUNS_FOR_FOREST = 12  # fewer runs than this: a forest's importances are noise, so correlation
METHODS = ("auto", "forest", "spearman")
LABELS = {
    "forest": "random-forest importance (mean decrease in impurity, sums to 1)",
    "spearman": "|Spearman rank correlation| with the metric (categories ranked by their mean)",
}


@dataclass(frozen=True)
class Importance:
    """How much each param tells about ``metric``, highest first."""

    metric: str
    method: str  # "forest" or "spearman"
    runs: int
    values: dict[str, float]

    @property
    def label(self) -> str:
        return LABELS[self.method]

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "method": self.method,
            "label": self.label,
            "runs": self.runs,
            "values": [{"param": k, "importance": v} for k, v in self.values.items()],
        }


def importance(
    frame: pd.DataFrame, metric: str, params: Sequence[str] | None = None, method: str = "auto"
) -> Importance:
    """Importance of ``params`` (default: every ``params.*`` column that varies) for ``metric`` over the rows
    of ``frame`` (one per run)."""
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if metric not in frame.columns:
        raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
    y = pd.to_numeric(frame[metric], errors="coerce")
    rows = frame[y.notna() & np.isfinite(y.astype("float64"))]
    y = y[rows.index].to_numpy(dtype="float64")
    if params is None:
        params = [c for c in frame.columns if c.startswith("params.")]
    features = {p: _encode(rows[p], y) for p in params if p in rows.columns}
    features = {p: x for p, x in features.items() if x is not None}
    if len(rows) < 3 or not features:
        raise InvalidInput(
            f"importance needs at least 3 runs with {metric.removeprefix('metrics.')!r} and a param that varies"
        )
    if method == "auto":
        method = "forest" if len(rows) >= MIN_RUNS_FOR_FOREST and _has_sklearn() else "spearman"
    if method == "forest":
        if not _has_sklearn():
            raise InvalidInput("method='forest' needs scikit-learn: pip install scikit-learn")
        values = _forest(features, y)
    else:
        values = {p: abs(_spearman(x[:, 0], y)) for p, x in features.items()}
    ordered = dict(sorted(values.items(), key=lambda kv: -kv[1]))
    return Importance(metric, method, len(rows), {k: float(v) for k, v in ordered.items()})


def _has_sklearn() -> bool:
    from importlib.util import find_spec

    return find_spec("sklearn") is not None


def _encode(column: pd.Series, y: np.ndarray) -> np.ndarray | None:
    """A param → numeric feature columns (value; then a missing indicator when some runs lack it), or None
    when it does not vary. Categories are coded by their mean metric (rank order), so a monotone measure sees
    them in a meaningful order."""
    missing = column.isna().to_numpy()
    numeric = pd.to_numeric(column, errors="coerce")
    is_numeric = numeric[~missing].notna().all() and not column.map(lambda v: isinstance(v, bool)).any()
    if is_numeric:
        x = numeric.to_numpy(dtype="float64")
        fill = np.nanmin(x) - 1.0 if (~missing).any() else 0.0
        x = np.where(missing, fill, x)
    else:
        text = column.astype(str).where(~column.isna(), "\0missing")
        means = pd.Series(y, index=column.index).groupby(text).mean().rank(method="first")
        x = text.map(means).to_numpy(dtype="float64")
    if np.unique(x).size < 2:
        return None
    cols = [x]
    if missing.any() and is_numeric:
        cols.append(missing.astype("float64"))
    return np.column_stack(cols)


def _forest(features: dict[str, np.ndarray], y: np.ndarray) -> dict[str, float]:
    from sklearn.ensemble import RandomForestRegressor

    names, blocks = list(features), list(features.values())
    X = np.column_stack(blocks)
    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1, min_samples_leaf=2)
    forest.fit(X, y)
    out, start = {}, 0
    for name, block in zip(names, blocks, strict=True):  # a param's columns (value, missing) add up
        out[name] = float(forest.feature_importances_[start : start + block.shape[1]].sum())
        start += block.shape[1]
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])
