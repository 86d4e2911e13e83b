"""Two evaluations side by side: each scorer's means with a paired bootstrap interval of the difference, and the
rows where the two differ most (per-example deltas), e.g. two prompt versions on the same dataset."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .eval_report import EvalReport


def _report(ref: Any) -> EvalReport:
    if isinstance(ref, EvalReport):
        return ref
    if isinstance(ref, str):
        return EvalReport.load(ref)
    raise InvalidInput(f"compare takes EvalReports or stored report ids, got {type(ref).__name__}")


class EvalComparison:
    """``b`` against ``a`` (the baseline): :attr:`scorers` (means, difference and its interval) and
    :meth:`to_frame` (one row per example: both outputs, both scores, the deltas)."""

    def __init__(self, a: EvalReport, b: EvalReport):
        if a.data.get("digest") != b.data.get("digest"):
            raise InvalidInput(
                "these evaluations ran on different data; compare evaluations of the same rows "
                f"({a.data.get('ref') or a.data.get('digest', '')[:12]} vs {b.data.get('ref') or b.data.get('digest', '')[:12]})"
            )
        self.a, self.b = a, b
        names_b = {s["name"] for s in b.scorers}
        self.names = [s["name"] for s in a.scorers if s["name"] in names_b]
        if not self.names:
            raise InvalidInput("these evaluations share no scorer")
        ra, rb = a.row_scores(), b.row_scores()
        self.scorers: dict[str, dict[str, Any]] = {}
        for n in self.names:
            both = ~(np.isnan(ra[n]) | np.isnan(rb[n]))
            diff = (rb[n] - ra[n])[both]
            lo = hi = math.nan
            if len(diff) > 1:
                rng = np.random.default_rng(0)
                draws = diff[rng.integers(0, len(diff), size=(2000, len(diff)))].mean(axis=1)
                lo, hi = float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))
            self.scorers[n] = {
                "a": a.mean(n),
                "b": b.mean(n),
                "delta": float(diff.mean()) if len(diff) else math.nan,
                "ci_low": lo,
                "ci_high": hi,
                "rows": int(both.sum()),
                "same_version": a.scorer(n)["version"] == b.scorer(n)["version"],
            }
        self._ra, self._rb = ra, rb

    def _first(self, rep: EvalReport) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for r in rep.rows:
            out.setdefault(r["index"], r)
        return out

    def to_frame(self):
        """One row per example, the largest changes first: inputs, expected, output_a, output_b, and per scorer
        ``<scorer>.a``, ``<scorer>.b``, ``<scorer>.delta`` (each row's mean over its repeats)."""
        import pandas as pd

        fa, fb = self._first(self.a), self._first(self.b)
        recs = []
        for i in range(self.a.n):
            ra, rb = fa.get(i, {}), fb.get(i, {})
            rec = {
                "index": i,
                "inputs": ra.get("inputs"),
                "expected": ra.get("expected"),
                "output_a": ra.get("output") if not ra.get("error") else f"error: {ra['error']}",
                "output_b": rb.get("output") if not rb.get("error") else f"error: {rb['error']}",
            }
            for n in self.names:
                va, vb = self._ra[n][i], self._rb[n][i]
                rec[f"{n}.a"], rec[f"{n}.b"] = va, vb
                rec[f"{n}.delta"] = vb - va
            recs.append(rec)
        df = pd.DataFrame(recs)
        change = df[[f"{n}.delta" for n in self.names]].abs().sum(axis=1, min_count=1)
        return df.assign(_c=change).sort_values("_c", ascending=False, na_position="first").drop(columns="_c")

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.id, "b": self.b.id, "scorers": self.scorers}

    def _label(self, rep: EvalReport) -> str:
        return str(rep.app.get("prompt") or rep.app.get("name"))

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {v['a']:.3g}→{v['b']:.3g}" for n, v in self.scorers.items())
        return f"<EvalComparison {self._label(self.a)} → {self._label(self.b)}: {parts}>"

    def _repr_html_(self) -> str:
        from ..report.html import STYLE, fmt, table

        la, lb = self._label(self.a), self._label(self.b)
        head = f"<div class='mlo-h'>{escape(la)} → {escape(lb)}</div>"
        agg = table(
            ["scorer", la, lb, "Δ", "Δ 95% CI", "rows"],
            [
                [n, v["a"], v["b"], v["delta"], f"[{fmt(v['ci_low'])}, {fmt(v['ci_high'])}]", v["rows"]]
                for n, v in self.scorers.items()
            ],
            numeric={1, 2, 3, 5},
        )
        df = self.to_frame().head(20)
        cols = ["index", "inputs", "output_a", "output_b", *[f"{n}.delta" for n in self.names]]
        rows = [
            [(str(v)[:100] if isinstance(v, (str, dict)) else v) for v in r]
            for r in df[cols].itertuples(index=False)
        ]
        return "<div>" + STYLE + head + agg + table(cols, rows, numeric=set(range(4, len(cols)))) + "</div>"


def compare(a: Any, b: Any) -> EvalComparison:
    """Evaluation ``b`` against ``a`` on the same rows (reports or stored ids): per scorer, both means and the
    paired difference with its bootstrap interval; per example, both outputs and the deltas, largest first."""
    return EvalComparison(_report(a), _report(b))
