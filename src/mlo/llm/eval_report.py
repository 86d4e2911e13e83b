"""``EvalReport``: the outcome of :func:`mlo.llm.evaluate` — per-row outputs and scores, aggregates with bootstrap
confidence intervals, the gates' verdicts, and where it is stored."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GateFailed, NotFound
from ..validate.report import CheckResult, _clean

if TYPE_CHECKING:
    import pandas as pd

KIND = "llm_eval"
BOOTSTRAP = 2000
LEVEL = 0.95


def score_matrix(rows: list[dict], scorer: str, n: int, repeats: int) -> np.ndarray:
    """Scores of one scorer as an (n rows × repeats) array; NaN where a call failed or the scorer did not apply."""
    m = np.full((n, repeats), np.nan)
    for r in rows:
        v = (r.get("scores") or {}).get(scorer)
        if v is not None:
            m[r["index"], r["repeat"]] = v
    return m


def bootstrap_mean(
    m: np.ndarray, *, seed: int = 0, draws: int = BOOTSTRAP
) -> tuple[float, float, float, int]:
    """The mean of the per-row means of ``m`` (rows × repeats) and a percentile bootstrap interval that
    resamples rows and, within each drawn row, its repeats — so a noisy model widens it as much as few rows do.
    Rows without any score are left out. Returns (mean, low, high, rows scored)."""
    keep = ~np.all(np.isnan(m), axis=1)
    m = m[keep]
    n = len(m)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    point = float(np.mean(np.nanmean(m, axis=1)))
    if n == 1 and m.shape[1] == 1:
        return (point, math.nan, math.nan, 1)
    rng = np.random.default_rng(seed)
    ri = rng.integers(0, n, size=(draws, n))
    if m.shape[1] > 1:
        ki = rng.integers(0, m.shape[1], size=(draws, n))
        drawn = m[ri, ki]
        # a drawn repeat that did not score falls back to the row's mean, so a failure does not drop the row
        row_means = np.nanmean(m, axis=1)
        drawn = np.where(np.isnan(drawn), row_means[ri], drawn)
    else:
        drawn = m[ri, 0]
    means = drawn.mean(axis=1)
    alpha = (1 - LEVEL) / 2
    return (point, float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)), n)


class EvalReport:
    """The outcome of one evaluation.

    Attributes
    ----------
    rows : list of dict
        One per (row, repeat): ``index``, ``repeat``, ``inputs``, ``expected``, ``output``, ``error``, ``scores``,
        ``reasons``, ``latency_s``, ``input_tokens``, ``output_tokens``, ``cost_usd``, ``trace_id``.
    scorers : list of dict
        What judged it: each scorer's name, kind, version and params.
    aggregates : dict
        Per scorer: ``mean``, ``ci_low``, ``ci_high`` (95 % bootstrap), ``n``; and ``failure_rate``, latency,
        tokens and cost.
    checks : list of CheckResult
        The gates' verdicts (empty without ``checks=``).
    passed : bool
        True when no gate failed.
    subject : str or None
        ``"model:<prompt>/<version>"`` when the app was a prompt version.
    id, run_id : str or None
        The stored report and the run it belongs to.
    """

    def __init__(
        self,
        rows: list[dict],
        *,
        scorers: list[dict],
        n: int,
        repeats: int,
        app: dict,
        data: dict,
        checks: list[CheckResult] | None = None,
        subject: str | None = None,
        run_id: str | None = None,
        id: str | None = None,
        timing: dict | None = None,
        aggregates: dict | None = None,
    ):
        self.rows = sorted(rows, key=lambda r: (r["index"], r["repeat"]))
        self.scorers = scorers
        self.n = n
        self.repeats = repeats
        self.app = app
        self.data = data
        self.checks = list(checks or [])
        self.subject = subject
        self.run_id = run_id
        self.id = id
        self.timing = dict(timing or {})
        self.aggregates = aggregates if aggregates is not None else self._aggregate()

    # -- numbers ------------------------------------------------------------------------------------------------
    def _aggregate(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in self.scorers:
            mean, lo, hi, n = bootstrap_mean(score_matrix(self.rows, s["name"], self.n, self.repeats))
            out[s["name"]] = {"mean": mean, "ci_low": lo, "ci_high": hi, "n": n}
        calls = len(self.rows)
        failed = sum(1 for r in self.rows if r.get("error"))
        lat = [r["latency_s"] for r in self.rows if r.get("latency_s") is not None and not r.get("error")]
        costs = [r["cost_usd"] for r in self.rows if r.get("cost_usd") is not None]
        out["failure_rate"] = failed / calls if calls else math.nan
        out["calls"] = calls
        out["failed"] = failed
        out["latency_p50_s"] = float(np.median(lat)) if lat else math.nan
        out["latency_p95_s"] = float(np.quantile(lat, 0.95)) if lat else math.nan
        out["input_tokens"] = sum(r.get("input_tokens") or 0 for r in self.rows)
        out["output_tokens"] = sum(r.get("output_tokens") or 0 for r in self.rows)
        out["cost_usd"] = float(sum(costs)) if costs else None
        out["unpriced_calls"] = sum(1 for r in self.rows if r.get("cost_usd") is None and not r.get("error"))
        judged = [r for r in self.rows if "judge_cost_usd" in r]
        if judged:
            jc = [r["judge_cost_usd"] for r in judged if r["judge_cost_usd"] is not None]
            out["judge_cost_usd"] = float(sum(jc)) if jc else None
            out["judge_input_tokens"] = sum(r.get("judge_input_tokens") or 0 for r in judged)
            out["judge_output_tokens"] = sum(r.get("judge_output_tokens") or 0 for r in judged)
        guarded = [r["guardrails"] for r in self.rows if r.get("guardrails")]
        if guarded:
            trips: dict[str, dict[str, float]] = {}
            for stage in ("input", "output"):
                seen = [g[stage]["action"] for g in guarded if stage in g]
                trips[stage] = {a: seen.count(a) / len(seen) for a in ("flag", "redact", "block") if seen}
            out["guardrails"] = trips
        return out

    def mean(self, scorer: str) -> float:
        """The mean score of ``scorer`` over the rows (each row's repeats averaged first)."""
        return self._scorer_agg(scorer)["mean"]

    def ci(self, scorer: str) -> tuple[float, float]:
        """The 95 % bootstrap interval of :meth:`mean`."""
        a = self._scorer_agg(scorer)
        return (a["ci_low"], a["ci_high"])

    def _scorer_agg(self, scorer: str) -> dict:
        names = [s["name"] for s in self.scorers]
        if scorer not in names:
            raise NotFound(f"no scorer {scorer!r} in this evaluation; it has {', '.join(names)}")
        return self.aggregates[scorer]

    def scorer(self, name: str) -> dict:
        for s in self.scorers:
            if s["name"] == name:
                return s
        raise NotFound(
            f"no scorer {name!r} in this evaluation; it has {', '.join(s['name'] for s in self.scorers)}"
        )

    @property
    def passed(self) -> bool:
        return not any(c.passed is False for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is False]

    def row_scores(self) -> dict[str, np.ndarray]:
        """Per scorer, each row's mean over its repeats (NaN where nothing scored)."""
        out = {}
        for s in self.scorers:
            m = score_matrix(self.rows, s["name"], self.n, self.repeats)
            with np.errstate(all="ignore"):
                out[s["name"]] = np.array([np.nan if np.all(np.isnan(r)) else np.nanmean(r) for r in m])
        return out

    # -- records ------------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The flat record kept in the store's report row (what promotion policies and gates read)."""
        return _clean(
            {
                "passed": self.passed,
                "subject": self.subject,
                "prompt": self.app.get("prompt"),
                "app": self.app.get("name"),
                "data": self.data.get("ref"),
                "data_digest": self.data.get("digest"),
                "rows": self.n,
                "repeats": self.repeats,
                "scorers": {s["name"]: s["version"] for s in self.scorers},
                "means": {s["name"]: self.aggregates[s["name"]]["mean"] for s in self.scorers},
                "failure_rate": self.aggregates["failure_rate"],
                "cost_usd": self.aggregates["cost_usd"],
                "judge_cost_usd": self.aggregates.get("judge_cost_usd"),
                "failed_checks": [c.name for c in self.failures],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "id": self.id,
                "run_id": self.run_id,
                "subject": self.subject,
                "app": self.app,
                "data": self.data,
                "n": self.n,
                "repeats": self.repeats,
                "scorers": self.scorers,
                "aggregates": self.aggregates,
                "checks": [c.to_dict() for c in self.checks],
                "passed": self.passed,
                "timing": self.timing,
                "rows": self.rows,
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalReport:
        checks = [CheckResult.from_dict(c) for c in d.get("checks", [])]
        return cls(
            d["rows"],
            scorers=d["scorers"],
            n=d["n"],
            repeats=d["repeats"],
            app=d["app"],
            data=d["data"],
            checks=checks,
            subject=d.get("subject"),
            run_id=d.get("run_id"),
            id=d.get("id"),
            timing=d.get("timing"),
        )

    @classmethod
    def load(cls, report_id: str) -> EvalReport:
        """A stored evaluation report, by id or unique id prefix."""
        from .. import workspace

        _, payload = workspace.current(create=False).reports.load(report_id, KIND)
        return cls.from_dict(payload)

    def to_frame(self) -> pd.DataFrame:
        """One row per (row, repeat): index, repeat, the inputs, expected, output, error, a column per scorer,
        latency, tokens, cost and trace id."""
        import pandas as pd

        records = []
        for r in self.rows:
            rec = {"index": r["index"], "repeat": r["repeat"]}
            rec.update({f"inputs.{k}": v for k, v in (r.get("inputs") or {}).items()})
            rec.update(expected=r.get("expected"), output=r.get("output"), error=r.get("error"))
            rec.update({s["name"]: (r.get("scores") or {}).get(s["name"]) for s in self.scorers})
            rec.update(
                latency_s=r.get("latency_s"),
                input_tokens=r.get("input_tokens"),
                output_tokens=r.get("output_tokens"),
                cost_usd=r.get("cost_usd"),
                judge_cost_usd=r.get("judge_cost_usd"),
                trace_id=r.get("trace_id"),
            )
            records.append(rec)
        return pd.DataFrame.from_records(records)

    def worst(self, k: int | None = None) -> list[dict]:
        """Rows from worst to best: failures first, then by the mean of their scores (each scorer turned so
        that higher is better)."""

        def badness(r: dict) -> tuple:
            if r.get("error"):
                return (0, 0.0, r["index"], r["repeat"])
            vals = []
            for s in self.scorers:
                v = (r.get("scores") or {}).get(s["name"])
                if v is not None:
                    vals.append(v if s.get("greater_is_better", True) else 1 - v)
            return (1, sum(vals) / len(vals) if vals else 1.0, r["index"], r["repeat"])

        ordered = sorted(self.rows, key=badness)
        return ordered if k is None else ordered[:k]

    def raise_for_failures(self) -> EvalReport:
        """Raise :class:`mlo.GateFailed` when a gate failed (a pipeline stage then exits 1); return the report."""
        if self.passed:
            return self
        failed = self.failures
        shown = "; ".join(c.headline() for c in failed[:3]) + ("; …" if len(failed) > 3 else "")
        of = f" of {self.app.get('prompt') or self.app.get('name')}"
        stored = f" (report {self.id})" if self.id else ""
        raise GateFailed(
            f"evaluation{of} failed {len(failed)} of {len(self.checks)} checks: {shown}{stored}; "
            "fix the prompt or app, or change the bounds deliberately"
        )

    def __repr__(self) -> str:
        means = ", ".join(f"{s['name']}={self.aggregates[s['name']]['mean']:.3g}" for s in self.scorers)
        state = "" if not self.checks else (" passed" if self.passed else f" FAILED {len(self.failures)}")
        return f"<EvalReport {self.app.get('prompt') or self.app.get('name')}: {self.n} rows, {means}{state}>"

    def _repr_html_(self) -> str:
        from .eval_render import render

        return render(self)
