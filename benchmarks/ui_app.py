"""Speed of the standalone ``mlo ui`` in chromium, with MLflow's UI on the same runs side by side.

What it measures (a real ``mlo ui`` process, Debian's chromium driven by Playwright, fresh page each time):

1. Time to first chart: 25 runs × 5 metrics × 10,000 steps (``--runs``, ``--steps``). a) one run's page until
   all 5 charts are drawn; b) the compare page of all 25 runs until its 5 overlaid charts are drawn. The same on
   MLflow's UI (``mlflow server`` of ``$MLO_ANCHOR_PYTHON``, default ``.venv-anchors/bin/python``, SQLite store):
   a) the run page's *Model metrics* tab until 5 plots are drawn; b) the experiment's chart view until 5 plots
   are drawn (MLflow draws the runs it shows, 10 by default, not 25: said beside the figure).
2. Live update latency: a run logs a point every 0.2 s (flushed); the page records when each step first shows
   in the chart (``data-last-step``); latency = shown − logged, median and 95th percentile.
3. Scroll of 10,000 runs (``--scroll-runs``): the runs table scrolled 300 px per frame for 240 frames; frame
   times (requestAnimationFrame intervals), median, 95th percentile and frames over 33 ms.
4. Bundle: app.js and app.css, raw and gzipped.

    .venv/bin/python benchmarks/ui_app.py               # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/ui_app.py --quick       # 5 runs × 2,000 steps, 2,000 runs to scroll
    .venv/bin/python benchmarks/ui_app.py --no-mlflow
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR_PYTHON = Path(os.environ.get("MLO_ANCHOR_PYTHON", ROOT / ".venv-anchors" / "bin" / "python"))
CHROMIUM = "/usr/bin/chromium"
TOKEN = "benchmark-token-1234"
METRICS = ["loss", "val_loss", "acc", "val_acc", "lr"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> str:
    return open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SEED_MLO = textwrap.dedent(
    """
    import json, sys
    import mlo
    from benchmarks_ui_app_curve import curve, METRICS
    runs, steps, scroll = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    mlo.init(".")
    ids = []
    for r in range(runs):
        with mlo.start_run(f"train-{r:02d}", experiment="bench", params={"lr": 0.1, "seed": r}) as run:
            for s in range(steps):
                mlo.log_metrics({m: curve(m, r, s, steps) for m in METRICS}, step=s)
        ids.append(run.id)
    for i in range(scroll):
        with mlo.start_run(f"sweep-{i:05d}", experiment="sweep", params={"i": i, "depth": i % 7}):
            mlo.log_metrics({"score": (i * 37 % 101) / 100, "loss": 1 / (i + 1)})
    json.dump(ids, sys.stdout)
    """
)

SEED_MLFLOW = textwrap.dedent(
    """
    import json, sys, time
    import mlflow
    from mlflow.entities import Metric
    from benchmarks_ui_app_curve import curve, METRICS
    uri, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    exp = client.create_experiment("bench")
    ids = []
    for r in range(runs):
        run = client.create_run(exp, run_name=f"train-{r:02d}")
        client.log_batch(run.info.run_id, params=[mlflow.entities.Param("lr", "0.1"), mlflow.entities.Param("seed", str(r))])
        now = int(time.time() * 1000)
        batch = []
        for s in range(steps):
            for m in METRICS:
                batch.append(Metric(m, curve(m, r, s, steps), now + s, s))
                if len(batch) == 1000:
                    client.log_batch(run.info.run_id, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(run.info.run_id, metrics=batch)
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    json.dump({"experiment": exp, "runs": ids}, sys.stdout)
    """
)

LIVE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import mlo
    stop, out = Path(sys.argv[1]), Path(sys.argv[2])
    logged = {}
    with mlo.start_run("live", experiment="live") as run:
        print(run.id, flush=True)
        step = 0
        while not stop.exists() and step < 400:
            mlo.log_metric("loss", 1 / (step + 1), step=step)
            mlo.flush()
            logged[step] = time.time() * 1000
            step += 1
            time.sleep(0.2)
    out.write_text(json.dumps(logged))
    """
)


def seed_env(tmp: Path) -> dict:
    helper = tmp / "benchmarks_ui_app_curve.py"
    helper.write_text(
        "import math\nMETRICS = "
        + repr(METRICS)
        + "\n"
        + textwrap.dedent(
            """
            def curve(metric, run, step, steps):
                f = (step + 1) / steps
                if metric.endswith('acc'):
                    return 0.5 + 0.45 * f ** 0.5 - run * 0.002
                if metric == 'lr':
                    return 0.1 * (1 - f)
                return {'loss': 2.0, 'val_loss': 2.2}[metric] / (1 + 10 * f) + run * 0.01
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update(MLO_HOME=str(tmp / "mlo" / ".mlo"), MLO_UI_TOKEN=TOKEN, PYTHONPATH=str(tmp))
    return env


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def timed_goto(page, url: str, ready_js: str, timeout_ms: int = 120_000) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(ready_js, timeout=timeout_ms, polling="raf")
    return (time.perf_counter() - t0) * 1000


def mlo_side(browser, base: str, ids: list[str], runs_scrolled: int, repeat: int) -> dict:
    out: dict = {}
    charts_ready = "document.querySelectorAll('.mlo-chart canvas').length >= 5"
    # the first page load sets the cookie; then fresh pages in the same context
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    page.goto(f"{base}/?token={TOKEN}")
    page.wait_for_selector(".mlo-app-scroll")
    single, compare = [], []
    for _ in range(repeat):
        p = ctx.new_page()
        single.append(timed_goto(p, f"{base}/#/run/{ids[0]}", charts_ready))
        p.close()
        p = ctx.new_page()
        compare.append(timed_goto(p, f"{base}/#/compare?runs={','.join(ids)}", charts_ready))
        p.close()
    out["first_chart_run_ms"] = statistics.median(single)
    out["first_chart_compare_ms"] = statistics.median(compare)
    # scroll
    p = ctx.new_page()
    p.goto(f"{base}/#/runs?experiment=sweep")
    p.wait_for_function(f"document.querySelector('.mlo-app-scroll')?.dataset.total === '{runs_scrolled}'")
    frames = p.evaluate(SCROLL_JS)
    times = sorted(frames["times"])
    out["scroll_frame_median_ms"] = statistics.median(times)
    out["scroll_frame_p95_ms"] = times[int(0.95 * len(times)) - 1]
    out["scroll_frames_over_33ms"] = sum(t > 33.4 for t in times)
    out["scroll_rows_in_dom"] = frames["drawn"]
    out["scroll_reached_row"] = frames["first"]
    # the baseline: the same rows as one plain table, every row in the DOM, scrolled the same way
    rows = "".join(
        f"<tr class='mlo-app-row'><td><input type=checkbox></td><td>sweep-{i:05d}</td><td>sweep</td>"
        f"<td>finished</td><td>2026-01-01 00:00:00</td><td>0 ms</td><td>{i % 7}</td><td>{i}</td></tr>"
        for i in range(runs_scrolled)
    )
    p.set_content(
        "<div class='mlo-app-scroll' data-first='0' style='height:710px;overflow:auto'>"
        f"<table><tbody>{rows}</tbody></table></div>"
    )
    plain = sorted(p.evaluate(SCROLL_JS)["times"])
    out["plain_frame_median_ms"] = statistics.median(plain)
    out["plain_frame_p95_ms"] = plain[int(0.95 * len(plain)) - 1]
    p.close()
    ctx.close()
    return out


SCROLL_JS = """async () => {
        const el = document.querySelector('.mlo-app-scroll');
        const times = [];
        let last = performance.now();
        for (let i = 0; i < 240; i++) {
          el.scrollTop += 300;
          await new Promise(r => requestAnimationFrame(r));
          const t = performance.now(); times.push(t - last); last = t;
        }
        const drawn = document.querySelectorAll('.mlo-app-row:not(.mlo-app-loading)').length;
        return {times, drawn, first: Number(el.dataset.first)};
    }"""


def live_latency(browser, base: str, tmp: Path, env: dict) -> dict:
    stop_file, out_file = tmp / "stop-live", tmp / "live.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", LIVE, str(stop_file), str(out_file)],
        cwd=tmp / "mlo",
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    page.goto(f"{base}/?token={TOKEN}")
    page.goto(f"{base}/#/run/{run_id}")
    page.wait_for_selector('.mlo-chart[data-metric="loss"]', timeout=30_000)
    page.evaluate(
        """() => { window.seen = {}; const chart = document.querySelector('.mlo-chart[data-metric="loss"]');
        const note = () => { const s = chart.dataset.lastStep; if (!(s in window.seen)) window.seen[s] = Date.now(); };
        note(); new MutationObserver(note).observe(chart, {attributes: true}); }"""
    )
    time.sleep(20)
    seen = page.evaluate("window.seen")
    stop_file.touch()
    proc.wait(timeout=30)
    logged = json.loads(out_file.read_text())
    # a poll draws every step since the last one at once: each of them was shown when the newest was
    shown = sorted((int(k), v) for k, v in seen.items())
    lat = []
    for (before, _), (step, at) in zip(shown, shown[1:], strict=False):
        lat += [at - logged[str(s)] for s in range(before + 1, step + 1) if str(s) in logged]
    lat.sort()
    ctx.close()
    return {
        "live_latency_median_ms": statistics.median(lat),
        "live_latency_p95_ms": lat[int(0.95 * len(lat)) - 1],
        "live_updates": len(lat),  # points, each timed from its logging to its drawing
    }


def mlflow_side(browser, tmp: Path, env: dict, runs: int, steps: int, repeat: int) -> dict:
    store = tmp / "mlflow"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    menv = {**env, "MLFLOW_TRACKING_URI": uri}
    t0 = time.perf_counter()
    seeded = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", SEED_MLFLOW, uri, str(runs), str(steps)],
        cwd=tmp,
        env=menv,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if seeded.returncode:
        raise RuntimeError(seeded.stderr[-2000:])
    info = json.loads(seeded.stdout)
    log(f"MLflow store filled in {time.perf_counter() - t0:.0f} s")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(ANCHOR_PYTHON),
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            uri,
            "--default-artifact-root",
            (store / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=menv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", 120)
        out: dict = {}
        # a plotly chart is drawn when its trace has a line path
        ready = (
            "[...document.querySelectorAll('.js-plotly-plot')]"
            ".filter(p => p.querySelector('.scatterlayer path.js-line')).length >= 5"
        )
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        exp, first = info["experiment"], info["runs"][0]
        single, chart_view = [], []
        for _ in range(repeat):
            p = ctx.new_page()
            single.append(
                timed_goto(p, f"{base}/#/experiments/{exp}/runs/{first}/model-metrics", ready, 300_000)
            )
            p.close()
            p = ctx.new_page()
            chart_view.append(
                timed_goto(p, f"{base}/#/experiments/{exp}/runs?compareRunsMode=CHART", ready, 300_000)
            )
            p.close()
        out["first_chart_run_ms"] = statistics.median(single)
        out["first_chart_compare_ms"] = statistics.median(chart_view)
        ctx.close()
        return out
    finally:
        stop(proc)


def bundle() -> dict:
    static = ROOT / "src" / "mlo" / "ui" / "static"
    out = {}
    for name in ("app.js", "app.css"):
        data = (static / name).read_bytes()
        out[f"{name}_bytes"] = len(data)
        out[f"{name}_gzip_bytes"] = len(gzip.compress(data, 9))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--scroll-runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--quick", action="store_true", help="5 runs × 2,000 steps, 2,000 runs to scroll, 1 repeat"
    )
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.steps, args.scroll_runs, args.repeat = 5, 2000, 2000, 1
    from playwright.sync_api import sync_playwright

    tmp = Path(
        tempfile.mkdtemp(prefix="mlo-bench-ui-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    env = seed_env(tmp)
    (tmp / "mlo").mkdir()
    figures: dict = {
        "load_start": load(),
        "runs": args.runs,
        "steps": args.steps,
        "scroll_runs": args.scroll_runs,
    }
    try:
        t0 = time.perf_counter()
        seeded = subprocess.run(
            [sys.executable, "-c", SEED_MLO, str(args.runs), str(args.steps), str(args.scroll_runs)],
            cwd=tmp / "mlo",
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if seeded.returncode:
            raise RuntimeError(seeded.stderr[-2000:])
        ids = json.loads(seeded.stdout)
        log(f"mlo workspace filled in {time.perf_counter() - t0:.0f} s")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mlo", "ui", "--port", str(port)],
            cwd=tmp / "mlo",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/mlo/api/experiments?token={TOKEN}")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                figures["mlo"] = mlo_side(browser, base, ids, args.scroll_runs, args.repeat)
                figures["mlo"].update(live_latency(browser, base, tmp, env))
                if not args.no_mlflow and ANCHOR_PYTHON.exists():
                    try:
                        figures["mlflow"] = mlflow_side(browser, tmp, env, args.runs, args.steps, args.repeat)
                    except Exception as exc:  # the comparison is a bonus; its failure is reported
                        figures["mlflow_error"] = str(exc)[:300]
                elif not args.no_mlflow:
                    figures["mlflow_error"] = f"{ANCHOR_PYTHON} not found (set MLO_ANCHOR_PYTHON)"
                browser.close()
        finally:
            stop(server)
        figures["bundle"] = bundle()
        figures["load_end"] = load()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def report(f: dict) -> None:
    m, ml = f["mlo"], f.get("mlflow", {})

    def ms(v):
        return f"{v:,.0f} ms" if isinstance(v, (int, float)) else "–"

    def ratio(a, b):
        return f"{b / a:.1f}×" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "–"

    print(
        f"mlo ui in chromium — {f['runs']} runs × {len(METRICS)} metrics × {f['steps']:,} steps; "
        f"load {f['load_start']} → {f['load_end']}"
    )
    rows = [
        ("first chart, one run (5 charts)", m["first_chart_run_ms"], ml.get("first_chart_run_ms")),
        (
            f"first chart, {f['runs']} runs overlaid (5 charts)",
            m["first_chart_compare_ms"],
            ml.get("first_chart_compare_ms"),
        ),
    ]
    print(f"{'':44} {'mlo ui':>10} {'MLflow UI':>10} {'MLflow/mlo':>10}")
    for name, a, b in rows:
        print(f"{name:44} {ms(a):>10} {ms(b):>10} {ratio(a, b):>10}")
    if "mlflow_error" in f:
        print(f"  MLflow UI not measured: {f['mlflow_error']}")
    else:
        print(
            "  (MLflow's chart view draws the runs it shows, 10 by default; mlo's compare draws all of them)"
        )
    print(
        f"live update latency: median {ms(m['live_latency_median_ms'])}, p95 {ms(m['live_latency_p95_ms'])} "
        f"over {m['live_updates']} updates (2 s poll)"
    )
    print(
        f"scroll of {f['scroll_runs']:,} runs, 240 frames of 300 px: frame median "
        f"{m['scroll_frame_median_ms']:.1f} ms, p95 {m['scroll_frame_p95_ms']:.1f} ms, "
        f"{m['scroll_frames_over_33ms']} over 33 ms; {m['scroll_rows_in_dom']} rows in the DOM"
    )
    print(
        f"  the same rows as one plain table, every row in the DOM: frame median "
        f"{m['plain_frame_median_ms']:.1f} ms, p95 {m['plain_frame_p95_ms']:.1f} ms "
        f"({m['plain_frame_median_ms'] / m['scroll_frame_median_ms']:.1f}× the virtualised median)"
    )
    b = f["bundle"]
    print(
        f"bundle: app.js {b['app.js_bytes']:,} B ({b['app.js_gzip_bytes']:,} gzipped), "
        f"app.css {b['app.css_bytes']:,} B ({b['app.css_gzip_bytes']:,} gzipped)"
    )


if __name__ == "__main__":
    sys.exit(main())
