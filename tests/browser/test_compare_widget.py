"""The compare widget's interactive charts and its scrolling table in JupyterLab, in Debian's chromium: hover
on the scatter plot names a run, brushing parallel coordinates narrows the table (through Python), grouping
draws each group's mean ± spread, the column chooser and pinning, 10,000 runs scrolling, and both themes.
Screenshots land in build/test-artifacts/ (and in docs/images/ with ``make screenshots``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import pytest
from screenshots import ARTIFACTS, docs_screenshot
from test_lab_widgets import _notebook, run_notebook
from theme import luminance, set_theme

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = None

# a sweep of 18 runs (lr × model × seed; depth only for rf; the best run, a linear one, has no depth), and
# 10,000 runs of another experiment written in bulk (creating them one by one would take a minute)
LAB_SEED = textwrap.dedent(
    """
    import json, random, sys, time
    import mlo
    from mlo.store import schema as s
    from mlo.store.ids import new_id

    mlo.init(".")
    ids = {}
    for lr in (0.1, 0.01, 0.001):
        for model in ("rf", "linear"):
            for seed in range(3):
                params = {"lr": lr, "model": model, "seed": seed, **({"depth": 4 + seed} if model == "rf" else {})}
                name = f"{model}-{lr}-s{seed}"
                acc = 0.6 + (0.2 if model == "linear" else 0.0) + 0.1 * (lr == 0.01) + 0.01 * seed
                with mlo.start_run(name, experiment="sweep", params=params) as run:
                    for step in range(6):
                        mlo.log_metric("loss", round(1.5 - acc + 1.0 / (step + 1), 4), step=step)
                    mlo.log_metric("acc", round(acc, 3))
                ids[name] = run.id
    ws = mlo.workspace.current()
    exp_id = ws.runs.experiment_id("big")
    rng, start = random.Random(3), time.time() - 20_000
    runs, params, metrics = [], [], []
    for i in range(10_000):
        rid, us = new_id(start + i), int((start + i) * 1e6)
        runs.append({"id": rid, "experiment_id": exp_id, "name": f"b{i:05d}", "status": "finished",
                     "start_time": us, "end_time": us + 1000, "user": "t", "lifecycle": "active"})
        params += [{"run_id": rid, "key": "i", "value": json.dumps(i)},
                   {"run_id": rid, "key": "lr", "value": json.dumps(rng.choice([0.1, 0.01]))}]
        metrics.append({"run_id": rid, "key": "score", "value": rng.random(), "step": 0, "timestamp": us, "n": 1})
    with ws.db.engine.begin() as conn:
        conn.execute(s.runs.insert(), runs)
        conn.execute(s.params.insert(), params)
        conn.execute(s.latest_metrics.insert(), metrics)
    json.dump(ids, sys.stdout)
    """
)

NOTEBOOKS = {
    "sweep.ipynb": _notebook("%load_ext mlo\n%mlo compare --experiment sweep"),
    "big.ipynb": _notebook("%load_ext mlo\n%mlo compare --experiment big"),
}


@pytest.fixture(scope="module")
def notebooks(lab):
    for name, nb in NOTEBOOKS.items():
        (lab.root / name).write_text(json.dumps(nb, indent=1))
    return lab


def open_widget(page, lab, workspace: str, path: str):
    cells = run_notebook(page, lab, workspace, path, NOTEBOOKS)
    widget = cells.first.locator(".jp-OutputArea-output").last
    expect(widget.locator("table.mlo-dt-table")).to_be_visible(timeout=30_000)
    return widget


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_charts_hover_group_brush_and_columns(page, notebooks, theme):
    set_theme(notebooks, theme)
    try:
        page.set_viewport_size({"width": 1400, "height": 1500})
        widget = open_widget(page, notebooks, f"sweep-{theme.split()[-1].lower()}", "sweep.ipynb")
        table = widget.locator("table.mlo-dt-table")
        summary = widget.locator(".mlo-dt-summary")
        expect(summary).to_have_text("18 runs · 4 params differ · 0 selected")
        seed = (
            widget.locator("tbody tr[data-id]").first.locator("td").nth(_column_index(table, "params.seed"))
        )
        expect(seed).to_have_text(re.compile(r"^\d$"))  # integer params as integers

        # the column chooser hides a column; a pinned column stays put while the table scrolls sideways
        widget.locator(".mlo-dt-chooser summary").click()
        widget.locator('.mlo-dt-chooser-list label[data-column="experiment"] input').uncheck()
        expect(table.locator('thead th[data-column="experiment"]')).to_have_count(0)
        widget.locator(".mlo-dt-chooser summary").click()
        name = table.locator('thead th[data-column="name"]')
        name.locator(".mlo-dt-pin").click()
        expect(name).to_have_class(re.compile("mlo-dt-pinned"))
        scroller = widget.locator(".mlo-dt-scroll")
        assert scroller.evaluate(
            "e => e.scrollWidth > e.clientWidth"
        )  # wider than the cell: it scrolls inside
        assert widget.evaluate(
            "e => e.scrollWidth <= e.parentElement.clientWidth + 2"
        )  # never wider than the cell
        before = table.locator('thead th[data-column="name"]').bounding_box()["x"]
        scroller.evaluate("e => { e.scrollLeft = 300; e.dispatchEvent(new Event('scroll')); }")
        expect(table.locator('thead th[data-column="name"]')).to_be_visible()
        after = table.locator('thead th[data-column="name"]').bounding_box()["x"]
        assert abs(after - before) < 2, (before, after)
        scroller.evaluate("e => { e.scrollLeft = 0; e.dispatchEvent(new Event('scroll')); }")
        # dragging a header's right edge resizes the column, and the width is kept through redraws
        status = table.locator('thead th[data-column="status"]')
        width = status.bounding_box()["width"]
        grip = status.locator(".mlo-dt-grip").bounding_box()
        page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
        page.mouse.down()
        page.mouse.move(grip["x"] + 60, grip["y"] + grip["height"] / 2, steps=5)
        page.mouse.up()
        expect(status).to_have_attribute("style", re.compile(r"width: 1[45]\dpx"))
        assert status.bounding_box()["width"] > width + 40

        # select all matching, then group the histories by lr: a mean and ± one sd per group
        widget.locator(".mlo-dt-select-all").click()
        expect(summary).to_have_text(re.compile(r"· 18 selected$"))
        loss = widget.locator('.mlo-cw figure.mlo-chart[data-metric="loss"]')
        expect(loss.locator("canvas")).to_have_count(1)
        widget.locator(".mlo-cw-group_by select").select_option("params.lr")
        expect(loss).to_have_attribute("data-grouped", "true")
        expect(loss.locator(".u-legend")).to_contain_text("0.01 mean (n=6)")
        expect(widget.locator(".mlo-dots .mlo-dot-label")).to_have_text(["0.001", "0.01", "0.1"])
        chart_text = loss.locator(".u-legend").evaluate("e => getComputedStyle(e).color")
        dark = theme.endswith("Dark")
        assert (luminance(page, chart_text) > 0.6) == dark, chart_text  # legible on the theme's background
        docs_screenshot(widget, f"compare-grouped-{'dark' if dark else 'light'}.png")

        # scatter: hovering a point names its run
        widget.locator('.mlo-cw-tab[data-tab="scatter"]').click()
        widget.locator(".mlo-cw-param select").select_option("params.lr")
        scatter = widget.locator(".mlo-scatter")
        expect(scatter.locator("figcaption")).to_have_text("acc vs lr")  # redrawn for the chosen param
        expect(scatter).to_have_attribute("data-points", "18")
        page.wait_for_timeout(300)  # the controls settle (each choice redraws the chart once)
        tip = hover_a_point(page, scatter)
        expect(tip).to_have_text(re.compile(r"^(rf|linear)-0\.\d+-s\d · lr = 0\.\d+ · acc = 0\.\d+$"))
        docs_screenshot(widget, f"compare-scatter-{'dark' if dark else 'light'}.png")

        # parallel coordinates: the best run (no depth) is drawn through depth's "missing" tick
        widget.locator(".mlo-dt-clear").click()
        widget.locator('.mlo-cw-tab[data-tab="parallel"]').click()
        best = notebooks.runs["linear-0.01-s2"]
        expect(widget.locator(f'.mlo-pline-best[data-id="{best}"]')).to_have_count(1)
        depth = widget.locator('.mlo-paxis[data-axis="params.depth"]')
        expect(depth.locator("text", has_text="(missing)")).to_have_count(1)
        docs_screenshot(widget, f"compare-parallel-{'dark' if dark else 'light'}.png")
        # brushing the top of the acc axis narrows the table, through Python
        brush_the_top(page, widget, "metrics.acc")
        expect(summary).to_have_text(re.compile(r"^\d runs matching '.*metrics\.acc >= .*' \(of 18\)"))
        kept = int(widget.locator(".mlo-parallel").get_attribute("data-brushed"))
        assert 0 < kept < 18
        expect(table.locator("tbody tr[data-id]")).to_have_count(kept)
        widget.get_by_role("button", name="Clear brush").click()
        expect(summary).to_have_text(re.compile(r"^18 runs"))
    finally:
        set_theme(notebooks, "JupyterLab Light")


def brush_the_top(page, chart, axis: str) -> None:
    """Drag along the top of a parallel-coordinates axis."""
    from playwright.sync_api import Error

    target = chart.locator(f'.mlo-paxis[data-axis="{axis}"] .mlo-brush-hit')
    # the chart draws itself again as it settles into its width (the axis is replaced): drag only once the axis
    # is on screen and stays where it is
    hit = None
    for _ in range(50):
        try:
            target.scroll_into_view_if_needed(timeout=2000)
            before = target.bounding_box(timeout=2000)
            page.wait_for_timeout(100)
            hit = target.bounding_box(timeout=2000)
        except Error:  # replaced while we looked: look again
            continue
        if hit is not None and hit == before:
            break
    assert hit is not None, f"the {axis} axis was never laid out"
    x = hit["x"] + hit["width"] / 2
    page.mouse.move(x, hit["y"] + 4)
    page.mouse.down()
    page.mouse.move(x, hit["y"] + 60, steps=6)
    page.mouse.up()


def hover_a_point(page, scatter):
    """Move the mouse over a scatter plot until a point answers; returns its tooltip."""
    scatter.locator(".u-over").wait_for()
    over = scatter.locator(".u-over").bounding_box()
    tip = scatter.locator(".mlo-scatter-tip")
    for gy in range(2, 40):
        for gx in range(1, 30):
            page.mouse.move(over["x"] + over["width"] * gx / 30, over["y"] + over["height"] * gy / 41)
            if tip.is_visible():
                return tip
    raise AssertionError("no point answered the hover")


def _column_index(table, key: str) -> int:
    keys = table.locator("thead th").evaluate_all("ths => ths.map(t => t.dataset.column || '')")
    return keys.index(key)


def test_ten_thousand_runs_scroll_with_few_rows_in_the_page(page, notebooks):
    widget = open_widget(page, notebooks, "big", "big.ipynb")
    expect(widget.locator(".mlo-dt-summary")).to_have_text(re.compile(r"^10,000 runs"))
    scroller = widget.locator(".mlo-dt-scroll")
    rows = widget.locator("table.mlo-dt-table tbody tr[data-index]")
    # scroll from top to bottom in 60 animation frames, timing each frame
    frames = scroller.evaluate(
        """async (box) => {
          const times = [];
          let last = performance.now();
          for (let i = 1; i <= 60; i++) {
            box.scrollTop = (box.scrollHeight - box.clientHeight) * i / 60;
            await new Promise(r => requestAnimationFrame(r));
            const now = performance.now();
            times.push(now - last);
            last = now;
          }
          return times;
        }"""
    )
    assert rows.count() < 80  # virtualised: only the rows in view (and a few more) are in the page
    last = rows.last
    expect(last).to_have_attribute("data-index", "9999")
    expect(last).to_have_attribute("data-id", re.compile(".+"), timeout=15_000)  # rows near the end arrived
    expect(last.locator("td").nth(_column_index(widget.locator("table.mlo-dt-table"), "name"))).to_have_text(
        "b00000"
    )  # newest first: the first run made is last
    frames.sort()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "compare-scroll-frames.json").write_text(
        json.dumps(
            {"frames": len(frames), "median_ms": frames[30], "p90_ms": frames[54], "max_ms": frames[-1]}
        )
    )
    docs_screenshot(widget.locator(".mlo-dt"), "compare-10k-rows.png")


# a run training in another process while the widget shows it: a point every 0.2 s, flushed, until told to stop
LIVE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import mlo

    stop, flushed = Path(sys.argv[1]), {}
    with mlo.start_run("live-training", experiment="live", params={"lr": 0.1}) as run:
        print(run.id, flush=True)
        step, deadline = 0, time.monotonic() + 90
        while not stop.exists() and time.monotonic() < deadline:
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
            mlo.flush()
            flushed[step] = time.time() * 1000  # when the point reached the store (ms since the epoch)
            step += 1
            time.sleep(0.2)
    Path(sys.argv[2]).write_text(json.dumps(flushed))
    """
)


def test_a_live_runs_history_grows_in_the_widget_without_a_click(page, notebooks):
    stop, flushed = notebooks.root / "stop-live-compare", notebooks.root / "live-flushed.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", LIVE, str(stop), str(flushed)],
        cwd=notebooks.root,
        env=notebooks.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read()
        time.sleep(1.0)  # a few points first: a history of one point is a dot, not a chart
        book = {"live.ipynb": _notebook(f"import mlo\nmlo.compare(experiment='live', runs=['{run_id}'])")}
        (notebooks.root / "live.ipynb").write_text(json.dumps(book["live.ipynb"], indent=1))
        cells = run_notebook(page, notebooks, "live", "live.ipynb", book)
        widget = cells.first.locator(".jp-OutputArea-output").last
        expect(widget.locator(".mlo-cw")).to_have_attribute("data-live", "true", timeout=30_000)
        chart = widget.locator('.mlo-chart[data-metric="loss"]')
        expect(chart).to_be_visible()
        chart.evaluate(  # when each step is first drawn (for benchmarks/compare_widget.py --live)
            """el => { window.mloSeen = {}; const note = () => { const s = el.dataset.lastStep;
            if (!(s in window.mloSeen)) window.mloSeen[s] = Date.now(); };
            note(); new MutationObserver(note).observe(el, {attributes: true}); }"""
        )
        first = int(chart.get_attribute("data-points"))
        page.wait_for_function(  # no click: the poll appends the new points
            "([el, n]) => Number(el.dataset.points) >= n + 5", arg=[chart.element_handle(), first]
        )
        grown = int(chart.get_attribute("data-points"))
        assert int(chart.get_attribute("data-last-step")) == grown - 1  # no point lost or drawn twice
        stop.touch()
        proc.wait(timeout=30)
        # the run ended: its last points arrive and the poll stops
        expect(widget.locator(".mlo-cw")).not_to_have_attribute("data-live", "true", timeout=15_000)
        final = int(notebooks.python(f"import mlo; print(len(mlo.get_run('{run_id}').history('loss')))"))
        expect(chart).to_have_attribute("data-points", str(final))
        page.screenshot(path=str(ARTIFACTS / "compare-widget-live.png"))
        # a poll draws every step since the last one at once: each was shown when the newest of them was
        logged = {int(k): v for k, v in json.loads(flushed.read_text()).items()}
        shown = sorted((int(k), v) for k, v in page.evaluate("window.mloSeen").items())
        latency = sorted(
            at - logged[s]
            for (before, _), (step, at) in zip(shown, shown[1:], strict=False)
            for s in range(before + 1, step + 1)
            if s in logged
        )
        assert latency, shown
        (ARTIFACTS / "compare-live-latency.json").write_text(json.dumps(latency))
    finally:
        stop.touch()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


SAME_KERNEL = (
    "import time\nimport mlo\n"
    "run = mlo.start_run('same-kernel', experiment='samek')\n"
    "for s in range(3):\n    mlo.log_metric('loss', 1 / (s + 1), step=s)\n"
    "mlo.flush()\nmlo.compare(experiment='samek', runs=[run.id])",
    "for s in range(3, 60):\n    mlo.log_metric('loss', 1 / (s + 1), step=s)\n    mlo.flush()\n"
    "    time.sleep(0.2)\nrun.end()",
)


def test_a_run_trained_by_the_same_kernel_grows_while_its_cell_runs(page, notebooks):
    book = {"same.ipynb": _notebook(*SAME_KERNEL)}
    (notebooks.root / "same.ipynb").write_text(json.dumps(book["same.ipynb"], indent=1))
    cells = run_notebook(page, notebooks, "same", "same.ipynb", book)
    widget = cells.first.locator(".jp-OutputArea-output").last
    chart = widget.locator('.mlo-chart[data-metric="loss"]')
    expect(chart).to_be_visible(timeout=30_000)
    page.wait_for_function("el => Number(el.dataset.points) >= 10", arg=chart.element_handle())
    # the kernel is still in the training cell: the points came from the server's API, not the kernel
    expect(cells.nth(1).locator(".jp-InputPrompt")).to_have_text("[*]:")
    expect(widget.locator(".mlo-cw")).not_to_have_attribute("data-live", "true", timeout=30_000)
    expect(chart).to_have_attribute("data-points", "60")
