"""A run's metric histories as plain JSON-ready columns for charts: every key's steps, values and wall times, only
the points after a step (what a chart polling a live run asks for), and thinned to a bound for very long series.

Thinning keeps, in each of ``max_points / 2`` equal buckets of the series, its lowest and its highest point (and
the first and last point of the series), so spikes and the envelope survive while the chart stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .run import Run

MAX_POINTS = 20_000


def thin(values: np.ndarray, max_points: int) -> np.ndarray | None:
    """Indices of the points to keep (in order) so that at most ``max_points`` remain, or None to keep all."""
    n = len(values)
    if n <= max_points:
        return None
    size = -(-n // max(1, max_points // 2))  # points per bucket, rounded up
    rows = -(-n // size)
    padded = np.full(rows * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(rows, size)
    missing = np.isnan(grid)
    low = np.where(missing, np.inf, grid).argmin(axis=1)
    high = np.where(missing, -np.inf, grid).argmax(axis=1)
    base = np.arange(rows) * size
    keep = np.concatenate([[0, n - 1], base + low, base + high])
    return np.unique(keep[keep < n])


def _column(values: np.ndarray) -> list:
    """Floats with NaN and infinities as None (JSON has neither; a chart draws a gap)."""
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()
    return np.where(finite, values, None).tolist()


def chart_series(
    run: Run,
    keys: Sequence[str] | None = None,
    since_step: int | None = None,
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """The histories of ``run``'s metrics (all, or ``keys``) for a chart.

    Returns ``{"run_id", "status", "metrics": {key: {"step", "value", "time", "points", "thinned"}}}``: ``time``
    is seconds since the epoch (UTC), ``points`` the number of points after ``since_step`` before thinning. A key
    with no point after ``since_step`` is left out.
    """
    if since_step is not None and (isinstance(since_step, bool) or not isinstance(since_step, int)):
        raise InvalidInput(f"since_step must be a whole number, got {since_step!r}")
    if not isinstance(max_points, int) or max_points < 10:
        raise InvalidInput(f"max_points must be a whole number of at least 10, got {max_points!r}")
    status = run.status  # read first: a run seen finished has all its points in the answer
    histories = run._ws.runs.metric_histories(run.id, keys)
    metrics: dict[str, Any] = {}
    for key, (steps, values, stamps) in histories.items():
        if since_step is not None:
            after = steps > since_step
            steps, values, stamps = steps[after], values[after], stamps[after]
        if not len(steps):
            continue
        count = len(steps)
        keep = thin(values, max_points)
        if keep is not None:
            steps, values, stamps = steps[keep], values[keep], stamps[keep]
        metrics[key] = {
            "step": steps.tolist(),
            "value": _column(values),
            "time": (np.round(stamps / 1000.0) / 1000.0).tolist(),
            "points": count,
            "thinned": keep is not None,
        }
    return {"run_id": run.id, "status": status, "metrics": metrics}
