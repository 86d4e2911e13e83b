"""Notebook widgets: ``mlo.compare()`` (``%mlo compare``) and ``mlo.browse_models()`` (``%mlo models``).

Thin views over :class:`mlo.tracking.compare.Comparison` and the registry. The tables are one small
anywidget (``static/table.js``): Python keeps the data and sends only the rows of the shown page; the view
reports header clicks, ticked rows and page turns back through the ``sort``, ``selected`` and ``page`` traits.
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
    DIFF_STYLE,
    cell_text,
    column_label,
    comparison_html,
    histories_svg,
    parallel_svg,
    param_diff_html,
    summary_text,
)
from ..report.html import STYLE
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


class CompareWidget(_StaticFallback, w.VBox):
    """Compare runs: a filter box, a sortable paged run table, and for the selected runs their metric
    histories, a param diff and parallel coordinates of params against a chosen metric."""

    TABS = ("Metric histories", "Param diff", "Parallel coordinates")

    def __init__(self, comparison: Comparison):
        self.comparison = cmp = comparison
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
        self.table = DataTable(multiple=True)
        self.metric = w.Dropdown(description="metric", layout=w.Layout(width="260px"))
        self.best_button = w.Button(description="Best run", tooltip="select the best run by the metric")
        self.best_result = w.HTML()
        self.panes = [w.HTML() for _ in self.TABS]
        self.tabs = w.Tab(children=self.panes, titles=self.TABS, selected_index=0)
        self._stale = set(range(len(self.TABS)))
        super().__init__(
            [
                w.HBox([self.filter_box, self.refresh_button]),
                self.message,
                self.table,
                w.HBox([self.metric, self.best_button, self.best_result]),
                self.tabs,
            ]
        )
        self.filter_box.observe(self._on_filter, "value")
        self.refresh_button.on_click(self._on_refresh)
        self.table.observe(self._on_sort, "sort")
        self.table.observe(self._on_page, "page")
        self.table.observe(self._on_select, "selected")
        self.metric.observe(self._on_metric, "value")
        self.best_button.on_click(self._on_best)
        self.tabs.observe(self._on_tab, "selected_index")
        self._draw_table()
        self._set_metric_options()
        self.table.selected = list(cmp.selected)
        self._draw_details()

    # -- drawing ---------------------------------------------------------------------------------------------
    def _draw_table(self) -> None:
        cmp = self.comparison
        page = cmp.page_frame()
        differing = set(cmp.differing())
        self.table.columns = [
            {
                "key": c,
                "label": column_label(c),
                "title": c,
                "numeric": c.startswith("metrics.") or c == "duration",
                "highlight": c in differing,
            }
            for c in page.columns
        ]
        short = short_ids(page["run_id"])
        self.table.rows = [
            {"id": rec["run_id"], "cells": [cell_text(c, rec[c], short) for c in page.columns]}
            for rec in page.to_dict("records")
        ]
        self.table.sort = {"column": cmp.sort_column, "ascending": cmp.ascending}
        self.table.pages = cmp.pages
        self.table.page = cmp.page
        self.table.summary = summary_text(cmp)

    def _set_metric_options(self) -> None:
        metrics = self.comparison.metrics
        current = self.metric.value
        self.metric.options = [(column_label(m), m) for m in metrics]
        if current in metrics:
            self.metric.value = current
        elif metrics:
            self.metric.value = metrics[0]

    def _draw_details(self) -> None:
        self._stale = set(range(len(self.TABS)))
        self._draw_tab(self.tabs.selected_index or 0)

    def _draw_tab(self, index: int) -> None:
        if index not in self._stale:
            return
        self._stale.discard(index)
        cmp = self.comparison
        pane = self.panes[index]
        if not cmp.selected:
            pane.value = "<div class='mlo-m'>Tick runs in the table to compare them.</div>" + STYLE
            return
        try:
            if index == 0:
                pane.value = histories_svg(cmp.histories())
            elif index == 1:
                pane.value = STYLE + DIFF_STYLE + param_diff_html(cmp.param_diff())
            elif self.metric.value:
                pane.value = parallel_svg(cmp.parallel(self.metric.value), self.metric.value)
            else:
                pane.value = "<div class='mlo-m'>No metrics to plot against.</div>"
        except MloError as exc:
            pane.value = _error_html(exc)

    def static_html(self) -> str:
        return comparison_html(self.comparison, self.metric.value)

    # -- events ----------------------------------------------------------------------------------------------
    def _on_filter(self, change) -> None:
        try:
            n = self.comparison.filter(change["new"])
        except MloError as exc:  # a malformed filter: say so, keep showing what was shown
            self.message.value = _error_html(exc)
            return
        self.message.value = "" if n else "<span class='mlo-m'>No run matches this filter.</span>"
        self._draw_table()
        self._set_metric_options()

    def _on_refresh(self, _button=None) -> None:
        try:
            self.comparison.refresh()
        except MloError as exc:
            self.message.value = _error_html(exc)
            return
        self._draw_table()
        self._set_metric_options()
        self._draw_details()

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

    def _on_select(self, change) -> None:
        try:
            self.comparison.select(change["new"])
        except MloError as exc:
            self.message.value = _error_html(exc)
            return
        self.table.summary = summary_text(self.comparison)
        self._draw_details()

    def _on_metric(self, _change) -> None:
        self._stale.add(2)
        self._draw_tab(self.tabs.selected_index or 0)

    def _on_tab(self, change) -> None:
        if change["new"] is not None:
            self._draw_tab(change["new"])

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
        self.comparison.sort(metric, ascending=best.mode == "min")  # the best run at the top of page 1
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
    """Compare runs in the notebook: a widget with a filter box (the ``where`` syntax of :func:`mlo.runs`), a
    sortable, paged run table in which params that differ are highlighted, and for the ticked runs their
    metric histories, a param diff, parallel coordinates of params against a metric and a "best run" action.

    ``runs`` are run ids (or unique prefixes) ticked from the start. Without a widget frontend (nbconvert,
    GitHub) the widget shows as static HTML.
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
