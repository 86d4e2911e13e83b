"""Drift methods: what each one measures, when it counts as drift, and which one ``method="auto"`` picks.

The automatic choice follows the rule most drift tools use, so results stay comparable:

- a reference of at most 1000 values: Kolmogorov–Smirnov for a numeric column with more than 5 distinct values,
  chi-square for a column with more than 2 distinct values, the two-proportion z-test for at most 2;
- a larger reference: the Wasserstein distance normed by the reference's standard deviation (drift at ≥ 0.1) for
  a numeric column with more than 5 distinct values, the Jensen–Shannon distance (drift at ≥ 0.1) otherwise.

"Values" are the reference's non-missing, finite values; distinct values are counted over both samples.
Column kinds are read from the reference's dtype: floats are numeric, integers are numeric above 10 distinct
values and categorical otherwise, booleans and pandas categoricals are categorical, strings are categorical
unless more than half of them (and more than 50) are distinct: free text, not compared unless asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.dtypes import dtype_kind
from ..errors import InvalidInput
from . import statistics as st

SMALL_REFERENCE = 1000  # at most this many reference values: the small-sample tests
FEW_VALUES = 5  # a numeric column with at most this many distinct values is compared as categories
BINARY = 2
INT_CATEGORICAL_MAX = 10  # integer columns with at most this many distinct values are categorical
TEXT_DISTINCT_SHARE = 0.5  # string columns with more distinct values than this share of rows are free text…
TEXT_MIN_DISTINCT = 50  # …and more than this many distinct values

NUMERIC, CATEGORICAL, TEXT, DATETIME, UNSUPPORTED = (
    "numeric",
    "categorical",
    "text",
    "datetime",
    "unsupported",
)


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    kinds: frozenset[str]
    default_threshold: float
    is_test: bool  # True: the score is a p-value, drift when it is below the threshold
    inclusive: bool = False  # p-value tests: drift also at p == threshold
    compute: Callable[[Any], tuple[float, float | None]] | None = None
    profile_ok: bool = True  # computable from a stored profile of the reference

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.is_test:
            if p_value is None or np.isnan(p_value):
                return False
            return p_value <= threshold if self.inclusive else p_value < threshold
        if statistic is None or np.isnan(statistic):
            return False
        return statistic >= threshold


def _ks(pair):
    return pair.ks()


def _wasserstein(pair):
    return pair.wasserstein_normed(), None


def _anderson(pair):
    return pair.anderson()


def _chisquare(pair):
    _, ref, cur = pair.counts()
    return st.chisquare(ref, cur)


def _z(pair):
    keys, ref, cur = pair.counts()
    if len(keys) <= 1:
        return 0.0, 1.0
    first = _first_key(keys)
    # the share of values other than the first (in sorted order) on each side
    return st.two_proportion_z(ref.sum() - ref[first], ref.sum(), cur.sum() - cur[first], cur.sum())


def _first_key(keys) -> int:
    try:
        return int(np.argmin(np.asarray(keys))) if np.asarray(keys).dtype.kind in "biuf" else _min_index(keys)
    except TypeError:
        return _min_index([str(k) for k in keys])


def _min_index(keys) -> int:
    return min(range(len(keys)), key=lambda i: keys[i])


def _shares(pair) -> tuple[np.ndarray, np.ndarray]:
    p, q = pair.binned()
    return p / p.sum(), q / q.sum()


def _js(pair):
    p, q = _shares(pair)
    return st.jensenshannon(p, q), None


def _psi(pair):
    p, q = _shares(pair)
    return st.psi(p, q), None


def _kl(pair):
    p, q = _shares(pair)
    return st.kl(p, q), None


def _hellinger(pair):
    return pair.hellinger(), None


_BOTH = frozenset({NUMERIC, CATEGORICAL})
_NUM = frozenset({NUMERIC})

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "Kolmogorov–Smirnov", _NUM, 0.05, True, inclusive=True, compute=_ks),
        Method("chisquare", "chi-square", _BOTH, 0.05, True, compute=_chisquare),
        Method("z", "two-proportion z", _BOTH, 0.05, True, compute=_z),
        Method("wasserstein", "Wasserstein (normed)", _NUM, 0.1, False, compute=_wasserstein),
        Method("jensenshannon", "Jensen–Shannon", _BOTH, 0.1, False, compute=_js),
        Method("psi", "PSI", _BOTH, 0.1, False, compute=_psi),
        Method("hellinger", "Hellinger", _BOTH, 0.1, False, compute=_hellinger),
        Method("kl", "Kullback–Leibler", _BOTH, 0.1, False, compute=_kl),
        Method("anderson", "Anderson–Darling", _NUM, 0.1, True, compute=_anderson, profile_ok=False),
    )
}
ALIASES = {
    "kl_div": "kl",
    "chi2": "chisquare",
    "chisq": "chisquare",
    "js": "jensenshannon",
    "wd": "wasserstein",
}
P_VALUE_METHODS = tuple(n for n, m in METHODS.items() if m.is_test)


def get_method(name: str) -> Method:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in METHODS:
        raise InvalidInput(f"unknown drift method {name!r}; use 'auto' or one of: {', '.join(METHODS)}")
    return METHODS[key]


def auto_method(kind: str, n_ref: int, n_unique: int) -> Method:
    """The method picked for a column of ``kind`` with ``n_ref`` reference values and ``n_unique`` distinct
    values over both samples."""
    if n_ref <= SMALL_REFERENCE:
        if kind == NUMERIC and n_unique > FEW_VALUES:
            return METHODS["ks"]
        return METHODS["chisquare"] if n_unique > BINARY else METHODS["z"]
    if kind == NUMERIC and n_unique > FEW_VALUES:
        return METHODS["wasserstein"]
    return METHODS["jensenshannon"]


# -- column kinds -----------------------------------------------------------------------------------------------------
_FAMILY = {"boolean": "bool", "complex": "other", "integer": "int", "timedelta": "float", "string": "object"}


def dtype_family(dtype: Any) -> str:
    """category, bool, int, float, datetime, object or other (timedeltas count as numbers)."""
    kind = dtype_kind(dtype)
    return _FAMILY.get(kind, kind)


def infer_kind(series: pd.Series) -> str:
    """The kind of a (reference) column, by the rule in the module docstring."""
    family = dtype_family(series.dtype)
    if family == "float":
        return NUMERIC
    if family == "int":
        return CATEGORICAL if series.nunique(dropna=True) <= INT_CATEGORICAL_MAX else NUMERIC
    if family in ("bool", "category"):
        return CATEGORICAL
    if family == "datetime":
        return DATETIME
    if family == "object":
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "empty":
            return CATEGORICAL
        try:
            distinct = series.nunique(dropna=True)
        except TypeError:  # lists, dicts
            return UNSUPPORTED
        if inferred == "string" and distinct > max(TEXT_DISTINCT_SHARE * series.count(), TEXT_MIN_DISTINCT):
            return TEXT
        return CATEGORICAL
    return UNSUPPORTED


def kind_from_profile(prof: dict) -> str:
    """The same rule, read from a stored column profile (see :mod:`mlo.data.profile`)."""
    kind, dtype = prof.get("kind"), str(prof.get("dtype", ""))
    distinct = prof.get("distinct") or 0
    n_valid = (prof.get("count") or 0) - (prof.get("nulls") or 0)
    if kind == "numeric":
        is_int = dtype.lower().lstrip("u").startswith("int")
        return CATEGORICAL if is_int and distinct <= INT_CATEGORICAL_MAX else NUMERIC
    text = distinct > max(TEXT_DISTINCT_SHARE * n_valid, TEXT_MIN_DISTINCT)
    if kind in ("boolean", "categorical"):
        return TEXT if kind == "categorical" and dtype != "category" and text else CATEGORICAL
    if kind == "text":
        return TEXT if text else CATEGORICAL
    if kind == "datetime":
        return DATETIME
    return UNSUPPORTED
