"""A snapshot in a notebook: what it is, where it came from, and a profile row per column with a tiny histogram."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from .html import STYLE, fmt, table

if TYPE_CHECKING:
    from ..data.snapshots import Snapshot

MAX_COLUMNS_SHOWN = 60


def _bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def spark(counts: list[int], width: int = 80, height: int = 16, color: str = "#0969da") -> str:
    """Bars as a small inline SVG."""
    if not counts:
        return ""
    top = max(counts) or 1
    w = width / len(counts)
    bars = "".join(
        f'<rect x="{i * w:.1f}" y="{height - c / top * height:.1f}" width="{max(w - 0.3, 0.5):.1f}" '
        f'height="{c / top * height:.1f}"/>'
        for i, c in enumerate(counts)
        if c
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="vertical-align:middle">'
        f'<g fill="{color}">{bars}</g></svg>'
    )


def _summary(p: dict[str, Any]) -> str:
    if "mean" in p:
        if p["kind"] == "datetime":
            return f"{p.get('min_iso', '')[:19]} … {p.get('max_iso', '')[:19]}"
        return f"{fmt(p['min'])} … {fmt(p['max'])} · mean {fmt(p['mean'])} · sd {fmt(p['std'])}"
    if p.get("top"):
        shown = ", ".join(f"{v} ({c:,})" for v, c in p["top"][:3])
        more = len(p["top"]) - 3 + (1 if p.get("other") else 0)
        return shown + (" …" if more > 0 else "")
    return ""


def _chart(p: dict[str, Any]) -> str:
    if "histogram" in p:
        return spark(p["histogram"]["counts"])
    if p.get("top"):
        return spark([c for _, c in p["top"][:20]], color="#8250df")
    return ""


def snapshot_html(snap: Snapshot) -> str:
    shape = (
        f"{snap.rows:,} rows × {snap.n_columns} columns"
        if snap.n_columns is not None and snap.rows is not None
        else (f"{snap.rows:,} rows" if snap.rows is not None else snap.kind)
    )
    meta = [
        f"{escape(snap.kind)} · {shape}",
        f"digest <code>{escape(snap.digest[:16])}</code>",
        f"{_bytes(snap.nbytes)} in memory, {_bytes(snap.size)} stored ({escape(snap.format)})",
        f"taken {snap.created_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f" by {escape(snap.created_by)}" if snap.created_by else ""),
    ]
    if snap.run_id:
        meta.append(f"run <code>{escape(snap.run_id)}</code>")
    if snap.source:
        meta.append(f"from <code>{escape(snap.source)}</code>")
    head = (
        f'<div class="mlo-h">Snapshot {escape(snap.name)}@{snap.version}</div>'
        f'<div class="mlo-m">{" · ".join(meta)}</div>'
    )
    profile = snap.profile
    if not profile:
        return f"{STYLE}<div>{head}</div>"
    rows = []
    for p in profile[:MAX_COLUMNS_SHOWN]:
        n = p["count"] or 1
        nulls = f"{p['nulls'] / n:.1%}" if p["nulls"] else ""
        distinct = (
            ""
            if p.get("distinct") is None
            else (f"{p['distinct']:,}" + ("" if p.get("distinct_exact") else "~"))
        )
        rows.append([p["name"], p["dtype"], p["kind"], nulls, distinct, _chart(p), _summary(p)])
    more = ""
    if len(profile) > MAX_COLUMNS_SHOWN:
        more = f'<div class="mlo-m">… {len(profile) - MAX_COLUMNS_SHOWN} more columns in .profile</div>'
    body = table(
        ["column", "dtype", "kind", "nulls", "distinct", "distribution", "summary"], rows, {3, 4}, {5}
    )
    return f"{STYLE}<div>{head}{body}{more}</div>"
