"""The notebook widgets in JupyterLab, in Debian's chromium: ``%mlo compare`` and ``%mlo models`` run in a real
kernel, and their table view (``mlo/jupyter/static/table.js``, an anywidget) renders and reacts: header clicks,
ticks, scrolling and the filter box reach Python and what Python sends back is drawn. Fixtures (``lab``,
``page``) are in this folder's conftest.py; this module seeds its own workspace through ``LAB_SEED``."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from screenshots import docs_screenshot

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = None

SHOT = "compare-widget.png"

# 40 runs of a grid search (lr and model vary, seed does not; loss over 5 steps, acc once: g00 0.5 … g39 0.89)
# and a registered model with two versions, the first under an alias
LAB_SEED = textwrap.dedent(
    """
    import json, sys
    import mlo
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    mlo.init(".")
    ids = {}
    for i in range(40):
        params = {"lr": [0.1, 0.03, 0.01, 0.003, 0.001][i % 5], "model": "rf" if i % 2 else "linear", "seed": 7}
        with mlo.start_run(f"g{i:02d}", experiment="grid", params=params) as run:
            for step in range(5):
                mlo.log_metric("loss", round(1.0 / (step + 1) + i / 200, 4), step=step)
            mlo.log_metric("acc", round(0.5 + i / 100, 2))
        ids[f"g{i:02d}"] = run.id
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    mlo.register_model(LogisticRegression().fit(X, y), "churn", alias="staging", run=run)
    mlo.register_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "churn")
    json.dump(ids, sys.stdout)
    """
)


def _notebook(*sources: str) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(sources)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


NOTEBOOKS = {
    "compare.ipynb": _notebook("%load_ext mlo\n%mlo compare --experiment grid -n 10"),
    "models.ipynb": _notebook("%load_ext mlo", "%mlo models"),
}


@pytest.fixture(scope="module")
def notebooks(lab):
    for name, nb in NOTEBOOKS.items():
        (lab.root / name).write_text(json.dumps(nb, indent=1))
    return lab


def run_notebook(page, lab, workspace: str, path: str, notebooks: dict | None = None):
    """Open ``path`` (one of ``notebooks``, this module's by default) in a fresh JupyterLab workspace, wait for
    its kernel, run every cell; returns the cells."""
    count = len((notebooks or NOTEBOOKS)[path]["cells"])
    page.goto(lab.page_url(workspace, path))
    notebook = page.locator(".jp-NotebookPanel").first
    cells = notebook.locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(count, timeout=45_000)
    # a cell run before the kernel is connected is dropped: wait for the status bar to say it is idle
    status = page.locator(".jp-StatusBar-Item", has_text=re.compile(r"^Python 3 \(ipykernel\) \| Idle$"))
    expect(status).to_be_visible(timeout=30_000)
    for i in range(count):
        cells.nth(i).locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        expect(cells.nth(i).locator(".jp-InputPrompt")).not_to_have_text("[ ]:")
    return cells


def column(widget, label: str) -> int:
    """The index of a column (as of ``td`` in a row) by its header label (the sort arrow and pin aside)."""
    texts = widget.locator("thead th").all_inner_texts()
    headers = [h.removesuffix("⇤").removesuffix(" ▲").removesuffix(" ▼").strip() for h in texts]
    return headers.index(label)


def test_compare_widget_renders_sorts_ticks_and_filters(page, notebooks):
    page.set_viewport_size({"width": 1400, "height": 1600})  # the whole widget on screen for its screenshot
    cells = run_notebook(page, notebooks, "compare", "compare.ipynb")
    widget = cells.first.locator(".jp-OutputArea-output").last
    table = widget.locator("table.mlo-dt-table")
    rows = table.locator("tbody tr[data-id]")
    summary = widget.locator(".mlo-dt-summary")
    expect(table).to_be_visible(timeout=30_000)
    # one scrolling table: the rows in view (and a few more) exist, fetched 10 at first, then as needed
    expect(rows).to_have_count(30)
    expect(summary).to_have_text("40 runs · 2 params differ · 0 selected")
    expect(table.locator("thead th.mlo-dt-diff .mlo-dt-label")).to_have_text(["lr", "model"])
    expect(table.locator("thead th .mlo-dt-label", has_text=re.compile(r"^start_time ▼$"))).to_have_count(1)
    acc = column(table, "acc")
    first_acc = rows.first.locator("td").nth(acc)
    expect(first_acc).to_have_text("0.89")  # newest first: g39

    # a header click goes to Python, which sorts every run and sends the rows back; again flips the order
    sort = table.locator('thead th[data-column="metrics.acc"] .mlo-dt-label')
    sort.click()
    expect(first_acc).to_have_text("0.5")
    expect(sort).to_have_text("acc ▲")
    sort.click()
    expect(first_acc).to_have_text("0.89")
    expect(sort).to_have_text("acc ▼")

    # two ticks: the histories tab (open from the start) draws a chart per metric logged over steps
    rows.nth(0).locator("input[type=checkbox]").check()
    rows.nth(1).locator("input[type=checkbox]").check()
    expect(summary).to_have_text(re.compile(r"· 2 selected$"))
    expect(table.locator("tbody tr.mlo-dt-selected")).to_have_count(2)
    tabs = widget.locator(".mlo-cw-tab")
    expect(tabs).to_have_text(
        ["Metric histories", "Metric vs param", "Parallel coordinates", "Param importance", "Param diff"]
    )
    expect(widget.locator('.mlo-cw figure.mlo-chart[data-metric="loss"] canvas')).to_have_count(1)
    expect(widget.locator(".mlo-cw .mlo-dots .mlo-dot")).to_have_count(2)  # acc, once per run: labelled dots
    docs_screenshot(widget, SHOT)

    tabs.nth(4).click()  # a tab is drawn when opened: the click reaches Python too
    diff = widget.locator(".mlo-cw-diff")
    expect(diff).to_contain_text("2 of 3 params differ")
    expect(diff.locator("table tbody tr")).to_have_count(3)

    # the filter box: Enter applies it; a malformed one says so in one red line and keeps the table
    box = widget.locator('input[placeholder^="filter"]')
    box.fill("metrics.acc > 0.855")
    box.press("Enter")
    expect(rows).to_have_count(4)
    expect(summary).to_have_text(re.compile(r"^4 runs matching 'metrics\.acc > 0\.855' \(of 40\)"))
    box.fill("metrics.acc >")
    box.press("Enter")
    error = widget.locator(".widget-html span", has_text="bad filter")
    expect(error).to_have_text(re.compile(r"^bad filter 'metrics\.acc >': "))
    expect(error).to_have_css("color", "rgb(207, 34, 46)")
    assert error.evaluate("e => e.getClientRects().length") == 1  # one line box
    expect(rows).to_have_count(4)


def test_models_widget_lists_versions_and_shows_the_picked_card(page, notebooks):
    cells = run_notebook(page, notebooks, "models", "models.ipynb")
    widget = cells.nth(1).locator(".jp-OutputArea-output").last
    table = widget.locator("table.mlo-dt-table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2, timeout=30_000)
    assert [r.get_attribute("data-id") for r in rows.all()] == ["churn@v2", "churn@v1"]  # newest first
    expect(widget.locator(".mlo-dt-summary")).to_have_text("1 model, 2 versions")
    aliases = column(table, "aliases")
    older = table.locator('tbody tr[data-id="churn@v1"]')
    expect(older.locator("td").nth(aliases)).to_have_text("staging")
    newer = table.locator('tbody tr[data-id="churn@v2"]')
    expect(newer.locator("td").nth(column(table, "run_id"))).to_have_text("")  # registered without a run
    short = re.compile("^" + notebooks.runs["g39"][:8] + "[0-9a-z]*$")  # a unique prefix of the run id
    expect(older.locator("td").nth(column(table, "run_id"))).to_have_text(short)
    card = widget.get_by_text(re.compile(r"^Model card: churn v\d"))
    expect(card).to_have_text(re.compile(r"^Model card: churn v2\b"))
    expect(newer.locator("input[type=radio]")).to_be_checked()

    older.locator("input[type=radio]").check()
    expect(card).to_have_text(re.compile(r"^Model card: churn v1\b"))
    expect(table.locator("tbody input[type=radio]:checked")).to_have_count(1)
    expect(widget).to_contain_text("staging")
    docs_screenshot(widget, "models-widget.png")
