"""Speed of ``mlo.validate``, against the model's own predict calls and against fairlearn's MetricFrame.

1. ``mlo.validate`` with six checks on 1,000,000 rows — a threshold (ROC AUC), no regression against a champion
   (ROC AUC), slices by region (accuracy), fairness by sex (demographic parity difference and ratio, equalized
   odds difference), robustness (noise, missing values, category swaps on a 100,000-row sample) and data checks
   against the training frame — with the report stored in a fresh workspace. The anchor is the time of the model
   calls those checks need, made directly: the candidate's ``predict`` and ``predict_proba`` on all rows, the
   champion's ``predict_proba`` on all rows, and one ``predict`` per perturbed sample. Target: validate ≤ 3× that.
2. The fairness numbers alone on the same predictions: mlo's check against one fairlearn ``MetricFrame`` with
   selection rate, TPR and FPR by group, read out as demographic parity difference and ratio and equalized odds
   difference (``difference()``/``ratio()``: the numbers fairlearn's functions of those names return). The
   numbers are compared too.

Every figure is the median of 3 runs. Run from the repository root:

    .venv/bin/python benchmarks/validation.py              # 1M rows, about 2 minutes on 2 cores
    .venv/bin/python benchmarks/validation.py --rows 100000
    .venv/bin/python benchmarks/validation.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

REPEATS = 3


def make_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    sex = pd.Series(rng.choice(["F", "M"], n), name="sex")
    X = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n),
            "charges": rng.normal(np.where(sex == "F", 78.0, 62.0), 20.0),
            "calls": rng.poisson(3.0, n),
            "usage": rng.gamma(2.0, 10.0, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            "payment": rng.choice(["card", "bank", "check", "wallet"], n),
        }
    )
    score = (X.charges - 70) / 20 - (X.tenure - 36) / 20 + (X.calls - 3) / 3 + np.where(sex == "F", 0.5, -0.5)
    y = np.array(score + rng.normal(0, 0.7, n) > 0, dtype=int)
    south = (X.region == "south").to_numpy()
    y[south] = rng.integers(0, 2, int(south.sum()))
    return X, y, sex


def make_model(X: pd.DataFrame, y: np.ndarray, C: float):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["tenure", "charges", "calls", "usage"]
    categorical = ["region", "plan", "payment"]
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), numeric),
        (
            make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
            categorical,
        ),
    )
    return make_pipeline(pre, LogisticRegression(C=C, max_iter=1000)).fit(X, y)


def median_time(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_validate(X, y, sex, model, champion, train) -> dict:
    import mlo
    from mlo import checks, workspace
    from mlo.validate.robustness import Robustness, add_noise, inject_missing, swap_categories

    robust = dict(noise=0.1, missing=0.05, swap=0.05, max_rows=100_000, seed=0)

    def suite():
        return [
            checks.threshold("roc_auc", 0.75),
            checks.no_regression(champion, "roc_auc", tolerance=0.01),
            checks.slices("region", "accuracy", max_gap=0.1),
            checks.fairness(sex),
            checks.robustness(**robust),
            checks.data(reference=train),
        ]

    # the perturbed samples the robustness check predicts on, rebuilt the same way (not timed)
    r = Robustness(**robust)
    rng = np.random.default_rng(robust["seed"])
    n = len(X)
    idx = (
        np.sort(rng.choice(n, robust["max_rows"], replace=False)) if n > robust["max_rows"] else np.arange(n)
    )
    Xs = X.iloc[idx]
    cols = list(X.columns)
    numeric = [c for c in cols if X[c].dtype.kind in "iuf"]
    categorical = [c for c in cols if c not in numeric]
    perturbed = [
        add_noise(Xs, numeric, r.noise, rng),
        inject_missing(Xs, cols, r.missing, rng),
        swap_categories(Xs, categorical, r.swap, rng),
    ]

    def model_calls():
        model.predict(X)
        model.predict_proba(X)
        champion.predict_proba(X)
        for p in perturbed:
            model.predict(p)

    # direct calls and validate take turns, so a busy machine slows both alike
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLO_HOME"] = home
        workspace.reset_cache()
        mlo.init(home)
        direct, whole = [], []
        for _ in range(REPEATS):
            t, _ = median_time(model_calls, 1)
            direct.append(t)
            t, rep = median_time(lambda: mlo.validate(model, X, y, checks=suite()), 1)
            whole.append(t)
        calls = rep.timing["calls"]
        del os.environ["MLO_HOME"]
        workspace.reset_cache()
    t_predict, t_validate = statistics.median(direct), statistics.median(whole)
    return {
        "rows": n,
        "checks": 6,
        "report_rows": len(rep.rows),
        "passed": rep.passed,
        "validate_s": t_validate,
        "predict_s": t_predict,
        "ratio": t_validate / t_predict,
        "ratios": [w / d for w, d in zip(whole, direct, strict=True)],
        "inside_predict_s": sum(c["seconds"] for c in calls),
        "calls": [(c["model"], c["method"], c["rows"]) for c in calls],
        "verdicts": {r.name: r.status for r in rep.rows},
    }


def bench_fairness(y, sex, pred) -> dict:
    import mlo
    from mlo import checks

    class Predictions:  # predictions already made: only the fairness arithmetic is timed
        def __init__(self, p):
            self.p = p
            self.classes_ = np.array([0, 1])

        def predict(self, X):
            return self.p

    X = pd.DataFrame({"row": np.arange(len(y))})
    model = Predictions(pred)

    def ours():
        return mlo.validate(model, X, y, checks=[checks.fairness(sex)], store=False)

    t_mlo, rep = median_time(ours)
    out = {"mlo_s": t_mlo}
    mine = {r.name.rsplit(".", 1)[-1]: r.value for r in rep.rows}
    try:
        from fairlearn import metrics as fl
    except ImportError:
        out["fairlearn"] = "not installed (pip install fairlearn)"
        return out

    def theirs():
        # one MetricFrame holds every group rate; the three numbers are its differences and ratios (the same
        # numbers fairlearn's demographic_parity_* and equalized_odds_difference functions return)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mf = fl.MetricFrame(
                metrics={
                    "selection_rate": fl.selection_rate,
                    "tpr": fl.true_positive_rate,
                    "fpr": fl.false_positive_rate,
                },
                y_true=y,
                y_pred=pred,
                sensitive_features=sex,
            )
            diff, ratio = mf.difference(), mf.ratio()
            return {
                "table": mf.by_group,
                "demographic_parity_difference": diff["selection_rate"],
                "demographic_parity_ratio": ratio["selection_rate"],
                "equalized_odds_difference": max(diff["tpr"], diff["fpr"]),
            }

    t_fl, res = median_time(theirs)
    out.update(
        fairlearn_s=t_fl,
        speedup=t_fl / t_mlo,
        max_abs_difference=max(abs(mine[k] - float(res[k])) for k in mine),
        values=mine,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    X, y, sex = make_data(args.rows)
    fit_rows = min(args.rows, 100_000)
    train = X.iloc[:fit_rows]
    model = make_model(train, y[:fit_rows], C=1.0)
    champion = make_model(
        train[["tenure", "charges", "region", "plan", "payment", "calls", "usage"]], y[:fit_rows], C=0.01
    )
    print(
        f"data and models ready in {time.perf_counter() - t0:.1f} s ({args.rows:,} rows, fit on {fit_rows:,})"
    )

    v = bench_validate(X, y, sex, model, champion, train)
    print("\nmlo.validate, 6 checks (median of 3)")
    print(f"  validate                         {v['validate_s']:8.3f} s   ({v['report_rows']} report rows)")
    print(f"  the model calls it needs, direct {v['predict_s']:8.3f} s")
    print(
        f"  ratio                            {v['ratio']:8.2f} x   (target <= 3; per run: "
        f"{', '.join(f'{r:.2f}' for r in v['ratios'])})"
    )
    print(
        f"  of which model calls inside      {v['inside_predict_s']:8.3f} s; checks and storing "
        f"{v['validate_s'] - v['inside_predict_s']:.3f} s"
    )
    print("  calls: " + ", ".join(f"{m}.{meth}({rows:,})" for m, meth, rows in v["calls"]))

    f = bench_fairness(y, sex, model.predict(X))
    print("\nfairness numbers on the same predictions (median of 3)")
    print(f"  mlo checks.fairness              {f['mlo_s']:8.3f} s")
    if "fairlearn_s" in f:
        print(f"  fairlearn MetricFrame            {f['fairlearn_s']:8.3f} s")
        print(
            f"  mlo is {f['speedup']:.1f}x faster; largest difference in the numbers {f['max_abs_difference']:.1e}"
        )
    else:
        print(f"  fairlearn: {f['fairlearn']}")
    print(
        f"\nload average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} cores"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"validate": v, "fairness": f}, indent=2, default=str))


if __name__ == "__main__":
    main()
