"""An explanation in a notebook: the importances as horizontal bars (inline SVG), with the method and its notes."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..report.html import STYLE

if TYPE_CHECKING:
    from .explain import Explanation

BAR_WIDTH = 220


def importance_bars(rows: list[dict], *, top: int = 15) -> str:
    """Rows of {feature, importance, std} as an SVG bar chart, largest first (negative importances at 0)."""
    rows = rows[:top]
    if not rows:
        return ""
    peak = max((abs(r["importance"] or 0.0) for r in rows), default=0.0) or 1.0
    line = 18
    label_w = min(220, 8 * max(len(str(r["feature"])) for r in rows) + 8)
    height = line * len(rows) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + BAR_WIDTH + 80}" height="{height}" '
        'role="img" style="font:11px system-ui,sans-serif">'
    ]
    for i, r in enumerate(rows):
        y = i * line + 2
        value = r["importance"] or 0.0
        w = max(0.0, value) / peak * BAR_WIDTH
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" fill="currentColor">'
            f"{escape(str(r['feature']))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="11" fill="#0969da"><title>'
            f"{escape(str(r['feature']))}: {value:.4g}"
            + (f" ± {r['std']:.2g}" if r.get("std") is not None else "")
            + "</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" fill="currentColor">{value:.3g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def explanation_html(e: Explanation) -> str:
    d = e.to_dict()
    notes = "".join(f"<div class='mlo-m'>{escape(n)}</div>" for n in e.notes)
    return (
        STYLE
        + f"<div class='mlo-h'>feature importance: {escape(e.method)} ({escape(e.scoring)}), {e.n_rows:,} rows</div>"
        + notes
        + importance_bars(d["importances"])
    )
