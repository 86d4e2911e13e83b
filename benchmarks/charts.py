"""Speed of the metric charts in JupyterLab's run tab, measured in Debian's chromium against a real ``jupyter lab``.

The workspace: 25 runs × 5 metrics × 10,000 steps (1.25 million points). Figures:

1. REST: ``GET /mlo/api/runs/<id>/metrics`` for each of the 25 runs (50,000 points each), median and slowest, and
   the bytes of one answer; then a live poll's answer (``since_step`` = the last step).
2. Time to first chart: from the click on a run's name in the MLO panel until its tab has drawn all 5 charts with
   every point (median of ``--tabs`` runs, each opened in a fresh page).
3. Live update latency: a separate process logs one point every 0.5 s and calls ``mlo.flush()``; the time from
   that flush until the open tab's chart holds the point (the tab polls every 2 s, so expect about 1 s on
   average and at most about 2 s plus the request).
4. Bundle: the built extension's JavaScript (``src/mlo/labextension/static``), raw and gzipped, and the chunk
   that holds uPlot.

Run from the repository root after ``make labextension``:

    .venv/bin/python benchmarks/charts.py            # about 1-2 minutes on 2 cores
    .venv/bin/python benchmarks/charts.py --quick    # 5 runs × 5 metrics × 2,000 steps
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from text_table import print_table
from ui import Server, free_port

from tracking import ROOT, load_average

CHROMIUM = "/usr/bin/chromium"
STATIC = ROOT / "src" / "mlo" / "labextension" / "static"

SEED = textwrap.dedent(
    """
    import json, math, sys
    import mlo

    runs, keys, steps = (int(a) for a in sys.argv[1:4])
    mlo.init(".")
    ids = []
    for r in range(runs):
        with mlo.start_run(f"run-{r:02d}", experiment="bench", params={"lr": 10 ** -(1 + r % 4)}) as run:
            for step in range(steps):
                mlo.log_metrics({f"m{k}": math.exp(-step / (1000 + 300 * k)) + r / 100 for k in range(keys)},
                                step=step)
        ids.append(run.id)
    json.dump(ids, sys.stdout)
    """
)

LIVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlo

    stop, points = Path(sys.argv[1]), int(sys.argv[2])
    with mlo.start_run("live", experiment="bench") as run:
        for step in range(3):
            mlo.log_metric("loss", 1.0, step=step)
        mlo.flush()
        print(run.id, flush=True)
        while not stop.exists():
            time.sleep(0.1)
        stop.unlink()
        for step in range(3, 3 + points):
            time.sleep(0.5)
            mlo.log_metric("loss", 1.0 / step, step=step)
            mlo.flush()
            print(step, time.time(), flush=True)
    """
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bundle() -> dict:
    files = sorted(STATIC.glob("*.js"))
    if not files:
        raise SystemExit(f"{STATIC} has no JavaScript: run `make labextension` first")
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    uplot = [f for f in files if b"valToPos" in f.read_bytes()]  # a name of uPlot's API, in its code only
    return {
        "js_bytes": raw,
        "js_gzip_bytes": gz,
        "uplot_chunk_bytes": sum(f.stat().st_size for f in uplot),
        "uplot_chunk_gzip_bytes": sum(len(gzip.compress(f.read_bytes(), 9)) for f in uplot),
    }


def get(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - t0, body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 runs × 5 metrics × 2,000 steps")
    ap.add_argument("--tabs", type=int, default=5, help="run tabs opened for the time to first chart")
    ap.add_argument("--live-points", type=int, default=10, help="points the live run logs while watched")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args(argv)
    runs, keys, steps = (5, 5, 2000) if args.quick else (25, 5, 10_000)
    print(f"load average at start: {load_average()}")
    from playwright.sync_api import sync_playwright

    figures: dict = {"sizes": {"runs": runs, "metrics": keys, "steps": steps}, "bundle": bundle()}
    with tempfile.TemporaryDirectory(prefix="mlo-charts-") as tmp_name:
        tmp = Path(tmp_name)
        private = tmp / ".jupyter"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLO_", "JUPYTER_", "JPY_"))}
        env.update(
            MLO_HOME=str(tmp / ".mlo"),
            JUPYTER_CONFIG_DIR=str(private / "config"),
            JUPYTER_RUNTIME_DIR=str(private / "runtime"),
            JUPYTER_DATA_DIR=str(private / "data"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        (private / "config" / "labconfig").mkdir(parents=True)
        (private / "config" / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        log(f"logging {runs} runs × {keys} metrics × {steps:,} steps")
        t0 = time.perf_counter()
        seeded = subprocess.run(
            [sys.executable, "-c", SEED, str(runs), str(keys), str(steps)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        ids = json.loads(seeded.stdout)
        figures["seed_s"] = time.perf_counter() - t0
        port, token = free_port(), secrets.token_hex(16)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]  # fmt: skip
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        server = Server("jupyter lab", cmd, env, tmp, tmp / "jupyter.log")
        base = f"http://127.0.0.1:{port}"
        live = None
        try:
            server.wait_ready(port, f"/api/status?token={token}")
            # 1. REST
            times, sizes = [], []
            for run_id in ids:
                elapsed, body = get(f"{base}/mlo/api/runs/{run_id}/metrics?token={token}")
                times.append(elapsed)
                sizes.append(len(body))
            answer = json.loads(body)
            assert sum(len(m["step"]) for m in answer["metrics"].values()) == keys * steps
            poll_s, poll_body = get(
                f"{base}/mlo/api/runs/{ids[-1]}/metrics?since_step={steps - 1}&token={token}"
            )
            figures["rest"] = {
                "median_s": statistics.median(times),
                "max_s": max(times),
                "bytes": statistics.median(sizes),
                "points": keys * steps,
                "poll_nothing_new_s": poll_s,
                "poll_bytes": len(poll_body),
            }
            log(f"REST: median {statistics.median(times) * 1000:.0f} ms for {keys * steps:,} points")

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                # 2. time to first chart
                first = []
                for i, run_id in enumerate(ids[: args.tabs]):
                    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                    page.set_default_timeout(120_000)
                    page.goto(f"{base}/lab/workspaces/bench{i}?reset&token={token}")
                    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
                    tab.wait_for()
                    if not page.locator("#mlo-panel").is_visible():
                        tab.click()
                    page.locator('.mlo-experiment[data-experiment="bench"] .mlo-experiment-toggle').click()
                    name = page.locator(f'.mlo-run-name[data-run-id="{run_id}"]')
                    name.wait_for()
                    t0 = time.perf_counter()
                    name.click()
                    page.wait_for_function(
                        "([id, keys, steps]) => { const c = document.querySelectorAll("
                        "`.mlo-run-view[data-run-id='${id}'] .mlo-chart[data-points='${steps}'] canvas`);"
                        " return c.length === keys }",
                        arg=[run_id, keys, steps],
                        polling="raf",
                    )
                    first.append(time.perf_counter() - t0)
                    page.context.close()
                figures["first_chart"] = {"median_s": statistics.median(first), "all_s": first}
                log(f"time to first chart: median {statistics.median(first) * 1000:.0f} ms")

                # 3. live update latency
                stop = tmp / "go"
                live = subprocess.Popen(
                    [sys.executable, "-c", LIVE, str(stop), str(args.live_points)],
                    cwd=tmp,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                live_id = live.stdout.readline().strip()
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{base}/lab/workspaces/live?reset&token={token}")
                tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
                tab.wait_for()
                if not page.locator("#mlo-panel").is_visible():
                    tab.click()
                page.locator('.mlo-experiment[data-experiment="bench"] .mlo-experiment-toggle').click()
                page.locator(f'.mlo-run-name[data-run-id="{live_id}"]').click()
                chart = page.locator(f'.mlo-run-view[data-run-id="{live_id}"] .mlo-chart[data-metric="loss"]')
                chart.wait_for()
                # the page records when each step first shows; the logger prints when it flushed each
                page.evaluate(
                    """el => { window.__seen = {}; new MutationObserver(() => {
                        const s = el.dataset.lastStep; if (!(s in window.__seen)) window.__seen[s] = Date.now() / 1000;
                    }).observe(el, {attributes: true, attributeFilter: ['data-last-step']}); }""",
                    chart.element_handle(),
                )
                stop.touch()
                flushed = {}
                for _ in range(args.live_points):
                    step, at = live.stdout.readline().split()
                    flushed[int(step)] = float(at)
                live.wait(timeout=30)
                last = max(flushed)
                page.wait_for_function("s => String(s) in window.__seen", arg=last)
                seen = {int(k): v for k, v in page.evaluate("window.__seen").items()}
                # a poll can bring several points at once: each point's latency is when its step was covered
                lat = [min(t for s, t in seen.items() if s >= step) - at for step, at in flushed.items()]
                figures["live"] = {
                    "median_s": statistics.median(lat),
                    "max_s": max(lat),
                    "points": len(lat),
                }
                log(f"live latency: median {statistics.median(lat) * 1000:.0f} ms")
                browser.close()
        finally:
            if live is not None and live.poll() is None:
                live.kill()
            server.stop()
    figures["load_average_end"] = load_average()

    b, r, f, lv = figures["bundle"], figures["rest"], figures["first_chart"], figures["live"]
    print(f"\n{runs} runs × {keys} metrics × {steps:,} steps (seeded in {figures['seed_s']:.1f} s)\n")
    print_table(
        ["figure", "value", "what"],
        [
            ["time to first chart", f"{f['median_s'] * 1000:.0f} ms", f"click → {keys} charts × {steps:,} points drawn, "
             f"median of {len(f['all_s'])} tabs (max {max(f['all_s']) * 1000:.0f} ms)"],
            ["REST histories", f"{r['median_s'] * 1000:.0f} ms", f"GET …/metrics, {r['points']:,} points, "
             f"{r['bytes'] / 1e6:.2f} MB, median of {runs} (max {r['max_s'] * 1000:.0f} ms)"],
            ["REST poll, nothing new", f"{r['poll_nothing_new_s'] * 1000:.1f} ms", f"since_step=last, {r['poll_bytes']} B"],
            ["live update latency", f"{lv['median_s'] * 1000:.0f} ms", f"flush → point on the chart, median of "
             f"{lv['points']} (max {lv['max_s'] * 1000:.0f} ms; the tab polls every 2 s)"],
            ["bundle", f"{b['js_gzip_bytes'] / 1e3:.0f} kB gz", f"all JS of the extension ({b['js_bytes'] / 1e3:.0f} kB raw)"],
            ["  of which uPlot's chunk", f"{b['uplot_chunk_gzip_bytes'] / 1e3:.0f} kB gz",
             f"{b['uplot_chunk_bytes'] / 1e3:.0f} kB raw"],
        ],
    )  # fmt: skip
    print(f"\nload average at end: {figures['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
