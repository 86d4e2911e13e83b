"""Tracking speed of mlo, side by side with MLflow.

What it measures (each side in its own fresh temporary folder with a SQLite store):

1. ``log_metric`` per call, buffered, in an active run (µs per call, periodic auto-flushes included).
2. Flush throughput: points/s of ``mlo.flush()`` writing a large buffer, and of log + flush end to end.
   MLflow: ``MlflowClient.log_batch`` in batches of 1000 metrics (its maximum).
3. Run creation: start a run with 10 params + 10 metrics and end it (ms per run), and ``start_run`` alone.
4. Listing: ``mlo.runs()`` over 10,000 runs of one experiment (10 params + 10 metrics each): all columns, a
   two-column projection and a ``where`` filter. MLflow: ``mlflow.search_runs`` over 300 runs.
5. ``%mlo`` cell capture: the per-cell cost of recording cells while a run is active, in a real IPython shell,
   and a ``%%mlo run`` cell against a plain cell with the same body. No MLflow counterpart.

MLflow is much slower per operation, so its workloads are scaled down and compared per unit (per call, per
point, per run); the table says which sizes were used. MLflow is never imported by mlo: when
``.venv-anchors/bin/python`` exists and can import mlflow, this script runs itself there with ``--mlflow-child``
and reads the figures back.

Run from the repository root:

    .venv/bin/python benchmarks/tracking.py            # full sizes, about 2-3 minutes on 2 cores
    .venv/bin/python benchmarks/tracking.py --quick    # smaller sizes, well under a minute
    .venv/bin/python benchmarks/tracking.py --json out.json --no-mlflow

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
MLFLOW_TIMEOUT = 240  # seconds

SIZES = {
    "full": {
        "log_metric_calls": 1_000_000,
        "log_metric_repeats": 3,
        "flush_points": 2_000_000,
        "flush_keys": 10,
        "create_runs": 200,
        "list_runs": 10_000,
        "list_repeats": 3,
        "cells": 500,
        "mlo_run_cells": 100,
        "mlflow_log_metric_calls": 300,
        "mlflow_batch_points": 50_000,
        "mlflow_create_runs": 50,
        "mlflow_list_runs": 300,
    },
    "quick": {
        "log_metric_calls": 200_000,
        "log_metric_repeats": 3,
        "flush_points": 400_000,
        "flush_keys": 10,
        "create_runs": 50,
        "list_runs": 1_000,
        "list_repeats": 3,
        "cells": 100,
        "mlo_run_cells": 20,
        "mlflow_log_metric_calls": 60,
        "mlflow_batch_points": 10_000,
        "mlflow_create_runs": 15,
        "mlflow_list_runs": 60,
    },
}

WHERE = "metrics.m0 > 0.5 and params.p1 = 'x'"
PROJECTION = ["metrics.m0", "params.p0"]

now = time.perf_counter


# -- shared helpers ----------------------------------------------------------------------------------------------
def median_of(fn, repeats: int) -> float:
    """Median wall time (s) of ``fn()`` over ``repeats`` calls."""
    return medians_of(fn, repeats)[0]


def medians_of(fn, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (s) of ``fn()`` over ``repeats`` calls. On a shared
    machine the wall time grows with the load; the CPU time much less."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = now(), time.process_time()
        fn()
        times.append(now() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu)


def load_average() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def summary(samples: list[float]) -> dict:
    """Median, mean and 90th percentile of per-item times, in milliseconds."""
    s = sorted(samples)
    return {
        "median_ms": statistics.median(s) * 1e3,
        "mean_ms": statistics.fmean(s) * 1e3,
        "p90_ms": s[int(0.9 * (len(s) - 1))] * 1e3,
        "n": len(s),
    }


def run_params(i: int, rng: random.Random) -> dict:
    """10 params of mixed types; ``p1`` is 'x' or 'y' so that the ``where`` filter selects a known subset."""
    return {
        "p0": i,
        "p1": rng.choice("xy"),
        "p2": round(rng.random(), 6),
        "p3": "adam",
        "p4": 32,
        "p5": rng.choice(["relu", "gelu"]),
        "p6": 1e-3,
        "p7": True,
        "p8": "resnet18",
        "p9": i % 7,
    }


def run_metrics(rng: random.Random) -> dict:
    return {f"m{j}": rng.random() for j in range(10)}


def expected_matches(runs: list[tuple[dict, dict]]) -> int:
    return sum(1 for p, m in runs if m["m0"] > 0.5 and p["p1"] == "x")


def quiet():
    """Swallow stdout (magics print a line per run)."""
    return contextlib.redirect_stdout(io.StringIO())


# -- mlo ---------------------------------------------------------------------------------------------------------
def mlo_log_metric(mlo, sizes: dict) -> dict:
    n, repeats = sizes["log_metric_calls"], sizes["log_metric_repeats"]
    log_metric = mlo.log_metric
    with mlo.start_run("log-metric", experiment="bench-metrics"):
        for i in range(1000):  # warm-up: first-key checks, allocator
            log_metric("warm", float(i), step=i)
        times = []
        for r in range(repeats):
            base = r * n
            t0 = now()
            for i in range(base, base + n):
                log_metric("loss", float(i), step=i)
            times.append(now() - t0)
        mlo.flush()
    per_call = statistics.median(times) / n
    return {"us_per_call": per_call * 1e6, "calls": n, "repeats": repeats}


def _metric_buffer(mlo, run):
    """The run's metric buffer (internal), to hold a whole workload in one flush. None if the layout changed."""
    try:
        from mlo.tracking import session

        buf = session._state.writers[run.id].metrics
        buf.max_points, buf.max_seconds, buf.pending  # noqa: B018  (the attributes this script relies on)
    except (ImportError, AttributeError, KeyError):
        return None
    return buf


def _log_points(log_metric, points: int, keys: list[str]) -> None:
    k = len(keys)
    for i in range(points):
        log_metric(keys[i % k], float(i), step=i // k)


def _stored_points(run, keys: list[str]) -> int:
    return sum(len(run.history(key)) for key in keys)


def mlo_flush(mlo, sizes: dict) -> dict:
    points, keys = sizes["flush_points"], [f"k{j}" for j in range(sizes["flush_keys"])]
    out: dict = {"points": points, "keys": len(keys)}

    # flush alone: keep every point in the buffer, then time one flush of all of them
    with mlo.start_run("flush-alone", experiment="bench-metrics") as run:
        buf = _metric_buffer(mlo, run)
        if buf is not None:
            buf.max_points, buf.max_seconds = float("inf"), float("inf")
        t0 = now()
        _log_points(mlo.log_metric, points, keys)
        logged = now() - t0
        pending = buf.pending if buf is not None else None  # unknown: auto-flushes ran while logging
        t0 = now()
        mlo.flush()
        flushed = now() - t0
    out.update(
        flush_points=pending,
        flush_s=flushed,
        flush_points_per_s=pending / flushed if pending else None,
        buffered_log_points_per_s=points / logged,
        unbounded_end_to_end_points_per_s=points / (logged + flushed),
    )
    out["flush_alone_stored"] = _stored_points(run, keys)

    # end to end with the default buffer (auto-flushes as it fills), as a training loop sees it
    with mlo.start_run("flush-sustained", experiment="bench-metrics") as run:
        t0 = now()
        _log_points(mlo.log_metric, points, keys)
        mlo.flush()
        total = now() - t0
    out.update(end_to_end_s=total, end_to_end_points_per_s=points / total)
    out["end_to_end_stored"] = _stored_points(run, keys)
    return out


def _create_runs(mlo, n: int, experiment: str, rng: random.Random, prefix: str) -> tuple[list, list, list]:
    """Create ``n`` runs with 10 params + 10 metrics; return per-run (start, total) times and what was logged."""
    starts, totals, logged = [], [], []
    for i in range(n):
        params, metrics = run_params(i, rng), run_metrics(rng)
        t0 = now()
        with mlo.start_run(f"{prefix}{i}", experiment=experiment, params=params):
            t1 = now()
            mlo.log_metrics(metrics)
        t2 = now()
        starts.append(t1 - t0)
        totals.append(t2 - t0)
        logged.append((params, metrics))
    return starts, totals, logged


def mlo_create(mlo, sizes: dict) -> dict:
    rng = random.Random(1)
    _create_runs(mlo, 5, "bench-warm", rng, "w")  # warm-up: experiment row, statement caches, capture thread
    starts, totals, _ = _create_runs(mlo, sizes["create_runs"], "bench", rng, "r")
    return {"run": summary(totals), "start_run": summary(starts)}


def mlo_list(mlo, sizes: dict) -> dict:
    n, repeats = sizes["list_runs"], sizes["list_repeats"]
    rng = random.Random(2)
    t0 = now()
    _, totals, logged = _create_runs(mlo, n, "bench-list", rng, "l")
    build = now() - t0
    out: dict = {"runs": n, "build_s": build, "build": summary(totals)}

    cases = {
        "all": dict(experiment="bench-list"),
        "projection": dict(experiment="bench-list", columns=PROJECTION),
        "where": dict(experiment="bench-list", where=WHERE),
    }
    for label, kwargs in cases.items():
        frame = mlo.runs(**kwargs)  # warm-up, and the frame to check
        wall, cpu = medians_of(lambda kw=kwargs: mlo.runs(**kw), repeats)
        out[f"{label}_ms"], out[f"{label}_cpu_ms"] = wall * 1e3, cpu * 1e3
        out[f"{label}_rows"] = len(frame)
        out[f"{label}_cols"] = frame.shape[1]
    out["where_expected_rows"] = expected_matches(logged)
    out["all_us_per_run"] = out["all_ms"] * 1e3 / n
    out["where_us_per_run"] = out["where_ms"] * 1e3 / n
    return out


def _time_cells(ip, source: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = now()
        result = ip.run_cell(source, store_history=True)
        times.append(now() - t0)
        if not result.success:
            raise RuntimeError(f"cell failed: {source!r}: {result.error_in_exec or result.error_before_exec}")
    return times


def mlo_cells(mlo, sizes: dict) -> dict:
    from IPython.testing.globalipapp import start_ipython

    n, n_run = sizes["cells"], sizes["mlo_run_cells"]
    ip = start_ipython()
    with quiet():
        ip.run_cell("%load_ext mlo")
        _time_cells(ip, "x = 1", 20)  # warm-up
        plain = _time_cells(ip, "x = 1", n)
        ip.run_cell("%mlo start cell-capture --experiment bench-cells")
        captured = _time_cells(ip, "x = 1", n)
        run = mlo.active_run()
        ip.run_cell("%mlo end")
        recorded = len(run.cells)
        plain_again = _time_cells(ip, "x = 1", n_run)
        mlo_run = []
        for i in range(n_run):
            mlo_run += _time_cells(ip, f"%%mlo run cell-{i} --experiment bench-cells\nx = 1", 1)
    plain_s, captured_s = summary(plain), summary(captured)
    return {
        "plain": plain_s,
        "captured": captured_s,
        "overhead_ms": captured_s["median_ms"] - plain_s["median_ms"],
        "overhead_mean_ms": captured_s["mean_ms"] - plain_s["mean_ms"],
        "cells_recorded": recorded,
        "cells_run": n,
        "mlo_run_cell": summary(mlo_run),
        "plain_cell": summary(plain_again),
        "mlo_run_extra_ms": summary(mlo_run)["median_ms"] - summary(plain_again)["median_ms"],
    }


def run_mlo(sizes: dict, tmp: Path) -> dict:
    os.environ["MLO_HOME"] = str(tmp / ".mlo")
    t0 = now()
    import mlo

    mlo.init(tmp)
    out = {"import_init_s": now() - t0}
    steps = [
        ("log_metric", mlo_log_metric),
        ("flush", mlo_flush),
        ("create", mlo_create),
        ("list", mlo_list),
        ("cells", mlo_cells),
    ]
    for name, fn in steps:
        t0 = now()
        out[name] = fn(mlo, sizes)
        print(f"  mlo {name:<10} done in {now() - t0:5.1f} s", file=sys.stderr, flush=True)
    return out


def close_mlo() -> None:
    """Let the background git/environment captures finish, then close the store before its folder goes away."""
    from mlo import workspace
    from mlo.tracking import session

    for job in list(getattr(session._state, "captures", {}).values()):
        with contextlib.suppress(Exception):
            job.result(timeout=30)
    workspace.reset_cache()


# -- MLflow (runs in the .venv-anchors interpreter) ----------------------------------------------------------------
def mlflow_log_metric(mlflow, sizes: dict) -> dict:
    n, repeats = sizes["mlflow_log_metric_calls"], 3
    per = max(n // repeats, 1)
    with mlflow.start_run():
        for i in range(5):
            mlflow.log_metric("warm", float(i), step=i)
        times = []
        for r in range(repeats):
            t0 = now()
            for i in range(r * per, (r + 1) * per):
                mlflow.log_metric("loss", float(i), step=i)
            times.append(now() - t0)
    return {"us_per_call": statistics.median(times) / per * 1e6, "calls": per * repeats, "repeats": repeats}


def mlflow_batch(mlflow, sizes: dict) -> dict:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client, points, keys = MlflowClient(), sizes["mlflow_batch_points"], [f"k{j}" for j in range(10)]
    with mlflow.start_run() as run:
        ts = int(time.time() * 1000)
        batches = [
            [Metric(keys[i % 10], float(i), ts, i // 10) for i in range(b, min(b + 1000, points))]
            for b in range(0, points, 1000)
        ]
        t0 = now()
        for batch in batches:
            client.log_batch(run.info.run_id, metrics=batch)
        total = now() - t0
    return {"points": points, "s": total, "points_per_s": points / total}


def _mlflow_create_runs(mlflow, n: int, rng: random.Random) -> tuple[list, list, list]:
    starts, totals, logged = [], [], []
    for i in range(n):
        params, metrics = run_params(i, rng), run_metrics(rng)
        t0 = now()
        with mlflow.start_run(run_name=f"r{i}"):
            t1 = now()
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
        t2 = now()
        starts.append(t1 - t0)
        totals.append(t2 - t0)
        logged.append((params, metrics))
    return starts, totals, logged


def mlflow_create(mlflow, sizes: dict) -> dict:
    rng = random.Random(1)
    _mlflow_create_runs(mlflow, 3, rng)
    starts, totals, _ = _mlflow_create_runs(mlflow, sizes["mlflow_create_runs"], rng)
    return {"run": summary(totals), "start_run": summary(starts)}


def mlflow_list(mlflow, sizes: dict, artifacts: str) -> dict:
    n = sizes["mlflow_list_runs"]
    exp_id = mlflow.create_experiment("bench-list", artifact_location=artifacts)
    mlflow.set_experiment(experiment_id=exp_id)
    t0 = now()
    _, totals, logged = _mlflow_create_runs(mlflow, n, random.Random(2))
    out: dict = {"runs": n, "build_s": now() - t0, "build": summary(totals)}
    for label, kwargs in {"all": {}, "where": {"filter_string": WHERE}}.items():
        frame = mlflow.search_runs(experiment_ids=[exp_id], max_results=100_000, **kwargs)
        out[f"{label}_ms"] = (
            median_of(
                lambda kw=kwargs: mlflow.search_runs(experiment_ids=[exp_id], max_results=100_000, **kw), 3
            )
            * 1e3
        )
        out[f"{label}_rows"] = len(frame)
    out["where_expected_rows"] = expected_matches(logged)
    out["all_us_per_run"] = out["all_ms"] * 1e3 / n
    out["where_us_per_run"] = out["where_ms"] * 1e3 / n
    return out


def run_mlflow(sizes: dict, tmp: Path) -> dict:
    os.chdir(tmp)  # MLflow's default artifact root is relative to the working folder
    t0 = now()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    artifacts = (tmp / "artifacts").as_uri()
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifact_location=artifacts))
    out = {"version": mlflow.__version__, "import_init_s": now() - t0}
    out["log_metric"] = mlflow_log_metric(mlflow, sizes)
    out["batch"] = mlflow_batch(mlflow, sizes)
    out["create"] = mlflow_create(mlflow, sizes)
    out["list"] = mlflow_list(mlflow, sizes, artifacts)
    return out


def mlflow_in_subprocess(mode: str) -> tuple[dict | None, str]:
    """Run the MLflow side in the anchor interpreter; (figures, "") or (None, why not)."""
    if not ANCHOR_PYTHON.exists():
        return None, f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
    with tempfile.TemporaryDirectory(prefix="mlo-bench-mlflow-") as tmp:
        out_file = Path(tmp) / "figures.json"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        env.pop("MLO_HOME", None)
        cmd = [
            str(ANCHOR_PYTHON),
            str(Path(__file__).resolve()),
            "--mlflow-child",
            str(out_file),
            "--mode",
            mode,
        ]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=MLFLOW_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, f"MLflow side took longer than {MLFLOW_TIMEOUT} s"
        if proc.returncode == 3:
            return None, "mlflow is not importable in .venv-anchors"
        if proc.returncode != 0 or not out_file.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            return None, f"MLflow side failed (exit {proc.returncode}):\n{tail}"
        return json.loads(out_file.read_text()), ""


def mlflow_child(out_file: str, mode: str) -> int:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return 3
    with tempfile.TemporaryDirectory(prefix="mlo-bench-mlflow-store-") as tmp:
        figures = run_mlflow(SIZES[mode], Path(tmp))
        os.chdir(ROOT)
    Path(out_file).write_text(json.dumps(figures))
    return 0


# -- report ------------------------------------------------------------------------------------------------------
def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "pts/s":
        return f"{value / 1e6:.2f}M pts/s" if value >= 1e6 else f"{value / 1e3:.1f}k pts/s"
    if unit == "µs":
        return f"{value:.2f} µs" if value < 10 else f"{value:,.0f} µs"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def row(label, mlo_v, mlflow_v, unit, target=None, higher_is_better=False, ratio=None) -> list[str]:
    """One table row; ``ratio`` is how many times faster mlo is (computed from per-unit figures if not given)."""
    if ratio is None and mlo_v and mlflow_v:
        ratio = mlo_v / mlflow_v if higher_is_better else mlflow_v / mlo_v
    goal = "—"
    if target is not None and mlo_v is not None:
        ok = mlo_v >= target if higher_is_better else mlo_v <= target
        goal = f"{'≥' if higher_is_better else '≤'} {fmt(target, unit)} {'ok' if ok else 'MISSED'}"
    return [label, fmt(mlo_v, unit), fmt(mlflow_v, unit), f"{ratio:.1f}x" if ratio else "—", goal]


def table_rows(m: dict, f: dict | None) -> list[list[str]]:
    def fv(*path):
        if f is None:
            return None
        node = f
        for key in path:
            node = node[key]
        return node

    lm, fl, cr, li, ce = m["log_metric"], m["flush"], m["create"], m["list"], m["cells"]

    def per_run_ratio(key):  # the two sides list different numbers of runs: compare time per run
        return fv("list", key) / li[key] if f else None

    vs = f" (MLflow: {fv('list', 'runs')})" if f else ""
    return [
        row(
            "log_metric, per call (buffered)",
            lm["us_per_call"],
            fv("log_metric", "us_per_call"),
            "µs",
            target=10,
        ),
        row(
            "flush alone (MLflow: log_batch ×1000)",
            fl["flush_points_per_s"],
            fv("batch", "points_per_s"),
            "pts/s",
            target=1e6,
            higher_is_better=True,
        ),
        row(
            "log + flush, end to end",
            fl["end_to_end_points_per_s"],
            fv("batch", "points_per_s"),
            "pts/s",
            higher_is_better=True,
        ),
        row(
            "run: start + 10 params + 10 metrics + end",
            cr["run"]["median_ms"],
            fv("create", "run", "median_ms"),
            "ms",
            target=3,
        ),
        row("start_run alone", cr["start_run"]["median_ms"], fv("create", "start_run", "median_ms"), "ms"),
        row(
            f"run creation while building {li['runs']:,} runs",
            li["build"]["median_ms"],
            fv("list", "build", "median_ms"),
            "ms",
        ),
        row(
            f"runs(): {li['runs']:,} runs, all columns{vs}",
            li["all_ms"],
            fv("list", "all_ms"),
            "ms",
            target=300,
            ratio=per_run_ratio("all_us_per_run"),
        ),
        row("runs(): 2-column projection", li["projection_ms"], None, "ms"),
        row(
            f"runs(): where filter{vs}",
            li["where_ms"],
            fv("list", "where_ms"),
            "ms",
            ratio=per_run_ratio("where_us_per_run"),
        ),
        row("runs(): all columns, per run", li["all_us_per_run"], fv("list", "all_us_per_run"), "µs"),
        row("cell capture overhead, per cell", ce["overhead_ms"], None, "ms", target=5),
        row("%%mlo run cell minus plain cell", ce["mlo_run_extra_ms"], None, "ms"),
    ]


def print_table(rows: list[list[str]]) -> None:
    header = ["metric", "mlo", "MLflow", "ratio (x faster)", "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def print_details(m: dict, f: dict | None, sizes: dict, why_no_mlflow: str) -> None:
    lm, fl, li, ce = m["log_metric"], m["flush"], m["list"], m["cells"]
    flushed = f"{fl['flush_points']:,}" if fl["flush_points"] else "the last (buffer internals changed)"
    print()
    print(
        f"mlo: log_metric median of {lm['repeats']} × {lm['calls']:,} calls (auto-flushes included); "
        f"flush of {flushed} buffered points over {fl['keys']} keys took {fl['flush_s']:.2f} s; "
        f"buffering alone {fl['buffered_log_points_per_s'] / 1e6:.2f}M pts/s; end to end "
        f"{fl['end_to_end_s']:.2f} s for {fl['points']:,} points."
    )
    print(
        f"mlo: points stored: {fl['flush_alone_stored']:,} (flush alone), {fl['end_to_end_stored']:,} (end to end) "
        f"of {fl['points']:,} each."
    )
    print(
        f"mlo: run times are per-run medians (mean {m['create']['run']['mean_ms']:.2f} ms, p90 "
        f"{m['create']['run']['p90_ms']:.2f} ms over {m['create']['run']['n']} runs); building {li['runs']:,} runs "
        f"took {li['build_s']:.1f} s (mean {li['build']['mean_ms']:.2f} ms/run)."
    )
    print(
        f"mlo: runs() rows/cols: all {li['all_rows']}×{li['all_cols']}, projection "
        f"{li['projection_rows']}×{li['projection_cols']}, where {li['where_rows']} rows "
        f"(expected {li['where_expected_rows']}); medians of {sizes['list_repeats']}; CPU time of the process "
        f"(wall time well above it means a busy machine): all {li['all_cpu_ms']:.0f} ms, projection "
        f"{li['projection_cpu_ms']:.0f} ms, where {li['where_cpu_ms']:.0f} ms."
    )
    print(
        f"mlo: cells: plain {ce['plain']['median_ms']:.2f} ms, with a run active {ce['captured']['median_ms']:.2f} ms "
        f"(medians of {ce['cells_run']}; mean overhead {ce['overhead_mean_ms']:.2f} ms); "
        f"{ce['cells_recorded']} cells recorded; %%mlo run cell {ce['mlo_run_cell']['median_ms']:.2f} ms vs "
        f"plain {ce['plain_cell']['median_ms']:.2f} ms (medians of {ce['mlo_run_cell']['n']})."
    )
    if f is None:
        print(f"MLflow: not measured ({why_no_mlflow}).")
        return
    print(
        f"MLflow {f['version']} (scaled down, compared per unit): log_metric over {f['log_metric']['calls']} calls; "
        f"log_batch {f['batch']['points']:,} points; {f['create']['run']['n']} runs created "
        f"(mean {f['create']['run']['mean_ms']:.1f} ms); search_runs over {f['list']['runs']} runs "
        f"(rows {f['list']['all_rows']}, where {f['list']['where_rows']} of expected "
        f"{f['list']['where_expected_rows']}). runs()/search_runs ratios compare time per listed run."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Tracking speed of mlo (and MLflow for comparison).")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (well under a minute)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--mlflow-child", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", choices=list(SIZES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mlflow_child:
        return mlflow_child(args.mlflow_child, args.mode)

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    started = now()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="mlo-bench-") as tmp:
        figures = run_mlo(sizes, Path(tmp))
        close_mlo()
    if not args.no_mlflow:
        print("  MLflow side running…", file=sys.stderr, flush=True)
    mlflow_figures, why = (None, "--no-mlflow") if args.no_mlflow else mlflow_in_subprocess(mode)
    if mlflow_figures is None:
        print(f"MLflow side skipped: {why}", file=sys.stderr)

    print(
        f"\nmlo tracking benchmark ({mode} sizes; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"SQLite stores in fresh temporary folders; load average {load_before} at the start, {load_average()} "
        f"at the end)\n"
    )
    print_table(table_rows(figures, mlflow_figures))
    print_details(figures, mlflow_figures, sizes, why)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        report = {
            "mode": mode,
            "sizes": sizes,
            "machine": {
                "load_average_start": load_before,
                "load_average_end": load_average(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "mlo": figures,
            "mlflow": mlflow_figures,
            "mlflow_skipped": why or None,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
