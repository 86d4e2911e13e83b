"""The MLO panel in JupyterLab, in Debian's chromium: runs, the run tab, "Compare selected runs", models and live
refresh, against a real ``jupyter lab`` on a seeded workspace (fixtures in this folder's conftest.py)."""

from __future__ import annotations

import re
import textwrap

import pytest
from screenshots import docs_screenshot

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = PlaywrightTimeout = None

ARTIFACTS_SHOT = "lab-panel-and-run.png"
POLL_SECONDS = 5  # the panel's refresh interval while visible (labextension/src/panel.ts)


def open_panel(page, lab, workspace: str, path: str = ""):
    """Load JupyterLab, open the MLO sidebar tab and wait for the experiments to be listed."""
    page.goto(lab.page_url(workspace, path))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
    expect(tab).to_be_visible(timeout=45_000)
    expect(tab).to_have_attribute("title", "MLO")
    panel = page.locator("#mlo-panel")
    if not panel.is_visible():
        tab.click()
    expect(panel).to_be_visible()
    expect(panel.locator(".mlo-experiment")).to_have_count(3)
    return panel


def palette_item(page, label: str):
    """Open the command palette (View menu, then its Accel Shift C shortcut) and search ``label``. Tried again
    when it closed early: the modal palette closes when it loses focus, e.g. to a notebook still activating."""
    palette = page.locator("#command-palette")
    item = palette.locator(".lm-CommandPalette-item", has_text=label)
    for attempt in range(4):
        if not palette.locator("input").is_visible():
            if attempt % 2 == 0:
                page.locator(".lm-MenuBar-item", has_text="View").click()
                page.locator(".lm-Menu-item", has_text="Activate Command Palette").click()
            else:
                page.keyboard.press("Control+Shift+C")
        try:
            palette.locator("input").fill(label, timeout=3_000)
            expect(item).to_have_count(1, timeout=3_000)
            return item
        except (AssertionError, PlaywrightTimeout):
            if attempt == 3:
                raise
    return item


def expand(panel, experiment: str):
    node = panel.locator(f'.mlo-experiment[data-experiment="{experiment}"]')
    node.locator(".mlo-experiment-toggle").click()
    expect(node).to_have_attribute("data-expanded", "true")
    expect(node.locator(".mlo-run").first).to_be_visible()
    return node


# runs pages count only up to 100 matches here (10,000 by default), below the sweep's 105 runs
LAB_CONFIG = "[ui]\ncount_up_to = 100\n"


def test_panel_lists_experiments_and_their_runs_newest_first(page, lab):
    panel = open_panel(page, lab, "list")
    churn = expand(panel, "churn")
    names = churn.locator(".mlo-run-name")
    expect(names).to_have_text(["logreg-C10.0", "logreg-C1.0", "logreg-C0.1"])
    row = churn.locator(f'.mlo-run[data-run-id="{lab.runs["logreg-C1.0"]}"]')
    expect(row.locator(".mlo-status")).to_have_text("finished")
    expect(row.locator(".mlo-run-metric")).to_have_text(re.compile(r"auc\s+0\.84"))
    # the metric shown is chosen per experiment
    churn.locator(".mlo-metric-select").select_option("metrics.loss")
    expect(row.locator(".mlo-run-metric")).to_have_text(re.compile(r"loss\s+0\.16"))
    fraud = expand(panel, "fraud")
    expect(fraud.locator(".mlo-run-name")).to_have_text(["forest"])
    expect(fraud.locator(".mlo-run-metric")).to_have_text(re.compile(r"recall\s+0\.66"))
    expect(panel.locator(".mlo-status-line")).to_be_hidden()

    # a checked run but no notebook open: the panel says what to do
    row.locator(".mlo-run-check").check()
    panel.locator(".mlo-compare").click()
    expect(panel.locator(".mlo-status-line")).to_have_text(re.compile("Open a notebook first"))


def test_long_experiments_page_100_runs_at_a_time(page, lab):
    panel = open_panel(page, lab, "paging")
    sweep = expand(panel, "sweep")
    expect(sweep.locator(".mlo-run")).to_have_count(100)
    expect(sweep.locator(".mlo-run-name").first).to_have_text("sweep-104")
    # the API counts up to its cap (LAB_CONFIG: 100) and says so: the count is a lower bound until the end
    expect(sweep.locator(".mlo-count")).to_have_text("100+")
    more = sweep.locator(".mlo-more")
    expect(more).to_have_text("more (100 of 100+ shown)")
    more.click()
    expect(sweep.locator(".mlo-run")).to_have_count(105)
    expect(sweep.locator(".mlo-run-name").last).to_have_text("sweep-000")
    expect(sweep.locator(".mlo-count")).to_have_text("105")  # a short page: every match is counted now
    expect(more).to_have_count(0)


def test_clicking_a_run_opens_its_tab_with_params_metrics_cells_and_artifacts(page, lab):
    panel = open_panel(page, lab, "run-tab")
    churn = expand(panel, "churn")
    run_id = lab.runs["logreg-C1.0"]
    churn.locator(f'.mlo-run-name[data-run-id="{run_id}"]').click()
    view = page.locator(f'.mlo-run-view[data-run-id="{run_id}"]')
    expect(view.locator(".mlo-run-title")).to_have_text("logreg-C1.0")
    expect(view.locator('.mlo-run-header tr[data-field="experiment"] td')).to_have_text("churn")
    expect(view.locator('.mlo-run-header tr[data-field="status"] td')).to_have_text("finished")
    expect(view.locator('.mlo-params tr[data-key="C"] td')).to_have_text("1")
    expect(view.locator('.mlo-params tr[data-key="penalty"] td')).to_have_text("l2")
    expect(view.locator('.mlo-metrics tr[data-key="auc"] td')).to_have_text("0.84")
    expect(view.locator('.mlo-metrics tr[data-key="loss"] td')).to_have_text("0.16")
    expect(view.locator("pre.mlo-cell-source")).to_have_text(
        ["model = LogisticRegression(C=1.0).fit(X, y)", re.compile(r"^auc = roc_auc_score.*# 0\.84$")]
    )
    link = view.locator(".mlo-artifact-link")
    expect(link).to_have_text("notes.txt")
    href = link.get_attribute("href")
    assert href.endswith(f"/mlo/api/runs/{run_id}/artifacts/notes.txt") and "token" not in href
    # the link works with the browser's session alone (no token in the URL)
    response = page.request.get(href if href.startswith("http") else lab.url + href)
    assert response.ok and response.text() == "trained on the March extract"
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="logreg-C1.0")
    expect(tab).to_have_count(1)
    docs_screenshot(page, ARTIFACTS_SHOT)

    # a second click re-focuses the same tab instead of opening another
    churn.locator(f'.mlo-run-name[data-run-id="{lab.runs["logreg-C10.0"]}"]').click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="logreg-C10.0")).to_have_count(1)
    churn.locator(f'.mlo-run-name[data-run-id="{run_id}"]').click()
    expect(tab).to_have_count(1)
    expect(tab).to_have_class(re.compile(r"\blm-mod-current\b"))
    expect(view).to_be_visible()


def test_compare_selected_runs_writes_the_magic_into_the_notebook(page, lab):
    panel = open_panel(page, lab, "compare", "scratch.ipynb")
    notebook = page.locator(".jp-NotebookPanel").first
    expect(notebook.locator(".jp-Cell")).to_have_count(1, timeout=30_000)
    # with nothing checked, the panel says what to do
    panel.locator(".mlo-compare").click()
    expect(panel.locator(".mlo-status-line")).to_have_text(re.compile("Check the runs to compare"))

    churn = expand(panel, "churn")
    newest, oldest = lab.runs["logreg-C10.0"], lab.runs["logreg-C0.1"]
    churn.locator(f'.mlo-run-check[data-run-id="{oldest}"]').check()  # checked out of order on purpose
    churn.locator(f'.mlo-run-check[data-run-id="{newest}"]').check()
    expect(panel.locator(".mlo-selection-count")).to_have_text("2 runs selected")
    panel.locator(".mlo-compare").click()
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(2)
    expect(cells.nth(1).locator(".cm-content")).to_have_text(f"%mlo compare {newest} {oldest}")

    # the same command from the palette, under the MLO category
    item = palette_item(page, "Compare selected runs")
    expect(
        item.locator("xpath=preceding-sibling::li[contains(@class, 'lm-CommandPalette-header')][1]")
    ).to_have_text(re.compile("MLO", re.I))
    item.click()
    expect(cells).to_have_count(3)
    expect(cells.nth(2).locator(".cm-content")).to_have_text(f"%mlo compare {newest} {oldest}")


def test_diff_of_two_checked_runs_opens_a_tab_with_params_metrics_code_and_environment(page, lab):
    panel = open_panel(page, lab, "diff")
    churn = expand(panel, "churn")
    low, high = lab.runs["logreg-C0.1"], lab.runs["logreg-C10.0"]
    churn.locator(f'.mlo-run-check[data-run-id="{low}"]').check()
    panel.locator(".mlo-diff").click()
    expect(panel.locator(".mlo-status-line")).to_have_text(re.compile(r"exactly two runs.*1 checked"))
    churn.locator(f'.mlo-run-check[data-run-id="{high}"]').check()
    panel.locator(".mlo-diff").click()
    view = page.locator(".mlo-diff-view")
    expect(view.locator(".mlo-diff-run")).to_have_text(["logreg-C10.0", "logreg-C0.1"])  # the panel's order
    c = view.locator('.mlo-diff-params tr[data-key="C"]')
    expect(c).to_have_attribute("data-same", "false")
    expect(c.locator("td")).to_have_text(["10", "0.1"])
    expect(view.locator('.mlo-diff-params tr[data-key="penalty"]')).to_have_attribute("data-same", "true")
    expect(view.locator('.mlo-diff-metrics tr[data-key="auc"] td')).to_have_text(["0.79", "0.71"])
    cells = view.locator(".mlo-diff-cells")
    expect(cells.locator('[data-kind="del"]').first).to_have_text(
        "-model = LogisticRegression(C=10.0).fit(X, y)"
    )
    expect(cells.locator('[data-kind="add"]').first).to_have_text(
        "+model = LogisticRegression(C=0.1).fit(X, y)"
    )
    expect(view.locator(".mlo-diff-packages")).to_have_text("The same package versions.")
    # only what differs: the same penalty leaves the table
    view.locator(".mlo-diff-only").check()
    expect(view.locator('.mlo-diff-params tr[data-key="penalty"]')).to_be_hidden()
    expect(c).to_be_visible()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="logreg-C10.0 ↔ logreg-C0.1")
    expect(tab).to_have_count(1)
    docs_screenshot(view, "lab-run-diff.png")
    # a run's name opens its tab
    view.locator(".mlo-diff-run").nth(1).click()
    expect(page.locator(f'.mlo-run-view[data-run-id="{low}"] .mlo-run-title')).to_have_text("logreg-C0.1")


def test_models_section_shows_versions_and_aliases(page, lab):
    panel = open_panel(page, lab, "models")
    model = panel.locator('.mlo-model[data-model="churn-model"]')
    expect(model.locator(".mlo-model-name")).to_have_text("churn-model")
    version = model.locator('.mlo-model-version[data-version="1"]')
    expect(version.locator(".mlo-version")).to_have_text("v1")
    expect(version.locator(".mlo-alias")).to_have_text(["production"])
    version.locator(".mlo-model-run").click()
    expect(page.locator(".mlo-run-view .mlo-run-title")).to_have_text("logreg-C1.0")


def test_new_runs_appear_without_a_click_and_the_state_survives(page, lab):
    panel = open_panel(page, lab, "live")
    churn = expand(panel, "churn")
    kept = lab.runs["logreg-C1.0"]
    churn.locator(f'.mlo-run-check[data-run-id="{kept}"]').check()
    churn.locator(".mlo-metric-select").select_option("metrics.loss")
    lab.python(
        textwrap.dedent(
            """
            import mlo
            with mlo.start_run("late-run", experiment="churn", params={"C": 3.0}):
                mlo.log_metric("auc", 0.9)
                mlo.log_metric("loss", 0.1)
            """
        )
    )
    expect(churn.locator(".mlo-run-name").first).to_have_text("late-run", timeout=12_000)
    expect(churn.locator(".mlo-run")).to_have_count(4)
    # the refresh kept what the user did: still expanded, still checked, still showing the chosen metric
    expect(churn).to_have_attribute("data-expanded", "true")
    expect(churn.locator(f'.mlo-run-check[data-run-id="{kept}"]')).to_be_checked()
    expect(churn.locator(".mlo-metric-select")).to_have_value("metrics.loss")
    expect(churn.locator(".mlo-run").first.locator(".mlo-run-metric")).to_have_text(
        re.compile(r"loss\s+0\.1$")
    )
    expect(panel.locator('.mlo-experiment[data-experiment="churn"] .mlo-count')).to_have_text("4")

    # hidden (another sidebar tab), the panel stops asking; shown again, it refreshes at once
    def asks(request):
        return "/mlo/api/experiments" in request.url

    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
    expect(panel).to_be_hidden()
    with pytest.raises(PlaywrightTimeout):
        page.wait_for_event("request", asks, timeout=POLL_SECONDS * 1000 + 1500)
    with page.expect_request(asks, timeout=3_000):
        page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]').click()
    expect(churn.locator(f'.mlo-run-check[data-run-id="{kept}"]')).to_be_checked()


def test_the_filter_shows_matching_runs_in_every_experiment_and_reports_a_bad_one(page, lab):
    panel = open_panel(page, lab, "filter")
    search = panel.locator(".mlo-search")
    assert "metrics.auc > 0.8" in search.get_attribute("title")  # the syntax help on hover
    search.fill("params.i >= 0")
    search.press("Enter")
    expect(panel.locator(".mlo-filter-count")).to_have_text("100+ runs match")  # past the API's cap
    search.fill("params.i >= 100")
    search.press("Enter")
    expect(panel.locator(".mlo-filter-count")).to_have_text("5 runs match")
    sweep = panel.locator('.mlo-experiment[data-experiment="sweep"]')
    expect(sweep).to_have_attribute("data-expanded", "true")
    expect(sweep.locator(".mlo-run-name")).to_have_text([f"sweep-{i}" for i in range(104, 99, -1)])
    expect(sweep.locator(".mlo-count")).to_have_text("5")
    churn = panel.locator('.mlo-experiment[data-experiment="churn"]')
    expect(churn.locator(".mlo-empty")).to_have_text("No run matches the filter.")

    # the panel's own refresh keeps the filter
    panel.locator(".mlo-refresh").click()
    expect(sweep.locator(".mlo-run")).to_have_count(5)

    # select all: every match checked; they stay selected when the filter hides them
    panel.locator(".mlo-select-matching").click()
    expect(panel.locator(".mlo-selection-count")).to_have_text("5 runs selected")
    expect(sweep.locator(".mlo-run-check:checked")).to_have_count(5)

    # a filter the API refuses: one line saying why; the lists stay as they were
    search.fill("metrics.score >")
    search.press("Enter")
    line = panel.locator(".mlo-status-line")
    expect(line).to_have_attribute("data-kind", "error")
    expect(line).to_have_text(re.compile("filter"))
    assert "\n" not in line.inner_text()
    expect(sweep.locator(".mlo-run")).to_have_count(5)

    # an MLflow-style filter on two keys, then cleared: every run again
    search.fill("params.penalty = 'l2' and metrics.auc > 0.8")
    search.press("Enter")
    expect(panel.locator(".mlo-filter-count")).to_have_text("1 run match")
    expect(churn.locator(".mlo-run-name")).to_have_text(["logreg-C1.0"])
    expect(line).to_be_hidden()
    expect(sweep.locator(".mlo-run")).to_have_count(0)
    expect(panel.locator(".mlo-selection-count")).to_have_text("5 runs selected")  # hidden, still checked
    search.fill("")
    search.press("Enter")
    expect(panel.locator(".mlo-filter-info")).to_be_hidden()
    expect(sweep.locator(".mlo-run")).to_have_count(100)
    expect(panel.locator(".mlo-selection-count")).to_have_text("5 runs selected")
    panel.locator(".mlo-clear-selection").click()
    expect(churn.locator(".mlo-run-name").last).to_have_text("logreg-C0.1")


def test_api_errors_show_as_one_line_and_clear_on_the_next_refresh(page, lab):
    message = "no mlo workspace at or above /srv/elsewhere: run `mlo init` there"

    def refuse(route):
        route.fulfill(status=404, json={"error": message, "status": 404})

    page.route("**/mlo/api/experiments*", refuse)
    page.goto(lab.page_url("errors"))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
    expect(tab).to_be_visible(timeout=45_000)
    tab.click()
    panel = page.locator("#mlo-panel")
    line = panel.locator(".mlo-status-line")
    expect(line).to_have_text(message)
    expect(line).to_have_attribute("data-kind", "error")
    expect(panel.locator(".mlo-experiment")).to_have_count(0)
    page.unroute("**/mlo/api/experiments*", refuse)
    panel.locator(".mlo-refresh").click()
    expect(panel.locator(".mlo-experiment")).to_have_count(3)
    expect(line).to_be_hidden()
