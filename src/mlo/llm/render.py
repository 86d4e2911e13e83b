"""LLM objects in the notebook: a trace as an expandable tree (``<details>``, no JavaScript), the traces table,
a reply, a prompt, a prompt diff and a budget. Colours follow JupyterLab's theme variables, with light fallbacks.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from ..report.html import STYLE, badge, fmt_duration, table
from .query import span_contents

if TYPE_CHECKING:
    from .client import Reply
    from .prompts import Prompt, PromptDiff
    from .query import SpanRecord, Trace
    from .spending import BudgetStatus

_CSS = (
    "<style>.mlo-tr{font:12px/1.45 system-ui,sans-serif;color:var(--jp-ui-font-color1,#1f2328)}"
    ".mlo-tr details{margin-left:14px;border-left:1px solid var(--jp-border-color2,#d0d7de);padding-left:6px}"
    ".mlo-tr summary{cursor:pointer;list-style-position:outside}"
    ".mlo-tr .k{display:inline-block;min-width:64px;color:var(--jp-ui-font-color2,#57606a)}"
    ".mlo-tr .e{color:var(--jp-error-color1,#cf222e)}"
    ".mlo-tr pre{background:var(--jp-layout-color2,#f6f8fa);color:inherit;padding:4px 6px;margin:2px 0;"
    "max-height:200px;overflow:auto;white-space:pre-wrap;font-size:11px}"
    ".mlo-tr .bar{display:inline-block;height:6px;background:var(--jp-brand-color1,#0969da);vertical-align:middle}"
    ".mlo-d .a{background:rgba(26,127,55,.15)}.mlo-d .r{background:rgba(207,34,46,.15)}"
    ".mlo-d pre{margin:2px 0;font-size:12px;color:var(--jp-ui-font-color1,#1f2328)}</style>"
)
_STATUS = {"ok": "finished", "error": "failed", "running": "running", "unfinished": "killed"}


def _color(s: str) -> str:
    from ..report.html import STATUS_COLORS

    return STATUS_COLORS.get(_STATUS.get(s, s), "#57606a")


def _usd(value: float | None) -> str:
    if value is None or value != value:
        return "unpriced"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _tokens(usage) -> str:
    if usage.input is None and usage.output is None:
        return ""
    parts = [f"{usage.input or 0:,} in"]
    if usage.cached:
        parts.append(f"{usage.cached:,} cached")
    parts.append(f"{usage.output or 0:,} out")
    if usage.reasoning:
        parts.append(f"{usage.reasoning:,} reasoning")
    return " · ".join(parts)


def _pre(value: Any, limit: int = 4000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit:,} more characters)"
    return f"<pre>{escape(text)}</pre>"


def _span(s: SpanRecord, t0: int, total: float, open_: bool) -> str:
    dur = s.duration
    width = max(2, int(120 * (dur or 0) / total)) if total else 2
    offset = int(120 * (s.start_time - t0) / 1e6 / total) if total else 0
    head = (
        f"{badge(s.status).replace('#57606a', _color(s.status))} <b>{escape(s.name)}</b> "
        f"<span class='k'>{escape(s.kind)}</span> {escape(fmt_duration(dur))} "
        f"<span style='display:inline-block;width:{offset}px'></span><span class='bar' style='width:{width}px'></span>"
    )
    if s.usage.input is not None or s.usage.output is not None:
        head += f" <span class='k'>{escape(_tokens(s.usage))}</span>"
    if s.prompt:
        head += f" <code>{escape(s.prompt)}</code>"
    body = []
    if s.error:
        body.append(f"<div class='e'>{escape(s.error)}</div>")
    attrs = {
        k: v for k, v in s.attributes.items() if k not in ("mlo.inputs", "mlo.outputs", "mlo.response.text")
    }
    if attrs:
        rows = "".join(
            f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in sorted(attrs.items())
        )
        body.append(
            f"<details><summary>attributes ({len(attrs)})</summary><table class='mlo-t'>{rows}</table></details>"
        )
    try:
        took, gave = span_contents(s)
        if s.kind in ("llm", "embedding"):
            if took is not None:
                body.append(f"<details><summary>request</summary>{_pre(took)}</details>")
            if "mlo.response.text" in s.attributes:
                body.append(f"<div><span class='k'>answer</span>{_pre(gave)}</div>")
            elif gave is not None:
                body.append(f"<details><summary>response</summary>{_pre(gave)}</details>")
        else:
            for label, value in (("inputs", took), ("outputs", gave)):
                if value is not None:
                    body.append(f"<details><summary>{label}</summary>{_pre(value)}</details>")
    except Exception as exc:  # a blob that cannot be read: say so, show the rest
        body.append(f"<div class='e'>{escape(type(exc).__name__)}: {escape(str(exc))}</div>")
    for child in s.children:
        body.append(_span(child, t0, total, False))
    return f"<details{' open' if open_ else ''}><summary>{head}</summary>{''.join(body)}</details>"


def trace_html(t: Trace) -> str:
    total = max(t.duration or 0.0, 1e-6)
    cost = t.cost
    meta = [f"trace <code>{escape(t.id[:12])}</code>", escape(t.started.strftime("%Y-%m-%d %H:%M:%S UTC"))]
    if t.run_id:
        meta.append(f"run <code>{escape(t.run_id[:10])}</code>")
    if t.cell is not None:
        meta.append(f"cell In [{t.cell}]")
    if t.replayed:
        meta.append("replayed from the record")
    usage = _tokens(t.usage)
    head = (
        f"<div class='mlo-h'>{escape(t.name)} {badge(t.status).replace('#57606a', _color(t.status))} "
        f"{escape(fmt_duration(t.duration))} · {len(t.spans)} spans"
        f"{' · ' + escape(usage) if usage else ''} · {escape(_usd(cost))}</div>"
        f"<div class='mlo-m'>{' · '.join(meta)}</div>"
    )
    spans = "".join(_span(r, t.start_time, total, True) for r in t.roots)
    err = f"<div class='e'>{escape(t.error)}</div>" if t.error else ""
    return STYLE + _CSS + f"<div class='mlo-tr'>{head}{err}{spans}</div>"


def traces_html(df, max_rows: int = 50) -> str:
    if df.empty:
        return (
            STYLE
            + "<div class='mlo-m'>no traces yet: call an LLM through mlo.llm.chat, or after mlo.llm.autolog()</div>"
        )
    rows = []
    for _, r in df.head(max_rows).iterrows():
        rows.append(
            [
                f"<code>{escape(r['trace_id'][:10])}</code>",
                escape(r["name"]),
                badge(r["status"]).replace("#57606a", _color(r["status"])),
                r["start_time"],
                fmt_duration(r["duration"]),
                r["llm_calls"],
                f"{int(r['input_tokens']):,} / {int(r['output_tokens']):,}",
                _usd(r["cost_usd"]),
                r["models"] or "",
                r["prompts"] or "",
                "" if r["cell"] is None or r["cell"] != r["cell"] else f"In [{r['cell']}]",
            ]
        )
    more = len(df) - max_rows
    tail = f"<div class='mlo-m'>{more} more not shown (mlo.traces() has them all)</div>" if more > 0 else ""
    headers = ["trace", "name", "status", "started", "duration", "calls", "tokens in / out", "cost", "models",
               "prompts", "cell"]  # fmt: skip
    return STYLE + table(headers, rows, numeric={5, 6, 7}, raw={0, 1, 2}) + tail


def reply_html(r: Reply) -> str:
    if not r.ok:
        return STYLE + _CSS + f"<div class='mlo-tr'><span class='e'>{escape(r.error or '')}</span></div>"
    meta = [
        escape(r.model or ""),
        escape(_tokens(r.usage)),
        escape(_usd(r.cost.usd)),
        escape(fmt_duration(r.latency)),
    ]
    if r.attempts > 1:
        meta.append(f"{r.attempts} attempts")
    if r.prompt:
        meta.append(f"prompt <code>{escape(r.prompt)}</code>")
    if r.replayed:
        meta.append("replayed")
    if r.trace_id:
        meta.append(f"trace <code>{escape(r.trace_id[:10])}</code>")
    return (
        STYLE + _CSS + f"<div class='mlo-tr'><div>{escape(r.text or '')}</div>"
        f"<div class='mlo-m'>{' · '.join(m for m in meta if m)}</div></div>"
    )


def prompt_html(p: Prompt) -> str:
    meta = [f"<code>{escape(p.ref)}</code>"]
    if p.aliases:
        meta.append("@" + ", @".join(escape(a) for a in p.aliases))
    if p.model:
        meta.append(f"model {escape(p.model)}")
    if p.params:
        meta.append(escape(", ".join(f"{k}={v}" for k, v in p.params.items())))
    meta.append("variables: " + (", ".join(escape(v) for v in p.variables) or "none"))
    return (
        STYLE + _CSS + f"<div class='mlo-tr'><div class='mlo-h'>prompt {escape(p.name)} v{p.version}</div>"
        f"<div class='mlo-m'>{' · '.join(meta)}</div>{_pre(p.template)}</div>"
    )


def diff_html(d: PromptDiff) -> str:
    head = f"<div class='mlo-h'>{escape(d.old.ref)} → {escape(d.new.ref)}</div>"
    if d.same:
        return STYLE + head + "<div class='mlo-m'>the same template, model and params</div>"
    lines = []
    for line in d.template[2:]:
        cls = "a" if line.startswith("+") else "r" if line.startswith("-") else ""
        lines.append(f"<div class='{cls}'>{escape(line) or '&nbsp;'}</div>")
    body = f"<pre>{''.join(lines)}</pre>" if lines else "<div class='mlo-m'>the template is the same</div>"
    v = d.variables
    extra = []
    if v["added"] or v["removed"]:
        extra.append(
            "variables: "
            + " ".join(
                [f"<span class='a'>+{escape(x)}</span>" for x in v["added"]]
                + [f"<span class='r'>−{escape(x)}</span>" for x in v["removed"]]
            )  # fmt: skip
        )
    rows = [[n, "" if a is None else str(a), "" if b is None else str(b)] for n, a, b in d.settings]
    settings = table(["setting", d.old.ref, d.new.ref], rows) if rows else ""
    return (
        STYLE
        + _CSS
        + f"<div class='mlo-d'>{head}{body}<div class='mlo-m'>{''.join(extra)}</div>{settings}</div>"
    )


def budget_html(b: BudgetStatus) -> str:
    if not b.lines:
        return STYLE + "<div class='mlo-m'>no LLM budget set ([llm.budget] in mlo.toml)</div>"
    rows = [
        [x.period, x.scope, f"${x.spent:.4f}", f"${x.limit:.2f}", badge("gate" if x.exceeded else "finished").replace(
            ">gate<" if x.exceeded else ">finished<", ">over<" if x.exceeded else ">within<")]
        for x in b.lines
    ]  # fmt: skip
    meta = f"<div class='mlo-m'>action: {escape(b.action)} · prices {escape(b.price_version or '')}</div>"
    return STYLE + table(["budget", "period", "spent", "limit", ""], rows, numeric={2, 3}, raw={4}) + meta
