"""A pipeline run in a notebook: one row per task with its status, time and message."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .html import STYLE, badge, fmt_duration, table

if TYPE_CHECKING:
    from ..pipeline.run import PipelineResult

_STATUS = {"ok": "finished", "cached": "cached", "gate": "failed", "error": "failed", "skipped": "skipped"}


def pipeline_html(result: PipelineResult) -> str:
    from ..tracking.short_ids import short_ids

    short = short_ids(t.run_id for t in result.tasks)
    rows = [
        [
            badge(_STATUS[t.status] if t.status != "gate" else "gate"),
            t.name,
            fmt_duration(t.seconds),
            short.get(t.run_id or "", ""),
            t.message,
        ]
        for t in result.tasks
    ]
    head = f'<div class="mlo-h">{escape(result.summary())}</div>'
    return f"{STYLE}<div>{head}{table(['', 'task', 'time', 'run', 'detail'], rows, {2}, {0})}</div>"
