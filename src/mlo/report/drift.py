"""Rendering of a :class:`mlo.drift.DriftReport`: notebook HTML with inline SVG plots, a standalone page, and
plain text for terminals. No JavaScript; a row with its plot takes about 1.5 KB."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from .html import STYLE, fmt, page

REF_COLOR = "#8c959f"
CUR_COLOR = "#1f6feb"
DRIFT_COLOR = "#cf222e"
OK_COLOR = "#1a7f37"
MUTED_COLOR = "#6e7781"
PLOT_W, PLOT_H = 168, 34

CSS = (
    "<style>.mlo-d{font:13px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--jp-ui-font-color1,#1f2328)}"
    ".mlo-d .hd{display:flex;align-items:center;gap:10px;margin:2px 0 4px}"
    ".mlo-d .big{font-size:16px;font-weight:600}"
    ".mlo-d .tag{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font:600 12px system-ui,sans-serif}"
    ".mlo-d .meta{color:var(--jp-ui-font-color2,#57606a);font-size:12px;margin:0 0 6px}"
    ".mlo-d ul{margin:2px 0 8px;padding-left:18px}.mlo-d li{margin:1px 0}"
    ".mlo-d .lg{display:inline-block;width:10px;height:10px;border-radius:2px;vertical-align:-1px;margin:0 3px 0 8px}"
    ".mlo-d table.mlo-t td{vertical-align:middle}.mlo-d td.nt{white-space:normal;min-width:160px;max-width:340px;"
    "color:var(--jp-ui-font-color2,#57606a)}.mlo-d tr.dr td{background:rgba(207,34,46,.1)}"
    ".mlo-d tr.sk td{color:var(--jp-ui-font-color3,#8c959f)}"
    ".mlo-d td.c{font-weight:600}.mlo-d .role{font-weight:400;color:#8250df;font-size:11px;margin-left:4px}"
    ".mlo-d svg{display:block}</style>"
)


# -- plots ----------------------------------------------------------------------------------------------------------
def _n(v: float) -> str:
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _step_path(shares: list[float], top: float, close: bool) -> str:
    k = len(shares)
    if k == 0 or top <= 0:
        return ""
    w = PLOT_W / k
    h = PLOT_H - 2
    parts = [f"M0 {PLOT_H}"]
    for i, s in enumerate(shares):
        y = PLOT_H - h * min(s / top, 1.0)
        parts.append(f"V{_n(y)}H{_n((i + 1) * w)}")
    parts.append(f"V{PLOT_H}")
    if close:
        parts.append("Z")
    return "".join(parts)


def hist_svg(plot: dict[str, Any]) -> str:
    ref, cur = plot.get("ref") or [], plot.get("cur") or []
    top = max([*ref, *cur, 0.0])
    edges = plot.get("edges") or []
    title = f"{fmt(edges[0])} … {fmt(edges[-1])}" if edges else ""
    return (
        f'<svg width="{PLOT_W}" height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}">'
        f"<title>{escape(title)}</title>"
        f'<path d="{_step_path(ref, top, True)}" fill="{REF_COLOR}" fill-opacity=".45"/>'
        f'<path d="{_step_path(cur, top, False)}" fill="none" stroke="{CUR_COLOR}" stroke-width="1.4"/>'
        "</svg>"
    )


def bars_svg(plot: dict[str, Any]) -> str:
    labels, ref, cur = plot.get("labels") or [], plot.get("ref") or [], plot.get("cur") or []
    k = len(labels)
    top = max([*ref, *cur, 0.0])
    if not k or top <= 0:
        return ""
    group = PLOT_W / k
    bar = max(min(group * 0.38, 14.0), 1.0)
    h = PLOT_H - 2
    parts = [f'<svg width="{PLOT_W}" height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}">']
    for i, (label, r, c) in enumerate(zip(labels, ref, cur, strict=False)):
        x = i * group + group / 2 - bar
        hr, hc = h * r / top, h * c / top
        parts.append(
            f"<g><title>{escape(label)}: {r:.1%} → {c:.1%}</title>"
            f'<rect x="{_n(x)}" y="{_n(PLOT_H - hr)}" width="{_n(bar)}" height="{_n(hr)}" fill="{REF_COLOR}" '
            f'fill-opacity=".6"/><rect x="{_n(x + bar)}" y="{_n(PLOT_H - hc)}" width="{_n(bar)}" '
            f'height="{_n(hc)}" fill="{CUR_COLOR}"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def plot_svg(plot: dict[str, Any] | None) -> str:
    if not plot:
        return ""
    return hist_svg(plot) if plot.get("type") == "hist" else bars_svg(plot)


# -- pieces -----------------------------------------------------------------------------------------------------------
def _tag(text: str, color: str) -> str:
    return f'<span class="tag" style="background:{color}">{escape(text)}</span>'


def _pct(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return "0%" if v == 0 else (f"{v:.1%}" if v >= 0.001 else "<0.1%")


def _score(r) -> str:
    from ..drift.methods import METHODS

    if not r.method:
        return ""
    m = METHODS[r.method]
    if m.is_test:
        p = r.p_adjusted if not math.isnan(r.p_adjusted) else r.p_value
        shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        return shown + (" adj." if not math.isnan(r.p_adjusted) else "")
    return f"{r.statistic:.3f}" if math.isfinite(r.statistic) else fmt(r.statistic)


def _threshold(r) -> str:
    from ..drift.methods import METHODS

    if not r.method:
        return ""
    m = METHODS[r.method]
    sign = ("≤ " if m.inclusive else "< ") if m.is_test else "≥ "
    return sign + fmt(r.threshold)


def _verdict_cell(r) -> str:
    if r.drifted:
        return _tag("drift", DRIFT_COLOR)
    if r.status in ("skipped", "empty", "error", "all_nan"):
        label = "no values" if r.status == "all_nan" else r.status
        return f'<span style="color:{MUTED_COLOR}">{escape(label)}</span>'
    return f'<span style="color:{OK_COLOR}">ok</span>'


def _findings(report) -> list[str]:
    items = []
    res = report.results
    missing = [r for r in res if r.missing_drift]
    if missing:
        shown = ", ".join(
            f"<b>{escape(r.column)}</b> ({_pct(r.missing_ref)} → {_pct(r.missing_cur)})" for r in missing[:6]
        )
        items.append(f"Missing values changed in {len(missing)} column{'s' * (len(missing) > 1)}: {shown}")
    unseen = [r for r in res if r.unseen]
    if unseen:
        shown = ", ".join(f"<b>{escape(r.column)}</b> ({r.unseen})" for r in unseen[:6])
        items.append(f"New categories in {len(unseen)} column{'s' * (len(unseen) > 1)}: {shown}")
    for status, text in (
        ("missing_column", "Absent from the current data"),
        ("type_changed", "Type changed"),
        ("all_nan", "No values on a side"),
        ("skipped", "Not compared"),
        ("empty", "No rows"),
        ("error", "Could not compare"),
    ):
        cols = [r.column for r in res if r.status == status]
        if cols:
            shown = ", ".join(escape(c) for c in cols[:8]) + (
                f" and {len(cols) - 8} more" if len(cols) > 8 else ""
            )
            items.append(f"{text}: {shown}")
    new_columns = report.current.get("new_columns") or []
    if new_columns:
        shown = ", ".join(escape(c) for c in new_columns[:8]) + (
            f" and {len(new_columns) - 8} more" if len(new_columns) > 8 else ""
        )
        items.append(f"Only in the current data (not compared): {shown}")
    approx = [r for r in res if not r.exact]
    if approx:
        items.append(
            f"Approximate statistics (reference from its stored profile) in {len(approx)} of {len(res)} columns; "
            "missing-value rates are exact"
        )
    preds = [r for r in res if r.role == "prediction"]
    for r in preds:
        state = "drifted" if r.drifted else "stable"
        items.append(
            f"Prediction <b>{escape(r.column)}</b>: {state} ({escape(r.method or r.status)} {_score(r)})"
        )
    mv = report.multivariate
    if mv and mv.get("statistic") is not None:
        state = "drift" if mv.get("drifted") else "no drift"
        p = mv.get("p_value")
        p_text = "p < 0.001" if p is not None and p < 0.001 else f"p = {p:.3f}"
        items.append(
            f"Domain classifier: ROC AUC {mv['statistic']:.3f} ({p_text}, drift at ≥ {mv['threshold']}) → {state}"
        )
    return items


def _side(d: dict[str, Any]) -> str:
    return escape(_plain_side(d))


def _row_order(results) -> list:
    counted = [r for r in results if r.counted]
    return (
        [r for r in counted if r.drifted]
        + [r for r in counted if not r.drifted]
        + [r for r in results if not r.counted and r.role != "feature"]
        + [r for r in results if not r.counted and r.role == "feature"]
    )


def _rows(report) -> str:
    out = []
    for r in _row_order(report.results):
        cls = (
            ' class="dr"'
            if r.drifted
            else (' class="sk"' if r.status in ("skipped", "empty", "error") else "")
        )
        role = f'<span class="role">{escape(r.role)}</span>' if r.role != "feature" else ""
        method = escape(r.method or "") + ("" if r.exact else " ≈")
        cells = [
            f'<td class="c">{escape(r.column)}{role}</td>',
            f"<td>{escape(r.kind if r.kind != '?' else '')}</td>",
            f"<td>{method}</td>",
            f'<td class="n">{escape(_score(r))}</td>',
            f'<td class="n">{escape(_threshold(r))}</td>',
            f"<td>{_verdict_cell(r)}</td>",
            f'<td class="n">{_missing_cell(r)}</td>',
            f"<td>{plot_svg(r.plot)}</td>",
            f'<td class="nt">{escape(r.note)}</td>',
        ]
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return "".join(out)


def _missing_cell(r) -> str:
    if r.status == "empty":
        return ""
    a, b = _pct(r.missing_ref), _pct(r.missing_cur)
    if a in ("", "0%") and b in ("", "0%"):
        return ""
    text = escape(f"{a} → {b}") if a != b else escape(a)
    return f'<b style="color:{DRIFT_COLOR}">{text}</b>' if r.missing_drift else text


def drift_html(report) -> str:
    """The notebook rendering: a summary, findings and one row per column with a small distribution plot."""
    passed = report.passed
    tag = _tag("no drift", OK_COLOR) if passed else _tag("DRIFT", DRIFT_COLOR)
    headline = (
        f"{report.n_drifted} of {report.n_columns} columns drifted ({report.share_drifted:.0%}); "
        f"dataset drift at ≥ {report.drift_share:.0%}"
    )
    meta = [f"reference {_side(report.reference)} → current {_side(report.current)}"]
    meta.append(
        f"{escape(report.mode)} mode"
        + (f", {escape(report.correction)} correction" if report.correction else "")
    )
    if report.seconds is not None:
        meta.append(f"{report.seconds:.2f} s")
    if report.id:
        meta.append(f"report {escape(report.id)}")
    findings = _findings(report)
    legend = (
        f'<span class="lg" style="background:{REF_COLOR};opacity:.6"></span>reference'
        f'<span class="lg" style="background:{CUR_COLOR}"></span>current'
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "column",
            "kind",
            "method",
            "score",
            "drift at",
            "drift",
            "missing",
            f"distribution {legend}",
            "note",
        )
    )
    return (
        f'{STYLE}{CSS}<div class="mlo-d">'
        f'<div class="hd"><span class="big">Drift report</span>{tag}<span>{escape(headline)}</span></div>'
        f'<div class="meta">{" · ".join(meta)}</div>'
        + (f"<ul>{''.join(f'<li>{i}</li>' for i in findings)}</ul>" if findings else "")
        + f'<table class="mlo-t"><thead><tr>{head}</tr></thead><tbody>{_rows(report)}</tbody></table></div>'
    )


def drift_page(report) -> str:
    """A standalone HTML page of the report."""
    return page(
        f"Drift report · {report.current.get('ref') or report.current.get('label') or ''}", drift_html(report)
    )


# -- text -----------------------------------------------------------------------------------------------------------
def drift_text(report, max_rows: int | None = None) -> str:
    """A terminal summary: the verdict, both sides, then one line per column (drifted first)."""
    lines = [("DRIFT: " if not report.passed else "ok: ") + report.verdict()]
    lines.append(f"reference  {_plain_side(report.reference)}")
    lines.append(f"current    {_plain_side(report.current)}")
    rows = [["column", "kind", "method", "score", "drift at", "drift", "missing", "note"]]
    for r in _row_order(report.results)[:max_rows]:
        verdict = r.status if r.status in ("skipped", "empty", "error") else ("DRIFT" if r.drifted else "ok")
        missing = _plain_missing(r)
        name = r.column + (f" ({r.role})" if r.role != "feature" else "")
        method = (r.method or "") + ("" if r.exact else " ≈")
        rows.append(
            [
                name,
                r.kind if r.kind != "?" else "",
                method,
                _score(r),
                _threshold(r),
                verdict,
                missing,
                r.note,
            ]
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        lines.append(
            "  ".join(str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        )
    mv = report.multivariate
    if mv and mv.get("statistic") is not None:
        lines.append(
            f"domain classifier: ROC AUC {mv['statistic']:.3f} → {'drift' if mv['drifted'] else 'no drift'}"
        )
    if report.id:
        lines.append(f"report {report.id}")
    return "\n".join(line.rstrip() for line in lines)


def _plain_missing(r) -> str:
    if r.status == "empty":
        return ""
    a, b = _pct(r.missing_ref), _pct(r.missing_cur)
    if a in ("", "0%") and b in ("", "0%"):
        return ""
    return a if a == b else f"{a}→{b}"


def _plain_side(d: dict[str, Any]) -> str:
    rows, cols = d.get("rows"), d.get("columns")
    shape = f"{rows:,} rows" if rows is not None else ""
    if shape and cols is not None:
        shape += f" × {cols}"
    return str(d.get("ref") or d.get("label") or "?") + (f" ({shape})" if shape else "")
