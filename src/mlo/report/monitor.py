"""HTML and text of a monitoring report (:class:`mlo.monitor.reporting.MonitorReport`): time-series plots of
volume, drift, quality, latency and errors per window, and the table of windows."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .compare import _figure, _svg
from .html import STYLE, fmt, page, table

if TYPE_CHECKING:
    from ..monitor.reporting import MonitorReport

MAX_TABLE_ROWS = 30
_RED = "#cf222e"


def _flag(value: Any) -> str:
    if value is True:
        return f"<b style='color:{_RED}'>yes</b>"
    if value is False:
        return "no"
    return ""


def _pct(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def plots_svg(rep: MonitorReport) -> str:
    """A column of small time-series plots sharing the time axis."""
    w = rep.windows
    if w.empty:
        return ""
    x = w["start"].dt.tz_convert(None) if rep.window.endswith(("d", "h", "min", "s")) else np.arange(len(w))
    panels: list[tuple[str, list[tuple[str, str]], str]] = [("records", [("n", "C0")], "")]
    panels.append(("input drift (share of features)", [("drift_share", "C1")], "dataset_drift"))
    if "accuracy" in w and w["accuracy"].notna().any():
        panels.append(("accuracy (labeled records)", [("accuracy", "C2")], ""))
    if "mae" in w and w["mae"].notna().any():
        panels.append(("MAE (labeled records)", [("mae", "C2"), ("rmse", "C4")], ""))
    if w["latency_p50"].notna().any():
        panels.append(
            ("latency, ms", [("latency_p50", "C0"), ("latency_p95", "C1"), ("latency_p99", "C3")], "")
        )
    panels.append(
        (
            "error / unseen / missing rate",
            [("error_rate", "C3"), ("unseen_rate", "C5"), ("missing_rate", "C7")],
            "",
        )
    )
    fig = _figure(7.5, 1.35 * len(panels) + 0.4)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, series, flag) in zip(axes, panels, strict=True):
        for col, colour in series:
            if col in w:
                y = pd.to_numeric(w[col], errors="coerce").to_numpy(dtype="float64")
                ax.plot(x, y, "-o", color=colour, markersize=2.5, linewidth=1.2, label=col.replace("_", " "))
        if flag and flag in w:
            hit = w[flag].fillna(False).astype(bool).to_numpy()
            if hit.any():
                y = pd.to_numeric(w[series[0][0]], errors="coerce").to_numpy(dtype="float64")
                ax.plot(np.asarray(x)[hit], y[hit], "o", color=_RED, markersize=5, label="drifted")
        if "canary_worse" in w and title.startswith("error"):
            bad = w["canary_worse"].fillna(False).astype(bool).to_numpy()
            if bad.any():
                ax.plot(
                    np.asarray(x)[bad],
                    np.zeros(bad.sum()),
                    "v",
                    color=_RED,
                    markersize=6,
                    label="canary worse",
                )
        ax.set_title(title, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(series) > 1 or flag:
            ax.legend(fontsize=6, loc="upper left", frameon=False, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def _table_rows(rep: MonitorReport) -> tuple[list[str], list[list[Any]], set[int], set[int]]:
    w = rep.windows.tail(MAX_TABLE_ROWS)
    quality = [c for c in ("accuracy", "mae", "rmse") if c in w]
    canary = "canary_worse" in w and w["canary_n"].fillna(0).gt(0).any()
    latency = ["latency_p50", "latency_p95", "latency_p99"] if w["latency_p50"].notna().any() else []
    headers = ["window", "n", "versions", "drift", "drifted features", "prediction drift", "missing", "unseen",
               "labeled", *quality, *(f"{c[-3:]} ms" for c in latency), "errors"]  # fmt: skip
    if canary:
        headers += ["canary n", "canary worse"]
    rows = []
    for r in w.to_dict("records"):
        start = r["start"]
        label = start.strftime("%Y-%m-%d %H:%M") if isinstance(start, pd.Timestamp) else str(start)
        drift = "" if r["drift_share"] is None or math.isnan(r["drift_share"]) else f"{r['drift_share']:.0%}"
        if r.get("dataset_drift"):
            drift = f"<b style='color:{_RED}'>{drift}</b>"
        row = [label, r["n"], r["versions"], drift, escape(r["drifted"] or ""), _flag(r["prediction_drift"]),
               _pct(r["missing_rate"]), _pct(r["unseen_rate"]), r["labeled"], *[r.get(q) for q in quality],
               *[r[c] for c in latency], _pct(r["error_rate"])]  # fmt: skip
        if canary:
            worse = _flag(r.get("canary_worse"))
            if r.get("canary_reasons"):
                worse += f" <span class='mlo-m'>{escape(r['canary_reasons'])}</span>"
            row += [r.get("canary_n") or 0, worse]
        rows.append(row)
    raw = {3, 4, 5}
    if canary:
        raw.add(len(headers) - 1)
    numeric = {1, 8, *range(9, 9 + len(quality) + len(latency))}
    return headers, rows, raw, numeric


def monitor_html(rep: MonitorReport) -> str:
    last = rep.latest
    head = (
        f"<div class='mlo-h'>Monitoring {escape(rep.model)}"
        f"{'' if rep.version is None else f' v{rep.version}'}</div>"
        f"<div class='mlo-m'>{rep.rows:,} records in {len(rep.windows)} windows of {escape(rep.window)} · "
        f"reference: {escape(rep.reference)} · {escape(rep.task)}</div>"
    )
    if not last:
        return STYLE + head + "<div class='mlo-m'>No predictions logged in this span.</div>"
    state = []
    if last.get("dataset_drift"):
        state.append(f"input drift in {escape(last['drifted'])}")
    if last.get("prediction_drift"):
        state.append("prediction drift")
    if last.get("canary_worse"):
        state.append(f"canary worse: {escape(last.get('canary_reasons') or '')}")
    verdict = (
        f"<div style='color:{_RED};font:600 12px system-ui'>latest window: {'; '.join(state)}</div>"
        if state
        else "<div class='mlo-m'>latest window: no drift, no canary problem</div>"
    )
    notes = "".join(f"<div class='mlo-m'>note: {escape(n)}</div>" for n in rep.notes)
    headers, rows, raw, numeric = _table_rows(rep)
    more = len(rep.windows) - MAX_TABLE_ROWS
    tail = f"<div class='mlo-m'>{more} older windows not in the table</div>" if more > 0 else ""
    return (
        STYLE
        + head
        + verdict
        + notes
        + plots_svg(rep)
        + table(headers, rows, numeric=numeric, raw=raw)
        + tail
    )


def monitor_page(rep: MonitorReport) -> str:
    return page(f"Monitoring {rep.model}", monitor_html(rep))


def monitor_text(rep: MonitorReport) -> str:
    """A plain table for terminals."""
    w = rep.windows
    lines = [
        f"{rep.model}{'' if rep.version is None else f' v{rep.version}'}: {rep.rows} records, "
        f"{len(w)} windows of {rep.window}; reference: {rep.reference}"
    ]
    lines += [f"note: {n}" for n in rep.notes]
    if w.empty:
        return "\n".join([*lines, "no predictions logged in this span"])
    quality = next((c for c in ("accuracy", "mae") if c in w), None)
    header = ["window", "n", "drift", "pred", "errors", "p95 ms", *([quality] if quality else []), "canary"]
    out = []
    for r in w.tail(MAX_TABLE_ROWS).to_dict("records"):
        start = r["start"]
        label = start.strftime("%Y-%m-%d %H:%M") if isinstance(start, pd.Timestamp) else str(start)
        drift = "" if r["drift_share"] is None or math.isnan(r["drift_share"]) else f"{r['drift_share']:.0%}"
        if r.get("dataset_drift"):
            drift += " DRIFT"
        canary = "" if not r.get("canary_n") else ("WORSE" if r.get("canary_worse") else "ok")
        out.append(
            [
                label,
                str(r["n"]),
                drift,
                "DRIFT" if r["prediction_drift"] else "",
                _pct(r["error_rate"]),
                fmt(r["latency_p95"]),
                *([fmt(r.get(quality))] if quality else []),
                canary,
            ]  # fmt: skip
        )
    widths = [max(len(h), *(len(row[i]) for row in out)) for i, h in enumerate(header)]
    lines.append("  ".join(h.ljust(n) for h, n in zip(header, widths, strict=True)))
    lines += ["  ".join(c.ljust(n) for c, n in zip(row, widths, strict=True)) for row in out]
    return "\n".join(lines)
