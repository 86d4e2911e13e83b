"""Metric-history charts in the run tab, in Debian's chromium against a real ``jupyter lab``: hover read-out, zoom,
smoothing, log scale, the time axes, a live run whose chart grows without a click, and the dark theme."""

from __future__ import annotations

import json
import re
import textwrap

from live_run import start_live_run
from screenshots import docs_screenshot
from theme import luminance, set_theme

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = None

LAB_SEED = textwrap.dedent(
    """
    import json, math, sys
    import mlo

    mlo.init(".")
    ids = {}
    for lr in (0.1, 0.01):
        with mlo.start_run(f"mlp-lr{lr}", experiment="mnist", params={"lr": lr, "epochs": 300}) as run:
            for step in range(300):
                mlo.log_metrics(
                    {"train/loss": 2.5 * math.exp(-step * lr / 3) + 0.05 * math.sin(step),
                     "val_accuracy_on_the_held_out_fold": 1 - math.exp(-step / 60)},
                    step=step,
                )
            mlo.log_metric("test_accuracy", 0.97)
            if lr == 0.1:  # as mlo's system sampler records them
                for i in range(20):
                    mlo.log_metric("system.cpu_percent", 50 + i, step=i)
        ids[run.name] = run.id
    long = "gradient-boosting-with-a-long-descriptive-name-lr0.05-depth8"
    with mlo.start_run(long, experiment="mnist") as run:
        mlo.log_metric("val_accuracy_on_the_held_out_fold_after_early_stopping", 0.912)
    ids[long] = run.id
    import base64, pandas as pd
    from pathlib import Path
    out = Path("out")
    out.mkdir()
    (out / "dot.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="))
    (out / "scores.json").write_text('{"auc": 0.91, "folds": [1, 2]}')
    (out / "notes.txt").write_text("trained on the March extract")
    pd.DataFrame({"id": [1, 2, 3], "label": ["a", "b", None]}).to_csv(out / "preds.csv", index=False)
    pd.DataFrame({"x": range(50), "y": [i * 0.5 for i in range(50)]}).to_parquet(out / "train.parquet")
    (out / "report.html").write_text(
        '<p id="msg">static report</p><script>document.getElementById("msg").textContent = "script ran"</script>')
    with mlo.start_run("with-artifacts", experiment="mnist") as run:
        for f in sorted(out.iterdir()):
            mlo.log_artifact(f)
        run.set_note("Baseline with **every** artifact kind.\\n<b>not markup</b>")
    ids["with-artifacts"] = run.id
    json.dump(ids, sys.stdout)
    """
)


def open_run(page, lab, workspace: str, run_name: str, run_id: str):
    """Open the MLO panel, expand the run's experiment and open the run's tab; returns the run view."""
    page.goto(lab.page_url(workspace))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
    expect(tab).to_be_visible(timeout=45_000)
    panel = page.locator("#mlo-panel")
    if not panel.is_visible():
        tab.click()
    node = panel.locator('.mlo-experiment[data-experiment="mnist"]')
    node.locator(".mlo-experiment-toggle").click()
    node.locator(f'.mlo-run-name[data-run-id="{run_id}"]').click()
    view = page.locator(f'.mlo-run-view[data-run-id="{run_id}"]')
    expect(view.locator(".mlo-run-title")).to_have_text(run_name)
    return view


def test_run_tab_charts_hover_zoom_smoothing_log_and_time_axes(page, lab):
    run_id = lab.runs["mlp-lr0.1"]
    view = open_run(page, lab, "charts", "mlp-lr0.1", run_id)
    charts = view.locator('.mlo-run-section[data-section="charts"] .mlo-chart')
    # every history with two or more points has a chart, in key order; the single value stays in the table
    expect(charts).to_have_count(2)
    expect(charts.locator(".mlo-chart-title")).to_have_text(
        ["train/loss", "val_accuracy_on_the_held_out_fold"]
    )
    expect(view.locator('.mlo-metrics tr[data-key="test_accuracy"] td')).to_have_text("0.97")
    # system samples are charted apart, under System
    system = view.locator('.mlo-run-section[data-section="system"] .mlo-chart')
    expect(system).to_have_count(1)
    expect(system).to_have_attribute("data-metric", "system.cpu_percent")
    expect(system).to_have_attribute("data-points", "20")
    loss = view.locator('.mlo-chart[data-metric="train/loss"]')
    expect(loss).to_have_attribute("data-points", "300")
    expect(loss).to_have_attribute("data-last-step", "299")
    expect(loss.locator("canvas")).to_have_count(1)
    docs_screenshot(view.locator('.mlo-run-section[data-section="charts"]'), "lab-run-charts.png")

    # hover: the legend reads out the step and the value under the cursor
    over = loss.locator(".u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    legend = loss.locator(".u-legend .u-series")
    expect(legend.nth(0).locator(".u-value")).to_have_text(re.compile(r"^step 1\d\d$"))
    expect(legend.nth(1).locator(".u-value")).to_have_text(re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$"))

    # drag to zoom narrows the x scale; double-click resets it
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + 20, steps=5)
    page.mouse.up()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] * 0.5)
    left_zoomed = int(legend.nth(0).locator(".u-value").inner_text().split()[1])
    assert 40 <= left_zoomed <= 90, left_zoomed  # the left edge of the zoom is near step 60, not 0
    over.dblclick(position={"x": 2, "y": box["height"] * 0.5})
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] * 0.5)
    expect(legend.nth(0).locator(".u-value")).to_have_text(re.compile(r"^step \d$"))

    # smoothing draws a faded raw line under the smoothed one
    controls = view.locator(".mlo-chart-controls")
    controls.locator(".mlo-chart-smoothing").fill("0.9")
    expect(loss).to_have_attribute("data-smoothing", "0.9")
    expect(loss.locator(".u-legend .u-series")).to_have_count(3)
    expect(loss.locator(".u-legend .u-series").nth(1).locator(".u-label")).to_have_text("mlp-lr0.1 (raw)")
    controls.locator(".mlo-chart-smoothing").fill("0")
    expect(loss.locator(".u-legend .u-series")).to_have_count(2)

    # log scale, then the wall-time and relative-time axes
    controls.locator(".mlo-chart-log").check()
    expect(loss).to_have_attribute("data-log", "true")
    controls.locator(".mlo-chart-log").uncheck()
    controls.locator(".mlo-chart-x").select_option("relative")
    expect(loss).to_have_attribute("data-x", "relative")
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.5)
    expect(legend.nth(0).locator(".u-value")).to_have_text(re.compile(r"\d+ ms$|\d\.\d s$"))
    controls.locator(".mlo-chart-x").select_option("wall")
    expect(loss).to_have_attribute("data-x", "wall")
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(legend.nth(0).locator(".u-value")).to_have_text(re.compile(r"\d{1,2}:\d\d:\d\d"))


def test_the_panel_shows_long_run_names_whole_beside_a_long_metric_name(page, lab):
    name = "gradient-boosting-with-a-long-descriptive-name-lr0.05-depth8"
    view = open_run(page, lab, "long-names", name, lab.runs[name])
    expect(view.locator('.mlo-run-section[data-section="charts"] .mlo-empty')).to_have_text(
        "No metric with two or more points yet."
    )
    expect(view.locator(".mlo-chart-controls")).to_be_hidden()
    row = page.locator(f'#mlo-panel .mlo-run[data-run-id="{lab.runs[name]}"]')
    label = row.locator(".mlo-run-name")
    expect(label).to_have_text(name)
    assert name in label.get_attribute("title")
    # the whole name is laid out (wrapped, not cut), and the metric keeps its value in view
    fits = label.evaluate("n => n.scrollWidth <= n.clientWidth + 1 && n.getBoundingClientRect().width > 40")
    assert fits
    value = row.locator(".mlo-run-metric .mlo-metric-value")
    expect(value).to_have_text("0.912")
    inside = value.evaluate(
        "n => { const v = n.getBoundingClientRect(), r = n.closest('.mlo-run').getBoundingClientRect();"
        " return v.width > 10 && v.right <= r.right + 1 && n.scrollWidth <= n.clientWidth + 1 }"
    )
    assert inside
    docs_screenshot(page.locator("#mlo-panel"), "lab-panel-long-names.png")


def test_artifact_previews_image_json_text_tables_and_sandboxed_html(page, lab):
    view = open_run(page, lab, "artifacts", "with-artifacts", lab.runs["with-artifacts"])
    note = view.locator(".mlo-run-note")
    expect(note).to_have_text("Baseline with **every** artifact kind.\n<b>not markup</b>")
    expect(note.locator("b")).to_have_count(0)  # shown as text, never as markup

    def opened(name: str):
        item = view.locator(f'details.mlo-artifact[data-path="{name}"]')
        item.locator("summary").click(position={"x": 2, "y": 5})  # the marker, not the link
        expect(item).to_have_attribute("open", "")
        return item.locator(".mlo-artifact-preview")

    image = opened("dot.png").locator("img")
    expect(image).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth === 1", arg=image.element_handle())
    expect(opened("scores.json").locator("pre")).to_have_text(
        '{\n  "auc": 0.91,\n  "folds": [\n    1,\n    2\n  ]\n}'
    )
    expect(opened("notes.txt").locator("pre")).to_have_text("trained on the March extract")
    csv = opened("preds.csv")
    expect(csv.locator("th")).to_have_text(["id", "label"])
    expect(csv.locator("tbody tr")).to_have_count(3)
    expect(csv.locator("tbody tr").nth(2).locator("td")).to_have_text(["3", ""])
    parquet = opened("train.parquet")
    expect(parquet.locator("tbody tr")).to_have_count(20)
    expect(parquet.locator(".mlo-empty")).to_have_text("first 20 of 50 rows")
    frame = opened("report.html").locator("iframe")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator('.mlo-run-view iframe[title="report.html"]').locator("#msg")).to_have_text(
        "static report"
    )  # shown, and its script did not run


def test_a_live_run_chart_grows_without_a_click_and_the_tab_settles_when_it_ends(page, lab):
    stop = lab.root / "stop-live"
    proc = start_live_run(lab.root, lab.env, stop, experiment="mnist")
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read()
        view = open_run(page, lab, "live-chart", "live-training", run_id)
        expect(view).to_have_attribute("data-live", "true")
        chart = view.locator('.mlo-chart[data-metric="loss"]')
        expect(chart).to_be_visible(timeout=20_000)
        first = int(chart.get_attribute("data-points"))
        # no click: the poll appends the new points
        expect(chart).not_to_have_attribute("data-points", str(first), timeout=15_000)
        page.wait_for_function(
            "([el, n]) => Number(el.dataset.points) >= n + 5", arg=[chart.element_handle(), first]
        )
        grown = int(chart.get_attribute("data-points"))
        assert int(chart.get_attribute("data-last-step")) == grown - 1  # no point lost or drawn twice
        expect(view.locator('.mlo-metrics tr[data-key="loss"] td')).not_to_have_text(re.compile(r"^1$"))
        stop.touch()
        proc.wait(timeout=30)
        # the run ended: the tab reloads once, shows it finished and stops polling
        expect(view.locator('.mlo-run-header tr[data-field="status"] td')).to_have_text(
            "finished", timeout=15_000
        )
        expect(view).not_to_have_attribute("data-live", "true")
        final = json.loads(
            lab.python(f"import mlo, json; print(len(mlo.get_run('{run_id}').history('loss')))")
        )
        expect(view.locator('.mlo-chart[data-metric="loss"]')).to_have_attribute("data-points", str(final))
    finally:
        stop.touch()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_charts_follow_the_dark_theme(page, lab):
    set_theme(lab, "JupyterLab Dark")
    try:
        run_id = lab.runs["mlp-lr0.01"]
        view = open_run(page, lab, "dark", "mlp-lr0.01", run_id)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        chart = view.locator('.mlo-chart[data-metric="train/loss"]')
        expect(chart.locator("canvas")).to_have_count(1)
        background = chart.evaluate("n => getComputedStyle(n).backgroundColor")
        title = chart.locator(".mlo-chart-title").evaluate("n => getComputedStyle(n).color")
        legend = chart.locator(".u-legend").evaluate("n => getComputedStyle(n).color")
        assert luminance(page, background) < 0.3 < luminance(page, title)
        assert luminance(page, legend) > 0.5
        docs_screenshot(view.locator('.mlo-run-section[data-section="charts"]'), "lab-run-charts-dark.png")

        # the notebook reports follow the same theme: table headers, muted text and drift reports stay readable
        reports = lab.python(
            "import pandas as pd, mlo\n"
            "from mlo.report.html import STYLE, table\n"
            "d = mlo.drift(pd.DataFrame({'a': range(60)}), pd.DataFrame({'a': range(30, 90)}))\n"
            "print(STYLE + table(['param', 'run a', 'run b'], [['C', 1.0, 2.0]]) + d._repr_html_())"
        )
        page.evaluate(
            "html => { const d = document.createElement('div'); d.id = 'mlo-report-probe';"
            " d.className = 'jp-RenderedHTMLCommon'; d.innerHTML = html; document.body.appendChild(d); }",
            reports,
        )
        probe = page.locator("#mlo-report-probe")
        th = probe.locator("table.mlo-t th").first
        th_background = luminance(page, th.evaluate("n => getComputedStyle(n).backgroundColor"))
        th_text = luminance(page, th.evaluate("n => getComputedStyle(n).color"))
        assert th_background < 0.3 and th_text > 0.6, (th_background, th_text)
        drift_text = probe.locator(".mlo-d").first.evaluate("n => getComputedStyle(n).color")
        assert luminance(page, drift_text) > 0.6
    finally:
        set_theme(lab, "JupyterLab Light")


def test_the_run_tab_reads_in_jupyterlabs_high_contrast_theme(page, lab):
    # JupyterLab 4 ships "JupyterLab Dark High Contrast" (@jupyterlab/theme-dark-high-contrast-extension)
    set_theme(lab, "JupyterLab Dark High Contrast")
    try:
        run_id = lab.runs["mlp-lr0.01"]
        view = open_run(page, lab, "contrast", "mlp-lr0.01", run_id)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-name", "JupyterLab Dark High Contrast")
        style = "n => getComputedStyle(n)"
        background = luminance(page, view.evaluate(f"{style}.backgroundColor"))
        for target in (
            view.locator(".mlo-run-title"),
            view.locator(".mlo-params th").first,
            view.locator(".mlo-params td").first,
            view.locator('.mlo-chart[data-metric="train/loss"] .mlo-chart-title'),
        ):
            text = luminance(page, target.evaluate(f"{style}.color"))
            assert background < 0.1 and text > 0.85, (background, text)
        docs_screenshot(view, "lab-run-high-contrast.png")
    finally:
        set_theme(lab, "JupyterLab Light")
