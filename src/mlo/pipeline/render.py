"""A reproduction's verdict as a notebook cell: the verdict, what was compared, why it differs and the fix."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..report.html import STYLE, badge, table

if TYPE_CHECKING:
    from .verdict import Reproduction

_COLORS = {"reproduced": "#1a7f37", "skipped": "#57606a", "nothing": "#9a6700"}
_CAUSE_TITLES = {
    "input": "input",
    "missing-input": "missing input",
    "diverged": "diverged",
    "nondeterministic": "nondeterministic",
    "unseeded": "unseeded randomness",
    "package": "packages",
    "code": "code",
    "failed-cell": "failed cell",
}


def _code(text: str) -> str:
    """Escaped text with `backquoted` parts as code."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def reproduction_html(rep: Reproduction) -> str:
    color = _COLORS.get(rep.status, "#cf222e")
    head = f'<div class="mlo-h" style="color:{color}">{escape(rep.summary())}</div>'
    meta = []
    if rep.reproduction:
        meta.append(f"replay run <code>{escape(rep.reproduction[:10])}</code>")
    if rep.cells:
        c = rep.cells
        text = f"{c.get('replayed', 0)} of {c.get('history', 0)} cells replayed"
        if c.get("replaced"):
            text += f", {c['replaced']} replaced by snapshots"
        meta.append(escape(text))
    if rep.inputs:
        meta.append("data " + ", ".join(f"{escape(k)} = {escape(v)}" for k, v in rep.inputs.items()))
    if rep.replays > 1:
        meta.append(f"{rep.replays} replays")
    rows = []
    many = len(rep.runs) > 1
    for r in rep.runs:
        for c in r.checks:
            if c.kind == "status" and c.match and c.original == "finished":
                continue
            delta = None
            if (
                c.kind == "metric"
                and isinstance(c.original, (int, float))
                and isinstance(c.reproduced, (int, float))
            ):
                delta = abs(c.reproduced - c.original)
            key = c.key if c.kind != "param" else f"params.{c.key}"
            row = [badge("same" if c.match else "differs"), key, c.original, c.reproduced, delta]
            rows.append([r.name, *row] if many else row)
    heads = ["", "value", "original", "reproduced", "|difference|"]
    body = table(
        ["run", *heads] if many else heads, rows, {3, 4, 5} if many else {2, 3, 4}, {1} if many else {0}
    )
    causes = ""
    if rep.causes:
        items = []
        for c in rep.causes:
            fix = f'<div class="mlo-m" style="margin-left:12px">fix: {_code(c.fix)}</div>' if c.fix else ""
            title = _CAUSE_TITLES.get(c.kind, c.kind)
            items.append(f'<div style="margin:3px 0">• <b>{escape(title)}</b>: {_code(c.message)}{fix}</div>')
        causes = f'<div class="mlo-h">why</div><div style="font:12px/1.4 system-ui,sans-serif">{"".join(items)}</div>'
    if rep.notes:
        notes = "".join(f"<div>· {_code(n)}</div>" for n in rep.notes)
        causes += f'<div class="mlo-m" style="margin-top:4px">{notes}</div>'
    return (
        f'{STYLE}<div>{head}<div class="mlo-m">{" · ".join(meta)}</div>{body if rows else ""}{causes}</div>'
    )
