"""Runs grouped by a param or tag (the seeds or folds of one configuration): each group's mean and spread of a
metric, and of a metric's history step by step.

The spread is the sample standard deviation (n - 1; 0 for a group of one), reported beside ``min``/``max`` and
the group's size so a reader can tell a tight group from a lucky run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import InvalidInput

MISSING = "(missing)"


def group_labels(frame: pd.DataFrame, by: str) -> pd.Series:
    """Each run's group: the value of column ``by`` as text (whole floats as integers), ``(missing)`` where
    the run lacks it."""
    if by not in frame.columns:
        raise InvalidInput(f"cannot group by {by!r}: no run here has it")
    return frame[by].map(_label)


def _label(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def group_summary(frame: pd.DataFrame, metric: str, by: str) -> pd.DataFrame:
    """One row per group of ``by``: ``group, n, mean, std, min, max`` of ``metric`` (runs without it left
    out), sorted by group label."""
    if metric not in frame.columns:
        raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
    values = pd.to_numeric(frame[metric], errors="coerce")
    groups = group_labels(frame, by)
    data = pd.DataFrame({"group": groups, "value": values}).dropna(subset=["value"])
    stats = data.groupby("group", sort=True)["value"].agg(["count", "mean", "std", "min", "max"])
    stats = stats.rename(columns={"count": "n"}).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def group_histories(
    histories: Mapping[str, pd.DataFrame], groups: Mapping[str, str]
) -> dict[str, pd.DataFrame]:
    """``{group: DataFrame(step, mean, std, n)}`` from per-run histories ``{run_id: DataFrame(step, value)}``
    and each run's group: at each step, the mean and spread over the group's runs that logged that step."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for run_id, frame in histories.items():
        if run_id in groups and len(frame):
            parts.setdefault(groups[run_id], []).append(frame[["step", "value"]])
    out = {}
    for group, frames in sorted(parts.items()):
        stacked = pd.concat(frames, ignore_index=True)
        stats = stacked.groupby("step", sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
        stats["std"] = stats["std"].fillna(0.0)
        out[group] = stats.rename(columns={"count": "n"})
    return out
