"""Fairness across the groups of a sensitive column: demographic parity and equalized odds.

Per group, from one pass of counts: the selection rate P(ŷ = pos | A = a), the true positive rate
P(ŷ = pos | A = a, y = pos) and the false positive rate P(ŷ = pos | A = a, y ≠ pos). A rate with an empty
denominator (a group without positives, say) counts as 0, as fairlearn counts it, so the numbers match
fairlearn's ``demographic_parity_difference``/``_ratio`` and ``equalized_odds_difference`` for the same
``method`` and ``agg``.

- ``between_groups``: difference = largest − smallest group rate; ratio = smallest / largest.
- ``to_overall``: difference = largest |group rate − rate over all rows|; ratio = smallest of
  group rate / overall rate, each taken as ≤ 1 (inverted when above 1).
- equalized odds difference: the TPR difference and the FPR difference combined by ``agg``: ``worst_case``
  (the larger) or ``mean``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .base import Check, column_label, number
from .context import Context
from .groups import Groups, _ratio, binary_counts, make_groups
from .report import CheckResult

METHODS = ("between_groups", "to_overall")
AGGS = ("worst_case", "mean")


def group_rates(g: Groups, t: np.ndarray | None, p: np.ndarray) -> dict[str, np.ndarray]:
    """Selection rate, TPR and FPR of every group (TPR/FPR only when the truth ``t`` is given)."""
    if t is None:
        pred = np.bincount(g.codes[p], minlength=g.n_groups)
        return {"n": g.counts, "selected": pred, "selection_rate": _ratio(pred, g.counts)}
    c = binary_counts(g, t, p)
    return {
        "n": c["n"],
        "selected": c["pred"],
        "positives": c["pos"],
        "selection_rate": _ratio(c["pred"], c["n"]),
        "tpr": _ratio(c["tp"], c["pos"]),
        "fpr": _ratio(c["fp"], c["fp"] + c["tn"]),
        "accuracy": _ratio(c["tp"] + c["tn"], c["n"]),
    }


def overall_rates(t: np.ndarray | None, p: np.ndarray) -> dict[str, float]:
    n = len(p)
    out = {"n": n, "selection_rate": float(p.sum() / n)}
    if t is not None:
        pos = int(t.sum())
        neg = n - pos
        out["tpr"] = float((t & p).sum() / pos) if pos else 0.0
        out["fpr"] = float((~t & p).sum() / neg) if neg else 0.0
        out["accuracy"] = float((t == p).mean())
    return out


def disparity_difference(rates: np.ndarray, overall: float, method: str) -> float:
    if method == "between_groups":
        return float(rates.max() - rates.min())
    return float(np.abs(rates - overall).max())


def disparity_ratio(rates: np.ndarray, overall: float, method: str) -> float:
    """Smallest over largest (or each over the overall rate, folded below 1). All-zero rates are parity: 1.0."""
    if method == "between_groups":
        top = rates.max()
        return float(rates.min() / top) if top > 0 else 1.0
    if overall == 0:
        return 1.0 if (rates == 0).all() else 0.0
    r = rates / overall
    r = np.where(r > 1, 1.0 / np.where(r > 0, r, 1.0), r)
    return float(r.min())


def _favourable(pos_label: Any, ctx: Context, arrays: list[np.ndarray]) -> Any:
    if pos_label is not None:
        return pos_label
    if ctx.pos_label is not None:
        return ctx.pos_label
    labels = set()
    for a in arrays:
        labels.update(pd.unique(a).tolist())
    if labels <= {0, 1} or labels <= {-1, 1}:
        return 1
    classes = ctx.outputs.classes
    if classes is not None and len(classes) == 2:
        return classes[-1].item() if hasattr(classes[-1], "item") else classes[-1]
    shown = ", ".join(repr(v) for v in sorted(labels, key=str)[:5])
    raise InvalidInput(
        f"fairness: cannot tell the favourable outcome among the labels {shown}{', …' if len(labels) > 5 else ''}; "
        "pass pos_label= (fairness needs a classifier's labels)"
    )


class Fairness(Check):
    """Demographic parity and equalized odds across sensitive groups (see :func:`mlo.checks.fairness`)."""

    kind = "fairness"

    def __init__(
        self,
        sensitive,
        *,
        max_dp_difference=0.1,
        min_dp_ratio=0.8,
        max_eo_difference=0.1,
        method="between_groups",
        agg="worst_case",
        pos_label=None,
        name=None,
    ):
        super().__init__(name)
        if sensitive is None:
            raise InvalidInput("fairness needs sensitive= a column name or values per row")
        if method not in METHODS:
            raise InvalidInput(f"fairness method must be one of {', '.join(METHODS)}, got {method!r}")
        if agg not in AGGS:
            raise InvalidInput(f"fairness agg must be one of {', '.join(AGGS)}, got {agg!r}")
        self.sensitive = sensitive
        self.max_dp_difference = (
            None
            if max_dp_difference is None
            else number(max_dp_difference, "max_dp_difference", low=0.0, high=1.0)
        )
        self.min_dp_ratio = (
            None if min_dp_ratio is None else number(min_dp_ratio, "min_dp_ratio", low=0.0, high=1.0)
        )
        self.max_eo_difference = (
            None
            if max_eo_difference is None
            else number(max_eo_difference, "max_eo_difference", low=0.0, high=1.0)
        )
        if self.max_dp_difference is None and self.min_dp_ratio is None and self.max_eo_difference is None:
            raise InvalidInput("fairness: every bound is None; keep at least one of the three")
        self.method = method
        self.agg = agg
        self.pos_label = pos_label

    def measure(self, ctx: Context) -> dict[str, Any]:
        """Every number of the check (the per-group table included), without judging."""
        col = column_label(self.sensitive)
        values = ctx.column(self.sensitive, "fairness")
        y_pred = ctx.y_pred
        needs_truth = self.max_eo_difference is not None
        y = ctx.require_y("fairness (equalized odds)") if needs_truth else ctx.y
        pos = _favourable(self.pos_label, ctx, [y_pred] + ([y] if y is not None else []))
        g = make_groups(values)
        p = y_pred == pos
        t = None if y is None else (y == pos)
        per = group_rates(g, t, p)
        overall = overall_rates(t, p)
        sr = per["selection_rate"]
        out: dict[str, Any] = {
            "column": col,
            "pos_label": pos,
            "method": self.method,
            "agg": self.agg,
            "demographic_parity_difference": disparity_difference(sr, overall["selection_rate"], self.method),
            "demographic_parity_ratio": disparity_ratio(sr, overall["selection_rate"], self.method),
            "overall": overall,
        }
        if t is not None:
            tpr_d = disparity_difference(per["tpr"], overall["tpr"], self.method)
            fpr_d = disparity_difference(per["fpr"], overall["fpr"], self.method)
            out["tpr_difference"] = tpr_d
            out["fpr_difference"] = fpr_d
            out["equalized_odds_difference"] = (
                max(tpr_d, fpr_d) if self.agg == "worst_case" else (tpr_d + fpr_d) / 2
            )
        keys = [k for k in ("selection_rate", "tpr", "fpr", "accuracy", "positives", "selected") if k in per]
        out["groups"] = [
            {"group": label, "size": int(per["n"][i]), **{k: per[k][i].item() for k in keys}}
            for i, label in enumerate(g.labels)
        ]
        return out

    def evaluate(self, ctx: Context) -> list[CheckResult]:
        m = self.measure(ctx)
        col = m["column"]
        groups = m["groups"]
        sr = {r["group"]: r["selection_rate"] for r in groups}
        lo = min(sr, key=sr.get)
        hi = max(sr, key=sr.get)
        dp_detail = (
            f"selection rate {sr[lo]:.3g} ({col}={lo}) to {sr[hi]:.3g} ({col}={hi}), "
            f"{m['overall']['selection_rate']:.3g} overall"
        )
        rows = []
        if self.max_dp_difference is not None:
            rows.append(
                self.row(
                    self.row_name(
                        f"fairness.{col}.demographic_parity_difference", "demographic_parity_difference"
                    ),
                    m["demographic_parity_difference"],
                    "<=",
                    self.max_dp_difference,
                    dp_detail,
                    m,
                )
            )
        if self.min_dp_ratio is not None:
            rows.append(
                self.row(
                    self.row_name(f"fairness.{col}.demographic_parity_ratio", "demographic_parity_ratio"),
                    m["demographic_parity_ratio"],
                    ">=",
                    self.min_dp_ratio,
                    dp_detail,
                    m,
                )
            )
        if self.max_eo_difference is not None:
            detail = (
                f"TPR difference {m['tpr_difference']:.3g}, FPR difference {m['fpr_difference']:.3g} "
                f"({self.agg.replace('_', ' ')})"
            )
            rows.append(
                self.row(
                    self.row_name(f"fairness.{col}.equalized_odds_difference", "equalized_odds_difference"),
                    m["equalized_odds_difference"],
                    "<=",
                    self.max_eo_difference,
                    detail,
                    m,
                )
            )
        return rows
