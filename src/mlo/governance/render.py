"""The problem, its status and the maturity level in a notebook: compact tables with state badges."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..report.html import STYLE, table

if TYPE_CHECKING:
    from .maturity import Maturity
    from .problem import Problem
    from .status import Status

STATE_COLORS = {
    "met": "#1a7f37",
    "at risk": "#9a6700",
    "broken": "#cf222e",
    "unknown": "#57606a",
    "not yet": "#57606a",
}


def state_badge(state: str) -> str:
    color = STATE_COLORS.get(state, "#57606a")
    return f'<span class="mlo-b" style="background:{color}">{escape(state)}</span>'


def problem_html(p: Problem) -> str:
    rows = []
    if p.target:
        rows.append(["target", p.target.describe()])
    for g in p.guardrails:
        rows.append(
            [
                "guardrail",
                f"{g} not worse than production" + (f" by more than {p.tolerance:g}" if p.tolerance else ""),
            ]
        )
    for key, value in p.constraints.items():
        rows.append(["constraint", f"{key} = {value}"])
    meta = [f"from {escape(p.source)}"]
    if p.owner:
        meta.append(f"owner {escape(p.owner)}")
    if p.model:
        meta.append(f"model {escape(p.model)}")
    return (
        STYLE
        + f"<div class='mlo-h'>{escape(p.objective)}</div><div class='mlo-m'>{' · '.join(meta)}</div>"
        + table(["kind", "what"], rows)
    )


def status_html(s: Status) -> str:
    rows = [[state_badge(i.state), i.name, i.value, i.bound, i.evidence] for i in s.items]
    where = f"production: {s.model}/{s.version}" if s.version is not None else "no production model yet"
    return (
        STYLE
        + f"<div class='mlo-h'>{state_badge(s.state)} {escape(s.problem.objective)}</div>"
        + f"<div class='mlo-m'>{escape(where)}</div>"
        + table(
            ["state", "objective or constraint", "value", "bound", "evidence"], rows, numeric={2}, raw={0}
        )
    )


def maturity_html(m: Maturity) -> str:
    rows = [
        [state_badge("met" if c.met else "not yet"), f"L{c.level}", c.name, c.evidence] for c in m.criteria
    ]
    steps = "".join(
        f"<li>L{c.level} {escape(c.name)}: <code>{escape(c.next_step)}</code></li>" for c in m.next_steps[:4]
    )
    return (
        STYLE
        + f"<div class='mlo-h'>maturity level {m.level}: {escape(m.name)}</div>"
        + table(["", "level", "criterion", "evidence"], rows, raw={0})
        + (f"<div class='mlo-h'>next steps</div><ul class='mlo-m'>{steps}</ul>" if steps else "")
    )
