"""Gates of :func:`mlo.llm.evaluate`: ``from mlo.llm import checks``.

``checks.threshold(scorer, min=…, max=…, on="mean")``   a scorer's mean (or the low/high end of its 95 % interval,
                                                        ``on="ci_low"``), or ``"failure_rate"``, within bounds
``checks.no_regression(against, scorer=None, …)``       not worse than the prompt version at an alias
                                                        (``"support@production"``) on the same rows and scorers

A failed gate makes :attr:`EvalReport.passed` False and the stored report a failed one: the promotion policy's
``eval`` requirement then refuses the version, and ``report.raise_for_failures()`` stops a pipeline with exit 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound
from ..validate.report import CheckResult, compare

__all__ = ["EvalCheck", "NoRegression", "Threshold", "no_regression", "threshold"]

ON = ("mean", "ci_low", "ci_high", "kappa")


class EvalCheck:
    """A gate on an evaluation report: :meth:`evaluate` returns its result rows."""

    kind = "check"

    def evaluate(self, report, app, **context) -> list[CheckResult]:  # pragma: no cover - abstract
        raise NotImplementedError


def check_list(items: Any) -> list[EvalCheck]:
    if items is None:
        return []
    if isinstance(items, EvalCheck):
        items = [items]
    if not isinstance(items, (list, tuple)) or not all(isinstance(c, EvalCheck) for c in items):
        raise InvalidInput(
            "checks= takes a list of mlo.llm.checks (checks.threshold('exact', 0.8), checks.no_regression(...))"
        )
    return list(items)


def _number(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidInput(f"{what} must be a number, got {v!r}")
    return float(v)


class Threshold(EvalCheck):
    kind = "threshold"

    def __init__(self, scorer: str, bound=None, *, min=None, max=None, on: str = "mean", name=None):
        if not isinstance(scorer, str):
            raise InvalidInput(f"threshold: name the scorer as a string, got {type(scorer).__name__}")
        if on not in ON:
            raise InvalidInput(f"threshold: on= must be one of {', '.join(ON)}, got {on!r}")
        if bound is not None and (min is not None or max is not None):
            raise InvalidInput("threshold: give the bound once, positionally or as min=/max=")
        self.scorer, self.on = scorer, on
        self.bound = _number(bound, f"threshold {scorer} bound")
        self.min, self.max = _number(min, "min"), _number(max, "max")
        if self.bound is None and self.min is None and self.max is None:
            raise InvalidInput(f"threshold {scorer!r} needs a bound: threshold('{scorer}', 0.8) or min=/max=")
        self.name = name or (scorer if on == "mean" else f"{scorer}.{on}")

    def evaluate(self, report, app, **context) -> list[CheckResult]:
        if self.scorer == "failure_rate":
            value, gib = report.aggregates["failure_rate"], False
        else:
            agg = report._scorer_agg(self.scorer)
            value, gib = agg.get(self.on), report.scorer(self.scorer).get("greater_is_better", True)
            if self.on == "kappa":
                gib = True
                if value is None:
                    return [
                        CheckResult(
                            self.name,
                            self.kind,
                            None,
                            ">=",
                            self.bound,
                            False,
                            f"{self.scorer} has no human labels to agree with (judge(labels=…))",
                        )
                    ]
        lo, hi = self.min, self.max
        if self.bound is not None:
            lo, hi = (self.bound, None) if gib else (None, self.bound)
        op, bound = (
            ("between", [lo, hi])
            if lo is not None and hi is not None
            else (">=", lo)
            if lo is not None
            else ("<=", hi)
        )
        value = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
        if value is None:
            return [CheckResult(self.name, self.kind, None, op, bound, False, "no row was scored")]
        return [CheckResult(self.name, self.kind, value, op, bound, compare(value, op, bound))]


def threshold(scorer: str, bound: float | None = None, *, min=None, max=None, on: str = "mean", name=None):
    """A scorer's mean (``on="ci_low"``: the low end of its 95 % interval, a stricter gate; ``on="kappa"``: a
    judge's agreement with the human labels) within bounds.

    ``threshold("exact", 0.8)`` asks for at least 0.8 (at most, for a scorer where lower is better, like
    ``refusal``); ``threshold("failure_rate", 0.05)`` for at most 5 % failed calls.
    """
    return Threshold(scorer, bound, min=min, max=max, on=on, name=name)


class NoRegression(EvalCheck):
    kind = "no_regression"

    def __init__(self, against: str, scorer: str | None = None, *, tolerance: float = 0.0, name=None):
        if not isinstance(against, str) or not against:
            raise InvalidInput("no_regression: name the baseline prompt, e.g. 'support@production'")
        self.against = against.removeprefix("prompt:")
        self.scorer = scorer
        self.tolerance = _number(tolerance, "tolerance") or 0.0
        if self.tolerance < 0:
            raise InvalidInput("no_regression: tolerance must be ≥ 0")
        self.name = name

    def _baseline(self, report, app, context):
        """The baseline's report on the same rows and scorers: stored already, or evaluated now."""
        from .. import workspace
        from .eval_report import KIND, EvalReport
        from .prompts import load_prompt

        try:
            base = load_prompt(self.against)
        except NotFound as exc:
            raise InvalidInput(f"no_regression: {exc}") from None
        if app.prompt is not None and base.ref == app.prompt.ref:
            return None, base
        ws = workspace.current()
        versions = {s["name"]: s["version"] for s in report.scorers}
        for rec in ws.reports.list(kind=KIND, subject=f"model:{base.ref}"):
            s = rec.summary
            if (
                s.get("data_digest") == report.data.get("digest")
                and s.get("scorers") == versions
                and s.get("repeats") == report.repeats
            ):
                return EvalReport.from_dict(ws.reports.load(rec.id, KIND)[1]), base
        if app.prompt is None:
            raise InvalidInput(
                f"no_regression: no stored evaluation of {base.ref} on these rows and scorers; evaluate it first "
                f"(mlo.llm.evaluate('{base.ref}', data=…, scorers=…))"
            )
        from .evaluation import evaluate

        return evaluate(
            base,
            context["data"],
            context["scorers"],
            repeats=context["repeats"],
            expected=report.app.get("expected"),
            **context["params"],
        ), base

    def evaluate(self, report, app, **context) -> list[CheckResult]:
        baseline, base = self._baseline(report, app, context)
        names = [self.scorer] if self.scorer else [s["name"] for s in report.scorers]
        out = []
        for n in names:
            label = self.name or f"no_regression.{n}"
            if baseline is None:
                out.append(
                    CheckResult(
                        label, self.kind, None, None, None, None, f"{base.ref} is the version evaluated"
                    )
                )
                continue
            gib = report.scorer(n).get("greater_is_better", True)
            mine, theirs = report.row_scores()[n], baseline.row_scores()[n]
            both = ~(np.isnan(mine) | np.isnan(theirs))
            if not both.any():
                out.append(
                    CheckResult(
                        label,
                        self.kind,
                        None,
                        ">=",
                        -self.tolerance,
                        False,
                        "no row scored in both evaluations",
                    )
                )
                continue
            diff = (mine - theirs)[both] * (1 if gib else -1)
            delta = float(diff.mean())
            rng = np.random.default_rng(0)
            draws = diff[rng.integers(0, len(diff), size=(2000, len(diff)))].mean(axis=1)
            lo, hi = float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))
            idx = np.flatnonzero(both)
            worst = sorted(zip(diff.tolist(), idx.tolist(), strict=True))[:5]
            out.append(
                CheckResult(
                    label,
                    self.kind,
                    delta,
                    ">=",
                    -self.tolerance,
                    delta >= -self.tolerance - 1e-12,
                    f"{report.app.get('prompt') or report.app.get('name')} vs {base.ref}: "
                    f"{baseline.mean(n):.3g} → {report.mean(n):.3g} (Δ 95% CI [{lo:.3g}, {hi:.3g}])",
                    {
                        "baseline": base.ref,
                        "baseline_report": baseline.id,
                        "baseline_mean": baseline.mean(n),
                        "mean": report.mean(n),
                        "ci": [lo, hi],
                        "rows": int(both.sum()),
                        "worst": [{"index": i, "delta": d} for d, i in worst],
                    },
                )
            )
        return out


def no_regression(against: str, scorer: str | None = None, *, tolerance: float = 0.0, name=None):
    """Not worse than the prompt version ``against`` names (``"support@production"``) on the same rows: the mean
    per-row difference of each scorer (or of ``scorer``) must be ≥ ``-tolerance``. The baseline's stored
    evaluation on the same data and scorer versions is reused; when there is none and the app is a prompt, the
    baseline is evaluated now (and stored). The detail carries the paired bootstrap interval of the difference."""
    return NoRegression(against, scorer, tolerance=tolerance, name=name)
