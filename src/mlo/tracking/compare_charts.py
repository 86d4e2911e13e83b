"""The data of a comparison's charts as plain JSON records, for any view that draws them (the notebook widget
today; the lab panel and ``mlo ui`` can send the same records): metric histories and single values of the ticked
runs, a metric against a param, parallel coordinates and parameter importance over the filtered runs, each
optionally grouped by a param or tag as mean ± spread.

Colours are left to the view: each line or dot carries ``color_key`` (a run id or a group's name), which the
views hash to the same colour everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .compare import lower_is_better
from .grouping import MISSING, group_histories, group_labels
from .importance import importance

if TYPE_CHECKING:
    from .compare import Comparison

MAX_HISTORY_RUNS = 50  # histories of more ticked runs than this: the first ones, and a note
MAX_POINTS = 20_000  # a longer history is thinned by a stride (uPlot draws this many in a few ms)
SYSTEM_TAGS = ("mlo.",)


def choices(cmp: Comparison) -> dict:
    """What the controls offer: the metrics, the params (scatter's x) and what runs can be grouped by
    (params, and the tags of the first page of runs)."""
    tags = [c for c in cmp.tag_columns() if not c[5:].startswith(SYSTEM_TAGS)]
    return {"metrics": cmp.metrics, "params": cmp.params, "groups": [*cmp.params, *tags]}


def histories(cmp: Comparison, metric: str | None = None, group_by: str | None = None) -> dict:
    """The ticked runs' histories: ``charts`` (a line per run, or per group its mean and mean ± one standard
    deviation) for metrics logged at several steps, ``values`` (labelled dots) for single values. With
    ``metric`` that metric comes first."""
    if not cmp.selected:
        return {"kind": "histories", "message": "Tick runs in the table to compare their histories."}
    ids = cmp.selected[:MAX_HISTORY_RUNS]
    more = len(cmp.selected) - len(ids)
    rows = cmp.selection()
    rows = rows[rows["run_id"].isin(ids)]
    by_run = cmp.histories_by_run(run_ids=ids)
    if not by_run:
        return {"kind": "histories", "message": "The ticked runs logged no metrics."}
    starts = {
        r: (t.timestamp() if isinstance(t, pd.Timestamp) else 0.0)
        for r, t in zip(rows["run_id"], rows["start_time"], strict=True)
    }
    groups = None
    if group_by:
        if group_by not in rows.columns:
            rows = _with_column(cmp, rows, group_by)
        groups = dict(zip(rows["run_id"], group_labels(rows, group_by), strict=True))
    keys = sorted(
        by_run, key=lambda k: (k != (metric or "").removeprefix("metrics."), k.startswith("system."), k)
    )
    charts, values = [], []
    for key in keys:
        series = by_run[key]
        if all(len(frame) == 1 for _rid, frame in series.values()):
            values.append({"metric": key, "dots": _dots(series, groups)})
        else:
            charts.append({"metric": key, "lines": _lines(series, groups, starts)})
    out: dict[str, Any] = {"kind": "histories", "charts": charts, "values": values, "grouped": bool(groups)}
    # the runs still training: the view asks for their new points (:func:`appended`); a group's mean is not
    # appended to (its members' steps move apart), it is read again by a refresh
    if not groups:
        out["live"] = [r for r, s in zip(rows["run_id"], rows["status"], strict=True) if s == "running"]
    if more > 0:
        out["more"] = f"{more} more ticked runs not drawn (the first {MAX_HISTORY_RUNS} are)"
    return out


MAX_APPEND = (
    10_000  # points of one line in one answer to a live view (a longer gap arrives thinned to its shape)
)


def appended(cmp: Comparison, since: Any, known: Iterable[str] | None = None) -> dict:
    """The points the ticked runs logged after the last step a live view holds: ``since`` is ``{run id:
    {metric: last step}}`` (what the view drew); the answer is ``{"kind": "append", "runs": {run id: {metric:
    {step, value, time}}}, "live": [runs still running], "redraw": bool}``, only metrics the view already draws,
    only later steps. With ``known`` (every metric the view shows, as lines or dots), ``redraw`` says a running
    run logged a metric outside them: the view's charts are to be read again. A run that is not ticked, or a
    malformed ``since``, is refused in one line."""
    from ..workspace import current
    from .series import chart_series
    from .session import flush, get_run

    if not isinstance(since, dict):
        raise InvalidInput("since must map run ids to {metric: last step}")
    shown = set(cmp.selected[:MAX_HISTORY_RUNS])
    flush()  # points this process logged are in the store before it is read
    runs: dict[str, Any] = {}
    live = []
    redraw = False
    for run_id, lasts in list(since.items())[:MAX_HISTORY_RUNS]:
        if run_id not in shown:
            raise InvalidInput(f"run {str(run_id)[:40]!r} is not among the ticked runs")
        if not isinstance(lasts, dict) or not lasts:
            continue
        for key, last in lasts.items():
            if isinstance(last, bool) or not isinstance(last, (int, float)) or not math.isfinite(last):
                raise InvalidInput(f"the last step of {str(key)[:80]!r} must be a number, got {last!r}")
        keys = [str(k) for k in lasts]
        answer = chart_series(
            get_run(run_id), keys, since_step=int(min(lasts.values())), max_points=MAX_APPEND
        )
        if answer["status"] == "running":
            live.append(run_id)
            if known is not None and set(current().runs.latest_metrics(run_id)) - set(known):
                redraw = True
        points = {}
        for key, series in answer["metrics"].items():
            steps = series["step"]
            first = next((i for i, s in enumerate(steps) if s > lasts[key]), len(steps))
            if first < len(steps):
                points[key] = {c: series[c][first:] for c in ("step", "value", "time")}
        if points:
            runs[run_id] = points
    return {"kind": "append", "runs": runs, "live": live, "redraw": redraw}


def _with_column(cmp: Comparison, rows: pd.DataFrame, column: str) -> pd.DataFrame:
    from .query import runs

    listed = ", ".join(f"'{r}'" for r in rows["run_id"])
    extra = runs(experiment=cmp.experiment, where=f"run_id in ({listed})", columns=["run_id", column])
    if column not in extra.columns:
        raise InvalidInput(f"cannot group by {column!r}: no ticked run has it")
    return rows.merge(extra, on="run_id", how="left")


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if len(frame) <= MAX_POINTS else frame.iloc[:: math.ceil(len(frame) / MAX_POINTS)]


def _lines(series: dict, groups: dict | None, starts: dict) -> list[dict]:
    if groups is None:
        out = []
        for label, (run_id, frame) in series.items():
            frame = _thin(frame)
            out.append(
                {
                    "id": run_id,
                    "label": label,
                    "color_key": run_id,
                    "step": _floats(frame["step"]),
                    "value": _floats(frame["value"]),
                    "time": _floats(frame["time"]),
                    "start": starts.get(run_id, 0.0),
                }
            )
        return out
    stats = group_histories({rid: frame for rid, frame in series.values()}, groups)
    out = []
    for group, frame in stats.items():
        frame = _thin(frame)
        n = int(frame["n"].max())
        step = _floats(frame["step"])
        for role, suffix, values in (
            ("mean", f" mean (n={n})", frame["mean"]),
            ("band", " +1 sd", frame["mean"] + frame["std"]),
            ("band", " −1 sd", frame["mean"] - frame["std"]),
        ):
            # a group's line has no one start time: its time axes count steps
            out.append(
                {
                    "id": f"{group}:{role}{suffix}",
                    "label": f"{group}{suffix}",
                    "color_key": group,
                    "role": role,
                    "step": step,
                    "value": _floats(values),
                    "time": step,
                    "start": 0.0,
                }
            )
    return out


def _dots(series: dict, groups: dict | None) -> list[dict]:
    points = [(label, run_id, float(frame["value"].iloc[0])) for label, (run_id, frame) in series.items()]
    if groups is None:
        return [
            {"id": rid, "label": label, "value": _float(v), "color_key": rid}
            for label, rid, v in points
            if _float(v) is not None
        ]
    by_group: dict[str, list[float]] = {}
    for _label, rid, v in points:
        if math.isfinite(v):
            by_group.setdefault(groups.get(rid, MISSING), []).append(v)
    out = []
    for group, vals in sorted(by_group.items()):
        arr = np.asarray(vals)
        mean = float(arr.mean())
        sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        out.append(
            {"id": group, "label": group, "value": mean, "lo": mean - sd, "hi": mean + sd, "n": len(arr)}
            | {"color_key": group}
        )
    return out


def scatter(
    cmp: Comparison, metric: str, param: str, group_by: str | None = None, log_x: bool = False
) -> dict:
    """``metric`` against ``param``, a point per filtered run (coloured by ``group_by``)."""
    if not metric or not param:
        return {"kind": "scatter", "message": "Choose a metric and a param."}
    columns = list(dict.fromkeys([metric, param, *([group_by] if group_by else [])]))
    frame = cmp.sample(columns)
    if metric not in frame.columns or frame[metric].isna().all():
        return {"kind": "scatter", "message": f"No run here logged {metric.removeprefix('metrics.')}."}
    if param not in frame.columns:
        return {"kind": "scatter", "message": f"No run here has {param}."}
    frame = frame[pd.to_numeric(frame[metric], errors="coerce").notna()]
    xs = frame[param]
    numeric = _is_numeric(xs)
    groups = group_labels(frame, group_by) if group_by and group_by in frame.columns else None
    points = []
    for i, (rid, name, x, y) in enumerate(
        zip(frame["run_id"], frame["name"], xs, frame[metric], strict=True)
    ):
        points.append(
            {
                "id": rid,
                "label": name if isinstance(name, str) and name else rid[:10],
                "x": _float(x) if numeric else (None if _missing(x) else _text(x)),
                "y": float(y),
                "group": "" if groups is None else groups.iloc[i],
            }
        )
    out: dict[str, Any] = {
        "kind": "scatter",
        "x": param.split(".", 1)[1],
        "y": metric.removeprefix("metrics."),
        "points": points,
        "log": bool(log_x and numeric),
    }
    if not numeric:
        cats = sorted({p["x"] for p in points if p["x"] is not None})
        out["categories"] = cats + ([MISSING] if any(p["x"] is None for p in points) else [])
    if len(frame) < cmp.count:
        out["message"] = f"{len(frame):,} of {cmp.count:,} runs drawn (a fixed sample)"
    return out


def parallel(cmp: Comparison, metric: str, state: dict | None = None) -> dict:
    """Parallel coordinates: the params that differ (axes chosen and ordered by ``state``), ``metric`` last;
    runs that lack a param keep their line (the view draws a "missing" tick); the best run is named."""
    if not metric:
        return {"kind": "parallel", "message": "No metric to plot against."}
    frame = cmp.parallel(metric)
    if frame[metric].isna().all():
        return {"kind": "parallel", "message": f"No run here logged {metric.removeprefix('metrics.')}."}
    params = [c for c in frame.columns if c.startswith("params.")]
    axes = [_axis(frame[c], c) for c in [*params, metric]]
    mode = "min" if lower_is_better(metric) else "max"
    values = frame[metric].astype("float64")
    best = frame["run_id"].iloc[int(values.idxmin() if mode == "min" else values.idxmax())]
    numeric = {a["key"]: a["kind"] == "num" for a in axes}
    rows = [
        {
            "id": rec["run_id"],
            "label": rec["name"] if isinstance(rec["name"], str) and rec["name"] else rec["run_id"][:10],
            "values": {c: _value(rec[c], numeric[c]) for c in [*params, metric]},
        }
        for rec in frame.to_dict("records")
    ]
    state = state if isinstance(state, dict) else {}  # the view's choice of axes; anything else: the default
    axes_state, log_state = state.get("axes"), state.get("log")
    chosen = [a for a in axes_state if a in params] if isinstance(axes_state, list) else params
    log = (
        [a for a in log_state if isinstance(a, str) and numeric.get(a)] if isinstance(log_state, list) else []
    )
    return {
        "kind": "parallel",
        "metric": metric,
        "mode": mode,
        "axes": axes,
        "rows": rows,
        "best": best,
        "state": {"axes": chosen, "log": log},
    }


def _axis(column: pd.Series, key: str) -> dict:
    label = key.split(".", 1)[1]
    if _is_numeric(column):
        return {"key": key, "label": label, "kind": "num"}
    cats = sorted({_text(v) for v in column if not _missing(v)})
    return {"key": key, "label": label, "kind": "cat", "categories": cats}


def importance_of(cmp: Comparison, metric: str) -> dict:
    """Parameter importance for ``metric`` over the filtered runs (see :mod:`mlo.tracking.importance`)."""
    if not metric:
        return {"kind": "importance", "message": "No metric to explain."}
    frame = cmp.sample(["params.*", metric])
    try:
        result = importance(frame, metric)
    except InvalidInput as exc:
        return {"kind": "importance", "message": str(exc)}
    return {"kind": "importance", **result.to_dict(), "metric": metric.removeprefix("metrics.")}


def _is_numeric(column: pd.Series) -> bool:
    present = column[column.notna()]
    if present.empty or present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return False
    return bool(pd.to_numeric(present, errors="coerce").notna().all())


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _text(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _value(v, numeric: bool):
    if _missing(v):
        return None
    return _float(v) if numeric else _text(v)


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _floats(series) -> list:
    arr = np.asarray(series, dtype="float64")
    return [None if not math.isfinite(x) else float(x) for x in arr.tolist()]
