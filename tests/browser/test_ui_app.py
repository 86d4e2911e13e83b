"""The standalone ``mlo ui`` in chromium: a real ``mlo ui`` process on a seeded workspace, in light, dark and high
contrast; list, filter, a run page whose chart grows while the run logs, compare, a model card, 401 without the
token; and ``mlo ui --export`` opened from ``file://``. Screenshots land in build/test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from live_run import start_live_run
from screenshots import docs_screenshot
from test_compare_widget import brush_the_top, hover_a_point
from theme import luminance

from strict import need

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "src" / "mlo" / "ui" / "static" / "app.js"
TOKEN = "browser-test-token-5678"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

SEED = textwrap.dedent(
    """
    import json, sys
    SWEEP = 450
    from pathlib import Path
    import mlo

    mlo.init(".")
    Path("notes.txt").write_text("trained on the March extract")
    ids = {}
    for C in (0.1, 1.0, 10.0):
        with mlo.start_run(f"logreg-C{C}", experiment="churn", params={"C": C, "penalty": "l2"}) as run:
            for step in range(50):
                mlo.log_metric("loss", (1 + C) / (step + 1), step=step)
            mlo.log_metric("auc", 0.7 + C / 100)
            mlo.record_cell(f"model = LogisticRegression(C={C}).fit(X, y)")
            if C == 1.0:
                mlo.log_artifact("notes.txt")
                best = run
        ids[f"logreg-C{C}"] = run.id
    for i in range(3):
        with mlo.start_run(f"forest-{i}", experiment="fraud", params={"n": 100 * (i + 1)}):
            mlo.log_metric("recall", 0.6 + i / 10)
    for lr in (0.1, 0.01, 0.001):
        for model in ("rf", "linear"):
            for seed in (0, 1):
                acc = 0.6 + 0.2 * (model == "linear") + 0.1 * (lr == 0.01) + 0.01 * seed
                params = {"lr": lr, "model": model, "seed": seed}
                with mlo.start_run(f"{model}-{lr}-s{seed}", experiment="grid", params=params) as run:
                    for step in range(6):
                        mlo.log_metric("loss", round(1.5 - acc + 1.0 / (step + 1), 4), step=step)
                    mlo.log_metric("acc", round(acc, 3))
                ids[f"{model}-{lr}-s{seed}"] = run.id
    for i in range(SWEEP):
        with mlo.start_run(f"sweep-{i:04d}", experiment="sweep", params={"i": i}):
            mlo.log_metric("score", i / SWEEP)
    mlo.register_model(lambda rows: [0 for _ in rows], "churn-model", alias="production", run=best)
    json.dump(ids, sys.stdout)
    """
)


class App:
    def __init__(self, root: Path, env: dict, url: str, runs: dict):
        self.root, self.env, self.url, self.runs = root, env, url, runs


@pytest.fixture(scope="module")
def app():
    need(
        CHROMIUM.exists(),
        f"{CHROMIUM} is missing (apt-get install chromium; make system-deps does it as root)",
    )
    need(APP.exists(), f"the mlo ui app is not built ({APP} is missing): run `make labextension`")
    pytest.importorskip("playwright")
    root = Path(tempfile.mkdtemp(prefix="mlo-ui-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_") and k != "PYTEST_CURRENT_TEST"}
    env.update(MLO_HOME=str(root / ".mlo"), MLO_UI_TOKEN=TOKEN)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    # runs pages count only up to 300 matches here (10,000 by default), below the sweep's 450 runs
    (root / ".mlo" / "mlo.toml").write_text("[ui]\ncount_up_to = 300\n")
    port = 0  # mlo ui picks a free one and says which
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlo", "ui", "--port", str(port), "--format", "json"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    url = json.loads(line)["url"]
    base = url.split("/?", 1)[0]
    deadline = time.monotonic() + 30
    import urllib.request

    while time.monotonic() < deadline:  # the JSON line comes just before uvicorn listens
        try:
            urllib.request.urlopen(f"{base}/mlo/api/experiments?token={TOKEN}", timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield App(root, env, url, json.loads(seeded.stdout))
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser, scheme="light", **options):
    context = browser.new_context(viewport={"width": 1300, "height": 900}, color_scheme=scheme, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_list_filter_open_a_run_compare_and_a_model_card(browser, app, scheme):
    from playwright.sync_api import expect

    page = _page(browser, scheme)
    page.goto(app.url)
    assert "token" not in page.url  # the token became a cookie and left the address bar
    page.locator(".mlo-app-experiment").select_option("churn")
    runs = page.locator(".mlo-app-runs tr.mlo-app-row")
    expect(runs).to_have_count(3)
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (luminance(page, bg) < 0.3) == (scheme == "dark")
    docs_screenshot(page, f"ui-runs-{scheme}.png")
    # the where filter, as mlo.runs understands it
    page.locator(".mlo-app-filter").fill("params.C >= 1")
    page.locator(".mlo-app-filter").press("Enter")
    expect(runs).to_have_count(2)
    page.locator(".mlo-app-filter").fill("metrics.auc >>> 1")
    page.locator(".mlo-app-filter").press("Enter")
    expect(page.locator('.mlo-status-line[data-kind="error"]')).to_be_visible()
    # tick two runs and compare them
    page.goto(app.url.split("/?")[0] + "/#/runs?experiment=churn")
    expect(runs).to_have_count(3)
    for name in ("logreg-C0.1", "logreg-C10.0"):
        page.locator(f'input.mlo-app-tick[data-run-id="{app.runs[name]}"]').check()
    page.locator(".mlo-app-compare").click()
    chart = page.locator('.mlo-chart[data-metric="loss"]')
    expect(chart).to_be_visible()
    expect(page.locator('.mlo-app-compare-table tr[data-key="params.C"]')).to_have_class("mlo-differs")
    expect(page.locator(".mlo-diff-view .mlo-diff-params")).to_be_visible()
    docs_screenshot(page, f"ui-compare-{scheme}.png")
    # a run's page: charts, the artifact's preview, params, cells
    page.goto(app.url.split("/?")[0] + f"/#/run/{app.runs['logreg-C1.0']}")
    expect(page.locator(".mlo-run-title")).to_have_text("logreg-C1.0")
    expect(page.locator('.mlo-chart[data-metric="loss"]')).to_have_attribute("data-points", "50")
    page.locator('details.mlo-artifact[data-path="notes.txt"] summary').click()
    expect(page.locator(".mlo-artifact-text")).to_have_text("trained on the March extract")
    # the model and its card, in a sandboxed frame
    page.locator('.mlo-app-nav a[data-page="models"]').click()
    page.locator(".mlo-app-models a.mlo-app-model-link").first.click()
    frame = page.locator("iframe.mlo-app-frame")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator("iframe.mlo-app-frame").locator("body")).to_contain_text("churn-model")
    # the card follows the page's theme, though its frame inherits nothing
    card_bg = (
        page.frame_locator("iframe.mlo-app-frame")
        .locator("body")
        .evaluate("b => getComputedStyle(b).backgroundColor")
    )
    assert (luminance(page, card_bg) < 0.3) == (scheme == "dark")
    docs_screenshot(page, f"ui-model-card-{scheme}.png")
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_compare_page_groups_dots_scatter_hover_brushing_and_importance(browser, app, scheme):
    from playwright.sync_api import expect

    page = _page(browser, scheme)
    page.set_viewport_size({"width": 1300, "height": 1400})
    page.goto(app.url)
    page.goto(app.url.split("/?")[0] + "/#/runs?experiment=grid")
    expect(page.locator(".mlo-app-runs tr.mlo-app-row")).to_have_count(12)
    for name in ("rf-0.1-s0", "rf-0.1-s1", "linear-0.01-s0", "linear-0.01-s1"):
        page.locator(f'input.mlo-app-tick[data-run-id="{app.runs[name]}"]').check()
    page.locator(".mlo-app-compare").click()
    # single values as labelled dots; histories grouped by a param as mean ± one sd
    dots = page.locator(".mlo-app-overlaid .mlo-dots")
    expect(dots.locator(".mlo-dot-label")).to_have_count(4)
    page.locator(".mlo-app-group-by").select_option("params.model")
    grouped = page.locator('.mlo-app-grouped .mlo-chart[data-metric="loss"]')
    expect(grouped).to_have_attribute("data-grouped", "true")
    expect(grouped.locator(".u-legend")).to_contain_text("rf mean (n=2)")
    expect(page.locator(".mlo-app-grouped .mlo-dots .mlo-dot-label")).to_have_text(["linear", "rf"])
    expect(page.locator(".mlo-app-overlaid")).to_be_hidden()
    # the metric against a param over the whole experiment (not only the ticked runs): hover names a run
    across = page.locator(".mlo-app-across")
    across.locator(".mlo-cw-metric select").select_option("metrics.acc")
    across.locator(".mlo-cw-param select").select_option("params.lr")
    scatter = across.locator(".mlo-scatter")
    expect(scatter.locator("figcaption")).to_have_text("acc vs lr")
    expect(scatter).to_have_attribute("data-points", "12")
    colour = scatter.locator("figcaption").evaluate("e => getComputedStyle(e).color")
    assert (luminance(page, colour) > 0.5) == (scheme == "dark"), colour  # legible on the theme
    page.wait_for_timeout(300)  # the chart settles into its width (a resize draws it again)
    tip = hover_a_point(page, scatter)
    expect(tip).to_have_text(re.compile(r"^(rf|linear)-0\.\d+-s\d · lr = 0\.\d+ · acc = 0\.\d+$"))
    docs_screenshot(page, f"ui-compare-scatter-{scheme}.png")
    # parallel coordinates: brushing the top of the acc axis counts the runs inside (a where, on the server)
    across.locator('.mlo-cw-tab[data-tab="parallel"]').click()
    best = app.runs["linear-0.01-s1"]
    expect(across.locator(f'.mlo-pline-best[data-id="{best}"]')).to_have_count(1)
    brush_the_top(page, across, "metrics.acc")
    brushed = across.locator(".mlo-app-brushed")
    expect(brushed).to_be_visible()
    kept = int(across.locator(".mlo-parallel").get_attribute("data-brushed"))
    assert 0 < kept < 12
    expect(brushed).to_have_attribute(
        "data-total", str(kept)
    )  # the server's filter keeps what the chart kept
    docs_screenshot(page, f"ui-compare-parallel-{scheme}.png")
    brushed.locator("a").click()
    expect(page.locator(".mlo-app-runs tr.mlo-app-row")).to_have_count(kept)
    expect(page.locator(".mlo-app-filter")).to_have_value(re.compile(r"metrics\.acc >= "))
    page.go_back()
    across = page.locator(".mlo-app-across")
    across.locator('.mlo-cw-tab[data-tab="importance"]').click()
    expect(across.locator(".mlo-importance")).to_be_visible()
    expect(across.locator(".mlo-importance-method")).to_contain_text("over 12 runs")
    page.context.close()


def test_450_runs_scroll_as_one_table_with_few_rows_drawn(browser, app):
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(app.url)
    page.goto(app.url.split("/?")[0] + "/#/runs?experiment=sweep")
    table = page.locator(".mlo-app-scroll")
    # the API counted up to its cap (300 here): a lower bound, shown as such
    expect(table).to_have_attribute("data-total", "300")
    expect(table).to_have_attribute("data-exact", "false")
    expect(page.locator(".mlo-app-matching")).to_have_text("300+ runs")
    rows = page.locator(".mlo-app-runs tr.mlo-app-row")
    expect(rows.first).to_contain_text("sweep-0449")  # newest first
    assert rows.count() < 80  # only the rows in view, and a margin
    # scrolling to the end goes past the cap, page by page, until a short page makes the count exact
    for _ in range(10):
        table.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        if page.locator('.mlo-app-runs tr.mlo-app-row[data-index="449"]').count():
            break
        page.wait_for_timeout(300)
    expect(page.locator('.mlo-app-runs tr.mlo-app-row[data-index="449"]')).to_contain_text("sweep-0000")
    expect(table).to_have_attribute("data-total", "450")
    expect(table).to_have_attribute("data-exact", "true")
    expect(page.locator(".mlo-app-matching")).to_have_text("450 runs")
    assert page.locator(".mlo-app-runs tr.mlo-app-row").count() < 80
    # ticking survives scrolling away and back; select all matching ticks every run of the filter
    page.locator(".mlo-app-select-all").click()
    expect(page.locator(".mlo-app-count")).to_have_text("450 ticked")
    page.locator(".mlo-app-clear").click()
    expect(page.locator(".mlo-app-count")).to_have_text("0 ticked")
    page.context.close()


def test_a_live_run_chart_grows_without_a_click(browser, app):
    from playwright.sync_api import expect

    stop = app.root / "stop-live"
    proc = start_live_run(app.root, app.env, stop, experiment="live")
    page = _page(browser)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id
        page.goto(app.url)
        page.goto(app.url.split("/?")[0] + f"/#/run/{run_id}")
        view = page.locator(f'.mlo-run-view[data-run-id="{run_id}"]')
        expect(view).to_have_attribute("data-live", "true")
        chart = view.locator('.mlo-chart[data-metric="loss"]')
        expect(chart).to_be_visible(timeout=20_000)
        first = int(chart.get_attribute("data-points"))
        page.wait_for_function(
            "([el, n]) => Number(el.dataset.points) >= n + 5",
            arg=[chart.element_handle(), first],
            timeout=20_000,
        )
        grown = int(chart.get_attribute("data-points"))
        assert int(chart.get_attribute("data-last-step")) == grown - 1
        stop.touch()
        proc.wait(timeout=30)
        expect(view.locator('.mlo-run-header tr[data-field="status"] td')).to_have_text(
            "finished", timeout=15_000
        )
    finally:
        stop.touch()
        if proc.poll() is None:
            proc.kill()
        page.context.close()


def test_high_contrast_follows_the_system(browser, app):
    from playwright.sync_api import expect

    page = _page(browser, "dark", contrast="more")
    page.goto(app.url)
    expect(page.locator(".mlo-app-runs tr.mlo-app-row").first).to_be_visible()
    assert page.evaluate("document.body.dataset.jpThemeName") == "mlo high contrast dark"
    text = page.evaluate("getComputedStyle(document.querySelector('.mlo-app-runs td')).color")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert luminance(page, text) > 0.95 and luminance(page, bg) < 0.02  # white on black, nothing grey
    docs_screenshot(page, "ui-runs-high-contrast.png")
    page.context.close()


def test_without_the_token_the_page_is_a_401(browser, app):
    page = _page(browser)
    response = page.goto(app.url.split("/?")[0] + "/")
    assert response.status == 401
    assert "token" in json.loads(page.locator("body").inner_text())["error"]
    page.context.close()


def test_a_static_export_opens_from_file(browser, app, tmp_path):
    from playwright.sync_api import expect

    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mlo", "ui", "--export", str(site), "--experiment", "churn"],
        cwd=app.root,
        env=app.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    page = _page(browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((site / "index.html").as_uri())
    runs = page.locator(".mlo-app-runs tr.mlo-app-row")
    expect(runs).to_have_count(3)  # the churn experiment only
    best = app.runs["logreg-C1.0"]
    page.locator(f'a.mlo-app-run-link[title="{best}"]').click()
    expect(page.locator('.mlo-chart[data-metric="loss"]')).to_have_attribute("data-points", "50")
    page.goto((site / "index.html").as_uri() + f"#/compare?runs={app.runs['logreg-C0.1']},{best}")
    expect(page.locator('.mlo-chart[data-metric="loss"]')).to_be_visible()
    expect(page.locator(".mlo-diff-view .mlo-diff-params")).to_be_visible()
    # the charts across the runs were written ahead of time; what needs the store says so in one line
    across = page.locator(".mlo-app-across")
    expect(across.locator(".mlo-scatter")).to_have_attribute("data-points", "3")
    across.locator(".mlo-cw-param select").select_option("params.penalty")
    expect(across.locator(".mlo-scatter figcaption")).to_have_text("auc vs penalty")
    across.locator('.mlo-cw-tab[data-tab="parallel"]').click()
    expect(across.locator(".mlo-parallel .mlo-pline")).to_have_count(3)
    page.locator(".mlo-app-group-by").select_option("params.C")
    expect(page.locator('.mlo-app-grouped .mlo-status-line[data-kind="error"]')).to_contain_text(
        "static export"
    )
    docs_screenshot(page, "ui-export-compare.png")
    assert all(u.startswith("file://") for u in requests), [
        u for u in requests if not u.startswith("file://")
    ]
    page.context.close()
