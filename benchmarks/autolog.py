"""What autolog and system metrics cost, side by side with MLflow.

1. Autolog overhead per ``fit``: the same scikit-learn estimators on the same data fitted without autolog and
   with it, each side in a fresh temporary folder with a SQLite store; the overhead is the median autologged fit
   minus the median plain fit, with the model stored and without (``log_models=False``). MLflow:
   ``mlflow.sklearn.autolog()`` (``max_tuning_runs=None``, so a search logs every candidate as mlo does).
2. System-metrics sampling: the CPU time of one sample (mlo's sampling thread measures its own thread time),
   what that is as a % of one core at the default interval, the CPU of a whole idle process sampled every
   0.1 s against the same process unsampled (for both mlo and MLflow's system metrics monitor), and what
   sampling adds to starting and ending a short run.

MLflow is never imported by mlo: when ``.venv-anchors/bin/python`` can import mlflow and scikit-learn, this
script runs itself there with ``--mlflow-child`` and reads the figures back.

Run from the repository root:

    .venv/bin/python benchmarks/autolog.py             # about 2 minutes on 2 cores, with MLflow
    .venv/bin/python benchmarks/autolog.py --quick     # fewer repeats, under a minute
    .venv/bin/python benchmarks/autolog.py --no-mlflow --json out.json

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # fits comparable on a shared box
    os.environ.setdefault(_var, "1")
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
MLFLOW_TIMEOUT = 600

ESTIMATORS = ["LogisticRegression", "RandomForest(50)", "GradientBoosting(50)", "Pipeline(scaler, LR)", "KMeans(8)",
              "GridSearchCV(LR, 6 candidates)"]  # fmt: skip


def now() -> float:
    return time.perf_counter()


def make_estimator(name: str):
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter("ignore")
    return {
        "LogisticRegression": lambda: LogisticRegression(max_iter=300),
        "RandomForest(50)": lambda: RandomForestClassifier(n_estimators=50, random_state=0),
        "GradientBoosting(50)": lambda: GradientBoostingClassifier(n_estimators=50, random_state=0),
        "Pipeline(scaler, LR)": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
        "KMeans(8)": lambda: KMeans(n_clusters=8, n_init=1, random_state=0),
        "GridSearchCV(LR, 6 candidates)": lambda: GridSearchCV(
            LogisticRegression(max_iter=300), {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}, cv=3
        ),
    }[name]()


def dataset():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=2000, n_features=20, n_informative=8, random_state=0)


def timed_fit(name: str, X, y) -> float:
    est = make_estimator(name)
    t0 = now()
    est.fit(X, y)
    return (now() - t0) * 1e3


def overheads(side: str, repeats: int) -> dict:
    """Per estimator: the plain fit and the autologged fit with and without models (ms, medians), and the
    overheads as medians of differences between fits made one after the other (so a machine that gets busier
    or quieter during the run shifts both sides of each difference alike)."""
    X, y = dataset()
    out = {}
    for name in ESTIMATORS:
        for models in (None, True, False):  # warm up: imports, caches, the first run of each mode
            if models is not None:
                enable(side, models)
            timed_fit(name, X, y)
            if models is not None:
                disable(side)
        times: dict[str, list[float]] = {"plain": [], "models": [], "no_models": []}
        for _ in range(repeats):
            times["plain"].append(timed_fit(name, X, y))
            for models in (True, False):
                enable(side, models)
                times["models" if models else "no_models"].append(timed_fit(name, X, y))
                disable(side)
        row = {f"{mode}_ms": statistics.median(ts) for mode, ts in times.items()}
        for mode in ("models", "no_models"):
            diffs = [a - b for a, b in zip(times[mode], times["plain"], strict=True)]
            row[f"{mode}_overhead_ms"] = statistics.median(diffs)
        out[name] = row
    return out


def enable(side: str, models: bool) -> None:
    if side == "mlo":
        import mlo

        mlo.autolog(log_models=models)
    else:
        import mlflow

        mlflow.sklearn.autolog(log_models=models, max_tuning_runs=None, silent=True)


def disable(side: str) -> None:
    if side == "mlo":
        import mlo

        mlo.autolog(disable=True)
    else:
        import mlflow

        mlflow.sklearn.autolog(disable=True)


def busy_idle_cpu(seconds: float) -> float:
    """CPU seconds this process uses over ``seconds`` of sleeping in an active run."""
    c0 = time.process_time()
    time.sleep(seconds)
    return time.process_time() - c0


# -- mlo -------------------------------------------------------------------------------------------------------
def run_mlo(repeats: int, quick: bool) -> dict:
    os.environ["MLO_SYSTEM_METRICS"] = "0"  # autolog figures without sampling; sampling measured below
    import mlo

    mlo.init(".")
    out = {"overheads": overheads("mlo", repeats)}
    out["sampling"] = mlo_sampling(quick)
    return out


def mlo_sampling(quick: bool) -> dict:
    import mlo
    from mlo.tracking import system_metrics

    seconds = 3.0 if quick else 6.0
    os.environ.pop("MLO_SYSTEM_METRICS", None)
    sampler = system_metrics.SAMPLER
    out = {}
    children = []
    for n_children in (0, 4):
        while len(children) < n_children:
            children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]))
        mlo.log_system_metrics(True, interval=0.05)
        cpu0, ticks0 = sampler.cpu_seconds, sampler.ticks
        with mlo.start_run(f"sampled-{n_children}"):
            time.sleep(seconds)
        out[f"sample_ms_{n_children}_children"] = (
            (sampler.cpu_seconds - cpu0) / max(1, sampler.ticks - ticks0) * 1e3
        )
    for c in children:
        c.kill()
        c.wait()
    per_sample = out["sample_ms_0_children"] / 1e3
    out["core_percent_at_5s"] = 100 * per_sample / 5.0
    out["core_percent_at_1s"] = 100 * per_sample / 1.0
    # a whole idle process for the same time: unsampled, and sampled every 0.1 s
    mlo.log_system_metrics(False)
    with mlo.start_run("idle-off"):
        off = busy_idle_cpu(seconds)
    mlo.log_system_metrics(True, interval=0.1)
    with mlo.start_run("idle-on"):
        on = busy_idle_cpu(seconds)
    out["idle_process_percent_off"] = 100 * off / seconds
    out["idle_process_percent_at_0.1s"] = 100 * on / seconds
    # what sampling adds to a short run (start + end, under a second: no sample taken)
    for enabled in (False, True):
        mlo.log_system_metrics(enabled, interval=5.0)
        times = []
        for i in range(200):
            t0 = now()
            run = mlo.start_run(f"short-{i}")
            mlo.end_run(run=run)
            times.append((now() - t0) * 1e3)
        out[f"short_run_ms_{'on' if enabled else 'off'}"] = statistics.median(times)
    # the last sample of a run that lasted over a second (taken as end_run runs)
    mlo.log_system_metrics(True, interval=600)
    finals = []
    for i in range(5):
        run = mlo.start_run(f"long-{i}")
        time.sleep(1.05)
        t0 = now()
        mlo.end_run(run=run)
        finals.append((now() - t0) * 1e3)
    mlo.log_system_metrics(False)
    for i in range(5):
        run = mlo.start_run(f"long-off-{i}")
        time.sleep(1.05)
        t0 = now()
        mlo.end_run(run=run)
        finals.append(-(now() - t0) * 1e3)
    on_ms = statistics.median([f for f in finals if f > 0])
    off_ms = statistics.median([-f for f in finals if f < 0])
    out["final_sample_ms"] = on_ms - off_ms
    return out


# -- MLflow (runs in the .venv-anchors interpreter) --------------------------------------------------------------
def run_mlflow(repeats: int, quick: bool, tmp: Path) -> dict:
    os.chdir(tmp)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    artifacts = (tmp / "artifacts").as_uri()
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifact_location=artifacts))
    out = {"version": mlflow.__version__, "overheads": overheads("mlflow", repeats)}
    seconds = 3.0 if quick else 6.0
    with mlflow.start_run(log_system_metrics=False):
        off = busy_idle_cpu(seconds)
    mlflow.set_system_metrics_sampling_interval(0.1)
    mlflow.set_system_metrics_samples_before_logging(1)
    with mlflow.start_run(log_system_metrics=True):
        on = busy_idle_cpu(seconds)
    out["sampling"] = {
        "idle_process_percent_off": 100 * off / seconds,
        "idle_process_percent_at_0.1s": 100 * on / seconds,
    }
    return out


def mlflow_in_subprocess(repeats: int, quick: bool) -> tuple[dict | None, str]:
    if not ANCHOR_PYTHON.exists():
        return None, f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
    with tempfile.TemporaryDirectory(prefix="mlo-bench-mlflow-") as tmp:
        out_file = Path(tmp) / "figures.json"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        cmd = [str(ANCHOR_PYTHON), str(Path(__file__).resolve()), "--mlflow-child", str(out_file),
               "--repeats", str(repeats), *(["--quick"] if quick else [])]  # fmt: skip
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=MLFLOW_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, f"MLflow side took longer than {MLFLOW_TIMEOUT} s"
        if proc.returncode == 3:
            return None, "mlflow or scikit-learn is not importable in .venv-anchors"
        if proc.returncode != 0 or not out_file.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            return None, f"MLflow side failed (exit {proc.returncode}):\n{tail}"
        return json.loads(out_file.read_text()), ""


def mlflow_child(out_file: str, repeats: int, quick: bool) -> int:
    try:
        import mlflow  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        return 3
    with tempfile.TemporaryDirectory(prefix="mlo-bench-mlflow-store-") as tmp:
        figures = run_mlflow(repeats, quick, Path(tmp))
        os.chdir(ROOT)
    Path(out_file).write_text(json.dumps(figures))
    return 0


# -- report ------------------------------------------------------------------------------------------------------
def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def report(m: dict, f: dict | None, why_no_mlflow: str, repeats: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from text_table import print_table

    print(
        f"Autolog overhead per fit: median of {repeats} differences between an autologged fit and the plain fit "
        "before it (2,000 × 20 data, one BLAS thread)"
    )
    rows = []
    for name in ESTIMATORS:
        a = m["overheads"][name]
        b = (f or {}).get("overheads", {}).get(name)
        mlo_models, mlo_bare = a["models_overhead_ms"], a["no_models_overhead_ms"]
        flow_models = b["models_overhead_ms"] if b else None
        flow_bare = b["no_models_overhead_ms"] if b else None
        ratio = f"{flow_models / mlo_models:.1f}x" if b and mlo_models > 0 else "—"
        rows.append(
            [name, ms(a["plain_ms"]), ms(mlo_models), ms(mlo_bare), ms(flow_models), ms(flow_bare), ratio]
        )
    print_table(
        ["estimator", "plain fit", "mlo", "mlo, no models", "MLflow", "MLflow, no models", "MLflow/mlo"], rows
    )
    s = m["sampling"]
    fs = (f or {}).get("sampling", {})
    print()
    print("System metrics sampling")
    print_table(
        ["figure", "mlo", "MLflow"],
        [
            ["CPU per sample (process alone)", ms(s["sample_ms_0_children"]), "—"],
            ["CPU per sample (4 child processes)", ms(s["sample_ms_4_children"]), "—"],
            ["% of one core at the default interval", f"{s['core_percent_at_5s']:.3f}% (5 s)", "—"],
            ["% of one core sampling every 1 s", f"{s['core_percent_at_1s']:.3f}%", "—"],
            [
                "idle process CPU, unsampled",
                f"{s['idle_process_percent_off']:.2f}%",
                f"{fs['idle_process_percent_off']:.2f}%" if fs else "—",
            ],
            [
                "idle process CPU, sampled every 0.1 s",
                f"{s['idle_process_percent_at_0.1s']:.2f}%",
                f"{fs['idle_process_percent_at_0.1s']:.2f}%" if fs else "—",
            ],
            ["start + end of a short run, sampling off", ms(s["short_run_ms_off"]), "—"],
            ["start + end of a short run, sampling on", ms(s["short_run_ms_on"]), "—"],
            ["last sample as a run ends (runs ≥ 1 s)", ms(s["final_sample_ms"]), "—"],
        ],
    )
    print()
    if f is None:
        print(f"MLflow: not measured ({why_no_mlflow}).")
    else:
        print(
            f"MLflow {f['version']}: mlflow.sklearn.autolog(log_models=…, max_tuning_runs=None), SQLite store; "
            "system metrics with mlflow.start_run(log_system_metrics=True), sampling interval 0.1 s, "
            "samples_before_logging 1."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--mlflow-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    if args.mlflow_child:
        return mlflow_child(args.mlflow_child, repeats, args.quick)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="mlo-bench-autolog-") as tmp:
        os.chdir(tmp)
        m = run_mlo(repeats, args.quick)
        os.chdir(ROOT)
    f, why = (None, "--no-mlflow") if args.no_mlflow else mlflow_in_subprocess(repeats, args.quick)
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    report(m, f, why, repeats)
    if args.json:
        Path(args.json).write_text(json.dumps({"mlo": m, "mlflow": f}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
