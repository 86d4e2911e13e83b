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
# the anchors' Python (with Evidently installed): MLO_ANCHOR_PYTHON, else .venv-evidently in the checkout
EVIDENTLY_PYTHON = Path(os.environ.get("MLO_ANCHOR_PYTHON") or ROOT / ".venv-evidently" / "bin" / "python")
EVIDENTLY_TIMEOUT = 900  # seconds
REPEATS = 3

SIZES = {
    "full": {
        "rows": 100_000,
        "big_rows": 1_000_000,
        "big_numeric": 40,
        "big_categorical": 10,
        "dask_rows": 100_000_000,
        "dask_partitions": 100,
        "dask_numeric": 8,
        "dask_cat": 2,
        "dask_check_rows": 2_000_000,
    },
    "quick": {
        "rows": 20_000,
        "big_rows": 200_000,
        "big_numeric": 40,
        "big_categorical": 10,
        "dask_rows": 4_000_000,
        "dask_partitions": 8,
        "dask_numeric": 8,
        "dask_cat": 2,
        "dask_check_rows": 1_000_000,
    },
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
CHANGES = [0.0, 0.02, 0.05, 0.1, 0.15, 0.3, 0.6]


def numeric_column(i: int, n: int, change: float, r):
    """Column ``i``'s shape: normal, log-normal, uniform, counts with ties, heavy tails (cycling)."""
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


def make_frames(rows: int, numeric: int, categorical: int, seed: int = 0):
    """Reference and current frames. Numeric columns cycle through shapes (normal, log-normal, uniform, counts with
    ties, heavy tails); some shift, scale or reshape in the current frame, some by amounts near the threshold.
    Categorical columns cycle through probability changes, a new category, a boolean and stable ones. Missing
    values occur at the same rate on both sides, so the drift flags compare distributions."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref, cur = {}, {}

    for i in range(numeric):
        change = CHANGES[i % len(CHANGES)] if i % 2 == 0 else 0.0
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


def make_side(rows: int, numeric: int, categorical: int, seed: int, current: bool):
    """One side of one partition of the Dask run, the same column shapes and changes as :func:`make_frames`
    (categoricals as pandas categories, cheap to build)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed * 2 + int(current))
    cols = {}
    for i in range(numeric):
        change = CHANGES[i % len(CHANGES)] if (i % 2 == 0 and current) else 0.0
        a = numeric_column(i, rows, change, rng)
        if i % 4 == 1:
            a[rng.random(rows) < 0.02] = np.nan
        cols[f"num_{i}"] = a
    levels = [f"level_{k}" for k in range(8)] + ["level_new"]
    base = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    for j in range(categorical):
        style = j % 5
        if style == 4:
            cols[f"cat_{j}"] = rng.random(rows) < (0.33 if current else 0.3)
            continue
        p = np.roll(base, 1) if (current and style == 0) else base
        codes = rng.choice(8, rows, p=p).astype(np.int8)
        if current and style == 1:
            codes[rng.random(rows) < 0.03] = 8
        cols[f"cat_{j}"] = pd.Categorical.from_codes(codes, levels)
    return pd.DataFrame(cols)


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

    interval = 0.002

    def _rss(self) -> int:
        return self.proc.memory_info().rss

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

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
    times, cpu, peaks, exact = [], [], [], True
    for _ in range(REPEATS):
        with PeakRss() as peak:
            t, c = time.perf_counter(), time.process_time()
            report = mlo.drift(ref, cur)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        peaks.append(peak.peak)
        exact = exact and peak.exact
    out = {
        "mlo": str(Path(mlo.__file__).parent),
        "seconds": statistics.median(times),
        "times": times,
        "cpu_seconds": statistics.median(cpu),
        "load": os.getloadavg()[0],
        "columns": {
            r.column: [r.method, r.statistic, r.p_value, bool(r.drifted)] for r in report.columns.itertuples()
        },
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
def evidently_child(paths: list[str], html_path: str, repeats: int = REPEATS) -> None:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    if repeats > 1:
        Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)  # warm-up
    times = []
    for _ in range(repeats):
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


def run_evidently(paths: tuple[Path, Path], folder: Path, repeats: int = REPEATS) -> dict | None:
    has = EVIDENTLY_PYTHON.exists() and (
        subprocess.run([str(EVIDENTLY_PYTHON), "-c", "import evidently"], capture_output=True).returncode == 0
    )
    if not has:
        print(
            "Evidently: no anchors' Python with Evidently (set MLO_ANCHOR_PYTHON); showing mlo's figures only"
        )
        print(
            "  (python3 -m venv .venv-evidently && .venv-evidently/bin/pip install evidently==0.7.23 'pandas<3' pyarrow)"
        )
        return None
    cmd = [str(EVIDENTLY_PYTHON), __file__, "--evidently-child", str(paths[0]), str(paths[1])]
    cmd += [str(folder / "evidently.html"), "--repeats", str(repeats)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EVIDENTLY_TIMEOUT, cwd=folder)
    except subprocess.TimeoutExpired:
        print(f"Evidently: no result within {EVIDENTLY_TIMEOUT} s")
        return None
    if proc.returncode != 0:
        print("Evidently: the run failed:\n" + proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_big(rows: int, numeric: int, categorical: int, src: Path | None = None) -> dict:
    """The big run in a fresh process; ``src`` (a checkout's ``src`` folder) runs another version of mlo."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, __file__, "--big-child", str(rows), str(numeric), str(categorical)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline_src(ref: str, folder: Path) -> Path | None:
    """``src/`` of the git revision ``ref``, extracted into ``folder`` (None when git cannot)."""
    out = folder / "baseline"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True)
    if archive.returncode != 0:
        print(f"baseline {ref}: git archive failed: {archive.stderr.decode()[-300:]}")
        return None
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


def same_results(a: dict, b: dict) -> tuple[int, int, float]:
    """Columns with the same method and drift flag, columns compared, largest relative statistic difference."""
    same, diff = 0, 0.0
    for col, (m, stat, _, flag) in a.items():
        m2, stat2, _, flag2 = b.get(col, [None, None, None, None])
        same += m == m2 and flag == flag2
        if stat is not None and stat2 is not None and stat == stat and stat2 == stat2:
            diff = max(diff, abs(stat - stat2) / max(abs(stat), 1e-300))
    return same, len(a), diff


# -- Dask: sketches per partition on a LocalCluster -------------------------------------------------------------------
class TreeRss(PeakRss):
    """Peak of the summed resident memory of this process and its children (the cluster's worker processes),
    sampled every 50 ms."""

    interval = 0.05

    def _rss(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # a worker that just ended
                pass
        return total

    def __enter__(self):
        self.base = self._rss()
        super().__enter__()
        self.exact = False  # the kernel's high-water mark is this process's alone
        self.peak = self.base
        return self


def tree_cpu(proc) -> float:
    """CPU seconds (user + system) of a process and its children so far."""
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except Exception:  # a worker that just ended
            pass
    return total


def dask_child(rows: int, partitions: int, numeric: int, categorical: int, check_rows: int) -> None:
    """In a fresh process: a 2-worker LocalCluster; both sides generated lazily, partition by partition, and
    compared through per-partition sketches; the peak memory of the process tree. First, on ``check_rows`` rows,
    the sketch-based report against the exact one on the same data (gathered into pandas)."""
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    from mlo.drift import sketch

    folder = Path(tempfile.mkdtemp(prefix="mlo-drift-dask-"))
    mlo = _workspace(folder)
    per = rows // partitions

    def sides(n_parts: int, n_rows: int):
        return [
            dd.from_map(
                make_side,
                [n_rows] * n_parts,
                [numeric] * n_parts,
                [categorical] * n_parts,
                list(range(n_parts)),
                [current] * n_parts,
            )
            for current in (False, True)
        ]

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", memory_limit="6GB"
    )
    with cluster, Client(cluster):
        check_parts = max(check_rows // per, 2)
        small = sides(check_parts, check_rows // check_parts)
        sketched = mlo.drift(*small, save=False)
        exact = mlo.drift(*(s.compute() for s in small), save=False)
        worst, agree = 0.0, 0
        for a, b in zip(sketched.results, exact.results, strict=True):
            agree += a.drifted == b.drifted
            if b.statistic == b.statistic:
                bound = a.error_bound if a.error_bound == a.error_bound else 0.0
                worst = max(worst, abs(a.statistic - b.statistic) - bound)
        with TreeRss() as mem:
            cpu = tree_cpu(mem.proc)
            t = time.perf_counter()
            report = mlo.drift(*sides(partitions, per))
            seconds = time.perf_counter() - t
            cpu = tree_cpu(mem.proc) - cpu
    # one partition in this process: what generating it costs, and what sketching it costs
    c = time.process_time()
    part = make_side(per, numeric, categorical, 0, False)
    gen_cpu = time.process_time() - c
    c = time.process_time()
    sketch(part, center="mean")
    sketch_cpu = time.process_time() - c
    bounds = [r.error_bound for r in report.results if r.error_bound == r.error_bound]
    out = {
        "rows": per * partitions,
        "partitions": partitions,
        "columns": numeric + categorical,
        "seconds": seconds,
        "cpu_seconds": cpu,  # this process and the workers
        "partition_generate_cpu": gen_cpu,
        "partition_sketch_cpu": sketch_cpu,
        "rows_per_second": 2 * per * partitions / seconds,
        "peak_tree_rss": mem.peak,
        "base_tree_rss": mem.base,
        "data_bytes_per_side": int(
            make_side(1000, numeric, categorical, 0, False).memory_usage(deep=True).sum()
            * per
            * partitions
            / 1000
        ),
        "n_drifted": report.n_drifted,
        "drifted": report.drifted_columns,
        "max_bound": max(bounds) if bounds else None,
        "check_rows": check_parts * (check_rows // check_parts),
        "check_flags_agree": agree,
        "check_columns": len(exact.results),
        "check_worst_excess": worst,  # ≤ 0: every sketched statistic within its bound of the exact one
        "load": os.getloadavg()[0],
    }
    print(json.dumps(out))


def run_dask(rows: int, partitions: int, numeric: int, categorical: int, check_rows: int) -> dict:
    args = [str(x) for x in (rows, partitions, numeric, categorical, check_rows)]
    proc = subprocess.run(
        [sys.executable, __file__, "--dask-child", *args], capture_output=True, text=True, timeout=3600
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
    p.add_argument("--no-dask", action="store_true", help="skip the Dask run")
    p.add_argument("--only", choices=["main", "big", "dask"], help="run only this part")
    p.add_argument("--baseline", default="main", help="git revision whose mlo runs the 1M × 50 side by side")
    p.add_argument("--evidently-big", action="store_true", help="also one Evidently run on the 1M × 50 data")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--evidently-child", nargs=3, metavar=("REF", "CUR", "HTML"), help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=REPEATS, help=argparse.SUPPRESS)
    p.add_argument("--big-child", nargs=3, type=int, metavar=("ROWS", "NUM", "CAT"), help=argparse.SUPPRESS)
    p.add_argument("--dask-child", nargs=5, type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.evidently_child:
        evidently_child(a.evidently_child[:2], a.evidently_child[2], a.repeats)
        return 0
    if a.big_child:
        big_child(*a.big_child)
        return 0
    if a.dask_child:
        dask_child(*a.dask_child)
        return 0

    size = SIZES["quick" if a.quick else "full"]
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    with tempfile.TemporaryDirectory(prefix="mlo-drift-bench-") as tmp:
        folder = Path(tmp)
        load = os.getloadavg()[0]
        results["load_before"] = load
        print(
            f"drift benchmark ({'quick' if a.quick else 'full'} sizes; {results['machine']}; load {load:.1f})"
        )
        if a.only in (None, "main"):
            main_part(a, size, folder, results)
        if a.only == "big" or (a.only is None and not a.no_big):
            big_part(a, size, folder, results)
        if a.only == "dask" or (a.only is None and not a.no_dask):
            dask_part(size, results)
    results["load_after"] = os.getloadavg()[0]
    print(f"\nload average {results['load_before']:.1f} before, {results['load_after']:.1f} after")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def main_part(a, size: dict, folder: Path, results: dict) -> None:
    rows = size["rows"]
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


def big_part(a, size: dict, folder: Path, results: dict) -> None:
    big_rows, num, cat = size["big_rows"], size["big_numeric"], size["big_categorical"]
    print(
        f"\n{big_rows:,} rows × {num + cat} columns ({num} numeric, {cat} categorical) on each side, median of "
        f"{REPEATS}, each version in a fresh process, side by side"
    )
    src = baseline_src(a.baseline, folder)
    runs = [("this checkout", None)] + ([(f"baseline {a.baseline}", src)] if src is not None else [])
    for label, where in runs:
        big = run_big(big_rows, num, cat, where)
        results["big" if where is None else "big_baseline"] = big
        held = big["peak_rss"] - big["rss_before_load"]  # the data plus what drift needs on top
        print(
            f"  {label:<16} drift {big['seconds']:.2f} s (runs {', '.join(f'{t:.2f}' for t in big['times'])}; "
            f"CPU {big['cpu_seconds']:.2f} s; load {big['load']:.1f})   peak RSS above the interpreter "
            f"{mb(held)} = {held / big['data_bytes']:.2f}× the data {mb(big['data_bytes'])} (working memory "
            f"{mb(big['peak_rss'] - big['rss_loaded'])})"
        )
    big = results["big"]
    if "big_baseline" in results:
        base = results["big_baseline"]
        same, n, diff = same_results(base["columns"], big["columns"])
        print(
            f"  {base['seconds'] / big['seconds']:.2f}× the baseline's speed (CPU "
            f"{base['cpu_seconds'] / big['cpu_seconds']:.2f}×); methods and flags equal in {same}/{n} columns, "
            f"largest relative statistic difference {diff:.1e}"
        )
    print(f"  target: ≤ 3 s → {'met' if big['seconds'] <= 3 else 'MISSED'}")
    if a.evidently_big and not a.no_evidently:
        paths = write_frames(folder, "big", big_rows, num, cat)
        theirs = run_evidently(paths, folder, repeats=1)
        if theirs is not None:
            results["evidently_big"] = theirs
            print(
                f"  Evidently {theirs['version']} one run: {theirs['seconds']:.1f} s = "
                f"{theirs['seconds'] / big['seconds']:.0f}× mlo's median"
            )


def dask_part(size: dict, results: dict) -> None:
    rows, parts, num, cat = size["dask_rows"], size["dask_partitions"], size["dask_numeric"], size["dask_cat"]
    print(
        f"\nDask: {rows:,} rows × {num + cat} columns ({num} numeric, {cat} categorical) a side in {parts} "
        "partitions each, generated lazily on a LocalCluster of 2 worker processes (1 thread each)"
    )
    d = run_dask(rows, parts, num, cat, size["dask_check_rows"])
    results["dask"] = d
    print(
        f"  mlo.drift on sketches: {d['seconds']:.1f} s ({d['rows_per_second'] / 1e6:.1f} M rows/s, generation "
        f"included; load {d['load']:.1f})   peak memory of the process tree {mb(d['peak_tree_rss'])} "
        f"({mb(d['peak_tree_rss'] - d['base_tree_rss'])} above idle) for {mb(2 * d['data_bytes_per_side'])} of data"
    )
    print(
        f"  CPU {d['cpu_seconds']:.0f} s in all (workers and client); one {d['rows'] // d['partitions']:,}-row "
        f"partition costs {d['partition_generate_cpu']:.2f} s CPU to generate and {d['partition_sketch_cpu']:.2f} s "
        "to sketch"
    )
    print(
        f"  {d['n_drifted']}/{d['columns']} columns drifted ({', '.join(d['drifted'])}); largest error bound "
        f"{d['max_bound']:.2g}"
    )
    print(
        f"  check on {d['check_rows']:,} rows against the exact report: flags {d['check_flags_agree']}/"
        f"{d['check_columns']} equal; every statistic within its bound: "
        + ("yes" if d["check_worst_excess"] <= 1e-12 else f"NO (by {d['check_worst_excess']:.2g})")
    )


if __name__ == "__main__":
    sys.exit(main())
