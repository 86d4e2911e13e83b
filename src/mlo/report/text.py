"""Plain-text renderings for terminals (the CLI) and text-only notebook front ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..tracking.short_ids import short_ids
from .html import fmt, fmt_duration

if TYPE_CHECKING:
    import pandas as pd


def runs_text(df: pd.DataFrame, max_rows: int | None = 50, max_key_columns: int = 6) -> str:
    """A fixed-width table of runs with the first few params and metrics."""
    if df.empty:
        return "No runs."
    params = [c for c in df.columns if c.startswith("params.")][:max_key_columns]
    metrics = [c for c in df.columns if c.startswith("metrics.")][:max_key_columns]
    base = [
        c
        for c in ("run_id", "experiment", "name", "status", "start_time", "duration", "git_commit")
        if c in df.columns
    ]
    cols = base + params + metrics
    shown = df if max_rows is None else df.head(max_rows)
    short = short_ids(shown["run_id"]) if "run_id" in cols else {}
    rows = []
    for rec in shown[cols].to_dict("records"):
        row = []
        for c in cols:
            v = rec[c]
            if c == "run_id":
                row.append(short.get(v, ""))
            elif c == "duration":
                row.append(fmt_duration(v))
            elif c == "git_commit" and isinstance(v, str):
                row.append(v[:8])
            else:
                row.append(fmt(v))
        rows.append(row)
    headers = [c.split(".", 1)[1] if c in params + metrics else c for c in cols]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {i for i, c in enumerate(cols) if c in metrics or c == "duration"}

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if max_rows is not None and len(df) > max_rows:
        out.append(f"… {len(df) - max_rows} more runs")
    return "\n".join(out)
