"""Model registry speed: register + load a ~50 MB scikit-learn model, against raw joblib (and raw skops, MLflow).

What it measures, each path in a fresh temporary folder per repetition (so every write is a new file):

1. raw joblib — ``joblib.dump(model, path)`` + ``joblib.load(path)``: the baseline.
2. mlo, pickle path — ``mlo.register_model(model, name, flavor="cloudpickle")`` + ``mlo.load_model(name/1)``:
   serialize, SHA-256, atomic write + fsync into the blob store, the version row, its audit event; then read,
   verify the digest, unpickle. This is the registry's own overhead over raw serialization.
3. mlo, default — ``mlo.register_model(model, name)`` + ``mlo.load_model``: scikit-learn models go to skops
   (no pickle at load; the trusted-type audit runs on every load).
4. raw skops — ``skops.io.dump`` + ``skops.io.load`` with the same trusted types: what the default flavor costs
   before mlo adds anything.
5. MLflow (when ``.venv-anchors/bin/python`` imports mlflow) — ``mlflow.sklearn.log_model`` in a run +
   ``mlflow.sklearn.load_model``, in both its cloudpickle and its skops format (its default for scikit-learn,
   with the same trusted types), run in that interpreter as a subprocess on the same model rebuilt there.

Every figure is the median of ``--repeats`` (3) rounds, the paths interleaved within a round, after one warm-up
round (imports, skops' type registry). Ratios are ``path / raw joblib`` unless said otherwise.

    .venv/bin/python benchmarks/registry.py            # ~50 MB model, about a minute on 2 cores
    .venv/bin/python benchmarks/registry.py --quick    # ~10 MB model
    .venv/bin/python benchmarks/registry.py --json out.json --no-mlflow

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
MLFLOW_TIMEOUT = 600
TARGET = 1.2  # mlo pickle path / raw joblib

SIZES = {"full": {"trees": 120, "rows": 20_000}, "quick": {"trees": 24, "rows": 20_000}}

now = time.perf_counter


def build_model(trees: int, rows: int):
    """A RandomForest with fixed seeds: ~0.41 MB per tree at 20,000 rows × 20 features (~50 MB for 120)."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20))
    y = (X[:, 0] + rng.normal(size=rows) > 0).astype(int)
    return RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=-1).fit(X, y), X[:100]


def _fresh(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


# -- the mlo side ----------------------------------------------------------------------------------------------------
def raw_joblib(model, base: Path) -> tuple[float, float]:
    import joblib

    path = _fresh(base) / "model.joblib"
    t0 = now()
    joblib.dump(model, path)
    t1 = now()
    joblib.load(path)
    return t1 - t0, now() - t1


def raw_skops(model, base: Path, trusted: list[str]) -> tuple[float, float]:
    import skops.io as sio

    path = _fresh(base) / "model.skops"
    t0 = now()
    sio.dump(model, path)
    t1 = now()
    sio.load(path, trusted=trusted)
    return t1 - t0, now() - t1


def mlo_path(model, base: Path, flavor: str | None) -> tuple[float, float]:
    import mlo
    from mlo import workspace

    folder = _fresh(base)
    os.environ["MLO_HOME"] = str(folder / ".mlo")
    workspace.reset_cache()
    mlo.init(folder)  # the store exists before the clock starts, as in any real workspace
    t0 = now()
    mlo.register_model(model, "big", flavor=flavor)
    t1 = now()
    mlo.load_model("big/1", trust=True)  # the pickle path needs the opt-in
    return t1 - t0, now() - t1


def run_mlo(sizes: dict, repeats: int, base: Path) -> dict:
    import skops.io as sio

    model, _ = build_model(sizes["trees"], sizes["rows"])
    trusted = sio.get_untrusted_types(data=sio.dumps(model))
    paths = {
        "raw_joblib": lambda: raw_joblib(model, base),
        "mlo_pickle": lambda: mlo_path(model, base, "cloudpickle"),
        "mlo_default": lambda: mlo_path(model, base, None),
        "raw_skops": lambda: raw_skops(model, base, trusted),
    }
    for fn in paths.values():  # warm-up: imports, skops' registry of trusted types, the first store
        fn()
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in paths}
    for _ in range(repeats):
        for key, fn in paths.items():
            samples[key].append(fn())
    return {
        "model_mb": _joblib_size(model, base) / 1e6,
        "trees": sizes["trees"],
        "paths": {k: _summary(v) for k, v in samples.items()},
    }


def _joblib_size(model, base: Path) -> int:
    import joblib

    path = _fresh(base) / "size.joblib"
    joblib.dump(model, path)
    return path.stat().st_size


def _summary(samples: list[tuple[float, float]]) -> dict:
    totals = [a + b for a, b in samples]
    return {
        "total_s": statistics.median(totals),
        "save_s": statistics.median(a for a, _ in samples),
        "load_s": statistics.median(b for _, b in samples),
        "all_totals_s": totals,
    }


# -- the MLflow side (in the anchor interpreter) ------------------------------------------------------------------
def mlflow_child(out_file: str, mode: str, repeats: int) -> int:
    try:
        import mlflow
        import mlflow.sklearn
    except ImportError:
        return 3
    import logging
    import warnings

    import skops.io as sio

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    sizes = SIZES[mode]
    model, _ = build_model(sizes["trees"], sizes["rows"])
    trusted = sio.get_untrusted_types(data=sio.dumps(model))
    formats = {
        "mlflow_skops": {"serialization_format": "skops", "skops_trusted_types": trusted},
        "mlflow_cloudpickle": {"serialization_format": "cloudpickle"},
    }
    base = Path(tempfile.mkdtemp(prefix="mlo-bench-mlflow-"))
    samples: dict[str, list] = {k: [] for k in formats}
    try:
        for i in range(repeats + 1):
            for key, kwargs in formats.items():
                folder = _fresh(base)
                mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
                mlflow.set_experiment(f"bench-{i}")  # creates the store before the clock starts
                t0 = now()
                with mlflow.start_run():
                    info = mlflow.sklearn.log_model(model, name="model", **kwargs)
                t1 = now()
                mlflow.sklearn.load_model(info.model_uri)
                if i:  # the first round warms up
                    samples[key].append((t1 - t0, now() - t1))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    out = {"version": mlflow.__version__, **{k: _summary(v) for k, v in samples.items()}}
    Path(out_file).write_text(json.dumps(out))
    return 0


def mlflow_in_subprocess(mode: str, repeats: int) -> tuple[dict | None, str]:
    if not ANCHOR_PYTHON.exists():
        return None, f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
    with tempfile.TemporaryDirectory(prefix="mlo-bench-mlflow-") as tmp:
        out_file = Path(tmp) / "figures.json"
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",  # its cloudpickle format, measured side by side
        }
        env.pop("MLO_HOME", None)
        cmd = [
            str(ANCHOR_PYTHON),
            str(Path(__file__).resolve()),
            "--mlflow-child",
            str(out_file),
            "--mode",
            mode,
            "--repeats",
            str(repeats),
        ]
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=MLFLOW_TIMEOUT, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            return None, f"MLflow side took longer than {MLFLOW_TIMEOUT} s"
        if proc.returncode == 3:
            return None, "mlflow is not importable in .venv-anchors"
        if proc.returncode != 0 or not out_file.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            return None, f"MLflow side failed (exit {proc.returncode}):\n{tail}"
        return json.loads(out_file.read_text()), ""


# -- report ----------------------------------------------------------------------------------------------------------
LABELS = {
    "raw_joblib": "raw joblib dump + load",
    "mlo_pickle": "mlo register + load (cloudpickle)",
    "mlo_default": "mlo register + load (default: skops)",
    "raw_skops": "raw skops dump + load",
    "mlflow_cloudpickle": "MLflow log_model + load_model (cloudpickle)",
    "mlflow_skops": "MLflow log_model + load_model (skops)",
}


def _round_ratios(a: dict, b: dict) -> list[float]:
    """Ratios of two paths measured side by side in the same round (load from other processes cancels out)."""
    return [x / y for x, y in zip(a["all_totals_s"], b["all_totals_s"], strict=True)]


def report(figures: dict, mlflow: dict | None, why: str, repeats: int) -> None:
    paths = dict(figures["paths"])
    if mlflow is not None:
        paths.update({k: mlflow[k] for k in ("mlflow_cloudpickle", "mlflow_skops")})
    raw = paths["raw_joblib"]["total_s"]
    print(f"{'path':46s} {'save':>9s} {'load':>9s} {'total':>9s} {'÷ joblib':>9s}")
    for key, p in paths.items():
        print(
            f"{LABELS[key]:46s} {p['save_s'] * 1e3:7.0f}ms {p['load_s'] * 1e3:7.0f}ms {p['total_s'] * 1e3:7.0f}ms "
            f"{p['total_s'] / raw:8.2f}×"
        )
    pickle_ratio = paths["mlo_pickle"]["total_s"] / raw
    per_round = _round_ratios(paths["mlo_pickle"], paths["raw_joblib"])
    verdict = "meets" if pickle_ratio <= TARGET else "misses"
    print(
        f"\nmlo pickle path / raw joblib = {pickle_ratio:.2f}× ({verdict} the {TARGET}× target); per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)}"
    )
    skops = _round_ratios(paths["mlo_default"], paths["raw_skops"])
    print(
        f"mlo default (skops) / raw skops = {paths['mlo_default']['total_s'] / paths['raw_skops']['total_s']:.2f}× "
        f"(the registry's overhead on the safe format); per round {', '.join(f'{r:.2f}' for r in skops)}"
    )
    if mlflow is not None:
        cp = mlflow["mlflow_cloudpickle"]["total_s"] / paths["mlo_pickle"]["total_s"]
        sk = mlflow["mlflow_skops"]["total_s"] / paths["mlo_default"]["total_s"]
        print(f"MLflow {mlflow['version']} / mlo, same format: cloudpickle {cp:.2f}×, skops {sk:.2f}×")
    else:
        print(f"MLflow: not measured ({why}).")
    print(f"medians of {repeats} rounds after a warm-up; model {figures['model_mb']:.1f} MB as a joblib file")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Model registry speed of mlo (and MLflow for comparison).")
    ap.add_argument("--quick", action="store_true", help="a ~10 MB model instead of ~50 MB")
    ap.add_argument("--repeats", type=int, default=3, help="rounds to take the median of (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--mlflow-child", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", choices=list(SIZES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mlflow_child:
        return mlflow_child(args.mlflow_child, args.mode, args.repeats)

    mode = "quick" if args.quick else "full"
    started = now()
    base = Path(tempfile.mkdtemp(prefix="mlo-bench-registry-"))
    try:
        figures = run_mlo(SIZES[mode], args.repeats, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    mlflow, why = (None, "--no-mlflow") if args.no_mlflow else mlflow_in_subprocess(mode, args.repeats)
    print(
        f"\nmlo registry benchmark ({mode}: RandomForest of {figures['trees']} trees; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; fresh folders, SQLite stores)\n"
    )
    report(figures, mlflow, why, args.repeats)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "mode": mode,
                    "repeats": args.repeats,
                    "mlo": figures,
                    "mlflow": mlflow,
                    "mlflow_skipped": why or None,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
