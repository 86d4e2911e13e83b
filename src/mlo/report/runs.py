"""HTML for runs: a compact run table (``%mlo runs``) and the summary of one run."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..store.addresses import short
from ..tracking.short_ids import short_ids
from .html import STYLE, badge, fmt, fmt_duration, table

if TYPE_CHECKING:
    import pandas as pd

MAX_KEY_COLUMNS = 8
SYSTEM_PREFIX = "system."


def runs_table_html(df: pd.DataFrame, max_rows: int = 50) -> str:
    """The runs frame as a compact table: status badges, durations, a few params and metrics."""
    total = len(df)
    shown = df.head(max_rows)
    params = [c for c in df.columns if c.startswith("params.")][:MAX_KEY_COLUMNS]
    metrics = sorted(
        (c for c in df.columns if c.startswith("metrics.")), key=lambda c: c.startswith("metrics.system.")
    )[:MAX_KEY_COLUMNS]
    base = [
        c
        for c in ("run_id", "experiment", "name", "status", "start_time", "duration", "git_commit")
        if c in df.columns
    ]
    cols = base + params + metrics
    short = short_ids(shown["run_id"]) if "run_id" in cols else {}
    headers = [c.replace("params.", "").replace("metrics.", "") if c in params + metrics else c for c in cols]
    rows = []
    for rec in shown[cols].to_dict("records"):
        row = []
        for c in cols:
            v = rec[c]
            if c == "status":
                v = badge(v)
            elif c == "duration":
                v = fmt_duration(v)
            elif c == "run_id":
                v = f"<code title='{escape(v)}'>{escape(short.get(v, v))}</code>"
            elif c == "git_commit" and isinstance(v, str):
                v = v[:8]
            row.append(v)
        rows.append(row)
    raw = {cols.index(c) for c in ("status", "run_id") if c in cols}
    numeric = {i for i, c in enumerate(cols) if c in metrics or c == "duration"}
    groups = ""
    if params or metrics:
        groups = (
            f"<div class='mlo-m'>{len(params)} param and {len(metrics)} metric columns shown"
            " (all of them are in mlo.runs())</div>"
        )
    more = f"<div class='mlo-m'>{total - max_rows} more runs not shown</div>" if total > max_rows else ""
    if total == 0:
        return STYLE + "<div class='mlo-m'>No runs yet.</div>"
    return (
        STYLE
        + f"<div class='mlo-h'>{total} run{'s' if total != 1 else ''}</div>"
        + groups
        + table(
            headers,
            rows,
            numeric=numeric,
            raw=raw,
            groups=[("", len(base))]
            + [(label, n) for label, n in (("params", len(params)), ("metrics", len(metrics))) if n],
        )
        + more
    )


def run_html(run) -> str:
    """One run: header, params, metrics, git, artifacts and captured cells."""
    d = run.to_dict()
    head = (
        f"<div class='mlo-h'>{escape(d['name'])} {badge(d['status'])}</div>"
        f"<div class='mlo-m'>run <code>{escape(d['id'])}</code> · experiment {escape(d['experiment'])} · "
        f"{escape(fmt(run.start_time))} · {fmt_duration(d['duration'])}"
    )
    if d["git"]:
        dirty = " (dirty)" if d["git"]["dirty"] else ""
        head += f" · git {escape(d['git']['commit'][:8])}{dirty}"
    if d.get("lifecycle") and d["lifecycle"] != "active":
        head += f" · <b>{escape(d['lifecycle'])}</b>"
    head += "</div>"
    parts = [STYLE, head]
    if d.get("note"):
        parts.append(f"<div class='mlo-note'>{markdown_html(d['note'])}</div>")
    metrics = {k: v for k, v in d["metrics"].items() if not k.startswith(SYSTEM_PREFIX)}
    if d["params"] or metrics:
        keys = [("param", k, v) for k, v in d["params"].items()] + [
            ("metric", k, v) for k, v in metrics.items()
        ]
        parts.append(table(["", "key", "value"], [list(k) for k in keys], numeric={2}))
    if len(metrics) < len(d["metrics"]):
        parts.append(system_html(run.system_metrics(), d["tags"]))
    if d["artifacts"]:
        parts.append(
            table(
                ["artifact", "size", "digest"],
                [[a["path"], a["size"], short(a["digest"])] for a in d["artifacts"]],
                numeric={1},
            )
        )
    if d["cells"]:
        parts.append(f"<div class='mlo-m'>{len(d['cells'])} captured cell(s)</div>")
        for c in d["cells"][-5:]:
            mark = "" if c["success"] else " (failed)"
            parts.append(
                f"<div class='mlo-m'>In [{c['execution_count'] or ' '}]{mark}</div>"
                f"<pre class='mlo-c'>{escape(c['source'])}</pre>"
            )
    return "".join(parts)


def sparkline(values, width: int = 120, height: int = 18) -> str:
    """A tiny inline SVG line of ``values`` (scaled to its own range)."""
    points = [float(v) for v in values if v == v]
    if len(points) < 2:
        return ""
    lo, hi = min(points), max(points)
    span = (hi - lo) or 1.0
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}" for i, v in enumerate(points)
    )
    return (
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' style='vertical-align:middle'>"
        f"<polyline fill='none' stroke='#1f6feb' stroke-width='1.2' points='{coords}'/></svg>"
    )


def system_html(frame: pd.DataFrame, tags: dict) -> str:
    """The run's system metrics: per key the last and highest value and a sparkline over the run."""
    limits = [
        f"{label} {escape(str(tags[key]))}"
        for key, label in (
            ("system.cpu_limit", "CPU limit (cores)"),
            ("system.memory_limit_mb", "memory limit (MB)"),
            ("system.gpus", "GPUs"),
        )
        if key in tags
    ]
    rows = [
        [key, frame[key].dropna().iloc[-1], frame[key].max(), sparkline(frame[key].tolist())]
        for key in frame.columns
        if frame[key].notna().any()
    ]
    note = f"<div class='mlo-m'>{len(frame)} sample(s){' · ' + ' · '.join(limits) if limits else ''}</div>"
    return (
        "<div class='mlo-h'>System</div>"
        + note
        + table(["system", "last", "max", "over the run"], rows, numeric={1, 2}, raw={3})
    )


def markdown_html(text: str) -> str:
    """A note's Markdown as HTML (CommonMark and tables; raw HTML in the note is shown as text, not run)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").render(text)


class RunsView:
    """What ``%mlo runs`` shows: the compact table in notebooks, plain text elsewhere; ``.df`` has the data."""

    def __init__(self, df: pd.DataFrame, max_rows: int = 50):
        self.df = df
        self.max_rows = max_rows

    def _repr_html_(self) -> str:
        return runs_table_html(self.df, self.max_rows)

    def __repr__(self) -> str:
        from .text import runs_text

        return runs_text(self.df, self.max_rows)
