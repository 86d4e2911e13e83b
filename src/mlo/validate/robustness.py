"""Robustness: do predictions survive small, realistic damage to the inputs?

Three perturbations, each on a fixed-seed sample of rows and each a row of the report: Gaussian noise on numeric
columns (scaled by each column's standard deviation), missing values injected into every column, and categories
swapped for another category the column has. The unperturbed predictions are the shared ones, so each
perturbation costs one ``predict`` on the sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.profile import kind_of
from ..errors import InvalidInput
from .base import Check, number
from .context import Context
from .report import CheckResult

PERTURBATIONS = ("noise", "missing", "swap")


def _numeric_cols(df: pd.DataFrame, cols: list) -> list:
    return [c for c in cols if kind_of(df[c].dtype) == "numeric"]


def _category_cols(df: pd.DataFrame, cols: list) -> list:
    return [c for c in cols if kind_of(df[c].dtype) in ("categorical", "boolean", "text")]


def add_noise(X: Any, cols: list, scale: float, rng: np.random.Generator) -> Any:
    """Gaussian noise of ``scale`` × each column's standard deviation; integer columns stay integer."""
    if isinstance(X, np.ndarray):
        out = X.astype(np.float64, copy=True)
        std = np.nanstd(out[:, cols], axis=0)
        out[:, cols] += rng.standard_normal((len(out), len(cols))) * (scale * std)
        return out.astype(X.dtype) if X.dtype.kind in "iu" else out
    out = X.copy()
    for c in cols:
        s = out[c]
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        std = float(np.nanstd(arr)) if np.isfinite(arr).any() else 0.0
        noisy = arr + rng.standard_normal(len(arr)) * (scale * std)
        if s.dtype.kind in "iu":
            noisy = np.rint(noisy).astype(s.dtype)
        out[c] = noisy
    return out


def inject_missing(X: Any, cols: list, share: float, rng: np.random.Generator) -> Any:
    """``share`` of the cells of each column set missing."""
    if isinstance(X, np.ndarray):
        out = X.astype(np.float64, copy=True)
        mask = rng.random((len(out), len(cols))) < share
        sub = out[:, cols]
        sub[mask] = np.nan
        out[:, cols] = sub
        return out
    out = X.copy()
    for c in cols:
        mask = rng.random(len(out)) < share
        s = out[c]
        # integers and booleans take a nullable dtype, so the column keeps its kind (a signature still accepts it)
        if s.dtype.kind in "iu":
            s = s.astype("Int64")
        elif s.dtype.kind == "b":
            s = s.astype("boolean")
        out[c] = s.mask(mask)
    return out


def swap_categories(X: pd.DataFrame, cols: list, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """``share`` of the rows of each categorical column get another category seen in that column."""
    out = X.copy()
    for c in cols:
        s = out[c]
        codes, uniques = pd.factorize(s)
        k = len(uniques)
        if k < 2:
            continue
        mask = (rng.random(len(s)) < share) & (codes >= 0)
        shift = rng.integers(1, k, size=int(mask.sum()))
        new_codes = codes.copy()
        new_codes[mask] = (codes[mask] + shift) % k  # never the same category
        swapped = pd.Series(uniques.take(np.maximum(new_codes, 0)), index=s.index, name=c)
        swapped = swapped.where(codes >= 0, s)
        out[c] = swapped.astype(s.dtype) if isinstance(s.dtype, pd.CategoricalDtype) else swapped
    return out


class Robustness(Check):
    """Prediction agreement under perturbation (see :func:`mlo.checks.robustness`)."""

    kind = "robustness"

    def __init__(
        self,
        *,
        noise=0.1,
        missing=0.05,
        swap=0.05,
        min_agreement=0.95,
        columns=None,
        max_rows=100_000,
        tolerance=0.1,
        seed=0,
        name=None,
    ):
        super().__init__(name)
        self.noise = None if noise is None else number(noise, "robustness noise", low=0.0)
        self.missing = None if missing is None else number(missing, "robustness missing", low=0.0, high=1.0)
        self.swap = None if swap is None else number(swap, "robustness swap", low=0.0, high=1.0)
        if not any((self.noise, self.missing, self.swap)):
            raise InvalidInput("robustness: noise, missing and swap are all off; set at least one above 0")
        self.min_agreement = number(min_agreement, "robustness min_agreement", low=0.0, high=1.0)
        self.columns = None if columns is None else list(columns)
        self.max_rows = int(number(max_rows, "robustness max_rows", low=1))
        self.tolerance = number(tolerance, "robustness tolerance", low=0.0)
        self.seed = int(seed)

    def _sample(self, ctx: Context, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        n = ctx.n_rows
        if n <= self.max_rows:
            return ctx.X, np.arange(n)
        idx = np.sort(rng.choice(n, self.max_rows, replace=False))
        X = ctx.X.iloc[idx] if isinstance(ctx.X, pd.DataFrame) else ctx.X[idx]
        return X, idx

    def _columns(self, ctx: Context) -> list:
        if isinstance(ctx.X, pd.DataFrame):
            cols = list(ctx.X.columns)
            if self.columns is not None:
                missing = [c for c in self.columns if c not in ctx.X.columns]
                if missing:
                    raise InvalidInput(f"robustness: columns {missing} are not in X (it has {cols[:10]}…)")
                cols = self.columns
            return cols
        width = ctx.X.shape[1]
        cols = list(range(width)) if self.columns is None else self.columns
        if any(not isinstance(c, (int, np.integer)) or not 0 <= c < width for c in cols):
            raise InvalidInput(f"robustness: X is an array; columns must be positions 0..{width - 1}")
        return cols

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        rng = np.random.default_rng(self.seed)
        X, idx = self._sample(ctx, rng)
        base = ctx.y_pred[idx]
        cols = self._columns(ctx)
        frame = isinstance(X, pd.DataFrame)
        if frame:
            numeric, categories = _numeric_cols(X, cols), _category_cols(X, cols)
        else:
            numeric = cols if np.asarray(X).dtype.kind in "fiu" else []
            categories = []
        classify = ctx.is_classifier
        spread = float(np.nanstd(base.astype(np.float64))) if not classify else 0.0
        rows = []
        plans = [
            ("noise", self.noise, numeric, lambda: add_noise(X, numeric, self.noise, rng), "numeric"),
            ("missing", self.missing, cols, lambda: inject_missing(X, cols, self.missing, rng), ""),
            (
                "swap",
                self.swap,
                categories,
                lambda: swap_categories(X, categories, self.swap, rng),
                "categorical",
            ),
        ]
        for what, amount, target, perturb, kind in plans:
            if not amount:
                continue
            name = self.row_name(f"robustness.{what}", what)
            data = {
                "perturbation": what,
                "amount": amount,
                "rows": len(idx),
                "columns": [str(c) for c in target],
            }
            if not target:
                rows.append(
                    self.row(name, None, ">=", self.min_agreement, f"skipped: no {kind} columns", data, None)
                )
                continue
            try:
                pred = ctx.predict(perturb(), purpose=f"predict[{what}]")
            except (
                Exception
            ) as exc:  # a model that breaks on damaged input fails the check: that is the finding
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                detail = f"the model raised {type(exc).__name__} on {what} input: {first}"[:300]
                rows.append(self.row(name, 0.0, ">=", self.min_agreement, detail, data))
                continue
            if classify:
                agree = pred == base
            else:
                agree = np.abs(pred.astype(np.float64) - base.astype(np.float64)) <= self.tolerance * spread
            value = float(agree.mean())
            data["changed"] = int((~agree).sum())
            detail = f"{data['changed']} of {len(idx)} predictions changed ({what} {amount:g} on {len(target)} columns)"
            rows.append(self.row(name, value, ">=", self.min_agreement, detail, data))
        return rows
