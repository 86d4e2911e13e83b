"""Plain-text renderings for terminals (the CLI) and text-only notebook front ends: one fixed-width table
printer for every listing, and :func:`clean`, which keeps the terminal's control characters (escape sequences
in a run name, a tag, a column) from reaching it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..tracking.short_ids import short_ids
from .html import fmt, fmt_duration

if TYPE_CHECKING:
    import pandas as pd


# C0 controls but tab and newline, DEL, C1 controls; plus the bidi overrides that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_IN_CELL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or (
        f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    )


def clean(text: Any, multiline: bool = True) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), so a terminal prints them instead of
    obeying them. ``multiline`` keeps newlines and tabs (the rest of a message); a table cell escapes them too."""
    text = str(text)
    return (_CONTROL if multiline else _CONTROL_IN_CELL).sub(_escape, text)


def _width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] | None = None) -> str:
    """The one fixed-width table of the terminal: a header, a rule, a line per row; cells escaped (see
    :func:`clean`), columns in ``right`` right-aligned (numbers)."""
    right = right or set()
    head = [clean(h, multiline=False) for h in headers]
    body = [[clean("" if c is None else c, multiline=False) for c in r] for r in rows]
    widths = [max([_width(h), *(_width(r[i]) for r in body)]) for i, h in enumerate(head)]

    def line(cells):
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            pad = " " * (w - _width(c))
            out.append(pad + c if i in right else c + pad)
        return "  ".join(out).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in body])


def frame_text(df: pd.DataFrame, columns: Sequence[str] | None = None, empty: str = "Nothing.") -> str:
    """A DataFrame as :func:`table`: values as :func:`mlo.report.html.fmt` writes them, numbers right-aligned."""
    import pandas as pd

    if df.empty:
        return empty
    cols = list(columns or df.columns)
    right = {i for i, c in enumerate(cols) if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool}
    rows = [["" if _missing(v) else fmt(v) for v in rec] for rec in df[cols].itertuples(index=False)]
    return table(cols, rows, right)


def _missing(v: Any) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


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
    right = {i for i, c in enumerate(cols) if c in metrics or c == "duration"}
    out = [table(headers, rows, right)]
    if max_rows is not None and len(df) > max_rows:
        out.append(f"… {len(df) - max_rows} more runs")
    return "\n".join(out)
