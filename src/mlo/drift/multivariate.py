"""Multivariate drift: a domain classifier that tries to tell reference rows from current rows.

If no model can separate the two samples better than chance, they come from the same joint distribution as far
as the model can see. The model is an L2-regularized logistic regression over features that let it see shape,
not only location: each numeric column standardized, one-hot in reference deciles and flagged when missing;
pairwise products of up to 10 numeric columns (so a change of correlation shows); each categorical column one-hot
over its 20 most frequent values. Equal samples of both sides (at most 10,000 rows each) are scored out of fold
(2-fold cross-fitting); the score is the ROC AUC of those held-out predictions, tested against 0.5 with the
Mann–Whitney U test. Drift: AUC ≥ ``threshold`` (default 0.55) and p < 0.05.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from .methods import CATEGORICAL, NUMERIC, infer_kind

MAX_ROWS = 10_000
DECILES = np.linspace(0.1, 0.9, 9)
TOP_VALUES = 20
MAX_PAIRS_COLUMNS = 10
DEFAULT_AUC = 0.55
P_LEVEL = 0.05
SEED = 0


def _features(ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]) -> np.ndarray:
    both = pd.concat([ref[columns], cur[columns]], ignore_index=True)
    blocks: list[np.ndarray] = []
    numeric: list[np.ndarray] = []
    for name in columns:
        kind = infer_kind(ref[name])
        col = both[name]
        if kind == NUMERIC:
            x = np.array(col.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
            x[~np.isfinite(x)] = np.nan
            r = x[: len(ref)]
            r = r[np.isfinite(r)]
            if r.size == 0:
                continue
            mu, sd = r.mean(), r.std() or 1.0
            z = np.nan_to_num((x - mu) / sd)
            numeric.append(z)
            cuts = np.unique(np.quantile(r, DECILES))
            bins = np.searchsorted(cuts, np.nan_to_num(x, nan=np.inf), side="right")
            blocks.append(
                np.column_stack([z, np.eye(cuts.size + 1)[np.minimum(bins, cuts.size)], np.isnan(x)])
            )
        elif kind == CATEGORICAL:
            values = col.astype(object)
            top = values.value_counts(dropna=True).index[:TOP_VALUES]
            onehot = np.column_stack(
                [(values == v).to_numpy(dtype=np.float64) for v in top] or [np.zeros(len(both))]
            )
            blocks.append(np.column_stack([onehot, values.isna().to_numpy(dtype=np.float64)]))
    for a, b in itertools.combinations(numeric[:MAX_PAIRS_COLUMNS], 2):
        blocks.append((a * b)[:, None])
    if not blocks:
        return np.zeros((len(both), 0))
    X = np.column_stack(blocks)
    keep = X.std(axis=0) > 0
    return np.column_stack([X[:, keep], np.ones(len(X))])


def _fit(X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    s = 2.0 * y - 1.0

    def loss(w):
        m = s * (X @ w)
        value = np.logaddexp(0.0, -m).sum() + 0.5 * l2 * (w[:-1] @ w[:-1])
        g = -(X.T @ (s * special.expit(-m)))
        g[:-1] += l2 * w[:-1]
        return value, g

    res = optimize.minimize(
        loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 100, "gtol": 1e-4}
    )
    return res.x


def _one_blas_thread():
    """Small matrix-vector products run faster on one BLAS thread than on several waiting for each other."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the fits are only slower
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def domain_classifier(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str], threshold: float = DEFAULT_AUC
) -> dict[str, Any]:
    """Out-of-fold ROC AUC of a reference-vs-current classifier, its p-value and the drift verdict."""
    rng = np.random.default_rng(SEED)
    n = min(len(ref), len(cur), MAX_ROWS)
    out = {"method": "domain_classifier", "threshold": threshold, "rows": n, "columns": len(columns)}
    if n < 10 or not columns:
        return {
            **out,
            "statistic": None,
            "p_value": None,
            "drifted": False,
            "note": "too few rows or columns",
        }
    r = ref.iloc[np.sort(rng.choice(len(ref), n, replace=False))].reset_index(drop=True)
    c = cur.iloc[np.sort(rng.choice(len(cur), n, replace=False))].reset_index(drop=True)
    X = _features(r, c, columns)
    y = np.concatenate([np.zeros(n), np.ones(n)])
    if X.shape[1] <= 1:
        return {**out, "statistic": 0.5, "p_value": 1.0, "drifted": False, "note": "no usable features"}
    fold = rng.permutation(2 * n) % 2
    scores = np.empty(2 * n)
    with _one_blas_thread():
        for k in (0, 1):
            w = _fit(X[fold != k], y[fold != k])
            scores[fold == k] = X[fold == k] @ w
    u, p = stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    auc = float(u) / (n * n)
    return {**out, "statistic": auc, "p_value": float(p), "drifted": bool(auc >= threshold and p < P_LEVEL)}
