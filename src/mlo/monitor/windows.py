"""Cutting a prediction log into windows and measuring each one: input drift against the training data, prediction
drift, missing values, unseen categories, quality where labels arrived, latency, errors, and the canary against
the stable version.

A window is a span of time (``"1h"``, ``"30min"``, ``"1d"``, aligned to the epoch, so the same records always
fall in the same window) or a count of records (``"5000 rows"`` or ``5000``: consecutive records, oldest first).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .log import FEATURE_PREFIX

_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*([a-z]+?)s?\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*(?:rows?|records?|predictions?)?\s*$")
CANARY_P = 0.01  # significance of "the canary is worse than stable"
CANARY_LATENCY_RATIO = 1.5
MIN_ROUTE_ROWS = 30  # fewer requests on a route in a window: no canary verdict


@dataclass(frozen=True)
class Window:
    """How to cut a log: ``seconds`` for time windows, or ``rows`` for windows of so many records."""

    seconds: float | None = None
    rows: int | None = None

    @property
    def label(self) -> str:
        if self.rows is not None:
            return f"{self.rows} rows"
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if self.seconds % size == 0:
                return f"{int(self.seconds // size)}{unit}"
        return f"{self.seconds:g}s"


def parse_window(spec: Any) -> Window:
    """``"1h"``, ``"15min"``, ``"1d"``, ``"2 hours"``, ``"5000 rows"`` or ``5000`` → a :class:`Window`."""
    if isinstance(spec, Window):
        return spec
    if isinstance(spec, bool):
        raise InvalidInput(
            f"window must be a duration like '1h' or a record count like '5000 rows', got {spec!r}"
        )
    if isinstance(spec, (int, np.integer)):
        spec = f"{int(spec)} rows"
    if isinstance(spec, pd.Timedelta) or hasattr(spec, "total_seconds"):
        seconds = spec.total_seconds()
        if seconds <= 0:
            raise InvalidInput("window must be longer than zero")
        return Window(seconds=seconds)
    if isinstance(spec, str):
        text = spec.strip().lower()
        m = _ROWS.match(text)
        if m:
            rows = int(m.group(1))
            if rows < 1:
                raise InvalidInput("a window needs at least 1 row")
            return Window(rows=rows)
        m = _TIME.match(text)
        if m and m.group(2) in _UNITS:
            seconds = float(m.group(1) or 1) * _UNITS[m.group(2)]
            if seconds > 0:
                return Window(seconds=seconds)
    raise InvalidInput(
        f"cannot read the window {spec!r}: use a duration like '1h', '30min', '1d' or a record count like '5000 rows'"
    )


def parse_since(text: Any) -> Any:
    """``"24h"``, ``"7d"``, ``"30min"`` → a timedelta back from now; anything else (a date, a datetime) as given."""
    if isinstance(text, str):
        m = _TIME.match(text.strip().lower())
        if m and m.group(1) and m.group(2) in _UNITS:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    return text


def cut(log: pd.DataFrame, window: Window) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.DataFrame]]:
    """The log's windows, oldest first: (start, end, records). Time windows are half-open ``[start, end)``;
    windows without records are left out."""
    if log.empty:
        return []
    ts = log["ts"]
    if window.rows is not None:
        out = []
        for lo in range(0, len(log), window.rows):
            part = log.iloc[lo : lo + window.rows]
            out.append((part["ts"].iloc[0], part["ts"].iloc[-1], part))
        return out
    step_us = int(window.seconds * 1e6)
    us = ts.to_numpy(dtype="datetime64[us]").astype("int64")
    starts = us - np.mod(us, step_us)
    bounds = np.flatnonzero(np.diff(starts)) + 1  # the log is sorted by ts: windows are runs of equal starts
    edges = [0, *bounds.tolist(), len(log)]
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        start = pd.Timestamp(int(starts[a]), unit="us", tz="UTC")
        out.append((start, start + pd.Timedelta(microseconds=step_us), log.iloc[a:b]))
    return out


# -- what a window measures -------------------------------------------------------------------------------------
def task_of(labels: pd.Series, predictions: pd.Series) -> str:
    """``classification`` when labels (or predictions) are categories, booleans or whole numbers with few
    values; else ``regression``."""
    sample = labels.dropna() if labels.notna().any() else predictions.dropna()
    if sample.empty:
        return "classification"
    if sample.dtype == object or isinstance(sample.dtype, pd.CategoricalDtype) or sample.dtype == bool:
        return "classification"
    values = pd.to_numeric(sample, errors="coerce")
    if values.isna().any():
        return "classification"
    whole = np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0)
    return "classification" if whole and values.nunique() <= 50 else "regression"


def point_predictions(values: pd.Series) -> pd.Series:
    """One value per record: a list output (probabilities) becomes the index of its largest entry."""
    if values.dtype == object and values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return values.map(lambda v: int(np.argmax(v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
    return values


def quality(labels: pd.Series, predictions: pd.Series, task: str) -> dict[str, float]:
    """Accuracy for classification; MAE and RMSE for regression — over the records that have a label."""
    have = labels.notna() & predictions.notna()
    n = int(have.sum())
    if n == 0:
        return {"labeled": 0}
    y, p = labels[have], predictions[have]
    if task == "classification":
        yn, pn = pd.to_numeric(y, errors="coerce"), pd.to_numeric(p, errors="coerce")
        if (
            yn.notna().all() and pn.notna().all()
        ):  # 1 and 1.0 (a label column with gaps is float) are the same
            same = yn.to_numpy(dtype="float64") == pn.to_numpy(dtype="float64")
        else:
            same = y.astype(str).to_numpy() == p.astype(str).to_numpy()
        return {"labeled": n, "accuracy": float(same.mean())}
    err = pd.to_numeric(p, errors="coerce").to_numpy(dtype="float64") - pd.to_numeric(
        y, errors="coerce"
    ).to_numpy(dtype="float64")
    return {"labeled": n, "mae": float(np.nanmean(np.abs(err))), "rmse": float(np.sqrt(np.nanmean(err**2)))}


def _two_proportions(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that proportion 1 is larger than proportion 2 (pooled z-test)."""
    if n1 == 0 or n2 == 0:
        return math.nan
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    from scipy import stats  # only here: serving imports this package and must start fast

    return float(stats.norm.sf(z))


def route_figures(part: pd.DataFrame, task: str) -> dict[str, Any]:
    """What the canary verdict needs of one route's records: ``n``, ``errors``, ``latency_p95``, ``labeled``
    and ``accuracy`` or ``mae``."""
    lat = part["latency_ms"].dropna()
    out: dict[str, Any] = {
        "n": len(part),
        "errors": int(part["error"].notna().sum()),
        "latency_p95": float(np.percentile(lat, 95)) if len(lat) else math.nan,
    }
    if "label" in part:
        out.update(quality(part["label"], point_predictions(part["prediction"]), task))
    return out


def canary_verdict(frame: pd.DataFrame, task: str) -> dict[str, Any]:
    """Canary against stable in one window (see :func:`canary_decision`)."""
    routes = frame["route"]
    return canary_decision(
        {name: route_figures(frame[routes == name], task) for name in ("canary", "stable")}
    )


def canary_decision(routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Canary against stable in one window, from each route's :func:`route_figures`: error rate, p95 latency and
    quality per route, and whether the canary is worse — significantly more errors or lower accuracy (one-sided
    tests at p < 0.01), a higher MAE, or a p95 latency 1.5× the stable one — given at least 30 requests on each
    route."""
    canary, stable = routes["canary"], routes["stable"]
    out: dict[str, Any] = {"canary_n": canary["n"]}
    if canary["n"] == 0:
        return out
    reasons = []
    for name, part in (("canary", canary), ("stable", stable)):
        out[f"{name}_error_rate"] = part["errors"] / part["n"] if part["n"] else math.nan
        out[f"{name}_latency_p95"] = part["latency_p95"]
        for k in ("accuracy", "mae"):
            if k in part:
                out[f"{name}_{k}"] = part[k]
    enough = canary["n"] >= MIN_ROUTE_ROWS and stable["n"] >= MIN_ROUTE_ROWS
    if enough:
        p = _two_proportions(canary["errors"], canary["n"], stable["errors"], stable["n"])
        if p < CANARY_P:
            reasons.append(f"more errors ({out['canary_error_rate']:.1%} vs {out['stable_error_rate']:.1%})")
        if out["canary_latency_p95"] > CANARY_LATENCY_RATIO * out["stable_latency_p95"]:
            reasons.append(
                f"p95 latency {out['canary_latency_p95']:.1f} ms vs {out['stable_latency_p95']:.1f} ms"
            )
        if "canary_accuracy" in out and "stable_accuracy" in out:
            nc, ns = int(canary.get("labeled", 0)), int(stable.get("labeled", 0))
            if nc >= MIN_ROUTE_ROWS and ns >= MIN_ROUTE_ROWS:
                wrong_c = round((1 - out["canary_accuracy"]) * nc)
                wrong_s = round((1 - out["stable_accuracy"]) * ns)
                if _two_proportions(wrong_c, nc, wrong_s, ns) < CANARY_P:
                    reasons.append(f"accuracy {out['canary_accuracy']:.3f} vs {out['stable_accuracy']:.3f}")
        if "canary_mae" in out and "stable_mae" in out and out["canary_mae"] > 1.1 * out["stable_mae"]:
            reasons.append(f"MAE {out['canary_mae']:.4g} vs {out['stable_mae']:.4g}")
    out["canary_worse"] = bool(reasons) if enough else None
    out["canary_reasons"] = "; ".join(reasons)
    return out


def refused_input(log: pd.DataFrame) -> pd.Series:
    """Records of input a server refused (422) that older versions logged: an error without a model call
    (no latency) on a served route. They are the client's mistakes, not the model's: monitoring leaves them out,
    so they count neither as errors nor against a canary."""
    if log.empty or "error" not in log or "latency_ms" not in log:
        return pd.Series(False, index=log.index)
    served = log["route"] != "batch" if "route" in log else True
    return log["error"].notna() & log["latency_ms"].isna() & served


def features_of(log: pd.DataFrame) -> list[str]:
    return [c[len(FEATURE_PREFIX) :] for c in log.columns if c.startswith(FEATURE_PREFIX)]


def unseen_rate(frame: pd.DataFrame, known: dict[str, set]) -> float:
    """The share of records with at least one categorical value never seen in the training data."""
    if not known or frame.empty:
        return 0.0
    hit = np.zeros(len(frame), dtype=bool)
    for name, values in known.items():
        col = frame[FEATURE_PREFIX + name]
        present = col.notna().to_numpy()
        hit |= present & ~col.astype(str).isin(values).to_numpy()
    return float(hit.mean())
