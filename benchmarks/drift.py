"""Drift speed and report size of mlo, side by side with Evidently on the same data.

What it measures:

1. 100,000 rows × 25 columns (20 numeric, 5 categorical), reference and current: ``mlo.drift`` (stored in a
   temporary workspace) and ``DriftReport.to_html()``; median of 3 runs after one warm-up run. The HTML size.
2. The same data through Evidently's ``Report([DataDriftPreset()])`` when ``.venv-evidently/bin/python`` exists:
   this script runs itself there (``--evidently-child``) on the same Parquet files, with the same protocol, and
   prints both timings, the ratio, both HTML sizes, and how often the per-column drift flags, the methods and the
   scores agree.
3. 1,000,000 rows × 50 columns (40 numeric, 10 categorical) on each side, built in a fresh process
   (``--big-child``): median time of 3 runs, and the peak resident memory during them above what the process held
   before the data existed, against the size of the data in memory (``DataFrame.memory_usage(deep=True)``).

Run from the repository root:

    .venv/bin/python benchmarks/drift.py                  # everything, about 2 minutes on 2 cores
    .venv/bin/python benchmarks/drift.py --quick          # smaller sizes, well under a minute
    .venv/bin/python benchmarks/drift.py --no-evidently --json out.json

Only the standard library is imported at module level, so the same file runs in the Evidently environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
EVIDENTLY_TIMEOUT = 900  # seconds
REPEATS = 3

SIZES = {
    "full": {"rows": 100_000, "big_rows": 1_000_000, "big_numeric": 40, "big_categorical": 10},
    "quick": {"rows": 20_000, "big_rows": 200_000, "big_numeric": 40, "big_categorical": 10},
}

# Evidently's method names, as its reports spell them, and how each decides drift
EVIDENTLY_METHODS = {
    "K-S p_value": ("ks", "p<="),
    "chi-square p_value": ("chisquare", "p<"),
    "Z-test p_value": ("z", "p<"),
    "Wasserstein distance (normed)": ("wasserstein", ">="),
    "Jensen-Shannon distance": ("jensenshannon", ">="),
}


# -- data ---------------------------------------------------------------------------------------------------------------
def make_frames(rows: int, numeric: int, categorical: int, seed: int = 0):
    """Reference and current frames. Numeric columns cycle through shapes (normal, log-normal, uniform, counts with
    ties, heavy tails); some shift, scale or reshape in the current frame, some by amounts near the threshold.
    Categorical columns cycle through probability changes, a new category, a boolean and stable ones. Missing
    values occur at the same rate on both sides, so the drift flags compare distributions."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref, cur = {}, {}

    def numeric_column(i: int, n: int, change: float, r):
        shape = i % 5
        if shape == 0:
            return r.normal(change, 1.0 + change / 2, n)
        if shape == 1:
            return r.lognormal(0.2 * change, 1.0, n)
        if shape == 2:
            return r.uniform(0, 1 + change, n)
        if shape == 3:
            return r.poisson(3.0 + 2 * change, n).astype(float)
        return r.standard_t(3, n) + change

    changes = [0.0, 0.02, 0.05, 0.1, 0.15, 0.3, 0.6]
    for i in range(numeric):
        change = changes[i % len(changes)] if i % 2 == 0 else 0.0
        a = numeric_column(i, rows, 0.0, rng)
        b = numeric_column(i, rows, change, rng)
        if i % 4 == 1:  # 2% missing on both sides
            a[rng.random(rows) < 0.02] = np.nan
            b[rng.random(rows) < 0.02] = np.nan
        ref[f"num_{i}"], cur[f"num_{i}"] = a, b
    levels = np.array([f"level_{k}" for k in range(8)])
    base = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    for j in range(categorical):
        style = j % 5
        if style == 4:
            ref[f"cat_{j}"] = rng.random(rows) < 0.3
            cur[f"cat_{j}"] = rng.random(rows) < 0.33
            continue
        ref[f"cat_{j}"] = levels[rng.choice(8, rows, p=base)]
        if style == 0:  # mass moves between levels
            shifted = np.roll(base, 1)
            cur[f"cat_{j}"] = levels[rng.choice(8, rows, p=shifted)]
        elif style == 1:  # a new level at 3%
            values = levels[rng.choice(8, rows, p=base)].astype(object)
            values[rng.random(rows) < 0.03] = "level_new"
            cur[f"cat_{j}"] = values
        else:
            cur[f"cat_{j}"] = levels[rng.choice(8, rows, p=base)]
    return pd.DataFrame(ref), pd.DataFrame(cur)


def write_frames(folder: Path, name: str, rows: int, numeric: int, categorical: int) -> tuple[Path, Path]:
    ref, cur = make_frames(rows, numeric, categorical)
    paths = folder / f"{name}_reference.parquet", folder / f"{name}_current.parquet"
    ref.to_parquet(paths[0])
    cur.to_parquet(paths[1])
    return paths


# -- memory ---------------------------------------------------------------------------------------------------------
class PeakRss:
    """The highest resident set size while the block runs: the kernel's high-water mark (``VmHWM``, reset on entry
    by writing 5 to ``/proc/self/clear_refs``) and, as a fallback, an RSS sample every 2 ms."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.exact = False
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.002)

    @staticmethod
    def _hwm() -> int | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = self._hwm() is not None
        except OSError:
            self.exact = False
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        if self.exact:
            self.peak = max(self.peak, self._hwm() or 0)


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


# -- mlo ------------------------------------------------------------------------------------------------------------
def _workspace(folder: Path):
    os.environ["MLO_HOME"] = str(folder / ".mlo")
    import mlo

    mlo.init(folder)
    return mlo


def mlo_main(paths: tuple[Path, Path], folder: Path) -> dict:
    import pandas as pd

    mlo = _workspace(folder)
    ref, cur = pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    mlo.drift(ref, cur)  # warm-up: imports scipy, opens the store
    times, html_times = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        report = mlo.drift(ref, cur)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        html = report.to_html()
        html_times.append(time.perf_counter() - t)
    cols = report.columns
    return {
        "seconds": statistics.median(times),
        "times": times,
        "html_seconds": statistics.median(html_times),
        "html_bytes": len(html.encode()),
        "n_drifted": report.n_drifted,
        "n_columns": report.n_columns,
        "columns": {
            row.column: {
                "method": row.method,
                "score": row.p_value if row.p_value == row.p_value else row.statistic,
                "drifted": bool(row.value_drift),
            }
            for row in cols.itertuples()
        },
    }


def big_child(rows: int, numeric: int, categorical: int) -> None:
    """In a fresh process: build the large frames, then time 3 drift runs and watch the peak memory."""
    import gc

    folder = Path(tempfile.mkdtemp(prefix="mlo-drift-big-"))
    mlo = _workspace(folder)
    mlo.drift(*make_frames(1000, 2, 1), save=False)  # load what a first call loads (scipy) before measuring
    gc.collect()
    before = rss()
    ref, cur = make_frames(rows, numeric, categorical)
    gc.collect()
    data = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    loaded = rss()
    times, peaks, exact = [], [], True
    for _ in range(REPEATS):
        with PeakRss() as peak:
            t = time.perf_counter()
            report = mlo.drift(ref, cur)
            times.append(time.perf_counter() - t)
        peaks.append(peak.peak)
        exact = exact and peak.exact
    out = {
        "seconds": statistics.median(times),
        "times": times,
        "data_bytes": data,
        "rss_before_load": before,  # interpreter, libraries, an empty workspace
        "rss_loaded": loaded,
        "peak_rss": max(peaks),
        "peak_from_kernel": exact,
        "n_columns": report.n_columns,
        "n_drifted": report.n_drifted,
    }
    print(json.dumps(out))


# -- Evidently (runs in its own environment) --------------------------------------------------------------------------
def evidently_child(paths: list[str], html_path: str) -> None:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)  # warm-up
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    snap.save_html(html_path)
    html_seconds = time.perf_counter() - t
    columns = {}
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if not cfg["type"].endswith("ValueDrift"):
            continue
        name, rule = EVIDENTLY_METHODS.get(cfg["method"], (cfg["method"], ">="))
        value, threshold = float(m["value"]), float(cfg["threshold"])
        drifted = (
            value <= threshold if rule == "p<=" else value < threshold if rule == "p<" else value >= threshold
        )
        columns[cfg["column"]] = {"method": name, "score": value, "drifted": drifted}
    import evidently

    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "seconds": statistics.median(times),
                "times": times,
                "html_seconds": html_seconds,
                "html_bytes": os.path.getsize(html_path),
                "columns": columns,
            }
        )
    )


def run_evidently(paths: tuple[Path, Path], folder: Path) -> dict | None:
    if not EVIDENTLY_PYTHON.exists():
        print(f"Evidently: {EVIDENTLY_PYTHON} not found; showing mlo's figures only")
        print(
            "  (python3 -m venv .venv-evidently && .venv-evidently/bin/pip install evidently==0.7.23 'pandas<3' pyarrow)"
        )
        return None
    cmd = [str(EVIDENTLY_PYTHON), __file__, "--evidently-child", str(paths[0]), str(paths[1])]
    cmd.append(str(folder / "evidently.html"))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EVIDENTLY_TIMEOUT, cwd=folder)
    except subprocess.TimeoutExpired:
        print(f"Evidently: no result within {EVIDENTLY_TIMEOUT} s")
        return None
    if proc.returncode != 0:
        print("Evidently: the run failed:\n" + proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_big(rows: int, numeric: int, categorical: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--big-child", str(rows), str(numeric), str(categorical)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report -----------------------------------------------------------------------------------------------------------
def agreement(ours: dict, theirs: dict) -> dict:
    common = [c for c in ours if c in theirs]
    flags = sum(ours[c]["drifted"] == theirs[c]["drifted"] for c in common)
    methods = sum(ours[c]["method"] == theirs[c]["method"] for c in common)
    diffs = []
    for c in common:
        a, b = ours[c]["score"], theirs[c]["score"]
        if ours[c]["method"] == theirs[c]["method"] and a == a and b == b:
            diffs.append(abs(a - b) / max(abs(b), 1e-300) if a != b else 0.0)
    return {
        "columns": len(common),
        "flags_agree": flags,
        "methods_agree": methods,
        "max_rel_score_diff": max(diffs) if diffs else None,
        "disagreeing": [c for c in common if ours[c]["drifted"] != theirs[c]["drifted"]],
    }


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--no-evidently", action="store_true", help="mlo only")
    p.add_argument("--no-big", action="store_true", help="skip the 1M × 50 run")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--evidently-child", nargs=3, metavar=("REF", "CUR", "HTML"), help=argparse.SUPPRESS)
    p.add_argument("--big-child", nargs=3, type=int, metavar=("ROWS", "NUM", "CAT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.evidently_child:
        evidently_child(a.evidently_child[:2], a.evidently_child[2])
        return 0
    if a.big_child:
        big_child(*a.big_child)
        return 0

    size = SIZES["quick" if a.quick else "full"]
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    with tempfile.TemporaryDirectory(prefix="mlo-drift-bench-") as tmp:
        folder = Path(tmp)
        rows = size["rows"]
        load = os.getloadavg()[0]
        results["load_before"] = load
        print(
            f"drift benchmark ({'quick' if a.quick else 'full'} sizes; {results['machine']}; load {load:.1f})"
        )
        paths = write_frames(folder, "main", rows, 20, 5)

        ours = mlo_main(paths, folder)
        results["mlo"] = ours
        print(f"\n{rows:,} rows × 25 columns (20 numeric, 5 categorical), median of {REPEATS}")
        print(
            f"  mlo        drift {ours['seconds']:.3f} s   html {ours['html_seconds'] * 1000:.0f} ms   "
            f"{mb(ours['html_bytes'])}   {ours['n_drifted']}/{ours['n_columns']} columns drifted"
        )

        theirs = None if a.no_evidently else run_evidently(paths, folder)
        if theirs is not None:
            results["evidently"] = theirs
            agree = agreement(ours["columns"], theirs["columns"])
            results["agreement"] = agree
            ratio = theirs["seconds"] / ours["seconds"]
            results["ratio"] = ratio
            n_ev = sum(c["drifted"] for c in theirs["columns"].values())
            print(
                f"  Evidently  drift {theirs['seconds']:.3f} s   html {theirs['html_seconds'] * 1000:.0f} ms   "
                f"{mb(theirs['html_bytes'])}   {n_ev}/{len(theirs['columns'])} columns drifted "
                f"(evidently {theirs['version']})"
            )
            print(
                f"  mlo is {ratio:.1f}× faster (target ≥ 15×); HTML {theirs['html_bytes'] / ours['html_bytes']:.0f}× "
                "smaller"
            )
            print(
                f"  agreement: drift flags {agree['flags_agree']}/{agree['columns']}, methods "
                f"{agree['methods_agree']}/{agree['columns']}, largest relative score difference "
                f"{agree['max_rel_score_diff']:.1e}"
                + (f"; differing: {agree['disagreeing']}" if agree["disagreeing"] else "")
            )
        print(
            f"  targets: ≤ 0.5 s → {'met' if ours['seconds'] <= 0.5 else 'MISSED'}; HTML ≤ 300 KB → "
            f"{'met' if ours['html_bytes'] <= 300_000 else 'MISSED'}"
        )

        if not a.no_big:
            big_rows = size["big_rows"]
            cols = size["big_numeric"] + size["big_categorical"]
            big = run_big(big_rows, size["big_numeric"], size["big_categorical"])
            results["big"] = big
            held = big["peak_rss"] - big["rss_before_load"]  # the data plus what drift needs on top
            print(
                f"\n{big_rows:,} rows × {cols} columns ({size['big_numeric']} numeric, {size['big_categorical']} "
                f"categorical) on each side, median of {REPEATS}, fresh process"
            )
            print(
                f"  mlo        drift {big['seconds']:.2f} s   data in memory {mb(big['data_bytes'])}   "
                f"peak RSS above the interpreter {mb(held)} = {held / big['data_bytes']:.2f}× the data "
                f"(working memory {mb(big['peak_rss'] - big['rss_loaded'])})"
            )
            print(
                f"  targets: ≤ 10 s → {'met' if big['seconds'] <= 10 else 'MISSED'}; peak ≤ 3× the data → "
                f"{'met' if held <= 3 * big['data_bytes'] else 'MISSED'}"
            )
    results["load_after"] = os.getloadavg()[0]
    print(f"\nload average {results['load_before']:.1f} before, {results['load_after']:.1f} after")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
