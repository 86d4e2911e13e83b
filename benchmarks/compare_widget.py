"""The compare widget (``mlo.compare()`` / ``%mlo compare``): its first view at 1,000, 10,000 and 100,000 runs,
this checkout side by side with a baseline revision of mlo, the size of the widget's bundle, (with
``--scroll``) the frames of scrolling 10,000 runs in chromium, and (with ``--live``) the live update latency: from
a point's flush in another process to the widget's chart holding it, in real JupyterLab.

Workspaces are those of ``benchmarks/listing.py`` (one experiment; each run has 10 params and 10 metrics,
written in bulk). The first view is what a notebook does when the cell runs: build the widget and its display
data (the widget state and the static HTML fallback), imports and the first connection aside (a notebook has
made them when it imported mlo and logged a run); the first try in a process is shown beside the median. Each side runs in a fresh interpreter
(``PYTHONPATH`` = the baseline's ``src/``, unpacked with ``git archive``, or this checkout) over the same file,
taking turns; the figure is the best of the rounds' medians.

Target (issue "at scale"): the first view of 100,000 runs × 20 params/metrics ≤ 0.5 s.

    .venv/bin/python benchmarks/compare_widget.py                     # 1k, 10k, 100k: about 4 minutes
    .venv/bin/python benchmarks/compare_widget.py --runs 1000 10000 --scroll
    .venv/bin/python benchmarks/compare_widget.py --runs --live      # only the live latency: about a minute
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from listing import build
from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STATIC = ROOT / "src" / "mlo" / "jupyter" / "static"

PROBE = """
import json, statistics, sys, time
import mlo
from mlo.jupyter.widgets import compare  # imports are not the first view's cost,
mlo.runs(experiment="sweep", limit=1)  # nor are the store's (SQLAlchemy) and the first connection
repeats, times = int(sys.argv[1]), []
for _ in range(repeats):
    t = time.perf_counter()
    widget = compare(experiment="sweep")
    bundle = widget._repr_mimebundle_()
    times.append(time.perf_counter() - t)
print(json.dumps({"s": statistics.median(times), "first": times[0], "rows": len(widget.table.rows),
                  "html": len(bundle[0]["text/html"] if isinstance(bundle, tuple) else bundle["text/html"])}))
"""


def probe(src: Path | None, home: Path, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update({"MLO_HOME": str(home), "MLO_SYSTEM_METRICS": "0"})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run(
        [PY, "-c", PROBE, str(repeats)], env=env, capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bundle_sizes() -> list[list[str]]:
    rows = []
    for name in ("compare.js", "compare.css", "table.js", "table.css"):
        data = (STATIC / name).read_bytes()
        rows.append([name, f"{len(data) / 1024:.1f} kB", f"{len(gzip.compress(data, 9)) / 1024:.1f} kB"])
    return rows


def browser_test(k: str, result_name: str):
    """Run the browser test ``-k k`` of tests/browser/test_compare_widget.py; it writes its timings as JSON."""
    result = ROOT / "build" / "test-artifacts" / result_name
    result.unlink(missing_ok=True)
    done = subprocess.run(
        [PY, "-m", "pytest", "-q", "-n", "0", "tests/browser/test_compare_widget.py", "-k", k],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not result.exists():
        print(f"the {k} test did not run: {done.stdout[-800:]}")
        return None
    return json.loads(result.read_text())


def scroll_frames() -> dict | None:
    """Scroll 10,000 runs top to bottom in 60 frames: the frame times."""
    return browser_test("ten_thousand", "compare-scroll-frames.json")


def live_latency() -> list[float] | None:
    """Another process logs a point every 0.2 s to a run the widget shows: each point's latency (ms from its
    flush to the chart holding it)."""
    latency = browser_test("live", "compare-live-latency.json")
    return sorted(latency) if latency else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="turns each side takes (the best median counts)")
    ap.add_argument("--baseline", default="main")
    ap.add_argument(
        "--scroll", action="store_true", help="also scroll 10,000 runs in chromium (needs the lab)"
    )
    ap.add_argument("--live", action="store_true", help="also time live updates in JupyterLab (chromium)")
    a = ap.parse_args(argv)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(
        prefix="mlo-compare-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    ) as t:
        tmp = Path(t)
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", a.baseline, "src"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        for n in a.runs:
            home = tmp / f"ws{n}" / ".mlo"
            home.parent.mkdir()
            written = build(home, n)
            sides: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(a.rounds):
                sides["before"].append(probe(base / "src", home, a.repeats))
                sides["after"].append(probe(None, home, a.repeats))
            b = min(r["s"] for r in sides["before"])
            f = min(r["s"] for r in sides["after"])
            fb = min(r["first"] for r in sides["after"])
            print(
                f"{n:,} runs (written in {written:.1f} s): before {b * 1000:,.0f} ms, after {f * 1000:,.0f} ms"
            )
            rows.append(
                [
                    f"{n:,} runs",
                    f"{b * 1000:,.0f} ms",
                    f"{f * 1000:,.0f} ms",
                    f"{fb * 1000:,.0f} ms",
                    f"{b / f:,.1f}x",
                    verdict(f <= 0.5) if n >= 100_000 else "",
                ]
            )
    if a.live:
        latency = live_latency()
        if latency:
            n = len(latency)
            print(
                f"\nlive update latency, flush → the widget's chart holds the point ({n} points, poll every 1 s): "
                f"median {latency[n // 2]:.0f} ms, p95 {latency[max(0, int(0.95 * n) - 1)]:.0f} ms, "
                f"worst {latency[-1]:.0f} ms"
            )
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); 2 shared cores")
    if rows:
        print("first view: mlo.compare(experiment=…) and its display data (widget state + static HTML)")
        print_table(
            ["workspace", f"baseline ({a.baseline})", "this checkout", "(its first try)", "gain", "≤ 0.5 s"],
            rows,
        )
    print()
    print_table(["widget file", "size", "gzipped"], bundle_sizes())
    if a.scroll:
        frames = scroll_frames()
        if frames:
            print(
                f"\nscrolling 10,000 runs top to bottom in {frames['frames']} animation frames (chromium, headless): "
                f"median {frames['median_ms']:.1f} ms, p90 {frames['p90_ms']:.1f} ms, "
                f"worst {frames['max_ms']:.1f} ms per frame (16.7 ms = 60 fps)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
