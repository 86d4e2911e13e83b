"""Speed of ``mlo monitor`` over a large prediction log, side by side with Evidently on the same windows.

The workload (fixed seed), in a temporary workspace (``MLO_HOME``):

- a training frame of 50,000 rows × 10 features (8 normal floats ``x0…x7``, a 3-category string ``cat``, a
  Poisson count ``cnt``) and a binary label; a scikit-learn pipeline (one-hot encoding of ``cat``, then
  LogisticRegression) fit on it inside ``mlo.start_run``, the frame recorded there with
  ``mlo.snapshot(train, "train", role="input")``, the model registered as ``bench@production``;
- 1,000,000 predictions with their labels over 24 hours, logged by ``mlo.monitor.log("bench@production", …)``
  in one batch per hour; in the last 6 hours ``x0``, ``x1`` and ``x2`` shift by 0.5 standard deviations.

What it measures:

1. In a fresh process: ``mlo.monitor.report("bench", window="1h")`` — the first call (cold) and the median of 3
   warm calls; the same with ``window="50000 rows"``; ``mlo.monitor.read_log("bench")`` alone (median of 3) and
   so the rest of the report; where one warm call spends its time (the functions ``report`` calls, wrapped);
   the peak resident memory during the cold call. The report must flag input drift in exactly the last 6 hourly
   windows: the script prints how many it flagged and a MISMATCH line when they are not those.
2. The command line, ``mlo monitor bench --window 1h --no-save``, as a subprocess: wall time including the
   interpreter's start (the figure of the target, ≤ 5 s), 3 runs, and the process's peak RSS (``wait4``).
3. Evidently 0.7.23, when ``.venv-evidently/bin/python`` exists: this script runs itself there
   (``--evidently-child``) on the same 24 windows and the same 50,000-row training frame, written to Parquet.
   Per window: ``Report([DataDriftPreset(columns=<10 features> + ["prediction"]), Accuracy()])`` on a
   ``Dataset`` with a binary-classification definition (target = the label, prediction labels = the model's
   prediction); the reference ``Dataset`` is built once. Only the Evidently calls are timed (not the Parquet
   reads); one untimed warm-up run first. When the windows would take more than about 3 minutes, a subset
   (alternately from the start and the end of the day) is timed and the total extrapolated, as the output says.

Run from the repository root:

    .venv/bin/python benchmarks/monitor.py                  # 1M predictions, 2-3 minutes on 2 cores with Evidently
    .venv/bin/python benchmarks/monitor.py --quick          # 100,000 predictions, 1.5-3 minutes (Evidently's share
                                                            # hardly shrinks: its reference side is the same)
    .venv/bin/python benchmarks/monitor.py --no-evidently --json out.json   # about a minute
    .venv/bin/python benchmarks/monitor.py --profile        # also cProfile a cold and a warm report

At scale (``--scale``): logs of 1M, 5M and 10M predictions (the same workload, 24 hourly windows), each read by
``mlo monitor bench --window 1h --no-save`` of this tree and, with ``--baseline SRC``, of another checkout's
``src/`` in the same interpreter (``git archive main | tar -x -C DIR`` gives one), each side logging its own
copy with its own code (a newer schema would stop the baseline): wall time, CPU time and the
process's peak RSS, with the load average at the start of each run. One untimed report first keeps the reference
predictions beside the log, so neither side pays for the model load.

    .venv/bin/python benchmarks/monitor.py --scale --baseline /tmp/main/src   # 10-25 minutes on 2 cores

Only the standard library is imported at module level, so the same file runs in the Evidently environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
# Evidently runs in its own environment: MLO_ANCHOR_PYTHON names its interpreter (else .venv-evidently)
EVIDENTLY_PYTHON = Path(os.environ.get("MLO_ANCHOR_PYTHON") or ROOT / ".venv-evidently" / "bin" / "python")
EVIDENTLY_BUDGET = 180.0  # seconds of timed Evidently runs before the rest is extrapolated
EVIDENTLY_TIMEOUT = 1200
TARGET_S = 5.0
REPEATS = 3
HOURS = 24
DRIFT_HOURS = 6
SHIFTED = ["x0", "x1", "x2"]
NUMERIC = [f"x{i}" for i in range(8)]
FEATURES = [*NUMERIC, "cat", "cnt"]
TRAIN_ROWS = 50_000
REFERENCE_STEP = "reference (snapshot load; model load + predict on it)"
START = "2025-06-02T00:00:00Z"  # a Monday, on the hour: window h is hour h

SIZES = {
    "full": {"predictions": 1_000_000, "rows_window": 50_000},
    "quick": {"predictions": 100_000, "rows_window": 5_000},
}

now = time.perf_counter


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def secs(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


# -- the data -----------------------------------------------------------------------------------------------------
def features(rng, n: int, shift: float = 0.0):
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({c: rng.normal(0.0, 1.0, n) for c in NUMERIC})
    for c in SHIFTED:
        df[c] += shift
    df["cat"] = np.array(["a", "b", "c"], dtype=object)[rng.choice(3, n, p=[0.5, 0.3, 0.2])]
    df["cnt"] = rng.poisson(3.0, n).astype("int64")
    return df


def labels(rng, X):
    import numpy as np

    z = (
        1.0 * X.x0
        - 0.8 * X.x1
        + 0.6 * X.x2
        + 0.4 * X.x3
        - 0.3 * X.x4
        + 0.3 * (X.cat == "b")
        - 0.5 * (X.cat == "c")
        + 0.2 * (X.cnt - 3)
    ).to_numpy()
    return (rng.random(len(X)) < 1 / (1 + np.exp(-z))).astype("int64")


def setup(folder: Path, predictions: int, evidently_inputs: bool = True) -> dict:
    """Train, snapshot, register and log; write the Evidently inputs. Returns the windows' sizes and timings."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import mlo

    mlo.init(folder)
    rng = np.random.default_rng(0)
    train = features(rng, TRAIN_ROWS)
    y_train = labels(rng, train)
    model = Pipeline(
        [
            ("prep", ColumnTransformer([("cat", OneHotEncoder(), ["cat"])], remainder="passthrough")),
            ("lr", LogisticRegression(max_iter=1000)),
        ]
    ).fit(train, y_train)
    t = now()
    with mlo.start_run("train-bench"):
        mlo.snapshot(train.assign(label=y_train), "train", role="input")
        mlo.register_model(model, "bench", input_example=train.head(5), alias="production")
    registered = now() - t

    sizes = [len(a) for a in np.array_split(np.arange(predictions), HOURS)]
    start = pd.Timestamp(START)
    parts, log_s = [], 0.0
    for h, n in enumerate(sizes):
        X = features(rng, n, 0.5 if h >= HOURS - DRIFT_HOURS else 0.0)
        y = labels(rng, X)
        preds = model.predict(X)
        ts = start + pd.Timedelta(hours=h) + pd.to_timedelta(np.sort(rng.uniform(0, 3600, n)), unit="s")
        t = now()
        mlo.monitor.log("bench@production", X, preds, labels=y, timestamps=ts)
        log_s += now() - t
        if evidently_inputs:
            parts.append(X.assign(prediction=preds, target=y, window=h))
    if evidently_inputs:
        pd.concat(parts, ignore_index=True).to_parquet(folder / "windows.parquet")
        train.assign(prediction=model.predict(train), target=y_train).to_parquet(folder / "reference.parquet")
    log_bytes = sum(p.stat().st_size for p in (folder / ".mlo" / "monitor" / "bench").rglob("*.parquet"))
    return {
        "window_rows": sizes,
        "log_seconds": log_s,
        "register_seconds": registered,
        "log_bytes": log_bytes,
    }


# -- mlo, measured in a fresh process --------------------------------------------------------------------------------
class Split:
    """Accumulated wall time of the functions ``report`` calls, while installed."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list = []
        self.order: list[str] = []

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            t = now()
            try:
                return fn(*a, **k)
            finally:
                self.times[label] = self.times.get(label, 0.0) + now() - t
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, attr, timed)
        self.order.append(label)
        self._undo.append((owner, attr, fn))

    def restore(self) -> None:
        for owner, attr, fn in reversed(self._undo):
            setattr(owner, attr, fn)
        self._undo.clear()


def flagged(rep) -> dict:
    w = rep.windows
    drifted = [str(d) for d in w["drifted"]]
    return {
        "n": [int(v) for v in w["n"]],
        "drifted": drifted,
        "flagged": [i for i, d in enumerate(drifted) if d and not d.startswith("(")],
        "dataset_drift": int(sum(bool(v) for v in w["dataset_drift"])),
        "prediction_drift": [i for i, v in enumerate(w["prediction_drift"]) if bool(v)],
        "accuracy": [None if v != v else float(v) for v in w["accuracy"]],
    }


def profiled(call, by_time: int, by_cumulative: int) -> tuple[float, str]:
    """cProfile of ``call()`` with the drift engine comparing columns one after the other (cProfile sees only the
    calling thread): the top functions by own time and by cumulative time, paths shortened."""
    import cProfile
    import io
    import pstats

    import numpy

    engine = sys.modules.get("mlo.drift.engine")
    if engine is None:
        import mlo.drift.engine as engine
    threads_min_rows, engine.THREADS_MIN_ROWS = engine.THREADS_MIN_ROWS, 1 << 62
    prof = cProfile.Profile()
    t = now()
    prof.enable()
    call()
    prof.disable()
    seconds = now() - t
    engine.THREADS_MIN_ROWS = threads_min_rows
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    if by_time:
        stats.sort_stats("tottime").print_stats(by_time)
    stats.sort_stats("cumulative").print_stats(by_cumulative)
    site = str(Path(numpy.__file__).parent.parent)
    short = text.getvalue().replace(site + "/", "").replace(str(ROOT / "src") + "/", "")
    return seconds, short.replace(str(ROOT) + "/", "")


def profile_cold_child(folder: Path) -> None:
    """The first report() in a fresh process under cProfile: what a command-line run pays for once."""
    os.environ["MLO_HOME"] = str(folder / ".mlo")
    os.chdir(folder)
    import mlo

    mlo.init(folder)
    report = mlo.monitor.report
    seconds, text = profiled(lambda: report("bench", window="1h", save=False), 0, 45)
    print(json.dumps({"seconds": seconds, "profile": text}))


def measure_child(folder: Path, rows_window: int, profile: bool) -> None:
    import gc

    from drift import PeakRss, rss

    os.environ["MLO_HOME"] = str(folder / ".mlo")
    os.chdir(folder)
    out: dict = {}
    t = now()
    import mlo

    mlo.init(folder)
    report, read_log = mlo.monitor.report, mlo.monitor.read_log
    out["import_seconds"] = now() - t
    from mlo.monitor import reporting
    from mlo.monitor import windows as W

    def install(split: Split, warm: bool) -> None:
        split.wrap(reporting, "read_log", "read_log")
        split.wrap(reporting, "resolve_reference", REFERENCE_STEP)
        split.wrap(W, "cut", "cut into windows")
        split.wrap(reporting, "_window_row", "window figures (_window_row)")
        if warm:  # mlo.drift is imported by the first call: wrapping it before would move that import out
            split.wrap(sys.modules["mlo.drift"], "drift", "  of which drift()")
        split.wrap(W, "unseen_rate", "  of which unseen_rate()")
        split.wrap(W, "quality", "  of which quality()")
        split.wrap(W, "canary_verdict", "  of which canary_verdict()")
        split.wrap(reporting, "_save", "store the report")

    gc.collect()
    out["rss_before"] = rss()
    cold_split = Split()
    install(cold_split, warm=False)
    with PeakRss() as peak:
        t = now()
        rep = report("bench", window="1h")
        out["cold_seconds"] = now() - t
    cold_split.restore()
    out["cold_split"] = {"parts": cold_split.times, "calls": cold_split.calls}
    out["peak_rss_cold"], out["peak_exact"] = peak.peak, peak.exact
    out["hourly"] = flagged(rep)
    out["hourly"]["windows"] = len(rep.windows)

    warm = []
    for _ in range(REPEATS):
        t = now()
        report("bench", window="1h")
        warm.append(now() - t)
    out["warm"] = warm
    rows = []
    for _ in range(REPEATS):
        t = now()
        rrep = report("bench", window=f"{rows_window} rows")
        rows.append(now() - t)
    out["rows"] = rows
    out["by_rows"] = flagged(rrep)
    out["by_rows"]["windows"] = len(rrep.windows)
    reads = []
    for _ in range(REPEATS):
        t = now()
        frame = read_log("bench")
        reads.append(now() - t)
    out["read_log"] = reads
    out["log_rows"], out["log_columns"] = len(frame), frame.shape[1]
    out["log_frame_bytes"] = int(frame.memory_usage(deep=True).sum())
    del frame

    # where one warm call goes
    split = Split()
    install(split, warm=True)
    t = now()
    report("bench", window="1h")
    total = now() - t
    split.restore()
    out["split"] = {"total": total, "parts": split.times, "calls": split.calls, "order": split.order}

    if profile:
        out["profile_seconds"], out["profile"] = profiled(lambda: report("bench", window="1h"), 25, 45)
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


def run_measure(folder: Path, rows_window: int, profile: bool) -> dict:
    cmd = [sys.executable, __file__, "--measure-child", str(folder), str(rows_window)]
    proc = subprocess.run([*cmd, *(["--profile"] if profile else [])], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_profile_cold(folder: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--profile-cold-child", str(folder)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(folder: Path, src: Path | None = None, repeats: int = REPEATS) -> dict:
    """``mlo monitor bench --window 1h --no-save`` as the user types it: wall time and the process's peak RSS.
    With ``src``, the mlo of that source tree (a checkout of the baseline) runs instead, in the same
    interpreter."""
    exe = Path(sys.executable).parent / "mlo"
    cmd = [str(exe)] if exe.exists() and src is None else [sys.executable, "-m", "mlo"]
    cmd += ["monitor", "bench", "--window", "1h", "--no-save"]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    times, peaks, cpu = [], [], []
    text = ""
    for _ in range(repeats):
        with open(folder / "cli.out", "w") as out, open(folder / "cli.err", "w") as err:
            t = now()
            p = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(p.pid, 0)
            times.append(now() - t)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {p.returncode}: {(folder / 'cli.err').read_text()[-3000:]}"
            )
        peaks.append(usage.ru_maxrss * 1024)
        cpu.append(usage.ru_utime + usage.ru_stime)
        text = (folder / "cli.out").read_text()
    return {"command": " ".join(cmd[-6:]), "times": times, "peak_rss": max(peaks), "cpu": cpu, "output": text}


# -- Evidently (runs in its own environment) -------------------------------------------------------------------------
def interleaved(n: int) -> list[int]:
    """0, n-1, 1, n-2, …: a prefix of this order covers both ends of the day (before and after the drift)."""
    out, lo, hi = [], 0, n - 1
    while lo <= hi:
        out.append(lo)
        if hi != lo:
            out.append(hi)
        lo, hi = lo + 1, hi - 1
    return out


def evidently_child(folder: Path, budget: float) -> None:
    import evidently
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import Accuracy
    from evidently.presets import DataDriftPreset

    ref_frame = pd.read_parquet(folder / "reference.parquet")
    all_windows = pd.read_parquet(folder / "windows.parquet")
    windows = [
        w.drop(columns="window").reset_index(drop=True) for _, w in all_windows.groupby("window", sort=True)
    ]
    del all_windows
    definition = DataDefinition(
        numerical_columns=[*NUMERIC, "cnt"],
        categorical_columns=["cat", "prediction", "target"],
        classification=[BinaryClassification(target="target", prediction_labels="prediction")],
    )

    def one(cur_frame, ref):
        cur = Dataset.from_pandas(cur_frame, data_definition=definition)
        return Report([DataDriftPreset(columns=[*FEATURES, "prediction"]), Accuracy()]).run(cur, ref)

    t = now()
    ref = Dataset.from_pandas(ref_frame, data_definition=definition)
    ref_seconds = now() - t
    t = now()
    one(windows[0], ref)  # warm-up: one-time initialization inside Evidently
    first = now() - t
    times: dict[int, float] = {}
    results: dict[int, dict] = {}
    spent = 0.0
    for i in interleaved(len(windows)):
        if spent > budget:
            break
        t = now()
        snap = one(windows[i], ref)
        times[i] = now() - t
        spent += times[i]
        drifted, acc, pred_drift = [], None, None
        for m in snap.dict()["metrics"]:
            cfg = m["config"]
            if cfg["type"].endswith("ValueDrift"):
                value, threshold = float(m["value"]), float(cfg["threshold"])
                is_p = "p_value" in cfg["method"]
                hit = value < threshold if is_p else value >= threshold
                if cfg["column"] == "prediction":
                    pred_drift = hit
                elif hit:
                    drifted.append(cfg["column"])
            elif cfg["type"].endswith("Accuracy"):
                acc = float(m["value"])
        results[i] = {"drifted": drifted, "accuracy": acc, "prediction_drift": pred_drift}
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "windows": len(windows),
                "rows": [len(w) for w in windows],
                "reference_seconds": ref_seconds,
                "first_seconds": first,
                "times": {str(k): v for k, v in times.items()},
                "results": {str(k): v for k, v in results.items()},
            }
        )
    )


def run_evidently(folder: Path) -> tuple[dict | None, str | None]:
    if not EVIDENTLY_PYTHON.exists():
        return None, (
            f"{EVIDENTLY_PYTHON} not found (python3 -m venv .venv-evidently && "
            ".venv-evidently/bin/pip install evidently==0.7.23 'pandas<3' pyarrow)"
        )
    cmd = [str(EVIDENTLY_PYTHON), __file__, "--evidently-child", str(folder), str(EVIDENTLY_BUDGET)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EVIDENTLY_TIMEOUT, cwd=folder)
    except subprocess.TimeoutExpired:
        return None, f"no result within {EVIDENTLY_TIMEOUT} s"
    if proc.returncode != 0:
        return None, "the run failed:\n" + proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


# -- the report ---------------------------------------------------------------------------------------------------
def check_flags(name: str, got: list[int], expected: list[int]) -> str:
    if got == expected:
        return f"{name}: input drift flagged in {len(got)} windows, exactly the expected ones {expected}"
    return f"MISMATCH {name}: input drift flagged in windows {got}, expected {expected}"


def print_report(f: dict) -> None:
    m, cli, ev = f["mlo"], f["cli"], f.get("evidently")
    n = f["predictions"]
    warm = statistics.median(m["warm"])
    read = statistics.median(m["read_log"])
    rows_med = statistics.median(m["rows"])
    cli_med = statistics.median(cli["times"])
    hourly, by_rows = m["hourly"], m["by_rows"]
    print(
        f"\n{n:,} logged predictions × {len(FEATURES)} features over {HOURS} h ({m['log_columns']} log columns, "
        f"{gb(f['setup']['log_bytes'])} of Parquet); reference: the {TRAIN_ROWS:,}-row training snapshot"
    )
    ev_total = ev_note = None
    if ev is not None:
        timed = {int(k): v for k, v in ev["times"].items()}
        per = statistics.mean(timed.values())
        extrapolated = len(timed) < ev["windows"]
        ev_total = ev["reference_seconds"] + (
            sum(timed.values()) if not extrapolated else per * ev["windows"]
        )
        ev_note = (
            f"EXTRAPOLATED from {len(timed)} of {ev['windows']} windows"
            if extrapolated
            else "all windows timed"
        )
    rows = [
        [
            f"mlo monitor bench --window 1h --no-save (CLI, wall, median of {REPEATS})",
            secs(cli_med),
            "",
            "",
            f"≤ {TARGET_S:g} s {verdict(cli_med <= TARGET_S)}",
        ],
        ["  its CPU time (user + system), median", secs(statistics.median(cli["cpu"])), "", "", ""],
        [
            "report(window='1h'), first call in a fresh process",
            secs(m["cold_seconds"]),
            "",
            "",
            "",
        ],
        [
            f"report(window='1h'), warm, median of {REPEATS}",
            secs(warm),
            f"Evidently, {hourly['windows']} windows: {secs(ev_total)}" if ev else "—",
            f"{ev_total / warm:.0f}x faster" if ev else "",
            "",
        ],
        [
            "  read_log('bench') alone, median of 3",
            secs(read),
            "",
            "",
            "",
        ],
        [
            "  the rest (reference, windows, figures, storing)",
            secs(warm - read),
            f"Evidently: {secs(ev_total)}" if ev else "—",
            f"{ev_total / (warm - read):.0f}x faster" if ev else "",
            "",
        ],
        [
            f"report(window='{f['rows_window']} rows'), {by_rows['windows']} windows, warm, median of {REPEATS}",
            secs(rows_med),
            "",
            "",
            "",
        ],
        [
            "import mlo + mlo.monitor in the fresh process",
            secs(m["import_seconds"]),
            "",
            "",
            "",
        ],
        [
            "peak RSS during the cold report, above the RSS before it",
            gb(m["peak_rss_cold"] - m["rss_before"]),
            "",
            "",
            "",
        ],
        ["peak RSS of the CLI process (ru_maxrss)", gb(cli["peak_rss"]), "", "", ""],
    ]
    print_table(["figure", "mlo", "baseline", "ratio", "target"], rows)
    print(
        f"(runs: CLI {', '.join(secs(x) for x in cli['times'])}; warm report "
        f"{', '.join(secs(x) for x in m['warm'])}; read_log {', '.join(secs(x) for x in m['read_log'])}; "
        f"the log as a DataFrame: {m['log_rows']:,} rows, {gb(m['log_frame_bytes'])}; peak RSS of the measuring "
        f"process {gb(m['ru_maxrss'])}{'' if m['peak_exact'] else '; peak sampled every 2 ms'})"
    )

    s, cold = m["split"], m["cold_split"]
    print(
        "\nwhere the time goes (the functions report() calls, wrapped): the cold call above, and one more warm "
        f"call ({secs(s['total'])})"
    )
    parts = s["parts"]
    top = [k for k in s["order"] if k in parts and not k.startswith("  ")]
    split_rows = [
        [k, secs(cold["parts"][k]) if k in cold["parts"] else "—", secs(parts[k]), str(s["calls"][k])]
        for k in s["order"]
        if k in parts
    ]
    split_rows.append(
        [
            "other (config, version lookup, task, frame of rows)",
            secs(m["cold_seconds"] - sum(cold["parts"].get(k, 0.0) for k in top)),
            secs(s["total"] - sum(parts[k] for k in top)),
            "",
        ]
    )
    print_table(["step", "cold", "warm", "calls"], split_rows)
    print(
        "(the cold reference step imports scikit-learn and skops to load the model; the cold window figures "
        "import the drift engine and SciPy)"
    )

    expected = list(range(HOURS - DRIFT_HOURS, HOURS))
    print()
    print(check_flags("report(window='1h')", hourly["flagged"], expected))
    cols = {d for i, d in enumerate(hourly["drifted"]) if i in hourly["flagged"]}
    print(
        f"  drifted columns in the flagged windows: {sorted(cols)}; dataset drift (≥ 50% of columns) in "
        f"{hourly['dataset_drift']} windows; prediction drift in windows {hourly['prediction_drift']}"
    )
    start_rows = sum(f["setup"]["window_rows"][: HOURS - DRIFT_HOURS])
    rw = f["rows_window"]
    expected_rows = [i for i in range(by_rows["windows"]) if (i + 1) * rw - start_rows > rw // 2]
    print(check_flags(f"report(window='{rw} rows')", by_rows["flagged"], expected_rows))
    if hourly["n"] != f["setup"]["window_rows"]:
        print(f"MISMATCH: the report's window sizes {hourly['n']} differ from the logged batches")

    if ev is None:
        print(f"\nEvidently: not measured — {f.get('evidently_skipped')}")
        return
    timed = {int(k): v for k, v in ev["times"].items()}
    res = {int(k): v for k, v in ev["results"].items()}
    print(
        f"\nEvidently {ev['version']} per window: Report([DataDriftPreset(columns=10 features + prediction), "
        f"Accuracy()]) against the {TRAIN_ROWS:,}-row training frame (reference Dataset built once: "
        f"{secs(ev['reference_seconds'])}; untimed warm-up run on window 0: {secs(ev['first_seconds'])})"
    )
    ev_rows = []
    for i in range(ev["windows"]):
        r = res.get(i)
        mlo_flag = ", ".join(x for x in hourly["drifted"][i].split(", ") if x) or "—"
        ev_rows.append(
            [
                f"{i:02d}:00",
                f"{ev['rows'][i]:,}",
                secs(timed[i]) if i in timed else "not timed",
                (", ".join(r["drifted"]) or "—") if r else "",
                mlo_flag,
                f"{r['accuracy']:.4f}" if r and r["accuracy"] is not None else "",
                f"{hourly['accuracy'][i]:.4f}" if hourly["accuracy"][i] is not None else "",
            ]
        )
    print_table(
        ["window", "rows", "Evidently time", "Evidently drifted", "mlo drifted", "Evidently acc", "mlo acc"],
        ev_rows,
    )
    ev_flagged = sorted(i for i, r in res.items() if r["drifted"])
    agree = sum((i in hourly["flagged"]) == bool(r["drifted"]) for i, r in res.items())
    ev_pred = sorted(i for i, r in res.items() if r["prediction_drift"])
    print(
        f"Evidently total {secs(ev_total)} ({ev_note}; mean {secs(statistics.mean(timed.values()))} per window) "
        f"against mlo's warm report {secs(warm)}: Evidently/mlo = {ev_total / warm:.1f}x; against mlo without "
        f"read_log {secs(warm - read)}: {ev_total / (warm - read):.1f}x; against the CLI {secs(cli_med)}: "
        f"{ev_total / cli_med:.1f}x"
    )
    print(
        f"Evidently flagged input drift in windows {ev_flagged} of the {len(res)} it ran; the per-window drift "
        f"flags agree with mlo's in {agree}/{len(res)}; prediction drift in windows {ev_pred} (mlo: "
        f"{hourly['prediction_drift']})"
    )


# -- at scale: 1M, 5M, 10M predictions, this tree against a baseline checkout -------------------------------------
SCALE_SIZES = (1_000_000, 5_000_000, 10_000_000)


def run_scale(sizes: list[int], baseline: Path | None, repeats: int) -> dict:
    """For each size, one log (24 hourly windows) read by ``mlo monitor`` of this tree and of the baseline:
    wall time, CPU time and peak RSS of the whole command."""
    out: dict = {"sizes": {}, "baseline": str(baseline) if baseline else None}
    for n in sizes:
        row: dict = {}
        for name, src in (("after", None), ("before", baseline)):
            if name == "before" and src is None:
                continue
            # each side logs its own copy with its own code: a workspace written by a newer mlo may carry a
            # schema the baseline refuses to open (the same seed makes the same predictions on both sides)
            with tempfile.TemporaryDirectory(prefix="mlo-bench-monitor-scale-") as tmp:
                folder = Path(tmp)
                env = dict(os.environ, MLO_HOME=str(folder / ".mlo"))
                if src is not None:
                    env["PYTHONPATH"] = str(src)
                log(f"  {name}: logging {n:,} predictions…")
                done = subprocess.run(
                    [sys.executable, __file__, "--setup-child", str(folder), str(n)],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                load = loadavg()
                if done.returncode != 0:
                    row[name] = {"failed": done.stderr.strip()[-300:], "load": load}
                    continue
                setup_ = json.loads(done.stdout.strip().splitlines()[-1])
                row.setdefault("log_bytes", {})[name] = setup_["log_bytes"]
                os.environ["MLO_HOME"] = env["MLO_HOME"]
                try:
                    run_cli(
                        folder, src, repeats=1
                    )  # the reference predictions are kept after the first report
                    log(f"  {name}: mlo monitor over {n:,} predictions…")
                    load = loadavg()
                    r = run_cli(folder, src, repeats)
                except RuntimeError as exc:
                    row[name] = {"failed": str(exc)[-300:], "load": load}
                    continue
                r.pop("output", None)
                row[name] = {**r, "load": load}
            out["sizes"][n] = row
    return out


def print_scale(f: dict) -> None:
    rows, failures = [], []
    for n, row in f["sizes"].items():
        for name in ("before", "after"):
            r = row.get(name)
            if r is None:
                continue
            if "failed" in r:
                rows.append([f"{int(n):,}", name, "failed", "", "", r["load"]])
                failures.append(f"{int(n):,} {name}: {r['failed'].splitlines()[-1] if r['failed'] else '?'}")
                continue
            wall = statistics.median(r["times"])
            rows.append(
                [
                    f"{int(n):,}",
                    name,
                    secs(wall),
                    secs(statistics.median(r["cpu"])),
                    gb(r["peak_rss"]),
                    r["load"],
                ]
            )
        if "before" in row and "after" in row and "times" in row["before"] and "times" in row["after"]:
            b, a = row["before"], row["after"]
            rows.append(
                [
                    "",
                    "after / before",
                    f"{statistics.median(a['times']) / statistics.median(b['times']):.2f}×",
                    f"{statistics.median(a['cpu']) / statistics.median(b['cpu']):.2f}×",
                    f"{a['peak_rss'] / b['peak_rss']:.2f}×",
                    "",
                ]
            )
    print(
        "\nmlo monitor bench --window 1h --no-save over 24 hourly windows (10 features, labels for every "
        "prediction); wall and CPU are medians, peak RSS is the largest (wait4)"
    )
    print_table(["predictions", "run", "wall", "CPU (user+sys)", "peak RSS", "load at start"], rows)
    for line in failures:
        print(f"failed: {line}")
    print("targets (issue 23): 10M predictions ≤ 10 s wall, ≤ 1 GB peak; memory flat in the size of the log")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100,000 predictions instead of 1,000,000")
    p.add_argument("--no-evidently", action="store_true", help="mlo only")
    p.add_argument(
        "--profile", action="store_true", help="cProfile one warm report and print the top functions"
    )
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--measure-child", nargs=2, metavar=("FOLDER", "ROWS"), help=argparse.SUPPRESS)
    p.add_argument("--evidently-child", nargs=2, metavar=("FOLDER", "BUDGET"), help=argparse.SUPPRESS)
    p.add_argument("--profile-cold-child", metavar="FOLDER", help=argparse.SUPPRESS)
    p.add_argument("--setup-child", nargs=2, metavar=("FOLDER", "N"), help=argparse.SUPPRESS)
    p.add_argument(
        "--scale",
        action="store_true",
        help="1M, 5M and 10M predictions: the command's time and peak RSS, against --baseline when given",
    )
    p.add_argument("--sizes", default=",".join(str(n) for n in SCALE_SIZES), help="with --scale: sizes")
    p.add_argument(
        "--baseline",
        type=Path,
        help="with --scale: the src/ folder of a baseline checkout (e.g. git archive main | tar -x -C DIR)",
    )
    p.add_argument("--repeats", type=int, default=2, help="with --scale: runs per command")
    a = p.parse_args()
    if a.setup_child:
        os.environ["MLO_HOME"] = str(Path(a.setup_child[0]) / ".mlo")
        os.chdir(a.setup_child[0])
        print(json.dumps(setup(Path(a.setup_child[0]), int(a.setup_child[1]), evidently_inputs=False)))
        return 0
    if a.scale:
        sizes = [int(x) for x in a.sizes.split(",")]
        start = loadavg()
        print(f"monitor benchmark at scale ({os.cpu_count()} cores; load average {start} at start)")
        f = run_scale(sizes, a.baseline, a.repeats)
        print_scale(f)
        print(f"load average {start} at start, {loadavg()} at end")
        if a.json:
            Path(a.json).write_text(json.dumps(f, indent=2, default=str))
        return 0
    if a.profile_cold_child:
        profile_cold_child(Path(a.profile_cold_child))
        return 0
    if a.measure_child:
        measure_child(Path(a.measure_child[0]), int(a.measure_child[1]), a.profile)
        return 0
    if a.evidently_child:
        evidently_child(Path(a.evidently_child[0]), float(a.evidently_child[1]))
        return 0

    mode = "quick" if a.quick else "full"
    size = SIZES[mode]
    started, load_start = now(), loadavg()
    f: dict = {
        "mode": mode,
        "predictions": size["predictions"],
        "rows_window": size["rows_window"],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
    }
    print(
        f"monitor benchmark ({mode}; {f['machine']}; Python {f['python']}; load average {load_start} at start)"
    )
    with tempfile.TemporaryDirectory(prefix="mlo-bench-monitor-") as tmp:
        folder = Path(tmp)
        os.environ["MLO_HOME"] = str(folder / ".mlo")
        log(f"training, registering, logging {size['predictions']:,} predictions…")
        f["setup"] = setup(folder, size["predictions"])
        log("measuring mlo.monitor.report in a fresh process…")
        f["mlo"] = run_measure(folder, size["rows_window"], a.profile)
        if a.profile:
            log("profiling a cold report in a fresh process…")
            f["profile_cold"] = run_profile_cold(folder)
        log("the command line…")
        f["cli"] = run_cli(folder)
        if a.no_evidently:
            f["evidently_skipped"] = "--no-evidently"
        else:
            log("Evidently…")
            f["evidently"], f["evidently_skipped"] = run_evidently(folder)
            if f["evidently"] is None:
                f.pop("evidently")
    f["load"] = [load_start, loadavg()]
    setup_ = f["setup"]
    print(
        f"setup: mlo.monitor.log of {f['predictions']:,} predictions in {HOURS} batches {secs(setup_['log_seconds'])}; "
        f"snapshot + register in a run {secs(setup_['register_seconds'])}"
    )
    print_report(f)
    if "profile" in f["mlo"]:
        print(
            f"\ncProfile of one warm report(window='1h'), columns compared one after the other "
            f"({secs(f['mlo']['profile_seconds'])} under the profiler):"
        )
        print(f["mlo"]["profile"])
    if "profile_cold" in f:
        print(
            "\ncProfile of the first report(window='1h', save=False) in a fresh process, columns compared one after "
            f"the other ({secs(f['profile_cold']['seconds'])} under the profiler):"
        )
        print(f["profile_cold"]["profile"])
    print(f"\nload average {load_start} at start, {f['load'][1]} at end; total time {now() - started:.0f} s")
    if a.json:
        f["mlo"].pop("profile", None)
        f.get("profile_cold", {}).pop("profile", None)
        Path(a.json).write_text(json.dumps(f, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
