"""HTML of a validation report: a verdict line, one compact row per check with an inline SVG bar against its
bound, then the evidence behind slice and fairness checks (the worst slices, the per-group table)."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

from .html import STYLE, fmt, fmt_duration, table

if TYPE_CHECKING:
    from ..validate.report import CheckResult, ValidationReport

COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#6e7781"}
BAR_W, BAR_H = 110, 10
SLICES_SHOWN = 8


def verdict(status: str) -> str:
    color = COLORS.get(status, "#6e7781")
    return f'<span class="mlo-b" style="background:{color}">{escape(status)}</span>'


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def bar(value: float | None, marks: list[float], color: str, top: float | None = None) -> str:
    """A horizontal bar from 0 to ``value`` with a tick at each of ``marks`` (the bounds)."""
    v = _num(value)
    points = [abs(x) for x in [v, *marks] if x is not None]
    if top is None:
        # rates near the top of [0, 1] read best on that scale; small gaps and big errors on their own
        peak = max(points) if points else 1.0
        top = 1.0 if 0.5 <= peak <= 1.0 else peak * 1.3
    top = top or 1.0
    parts = [f'<rect x="0" y="2" width="{BAR_W}" height="{BAR_H - 4}" fill="#eaeef2"/>']
    if v is not None:
        w = max(0.0, min(BAR_W, BAR_W * max(v, 0.0) / top))
        parts.append(f'<rect x="0" y="2" width="{w:.1f}" height="{BAR_H - 4}" fill="{color}"/>')
    for m in marks:
        x = max(0.5, min(BAR_W - 0.5, BAR_W * max(m, 0.0) / top))
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{BAR_H}" stroke="#24292f" stroke-width="1.5"/>'
        )
    return (
        f'<svg width="{BAR_W}" height="{BAR_H}" viewBox="0 0 {BAR_W} {BAR_H}" role="img" '
        f'style="vertical-align:middle">{"".join(parts)}</svg>'
    )


def _bound_text(row: CheckResult) -> str:
    from ..validate.report import fmt_bound

    return fmt_bound(row.op, row.bound)


def _marks(row: CheckResult) -> list[float]:
    if row.op is None or row.bound is None:
        return []
    if row.op == "between":
        return [float(row.bound[0]), float(row.bound[1])]
    return [float(row.bound)]


def _rows_table(report: ValidationReport) -> str:
    rows = []
    for r in report.rows:
        color = COLORS[r.status]
        rows.append(
            [
                verdict(r.status),
                r.name,
                r.value,
                _bound_text(r),
                bar(r.value, _marks(r), color) if r.value is not None else "",
                r.detail,
            ]
        )
    return table(["", "check", "value", "bound", "", "detail"], rows, numeric={2}, raw={0, 4})


def _slices_section(r: CheckResult) -> str:
    d = r.data
    shown = [s for s in d.get("slices", []) if s.get("eligible")][:SLICES_SHOWN]
    if not shown:
        return ""
    gib = d.get("greater_is_better", True)
    overall = _num(d.get("overall"))
    values = [_num(s["value"]) for s in shown if _num(s["value"]) is not None]
    top = max([*values, overall or 0.0, 1e-12])
    top = 1.0 if top <= 1.0 else top * 1.15
    worst = (d.get("worst") or {}).get("slice")
    body = []
    for s in shown:
        bad = _num(s["gap"]) is not None and r.bound is not None and s["gap"] > float(r.bound)
        color = COLORS["failed"] if bad else "#0969da"
        label = f"<b>{escape(str(s['slice']))}</b>" if s["slice"] == worst else escape(str(s["slice"]))
        body.append(
            [
                label,
                s["size"],
                s["value"],
                s["gap"],
                bar(s["value"], [overall] if overall is not None else [], color, top),
            ]
        )
    more = len([s for s in d.get("slices", []) if s.get("eligible")]) - len(shown)
    small = d.get("n_small", 0)
    notes = []
    if more > 0:
        notes.append(f"{more} more slices")
    if small:
        notes.append(f"{small} slices under {d.get('min_size')} rows not judged")
    note = f'<div class="mlo-m">{escape("; ".join(notes))}</div>' if notes else ""
    title = (
        f"Worst slices of {d.get('column')} by {d.get('metric')} "
        f"({'higher' if gib else 'lower'} is better; tick: all rows, {fmt(overall)})"
    )
    return (
        f'<div class="mlo-h">{escape(title)}</div>'
        + table(["slice", "rows", d.get("metric", "value"), "gap", ""], body, numeric={1, 2, 3}, raw={0, 4})
        + note
    )


def _fairness_section(r: CheckResult) -> str:
    d = r.data
    groups = d.get("groups") or []
    if not groups:
        return ""
    has_truth = "tpr" in groups[0]
    overall = d.get("overall") or {}
    sr_all = _num(overall.get("selection_rate"))
    body = []
    for g in groups:
        mark = [sr_all] if sr_all is not None else []
        row = [
            escape(str(g["group"])),
            g["size"],
            g["selection_rate"],
            bar(g["selection_rate"], mark, "#0969da", 1.0),
        ]
        if has_truth:
            row += [g["tpr"], g["fpr"], g["accuracy"]]
        body.append(row)
    total = ["<i>all rows</i>", overall.get("n"), sr_all, ""]
    if has_truth:
        total += [overall.get("tpr"), overall.get("fpr"), overall.get("accuracy")]
    body.append(total)
    headers = ["group", "rows", "selection rate", ""] + (["TPR", "FPR", "accuracy"] if has_truth else [])
    method = str(d.get("method", "")).replace("_", " ")
    title = f"Fairness by {d.get('column')} (favourable outcome {d.get('pos_label')!r}, {method})"
    html = table(headers, body, numeric={1, 2, 4, 5, 6}, raw={0, 3})
    return f'<div class="mlo-h">{escape(title)}</div>{html}'


def render(report: ValidationReport) -> str:
    """The whole report as one self-contained HTML fragment (no scripts)."""
    status = "passed" if report.passed else "failed"
    n_failed = len(report.failures)
    n_skipped = sum(r.passed is None for r in report.rows)
    what = f" of {report.model_version}" if report.model_version else ""
    meta = [f"{len(report.rows)} checks", f"{n_failed} failed"]
    if n_skipped:
        meta.append(f"{n_skipped} skipped")
    if report.n_rows is not None:
        meta.append(f"{report.n_rows:,} rows")
    t = report.timing
    if t.get("seconds") is not None:
        meta.append(f"{fmt_duration(t['seconds'])} (predict {fmt_duration(t.get('predict_seconds', 0.0))})")
    if report.id:
        meta.append(f"report {report.id}")
    if report.run_id:
        meta.append(f"run {report.run_id}")
    head = (
        f'<div class="mlo-h">Validation{escape(what)} {verdict(status)}</div>'
        f'<div class="mlo-m">{escape(" · ".join(meta))}</div>'
    )
    sections = []
    seen: set[str] = set()
    for r in report.rows:
        if r.check == "slices":
            sections.append(_slices_section(r))
        elif r.check == "fairness" and r.data.get("groups"):
            key = f"{r.data.get('column')}|{r.data.get('method')}|{r.data.get('pos_label')}"
            if key not in seen:
                seen.add(key)
                sections.append(_fairness_section(r))
    return f'<div class="mlo-validation">{STYLE}{head}{_rows_table(report)}{"".join(s for s in sections if s)}</div>'
