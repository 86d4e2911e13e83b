"""Comparing one column: kind, edge cases, method, statistic, missing values and new categories."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from . import statistics as st
from .mergeable import ACCURACY, ColumnSketch
from .methods import (
    CATEGORICAL,
    DATETIME,
    NUMERIC,
    TEXT,
    UNSUPPORTED,
    Method,
    auto_method,
    dtype_family,
    get_method,
    infer_kind,
    kind_from_profile,
)
from .report import ColumnResult
from .samples import CategoricalPair, NumericPair, categorical_side, numeric_side
from .sketched import kind_of
from .sketched import pair as sketch_pair
from .sketches import OTHER, NotComputable, reference_pair

MISSING_P = 0.05  # a missing-rate change must also be significant at this level
UNSEEN_SHOWN = 3

_GROUPS = {"int": "number", "float": "number", "bool": "number", "object": "text", "datetime": "datetime"}
_PROFILE_GROUPS = {"numeric": "number", "boolean": "number", "text": "text", "datetime": "datetime"}


@dataclass(frozen=True)
class Spec:
    """How to compare: the user's method and threshold choices, resolved per column."""

    method: str | dict = "auto"
    threshold: float | dict | None = None
    missing_threshold: float | None = 0.05

    def method_for(self, name: str) -> Method | None:
        m = self.method.get(name, "auto") if isinstance(self.method, dict) else self.method
        return None if m in (None, "auto") else get_method(m)

    def explicit(self, name: str) -> bool:
        return isinstance(self.method, dict) and self.method.get(name, "auto") not in (None, "auto")

    def threshold_for(self, name: str, method: Method) -> float:
        t = self.threshold.get(name) if isinstance(self.threshold, dict) else self.threshold
        return method.default_threshold if t is None else float(t)


def _fmt_value(v: Any) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 24 else text[:21] + "…"


def missing_drift(miss_r: int, rows_r: int, miss_c: int, rows_c: int, tolerance: float | None) -> bool:
    """True when the share of missing values moved by at least ``tolerance`` and significantly so."""
    if tolerance is None or rows_r == 0 or rows_c == 0:
        return False
    if abs(miss_c / rows_c - miss_r / rows_r) < tolerance:
        return False
    return st.two_proportion_z(miss_r, rows_r, miss_c, rows_c)[1] < MISSING_P


def _type_changed(ref_group: str | None, cur_family: str, cur_all_missing: bool) -> str | None:
    cur_group = _GROUPS.get(cur_family)
    if ref_group is None or cur_group is None or ref_group == cur_group or cur_all_missing:
        return None
    return f"{ref_group} in the reference, {cur_group} in the current data"


class ColumnComparison:
    """Compares one column; :meth:`run` returns its :class:`ColumnResult` and never raises for data reasons."""

    def __init__(
        self,
        name: str,
        role: str,
        ref: pd.Series | dict | ColumnSketch,
        cur: pd.Series | ColumnSketch,
        spec: Spec,
        accuracy: float = ACCURACY,
    ):
        self.name, self.role, self.ref, self.cur, self.spec = name, role, ref, cur, spec
        self.profile_mode = isinstance(ref, dict)
        self.sketch_mode = isinstance(cur, ColumnSketch)  # both sides are mergeable sketches
        self.accuracy = accuracy
        self.notes: list[str] = []

    # -- entry --------------------------------------------------------------------------------------------------
    def run(self) -> ColumnResult:
        rows_cur = self.cur.rows if self.sketch_mode else len(self.cur)
        r = ColumnResult(column=self.name, kind="?", role=self.role, rows_cur=rows_cur)
        try:
            self._run(r)
        except (InvalidInput, KeyboardInterrupt):
            raise
        except NotComputable as exc:
            r.status, r.drifted = "error", False
            self.notes.append(str(exc))
        except Exception as exc:  # a column that cannot be compared must not sink the whole report
            r.status, r.drifted = "error", False
            self.notes.append(f"could not compare: {type(exc).__name__}: {exc}")
        r.note = "; ".join(n for n in self.notes if n)
        return r

    def _run(self, r: ColumnResult) -> None:
        method = self.spec.method_for(self.name)
        explicit = self.spec.explicit(self.name)
        if self.profile_mode:
            prof = self.ref
            r.rows_ref = int(prof.get("count") or 0)
            miss_r = int(prof.get("nulls") or 0)
            kind = kind_from_profile(prof)
            ref_group = _PROFILE_GROUPS.get(prof.get("kind")) if r.rows_ref > miss_r else None
        elif self.sketch_mode:
            r.rows_ref, miss_r = self.ref.rows, self.ref.missing
            ref_all_nan = miss_r == r.rows_ref
            kind = kind_of(self.cur if ref_all_nan else self.ref)
            ref_group = None if ref_all_nan else _GROUPS.get(self.ref.family)
        else:
            r.rows_ref = len(self.ref)
            miss_r = int(self.ref.isna().sum())
            ref_all_nan = miss_r == r.rows_ref
            kind = infer_kind(self.cur if ref_all_nan else self.ref)
            ref_group = None if ref_all_nan else _GROUPS.get(dtype_family(self.ref.dtype))
        if self.sketch_mode:
            miss_c, cur_family = self.cur.missing, self.cur.family
        else:
            miss_c, cur_family = int(self.cur.isna().sum()), dtype_family(self.cur.dtype)
        r.missing_ref = miss_r / r.rows_ref if r.rows_ref else math.nan
        r.missing_cur = miss_c / r.rows_cur if r.rows_cur else math.nan

        if explicit:  # a method given for the column decides how its values are read
            if kind in (TEXT, UNSUPPORTED):
                kind = CATEGORICAL
            if kind == DATETIME:
                kind = NUMERIC
            if kind not in method.kinds:
                raise InvalidInput(
                    f"method {method.name!r} compares {' or '.join(sorted(method.kinds))} columns; "
                    f"column {self.name!r} is {kind}: pick another method for it or leave it to 'auto'"
                )
        elif method is not None and kind not in method.kinds:  # one method for all: only where it fits
            if kind in (NUMERIC, CATEGORICAL):
                self.notes.append(f"{method.name} does not fit {kind} columns: method picked automatically")
            method = None
        r.kind = kind

        if r.rows_ref == 0 or r.rows_cur == 0:
            r.status = "empty"
            self.notes.append("no rows in the " + ("reference" if r.rows_ref == 0 else "current data"))
            return
        changed = _type_changed(ref_group, cur_family, miss_c == r.rows_cur)
        if changed:
            r.status, r.drifted = "type_changed", True
            self.notes.append(f"type changed: {changed}")
            return
        if kind in (TEXT, DATETIME, UNSUPPORTED):
            r.status = "skipped"
            why = {
                TEXT: "free text (most values distinct)",
                DATETIME: "datetime",
                UNSUPPORTED: "values that cannot be compared",
            }[kind]
            self.notes.append(f"{why}: not compared; give a method for it to compare anyway")
            return

        r.missing_drift = missing_drift(miss_r, r.rows_ref, miss_c, r.rows_cur, self.spec.missing_threshold)
        if r.missing_drift:
            self.notes.append(f"missing values {r.missing_ref:.1%} → {r.missing_cur:.1%}")

        pair = self._pair(kind)
        n_ref, n_cur = _valid(pair)
        infinite = getattr(pair.ref, "infinite", 0) + getattr(pair.cur, "infinite", 0)
        if infinite:
            self.notes.append(f"{infinite} infinite values left out")
        if n_ref == 0 or n_cur == 0:
            r.status = "all_nan"
            both = n_ref == 0 and n_cur == 0
            side = "both samples" if both else ("the reference" if n_ref == 0 else "the current data")
            self.notes.append(f"no values in {side}: only missing-value rates compared")
            r.drifted = r.missing_drift
            return

        n_unique = pair.n_unique
        if method is None:
            method = auto_method(kind, n_ref, n_unique)
        if self.profile_mode and not method.profile_ok:
            raise NotComputable(f"{method.name} needs the reference values: use mode='exact'")
        r.method = method.name
        r.threshold = self.spec.threshold_for(self.name, method)
        stat, p = method.compute(pair)
        r.statistic = float(stat)
        r.p_value = math.nan if p is None else float(p)
        r.value_drift = method.drifted(r.statistic, r.p_value, r.threshold)
        bound = getattr(pair, "error_bound", math.nan)
        if math.isfinite(bound):
            r.error_bound = float(bound)
            if method.is_test:  # the range of the exact p-value
                lo, hi = getattr(pair, "p_values", (r.p_value, r.p_value))
                unsure = method.drifted(r.statistic, lo, r.threshold) != method.drifted(
                    r.statistic, hi, r.threshold
                )
            else:
                unsure = abs(r.statistic - r.threshold) <= bound
            if unsure:
                self.notes.append(
                    "the threshold lies within the error bound: the verdict may differ from exact"
                )
        r.drifted = bool(r.value_drift or r.missing_drift)

        if n_unique == 1:
            r.status = "constant"
            self.notes.append("one and the same value on both sides")
        elif min(n_ref, n_cur) == 1:
            r.status = "single_row"
            self.notes.append("a single value on one side: the comparison has almost no power")
        if isinstance(pair, CategoricalPair):
            self._unseen(r, pair)
        if pair.approximate:
            r.exact = False
            self.notes.append(f"approximate: {pair.approximate}")
        r.plot = pair.plot()

    def _pair(self, kind: str):
        if self.profile_mode:
            return reference_pair(self.ref, kind, self.cur)
        if self.sketch_mode:
            return sketch_pair(self.ref, self.cur, kind, self.accuracy)
        if kind == NUMERIC:
            return NumericPair(numeric_side(self.ref), numeric_side(self.cur))
        return CategoricalPair(categorical_side(self.ref), categorical_side(self.cur))

    def _unseen(self, r: ColumnResult, pair: CategoricalPair) -> None:
        values, share = pair.unseen()
        values = [v for v in values if not (isinstance(v, str) and v == OTHER)]
        if not values:
            return
        r.unseen = len(values)
        shown = ", ".join(_fmt_value(v) for v in values[:UNSEEN_SHOWN])
        more = f" and {len(values) - UNSEEN_SHOWN} more" if len(values) > UNSEEN_SHOWN else ""
        label = "new value" if len(values) == 1 else "new values"
        self.notes.append(f"{len(values)} {label} ({share:.1%} of rows): {shown}{more}")


def _valid(pair) -> tuple[int, int]:
    """Non-missing, finite values on each side."""
    ref_n = pair.n_ref if hasattr(pair, "n_ref") else pair.ref.n
    return int(round(ref_n)), int(round(pair.cur.n))


def with_missing_column(name: str, role: str, rows_ref: int) -> ColumnResult:
    return ColumnResult(
        column=name,
        kind="?",
        role=role,
        status="missing_column",
        drifted=True,
        rows_ref=rows_ref,
        note="absent from the current data",
    )


def apply_correction(results: list[ColumnResult], correction: str | None) -> None:
    """Adjust the p-values of the feature tests for multiple testing and re-decide their drift flags."""
    if correction is None:
        return
    tested = [r for r in results if r.role == "feature" and r.method and get_method(r.method).is_test]
    tested = [r for r in tested if not np.isnan(r.p_value)]
    if not tested:
        return
    adjusted = st.CORRECTIONS[correction](np.array([r.p_value for r in tested]))
    for r, p in zip(tested, adjusted, strict=True):
        r.p_adjusted = float(p)
        m = get_method(r.method)
        r.value_drift = m.drifted(r.statistic, r.p_adjusted, r.threshold)
        r.drifted = bool(r.value_drift or r.missing_drift)
