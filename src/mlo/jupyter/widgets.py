"""Notebook widgets: ``mlo.compare()`` (``%mlo compare``) and ``mlo.browse_models()`` (``%mlo models``).

Thin views over :class:`mlo.tracking.compare.Comparison` and the registry. The tables are one small
anywidget (``static/table.js``): Python keeps the data and sends only the rows in view (a page, or the window
of a scrolling table); the view reports header clicks, ticked rows, page turns and scrolling back through
traits. The comparison's charts are another (``static/compare.js``, built from ``labextension/src/compare``).
Every widget also carries a static HTML rendering of its state, which nbconvert and GitHub show where no
widget frontend runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as w
import traitlets as t

from ..errors import MloError
from ..report.compare import (
    cell_text,
    column_label,
    comparison_html,
    integer_columns,
    param_diff_html,
    summary_text,
)
from ..tracking import compare_charts as chart_data
from ..tracking.brushing import brush_where
from ..tracking.compare import Comparison
from ..tracking.short_ids import short_ids

STATIC = Path(__file__).parent / "static"


class DataTable(anywidget.AnyWidget):
    """A page of rows with sortable headers and a checkbox (or radio button) per row."""

    _esm = STATIC / "table.js"
    _css = STATIC / "table.css"

    columns = t.List(t.Dict()).tag(sync=True)  # {key, label, numeric, highlight, sortable}
    rows = t.List(t.Dict()).tag(sync=True)  # {id, cells: [text, ...]}
    sort = t.Dict().tag(sync=True)  # {column, ascending}
    selected = t.List(t.Unicode()).tag(sync=True)
    page = t.Int(0).tag(sync=True)
    pages = t.Int(1).tag(sync=True)
    summary = t.Unicode("").tag(sync=True)
    multiple = t.Bool(True).tag(sync=True)
    # one scrolling table of `total` rows instead of pages; `rows` then holds rows offset… of it
    virtual = t.Bool(False).tag(sync=True)
    total = t.Int(0).tag(sync=True)
    offset = t.Int(0).tag(sync=True)
    viewport = t.Dict().tag(sync=True)  # {start, end}: the rows the view shows (set by the view)
    hidden = t.List(t.Unicode()).tag(sync=True)
    pinned = t.List(t.Unicode()).tag(sync=True)
    widths = t.Dict().tag(sync=True)  # column → px
    select_matching = t.Int(0).tag(sync=True)  # bumped by the view: tick every run matching the filter


def _error_html(exc: Exception) -> str:
    return f"<span style='color:#cf222e'>{escape(str(exc))}</span>"


class _StaticFallback:
    """Adds ``text/html`` (the widget's state drawn statically) to the widget's display data."""

    def static_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/html"] = self.static_html()
        return bundle


class CompareCharts(anywidget.AnyWidget):
    """The comparison's interactive charts (``static/compare.js``, bundled from ``labextension/src/compare``
    with uPlot): the view picks a tab and options; Python answers with that tab's data in ``payload``
    (:mod:`mlo.tracking.compare_charts`); parallel-coordinates brushes come back in ``brush``."""

    _esm = STATIC / "compare.js"
    _css = STATIC / "compare.css"

    TABS = ("histories", "scatter", "parallel", "importance", "diff")

    tab = t.Unicode("histories").tag(sync=True)
    options = t.Dict().tag(sync=True)  # {metric, param, group_by, log_x, parallel: {axes, log}}
    choices = t.Dict().tag(sync=True)  # {metrics, params, groups}
    payload = t.Dict().tag(sync=True)
    brush = t.Dict().tag(sync=True)  # {column: {lo, hi} | {values} , missing}


class CompareWidget(_StaticFallback, w.VBox):
    """Compare runs: a filter box, one scrolling run table (every run that matches, rows fetched as they come
    into view; a column chooser, pinned and resizable columns, "select all matching") in which params that
    differ are highlighted, a "best run" action, and interactive charts: metric histories of the ticked runs,
    a metric against a param, parallel coordinates with brushing (which narrows the table), parameter
    importance and the param diff, optionally grouped by a param or tag."""

    WINDOW = 100  # rows fetched at a time as the table scrolls

    def __init__(self, comparison: Comparison):
        self.comparison = cmp = comparison
        self.user_where = cmp.where
        self.brush_where: str | None = None
        self.filter_box = w.Text(
            value=cmp.where or "",
            placeholder="filter, e.g. metrics.acc > 0.8 and params.model = 'rf'  (Enter to apply)",
            continuous_update=False,
            layout=w.Layout(flex="1 1 auto", width="auto"),
        )
        self.refresh_button = w.Button(
            icon="refresh", tooltip="read the runs again", layout=w.Layout(width="36px")
        )
        self.message = w.HTML()
        self.clear_brush_button = w.Button(
            description="Clear brush", tooltip="show every run the filter matches again"
        )
        self.clear_brush_button.layout.display = "none"
        self.table = DataTable(multiple=True, virtual=True)
        self._columns_before: list[str] = []
        self.metric = w.Dropdown(description="metric", layout=w.Layout(width="260px"))
        self.best_button = w.Button(description="Best run", tooltip="select the best run by the metric")
        self.best_result = w.HTML()
        self.charts = CompareCharts()
        super().__init__(
            [
                w.HBox([self.filter_box, self.refresh_button]),
                w.HBox([self.message, self.clear_brush_button]),
                self.table,
                w.HBox([self.metric, self.best_button, self.best_result]),
                self.charts,
            ],
            layout=w.Layout(max_width="100%"),
        )
        self.filter_box.observe(self._on_filter, "value")
        self.refresh_button.on_click(self._on_refresh)
        self.clear_brush_button.on_click(lambda _b: self.set_brush({}))
        self.table.observe(self._on_sort, "sort")
        self.table.observe(self._on_page, "page")
        self.table.observe(self._on_viewport, "viewport")
        self.table.observe(self._on_select, "selected")
        self.table.observe(self._on_select_matching, "select_matching")
        self.metric.observe(self._on_metric, "value")
        self.best_button.on_click(self._on_best)
        self.charts.observe(self._on_tab, "tab")
        self.charts.observe(self._on_options, "options")
        self.charts.observe(self._on_brush, "brush")
        self.charts.on_msg(self._on_charts_msg)
        self._draw_table()
        self._set_metric_options()
        self.table.selected = list(cmp.selected)
        self._draw_charts()

    # -- drawing ---------------------------------------------------------------------------------------------
    def _draw_table(self) -> None:
        cmp = self.comparison
        columns = cmp.table_columns()
        keys = set(cmp.key_columns())
        differing = set(cmp.differing())
        self._columns = columns
        self.table.columns = [
            {
                "key": c,
                "label": column_label(c),
                "title": c,
                "numeric": c.startswith("metrics.") or c == "duration",
                "highlight": c in differing,
            }
            for c in columns
        ]
        offered = set(
            self._columns_before
        )  # a column offered before keeps the user's choice; new extras hide
        self.table.hidden = [c for c in self.table.hidden if c in columns] + [
            c for c in columns if c not in keys and c not in offered and c not in self.table.hidden
        ]
        self._columns_before = columns
        self.table.total = cmp.count
        view = self.table.viewport or {}
        if view.get("end"):  # the view has scrolled: the rows where it is, not the first page
            self._on_viewport({"new": view})
        else:
            self._send_rows(cmp.page * cmp.page_size, cmp.page_size)
        self.table.sort = {"column": cmp.sort_column, "ascending": cmp.ascending}
        self.table.pages = cmp.pages
        self.table.page = cmp.page
        self.table.summary = summary_text(cmp, paged=False)

    def _send_rows(self, offset: int, limit: int) -> None:
        rows = self.comparison.rows(offset, limit, self._columns)
        short = short_ids(rows["run_id"])
        self._integers = integer_columns(rows)  # whole-number params as integers
        self.table.rows = [
            {
                "id": rec["run_id"],
                "cells": [cell_text(c, rec[c], short, c in self._integers) for c in self._columns],
            }
            for rec in rows.to_dict("records")
        ]
        self.table.offset = offset

    def _set_metric_options(self) -> None:
        metrics = self.comparison.metrics
        current = self.metric.value
        self.metric.options = [(column_label(m), m) for m in metrics]
        if current in metrics:
            self.metric.value = current
        elif metrics:
            self.metric.value = metrics[0]
        cmp = self.comparison
        try:
            self.charts.choices = chart_data.choices(cmp)
        except MloError as exc:
            self.message.value = _error_html(exc)
        options = dict(self.charts.options)
        options["metric"] = self.metric.value
        if options.get("param") not in cmp.params:
            differing = cmp.differing()
            options["param"] = (differing or cmp.params or [None])[0]
        self.charts.options = options

    def _draw_charts(self) -> None:
        """The data of the shown tab (the others are worked out when opened)."""
        cmp, charts = self.comparison, self.charts
        options = {
            k: v for k, v in charts.options.items() if isinstance(v, str) or k in ("log_x", "parallel")
        }
        metric = options.get("metric") or self.metric.value  # a view's non-text choice: ignored
        try:
            if charts.tab == "histories":
                payload = chart_data.histories(cmp, metric, options.get("group_by"))
            elif charts.tab == "scatter":
                payload = chart_data.scatter(
                    cmp, metric, options.get("param"), options.get("group_by"), bool(options.get("log_x"))
                )
            elif charts.tab == "parallel":
                payload = chart_data.parallel(cmp, metric, options.get("parallel"))
                if self.brush_where:
                    payload["message"] = "Brushed: the table shows only the runs inside every brush."
            elif charts.tab == "importance":
                payload = chart_data.importance_of(cmp, metric)
            else:
                payload = self._diff_payload()
        except MloError as exc:
            payload = {"kind": charts.tab, "message": str(exc)}
        charts.payload = payload

    def _diff_payload(self) -> dict:
        cmp = self.comparison
        if not cmp.selected:
            return {"kind": "diff", "message": "Tick runs in the table to compare their params."}
        shown = cmp.selected[: chart_data.MAX_HISTORY_RUNS]
        note = f"<div class='mlo-m'>the first {len(shown)} of {len(cmp.selected)} ticked runs</div>"
        html = param_diff_html(cmp.param_diff(shown))
        return {"kind": "diff", "html": (note if len(shown) < len(cmp.selected) else "") + html}

    def static_html(self) -> str:
        return comparison_html(self.comparison, self.metric.value)

    # -- events ----------------------------------------------------------------------------------------------
    def _apply_where(self) -> bool:
        parts = [p for p in (self.user_where, self.brush_where) if p]
        where = " and ".join(f"({p})" for p in parts) if len(parts) > 1 else (parts[0] if parts else None)
        try:
            n = self.comparison.filter(where)
        except MloError as exc:  # a malformed filter: say so, keep showing what was shown
            self.message.value = _error_html(exc)
            return False
        self.message.value = "" if n else "<span class='mlo-m'>No run matches this filter.</span>"
        if self.brush_where and n:
            self.message.value = f"<span class='mlo-m'>{n:,} runs inside the brushes</span>"
        self.clear_brush_button.layout.display = None if self.brush_where else "none"
        self._draw_table()
        self._set_metric_options()
        return True

    def _on_filter(self, change) -> None:
        saved = self.user_where
        self.user_where = (change["new"] or "").strip() or None
        if not self._apply_where():
            self.user_where = saved
        elif self.charts.tab in ("scatter", "parallel", "importance"):
            self._draw_charts()

    def set_brush(self, brush: dict) -> None:
        """Narrow the table to the runs inside parallel-coordinates brushes (what dragging along axes does);
        ``{}`` clears them."""
        self.charts.brush = brush

    def _on_brush(self, change) -> None:
        try:
            where = brush_where(change["new"] or {})
        except MloError as exc:
            self.message.value = _error_html(exc)
            return
        saved = self.brush_where
        self.brush_where = where
        if not self._apply_where():
            self.brush_where = saved
        if not change["new"] and self.charts.tab == "parallel":
            self._draw_charts()  # the brushes are gone: every line again

    def _on_refresh(self, _button=None) -> None:
        try:
            self.comparison.refresh()
        except MloError as exc:
            self.message.value = _error_html(exc)
            return
        self._draw_table()
        self._set_metric_options()
        self._draw_charts()

    def _on_sort(self, change) -> None:
        sort = change["new"] or {}
        cmp = self.comparison
        if sort.get("column") == cmp.sort_column and bool(sort.get("ascending")) == cmp.ascending:
            return
        try:
            cmp.sort(sort["column"], bool(sort.get("ascending", True)))
        except (MloError, KeyError) as exc:
            self.message.value = _error_html(exc)
            return
        self._draw_table()

    def _on_page(self, change) -> None:
        if change["new"] == self.comparison.page:
            return
        self.comparison.goto(change["new"])
        self._draw_table()

    def _on_viewport(self, change) -> None:
        """The view scrolled to rows ``start``–``end``: send the window of rows around them."""
        view = change["new"] or {}
        try:
            start, end = int(view.get("start", 0)), int(view.get("end", 0))
        except (TypeError, ValueError):
            return
        start = max(0, min(start, self.comparison.count))
        end = max(start, min(end, self.comparison.count))
        offset = max(0, start - (self.WINDOW - (end - start)) // 2)
        self._send_rows(offset, max(self.WINDOW, end - start))

    def _on_select(self, change) -> None:
        try:
            self.comparison.select(change["new"])
        except MloError as exc:
            self.message.value = _error_html(exc)
            return
        self.table.summary = summary_text(self.comparison, paged=False)
        if self.charts.tab in ("histories", "diff"):
            self._draw_charts()

    def _on_select_matching(self, _change) -> None:
        self.table.selected = self.comparison.matching_ids()

    def _on_metric(self, change) -> None:
        if change["new"] and self.charts.options.get("metric") != change["new"]:
            self.charts.options = {**self.charts.options, "metric": change["new"]}

    def _on_options(self, change) -> None:
        metric = (change["new"] or {}).get("metric")
        if metric and metric != self.metric.value and metric in self.comparison.metrics:
            self.metric.value = metric
        old, new = change["old"] or {}, change["new"] or {}
        if {k: v for k, v in old.items() if k != "parallel"} != {
            k: v for k, v in new.items() if k != "parallel"
        }:
            self._draw_charts()  # the parallel axes are the view's own choice: kept, not redrawn

    def _on_tab(self, _change) -> None:
        self._draw_charts()

    def _on_charts_msg(self, _widget, content, _buffers) -> None:
        """A live view asks for the points its running runs logged after what it drew (it polls while a shown
        run is running and stops when none is, or when the view goes away: no thread here)."""
        if not isinstance(content, dict) or content.get("type") != "poll":
            return
        shown = self.charts.payload
        known = [c["metric"] for c in shown.get("charts", [])] + [
            v["metric"] for v in shown.get("values", [])
        ]
        try:
            reply = chart_data.appended(self.comparison, content.get("since"), known)
        except MloError as exc:
            reply = {"kind": "append", "runs": {}, "live": [], "message": str(exc)}
        if reply.get("redraw"):
            self._draw_charts()  # a running run logged a new metric: the charts are read again (and stay live)
        self.charts.send(reply)

    def _on_best(self, _button=None) -> None:
        metric = self.metric.value
        if not metric:
            self.best_result.value = "<span class='mlo-m'>No metric to rank by.</span>"
            return
        try:
            best = self.comparison.best(metric)
        except MloError as exc:
            self.best_result.value = _error_html(exc)
            return
        self.comparison.sort(metric, ascending=best.mode == "min")  # the best run at the top
        self._draw_table()
        if best.run_id not in self.table.selected:
            self.table.selected = [*self.table.selected, best.run_id]
        short = short_ids([best.run_id])[best.run_id]
        self.best_result.value = (
            f"best by {escape(column_label(metric))} ({'lowest' if best.mode == 'min' else 'highest'}): "
            f"<b>{escape(best.name or short)}</b> <code>{escape(short)}</code> = {best.value:.6g}"
        )
        self.best = best

    # -- for tests and scripts -------------------------------------------------------------------------------
    def click_best(self) -> None:
        self._on_best()


def compare(
    runs: Sequence[str] | str | None = None,
    *,
    experiment: str | Sequence[str] | None = None,
    where: str | None = None,
    order_by: str | Sequence[str] | None = None,
    page_size: int = 25,
) -> CompareWidget:
    """Compare runs in the notebook: a widget with a filter box (the ``where`` syntax of :func:`mlo.runs`), one
    scrolling table of the matching runs (params that differ highlighted; columns to choose, pin and resize;
    "select all matching"), a "best run" action and interactive charts of the ticked or filtered runs: metric
    histories, a metric against a param, parallel coordinates with brushing, parameter importance, the param
    diff, and grouping by a param or tag as mean ± spread.

    ``runs`` are run ids (or unique prefixes) ticked from the start; ``page_size`` is how many rows the
    first view reads (and the static HTML shows); the rest are read as the table scrolls.
    Without a widget frontend (nbconvert, GitHub) the widget shows as static HTML.
    """
    return CompareWidget(
        Comparison(
            experiment=experiment, where=where, selected=runs or (), page_size=page_size, order_by=order_by
        )
    )


# -- models ----------------------------------------------------------------------------------------------------
MODEL_COLUMNS = ("name", "version", "aliases", "validation", "model_class", "flavor", "created_at", "run_id")


class ModelsWidget(_StaticFallback, w.VBox):
    """Registered models: a table of versions (aliases, last validation verdict) and the model card of the
    selected version."""

    def __init__(self, name: str | None = None, page_size: int = 20):
        self.name = name
        self.page_size = page_size
        self.table = DataTable(multiple=False)
        self.card = w.HTML()
        self.refresh_button = w.Button(
            icon="refresh", tooltip="read the registry again", layout=w.Layout(width="36px")
        )
        self.message = w.HTML()
        super().__init__([w.HBox([self.refresh_button, self.message]), self.table, self.card])
        self.table.observe(self._on_select, "selected")
        self.table.observe(self._on_page, "page")
        self.table.observe(self._on_sort, "sort")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self._sort = ("created_at", False)
        self.refresh()
        if self.versions:
            self.table.selected = [self.versions[0]["id"]]

    def refresh(self) -> None:
        from ..registry import get_model_version, models
        from ..registry.policy import latest_validation
        from ..workspace import current

        ws = current(create=False)
        df = models(self.name)
        verdicts = []
        for rec in df.itertuples():
            report = latest_validation(ws, get_model_version(rec.name, rec.version))
            verdicts.append("none" if report is None else ("passed" if report.passed else "failed"))
        df = df.assign(validation=verdicts)
        self.frame = df
        self.versions = [  # NaN (a version registered without a run) as None: blank, and sorted last
            {"id": f"{r['name']}@v{r['version']}", **{k: None if _missing(v) else v for k, v in r.items()}}
            for r in df[list(MODEL_COLUMNS)].to_dict("records")
        ]
        self.message.value = "" if len(df) else "<span class='mlo-m'>No models registered yet.</span>"
        self._draw()
        if self.table.selected and self.table.selected[0] not in {v["id"] for v in self.versions}:
            self.table.selected = []

    def _ordered(self) -> list[dict]:
        column, ascending = self._sort
        present = [v for v in self.versions if v[column] is not None]
        absent = [v for v in self.versions if v[column] is None]
        return sorted(present, key=lambda v: _sort_key(v[column]), reverse=not ascending) + absent

    def _draw(self) -> None:
        rows = self._ordered()
        pages = max(1, -(-len(rows) // self.page_size))
        page = min(self.table.page, pages - 1)
        shown = rows[page * self.page_size : (page + 1) * self.page_size]
        self.table.columns = [
            {"key": c, "label": "class" if c == "model_class" else c, "numeric": c == "version"}
            for c in MODEL_COLUMNS
        ]
        short = short_ids(v["run_id"] for v in shown)
        self.table.rows = [
            {
                "id": v["id"],
                "cells": ["" if v[c] is None else cell_text(c, v[c], short) for c in MODEL_COLUMNS],
            }
            for v in shown
        ]
        self.table.sort = {"column": self._sort[0], "ascending": self._sort[1]}
        self.table.pages = pages
        self.table.page = page
        n_models = len({v["name"] for v in self.versions})
        self.table.summary = f"{n_models} model{'s' if n_models != 1 else ''}, {len(self.versions)} versions"

    def _on_sort(self, change) -> None:
        sort = change["new"] or {}
        wanted = (sort.get("column"), bool(sort.get("ascending")))
        if wanted != self._sort and wanted[0] in MODEL_COLUMNS:
            self._sort = wanted
            self._draw()

    def _on_page(self, _change) -> None:
        self._draw()

    def _on_select(self, change) -> None:
        from ..registry import model_card

        if not change["new"]:
            self.card.value = "<div class='mlo-m'>Pick a version to see its model card.</div>"
            return
        name, _, version = change["new"][0].rpartition("@v")
        try:
            self.card.value = model_card(name, int(version))._repr_html_()
        except MloError as exc:
            self.card.value = _error_html(exc)

    def select(self, ref: str) -> None:
        """Show the card of ``NAME@vN`` (as ticking its row does)."""
        self.table.selected = [ref]

    def static_html(self) -> str:
        from ..report.models import models_table_html

        html = models_table_html(self.frame.drop(columns="validation"))
        return html + (self.card.value if self.table.selected else "")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sort_key(value: Any):
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def browse_models(name: str | None = None) -> ModelsWidget:
    """Browse the model registry in the notebook: every version with its aliases and last validation
    verdict; ticking a version shows its model card. ``name`` narrows it to one model."""
    return ModelsWidget(name)
