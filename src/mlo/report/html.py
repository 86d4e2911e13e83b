"""Building blocks for notebook HTML: escaping, value formatting, a compact table, status badges."""

from __future__ import annotations

import math
import os
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

STATUS_COLORS = {
    "running": "#1f6feb",
    "finished": "#1a7f37",
    "failed": "#cf222e",
    "killed": "#9a6700",
    "cached": "#0969da",
    "gate": "#cf222e",
    "same": "#1a7f37",
    "differs": "#cf222e",
}

# JupyterLab's theme variables with GitHub-like light fallbacks: readable in the light, dark and high-contrast
# themes, and in an nbconvert export (whose templates define the same variables, or none: then the fallbacks)
STYLE = (
    "<style>.mlo-t{border-collapse:collapse;font:12px/1.4 system-ui,sans-serif;margin:4px 0;"
    "color:var(--jp-ui-font-color1,#1f2328)}"
    ".mlo-t th,.mlo-t td{padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#d0d7de);text-align:left;"
    "white-space:nowrap}"
    ".mlo-t th{background:var(--jp-layout-color2,#f6f8fa);color:var(--jp-ui-font-color1,#1f2328);font-weight:600}"
    ".mlo-t td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".mlo-b{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px}"
    ".mlo-h{font:600 13px system-ui,sans-serif;margin:6px 0 2px}"
    ".mlo-m{color:var(--jp-ui-font-color2,#57606a);font:12px system-ui,sans-serif}"
    "pre.mlo-c{background:var(--jp-layout-color2,#f6f8fa);color:var(--jp-content-font-color1,#1f2328);"
    "padding:4px 8px;margin:2px 0;font-size:12px;max-height:240px;overflow:auto}</style>"
)


def run_color(key: str) -> str:
    """A stable colour for a run (``#rrggbb``): the hue from an FNV-1a hash of ``key`` spread by the golden angle,
    in one of three lightness bands (the rule of the JupyterLab charts, charts.ts), so a run keeps its colour from
    one plot to the next, and runs past the tenth do not repeat a ten-colour cycle."""
    import colorsys

    h = 2166136261
    code = key.encode("utf-16-le")
    for i in range(0, len(code), 2):  # UTF-16 code units, as JavaScript's charCodeAt
        h = ((h ^ (code[i] | code[i + 1] << 8)) * 16777619) & 0xFFFFFFFF
    hue = round((h % 360) * 137.508) % 360
    light = 40 + ((h >> 9) % 3) * 8
    r, g, b = colorsys.hls_to_rgb(hue / 360, light / 100, 0.7)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#57606a")
    return f'<span class="mlo-b" style="background:{color}">{escape(status)}</span>'


def fmt(value: Any) -> str:
    """A short human form of a cell value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if hasattr(value, "isoformat") and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            return ""
    if isinstance(value, float):
        text = f"{value:.4g}"
        return text if any(c in text for c in ".einn") else text + ".0"  # 1.0 stays a float to the eye
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def table(
    headers: list[str],
    rows: list[list[Any]],
    numeric: set[int] | None = None,
    raw: set[int] | None = None,
    groups: list[tuple[str, int]] | None = None,
) -> str:
    """An HTML table; cells are escaped except in the ``raw`` columns (already HTML). ``groups`` adds a header
    row of (label, column span) above the column names."""
    numeric = numeric or set()
    raw = raw or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    if groups:
        spans = "".join(f'<th colspan="{n}">{escape(label)}</th>' for label, n in groups)
        head = f"{spans}</tr><tr>{head}"
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            text = v if i in raw else escape(fmt(v))
            cls = ' class="n"' if i in numeric else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="mlo-t"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def page(title: str, body: str) -> str:
    """A standalone HTML page around a notebook fragment (reports and cards saved to a file)."""
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body style='margin:16px'>{body}</body></html>\n"
    )


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a rendered report to ``path`` whole or not at all (a temporary file renamed into place)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
