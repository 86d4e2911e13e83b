"""HTML and plots of a run comparison (:class:`mlo.tracking.compare.Comparison`): the run table page, the param
diff, metric histories and parallel coordinates. The widget shows these pieces; without a widget frontend
(nbconvert, GitHub) :func:`comparison_html` is the whole comparison as static HTML."""

from __future__ import annotations

import io
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..tracking.short_ids import short_ids
from .html import STYLE, badge, fmt, fmt_duration, run_color

if TYPE_CHECKING:
    from ..tracking.compare import Comparison

MAX_PARALLEL_LINES = 2000
DIFF_STYLE = "<style>.mlo-t td.d,.mlo-t th.d{background:rgba(255,196,0,.22)}</style>"


def column_label(column: str) -> str:
    return column.split(".", 1)[1] if column.startswith(("params.", "metrics.", "tags.")) else column


def integer_columns(frame: pd.DataFrame) -> set[str]:
    """The param columns whose values are all whole numbers (read back as floats where some run lacks the
    param): shown as ``2``, not ``2.0``."""
    out = set()
    for c in frame.columns:
        if not c.startswith("params.") or frame[c].dtype.kind not in "if":
            continue
        values = frame[c].dropna().to_numpy(dtype="float64")
        if len(values) and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            out.add(c)
    return out


def cell_text(column: str, value: Any, short: dict[str, str] | None = None, integer: bool = False) -> str:
    """A table cell's text (no HTML); ``short`` maps run ids to their short ids (see
    :mod:`mlo.tracking.short_ids`); ``integer`` shows a whole float as an integer."""
    if column == "duration":
        return fmt_duration(value)
    if column == "run_id":
        return "" if not isinstance(value, str) else (short or {}).get(value, value)
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if integer and isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return fmt(value)


def page_html(cmp: Comparison) -> str:
    """The current page of the run table, differing params highlighted, selected runs ticked."""
    page = cmp.page_frame()
    differing = set(cmp.differing())
    cols = list(page.columns)
    arrow = " ▲" if cmp.ascending else " ▼"
    head = ["<th></th>"] + [
        f"<th{' class=d' if c in differing else ''}>{escape(column_label(c))}"
        f"{arrow if c == cmp.sort_column else ''}</th>"
        for c in cols
    ]
    body = []
    short = short_ids(page["run_id"])
    integers = integer_columns(page)
    selected = set(cmp.selected)
    for rec in page.to_dict("records"):
        tick = "☑" if rec["run_id"] in selected else "☐"
        cells = [f"<td>{tick}</td>"]
        for c in cols:
            v = rec[c]
            cls = ' class="d"' if c in differing else (' class="n"' if c.startswith("metrics.") else "")
            text = badge(v) if c == "status" else escape(cell_text(c, v, short, c in integers))
            if c == "run_id":
                text = f"<code title='{escape(v)}'>{text}</code>"
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="mlo-t"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def summary_text(cmp: Comparison, paged: bool = True) -> str:
    """ "1–25 of 40 runs matching … · 2 params differ · 3 selected" (without the page's span when not
    ``paged``: a scrolling table shows every row)."""
    shown = cmp.count
    total = cmp.count_all
    start = cmp.page * cmp.page_size
    span = f"{start + 1}–{min(start + cmp.page_size, shown)} of " if shown and paged else ""
    matched = f"{span}{shown:,} runs" + (f" matching {cmp.where!r} (of {total})" if cmp.where else "")
    differing = len(cmp.differing())
    return (
        f"{matched} · {differing} param{'s' if differing != 1 else ''} differ · {len(cmp.selected)} selected"
    )


def param_diff_html(diff: pd.DataFrame) -> str:
    """The param diff (params as rows, runs as columns); rows whose values differ are highlighted."""
    if diff.empty:
        return "<div class='mlo-m'>The selected runs have no params.</div>"
    runs = [c for c in diff.columns if c != "differs"]
    head = "<th>param</th>" + "".join(f"<th>{escape(str(r))}</th>" for r in runs)
    body = []
    for param, row in diff.iterrows():
        cls = ' class="d"' if row["differs"] else ""
        cells = "".join(f"<td{cls}>{escape(cell_text('', row[r]))}</td>" for r in runs)
        body.append(f"<tr><td{cls}><b>{escape(str(param))}</b></td>{cells}</tr>")
    n = int(diff["differs"].sum())
    note = f"<div class='mlo-m'>{n} of {len(diff)} params differ</div>"
    return note + f'<table class="mlo-t"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG goes inline into HTML


def _figure(width: float, height: float):
    """A figure outside pyplot: nothing is shown twice, nothing is left open, any backend is fine."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def histories_svg(histories: dict[str, dict[str, pd.DataFrame]], max_plots: int = 6) -> str:
    """One small line plot per metric, a line per run over steps, as inline SVG."""
    keys = sorted(histories)[:max_plots]
    if not keys:
        return "<div class='mlo-m'>The selected runs logged no metrics.</div>"
    runs = list(dict.fromkeys(label for key in keys for label in histories[key]))
    colour = {label: run_color(label) for label in runs}  # a run keeps its colour in every plot and view
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = _figure(3.4 * cols, 2.4 * rows)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        series = histories[key]
        if all(len(df) == 1 for df in series.values()):  # a single value per run: a bar each
            for j, (label, df) in enumerate(series.items()):
                ax.bar(j, df["value"].iloc[0], color=colour[label])
            ax.set_xticks([])
        else:
            for label, df in series.items():
                style = "o" if len(df) == 1 else "-"
                ax.plot(df["step"], df["value"], style, color=colour[label], linewidth=1.2, markersize=4)
            ax.set_xlabel("step", fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    labels = list(colour)
    handles = [Line2D([], [], color=colour[label], linewidth=2) for label in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08 if len(labels) <= 4 else 0.14, 1, 1))
    more = len(histories) - len(keys)
    note = f"<div class='mlo-m'>{more} more metrics not plotted</div>" if more > 0 else ""
    return _svg(fig) + note


MISSING_AT = -0.12  # where a parallel-coordinates axis puts the runs that lack its value


def _axis(values: pd.Series) -> tuple[np.ndarray, list[float], list[str]]:
    """A column → positions in [0, 1], runs without a value at their own "missing" tick below, with tick
    positions and labels."""
    x, ticks, labels = _present_axis(values)
    if np.isnan(x).any():
        x = np.where(np.isnan(x), MISSING_AT, x)
        ticks, labels = [*ticks, MISSING_AT], [*labels, "(missing)"]
    return x, ticks, labels


def _present_axis(values: pd.Series) -> tuple[np.ndarray, list[float], list[str]]:
    numeric = pd.to_numeric(values, errors="coerce")
    present = values.notna()
    if (
        numeric[present].notna().all()
        and present.any()
        and values.map(lambda v: not isinstance(v, bool)).all()
    ):
        x = numeric.to_numpy(dtype="float64")
        lo, hi = np.nanmin(x), np.nanmax(x)
        span = hi - lo or 1.0
        ticks = np.linspace(lo, hi, 3) if hi > lo else np.array([lo])
        return (
            (x - lo) / span if hi > lo else np.where(np.isnan(x), np.nan, 0.5),
            list((ticks - lo) / span if hi > lo else [0.5]),
            [fmt(float(t)) for t in ticks],
        )
    texts = pd.Series([str(v) if present_v else "" for v, present_v in zip(values, present, strict=True)])
    cats = sorted({t for t in texts if t})
    pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
    x = np.array([pos.get(t, np.nan) for t in texts], dtype="float64")
    return x, [pos[c] for c in cats], cats


def parallel_svg(df: pd.DataFrame, metric: str) -> str:
    """Parallel coordinates: an axis per param and one for ``metric``, a line per run coloured by the metric."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    df = df[df[metric].notna()]
    if df.empty:
        return f"<div class='mlo-m'>No run here logged {escape(column_label(metric))}.</div>"
    note = ""
    if len(df) > MAX_PARALLEL_LINES:
        note = (
            f"<div class='mlo-m'>{MAX_PARALLEL_LINES} of {len(df)} runs drawn (the best by the metric)</div>"
        )
        df = df.sort_values(metric, ascending=False).head(MAX_PARALLEL_LINES)
    axes_cols = [c for c in df.columns if c.startswith("params.")] + [metric]
    positions, ticks = [], []
    for c in axes_cols:
        x, tick_pos, tick_labels = _axis(df[c])
        positions.append(x)
        ticks.append((tick_pos, tick_labels))
    grid = np.column_stack(positions)  # runs × axes
    fig = _figure(max(4.0, 1.5 * len(axes_cols)), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    values = df[metric].to_numpy(dtype="float64")
    norm = Normalize(np.nanmin(values), np.nanmax(values) if np.nanmax(values) > np.nanmin(values) else None)
    xs = np.arange(len(axes_cols), dtype="float64")
    segments = [np.column_stack([xs, row]) for row in grid]
    lines = LineCollection(segments, cmap="viridis", norm=norm, linewidths=1.2, alpha=0.8)
    lines.set_array(values)
    ax.add_collection(lines)
    for i, (tick_pos, tick_labels) in enumerate(ticks):
        ax.axvline(i, color="#888", linewidth=0.8)
        for p, label in zip(tick_pos, tick_labels, strict=True):
            ax.text(i + 0.03, p, label, fontsize=7, va="center", color="#333")
    ax.set_xlim(-0.1, len(axes_cols) - 0.6)
    ax.set_ylim(MISSING_AT - 0.05, 1.05)
    ax.set_xticks(xs, [column_label(c) for c in axes_cols], fontsize=8)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(lines, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(column_label(metric), fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return _svg(fig) + note


def comparison_html(cmp: Comparison, metric: str | None = None) -> str:
    """The whole comparison as static HTML: the summary, the table page and, for a selection, the param
    diff, metric histories and parallel coordinates."""
    parts = [
        STYLE,
        DIFF_STYLE,
        f"<div class='mlo-h'>Compare runs</div><div class='mlo-m'>{escape(summary_text(cmp))}</div>",
    ]
    parts.append(page_html(cmp))
    if cmp.pages > 1:
        parts.append(f"<div class='mlo-m'>page {cmp.page + 1} of {cmp.pages}</div>")
    if cmp.selected:
        parts.append("<div class='mlo-h'>Param diff</div>" + param_diff_html(cmp.param_diff()))
        parts.append("<div class='mlo-h'>Metric histories</div>" + histories_svg(cmp.histories()))
        metric = metric or (cmp.metrics[0] if cmp.metrics else None)
        if metric:
            parts.append(
                f"<div class='mlo-h'>Params → {escape(column_label(metric))}</div>"
                + parallel_svg(cmp.parallel(metric), metric)
            )
    return "".join(parts)
