"""scikit-learn hyperparameter searches (``GridSearchCV``, ``RandomizedSearchCV``, the successive-halving ones,
any ``BaseSearchCV``): the search is the parent run, each candidate a child run.

The parent holds the search's params, the best params (``best_<name>``), ``best_cv_score``, the training
metrics and model of the refitted best estimator, and ``cv_results.csv``. A child holds the estimator's params
with the candidate's values, the ``mean_*``/``std_*``/``rank_*`` columns of its ``cv_results_`` row as metrics
and the per-fold scores as step histories (``test_score`` at step = fold). A successive-halving candidate that
ran in several iterations is one child whose ``mean_test_score`` history has one point per iteration.
At most ``max_tuning_runs`` children are made, the best-ranked first; the tag ``mlo.sweep.logged`` says how
many of ``mlo.sweep.candidates``.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

from ..fit_run import FitRun
from .sklearn import record_training_metrics

_SPLIT = re.compile(r"^split(\d+)_(.+)$")


def is_search(est: Any) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(est, BaseSearchCV)


def record_search(rec: FitRun, search: Any, X: Any, y: Any, weight: Any) -> None:
    results = getattr(search, "cv_results_", None)
    rec.set_tags({"mlo.sweep": type(search).__name__})
    if results is None:
        return
    with rec.attempt("store cv_results.csv"):
        import pandas as pd

        buf = io.StringIO()
        pd.DataFrame(results).to_csv(buf, index=False)
        rec.log_bytes(buf.getvalue().encode(), "cv_results.csv")
    best = getattr(search, "best_params_", None)
    if isinstance(best, dict):
        rec.log_params({f"best_{k}": v for k, v in best.items()})
    if hasattr(search, "best_score_"):
        rec.log_metrics({"best_cv_score": search.best_score_})
    if hasattr(search, "best_estimator_"):
        output = record_training_metrics(rec, search, X, y, weight)
        rec.log_model(search.best_estimator_, X=X, output=output)
    with rec.attempt("record the candidates"):
        record_candidates(rec, search, results)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isinf(number) else number


def _rank_column(search: Any, results: dict) -> str | None:
    refit = getattr(search, "refit", True)
    if isinstance(refit, str) and f"rank_test_{refit}" in results:
        return f"rank_test_{refit}"
    if "rank_test_score" in results:
        return "rank_test_score"
    return next((k for k in results if k.startswith("rank_test_")), None)


def record_candidates(rec: FitRun, search: Any, results: dict) -> None:
    candidates = list(results["params"])
    groups: dict[str, list[int]] = {}  # one candidate: its rows (several in a successive-halving search)
    for i, params in enumerate(candidates):
        groups.setdefault(json.dumps(params, sort_keys=True, default=repr), []).append(i)
    rank_column = _rank_column(search, results)

    def best_rank(rows: list[int]) -> float:
        if rank_column is None:
            return rows[0]
        ranks = [_number(results[rank_column][i]) for i in rows]
        return min((r for r in ranks if r is not None and not math.isnan(r)), default=math.inf)

    order = sorted(groups.values(), key=lambda rows: (best_rank(rows), rows[0]))
    cap = rec.options.max_tuning_runs
    chosen = order if cap is None else order[:cap]
    base: dict[str, Any] = {}
    with rec.attempt("read the searched estimator's params"):
        base = search.estimator.get_params(deep=True)
    label = type(getattr(search, "estimator", search)).__name__
    iterations = results.get("iter")
    columns = [k for k in results if k != "params" and not k.startswith("param_")]
    for rows in chosen:
        rows = sorted(rows, key=lambda i: (iterations[i] if iterations is not None else 0, i))
        last = rows[-1]
        metrics, histories = {}, {}
        for column in columns:
            split = _SPLIT.match(column)
            if split:  # per-fold scores of the last evaluation: a history over folds
                value = _number(results[column][last])
                if value is not None:
                    histories.setdefault(split.group(2), {})[int(split.group(1))] = value
            elif column.startswith(("mean_", "std_", "rank_")) or column == "n_resources":
                if iterations is not None and len(rows) > 1:  # one point per halving iteration
                    points = {int(iterations[i]): _number(results[column][i]) for i in rows}
                    histories[column] = {k: v for k, v in points.items() if v is not None}
                else:
                    value = _number(results[column][last])
                    if value is not None:
                        metrics[column] = value
        rank = best_rank(rows)
        rec.child(
            f"{label} #{rows[0]}",
            params={**base, **candidates[rows[0]]},
            metrics=metrics,
            histories=histories,
            tags={
                "mlo.candidate": rows[0],
                **({"mlo.rank": int(rank)} if math.isfinite(rank) else {}),
            },
        )
    rec.set_tags({"mlo.sweep.candidates": len(order), "mlo.sweep.logged": len(chosen)})
