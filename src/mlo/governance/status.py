"""``mlo status``: each objective and constraint of the problem against the production model and the latest runs
— met, at risk (met, within ``at_risk_margin`` of its bound), broken, or unknown (no evidence yet) — each with
the evidence it was read from.

Where each figure comes from:

* the target, guardrails and fairness bound: the newest validation report of the production version (its rows
  ``problem.*``, or an explicit check of the same metric);
* the target in the latest runs: the best ``metrics.<target>`` among the newest runs;
* the p95 latency and the cost per 1,000 predictions: the prediction log of the last 24 hours;
* the model size: the registered version's stored bytes;
* the data freshness: the newest snapshot its run read (lineage).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, NotFound
from .problem import Problem, current

STATES = ("met", "at risk", "broken", "unknown")
RECENT_RUNS = 50
LOG_WINDOW_HOURS = 24


@dataclass
class Item:
    """One objective or constraint, judged."""

    name: str
    bound: str
    value: float | None
    state: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        v = self.value
        return {
            "name": self.name,
            "bound": self.bound,
            "value": None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v,
            "state": self.state,
            "evidence": self.evidence,
        }


@dataclass
class Status:
    """The problem and where the project stands against it."""

    problem: Problem
    model: str | None
    version: int | None
    items: list[Item] = field(default_factory=list)

    @property
    def state(self) -> str:
        """The worst state of any item (unknown counts only when nothing is known)."""
        states = {i.state for i in self.items}
        for s in ("broken", "at risk"):
            if s in states:
                return s
        return "met" if "met" in states else "unknown"

    @property
    def broken(self) -> list[Item]:
        return [i for i in self.items if i.state == "broken"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "problem": self.problem.to_dict(),
            "model": self.model,
            "version": self.version,
            "items": [i.to_dict() for i in self.items],
        }

    def _repr_html_(self) -> str:
        from .render import status_html

        return status_html(self)

    def __str__(self) -> str:
        lines = [f"{self.problem.objective}  [{self.state}]"]
        for i in self.items:
            value = "–" if i.value is None else f"{i.value:.4g}"
            lines.append(f"  {i.state:<8} {i.name}: {value} (bound {i.bound}) — {i.evidence}")
        return "\n".join(lines)


def _judge(value: float | None, lo: float | None, hi: float | None, margin: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return "broken"
    for bound in (lo, hi):
        if bound is not None and abs(value - bound) <= margin * max(abs(bound), 1e-12):
            return "at risk"
    return "met"


def _bound_text(lo: float | None, hi: float | None) -> str:
    return " and ".join(p for p in (lo is not None and f"≥ {lo:g}", hi is not None and f"≤ {hi:g}") if p)


def _production(ws, problem: Problem):
    from ..registry.versions import ModelVersion, resolve

    names = (
        [problem.model]
        if problem.model
        else sorted(n for n, a in ws.models.aliases().items() if "production" in a)
    )
    for name in names:
        try:
            return ModelVersion(ws, resolve(ws, f"{name}@production"))
        except (NotFound, InvalidInput):
            continue
    return None


def _report_rows(ws, mv) -> tuple[list[dict], str | None]:
    from ..registry.policy import latest_validation

    rec = latest_validation(ws, mv) if mv is not None else None
    if rec is None:
        return [], None
    _, payload = ws.reports.load(rec.id, "validation")
    return list(payload.get("rows", [])), rec.id


def _row_for(rows: list[dict], names: tuple[str, ...]) -> dict | None:
    for want in names:
        for r in rows:
            if r.get("name") == want or r.get("name", "").startswith(want + "."):
                return r
    return None


def status(model: str | None = None, *, version: Any = None) -> Status:
    """Where the project stands against its problem (``[problem]`` in ``mlo.toml`` or :func:`mlo.problem`): the
    production version of its model (or ``version``, a ModelVersion or ref like ``"churn/3"``) and the latest
    runs."""
    from .. import workspace

    problem = current()
    if problem is None:
        raise NotFound(
            'no problem is defined: add [problem] to mlo.toml (objective = "…", target = { metric = "roc_auc", '
            "min = 0.8 }) or call mlo.problem(...)"
        )
    if model is not None:
        if not isinstance(model, str) or not model.strip():
            raise InvalidInput(f"model must be the name of a registered model, got {model!r}")
        if not problem.applies_to(model):
            raise InvalidInput(f"the problem is about model {problem.model!r}, not {model!r}")
        from dataclasses import replace

        problem = replace(problem, model=model)
    ws = workspace.current(create=False)
    if version is not None:
        from ..registry.api import get_model_version

        mv = version if hasattr(version, "node") else get_model_version(version)
    else:
        mv = _production(ws, problem)
    rows, report_id = _report_rows(ws, mv)
    where = f"validation {report_id[:10]} of {mv.name}/{mv.version}" if report_id else None
    no_report = (
        f"no validation of {mv.name}/{mv.version} yet: mlo.validate(model, X, y, model_version='{mv.name}/{mv.version}')"
        if mv is not None
        else "no production model yet: promote one (mlo.promote(name, version, 'production'))"
    )
    out = Status(problem, mv.name if mv else problem.model, mv.version if mv else None)
    m = problem.at_risk_margin
    t = problem.target
    if t is not None:
        row = _row_for(rows, (f"problem.target.{t.metric}", f"threshold.{t.metric}"))
        value = None if row is None else row.get("value")
        label = "production" if version is None else f"{mv.name}/{mv.version}"
        out.items.append(
            Item(f"target {t.metric} ({label})", _bound_text(t.min, t.max), value, _judge(value, t.min, t.max, m),
                 where if row else no_report)
        )  # fmt: skip
        out.items.append(_latest_runs(ws, problem))
    for metric in problem.guardrails:
        row = _row_for(rows, (f"problem.guardrail.{metric}", f"no_regression.{metric}"))
        if row is None:
            out.items.append(Item(f"guardrail {metric}", "no regression", None, "unknown", no_report))
            continue
        passed, bound = row.get("passed"), row.get("bound")
        state = "unknown" if passed is None or bound is None else ("met" if passed else "broken")
        text = "no regression" if bound is None else f"{'≥' if row.get('op') == '>=' else '≤'} {bound:.4g}"
        out.items.append(
            Item(f"guardrail {metric}", text, row.get("value"), state, f"{where}: {row.get('detail', '')}".rstrip(": "))
        )  # fmt: skip
    c = problem.constraints
    if "fairness" in c:
        row = _row_for(rows, ("problem.fairness",))
        if row is None:
            out.items.append(Item("fairness", "bounds of [problem.constraints]", None, "unknown", no_report))
        else:
            fair = [r for r in rows if r.get("name", "").startswith("problem.fairness")]
            failed = [r for r in fair if r.get("passed") is False]
            state = "broken" if failed else "met"
            worst = (failed or fair)[0]
            measure = worst.get("name", "").removeprefix("problem.fairness").lstrip(".") or "fairness"
            text = f"{'≥' if worst.get('op') == '>=' else '≤'} {worst.get('bound')}"
            out.items.append(Item(f"fairness ({measure})", text, worst.get("value"), state, where or ""))
    if "model_size_mb" in c:
        size = None if mv is None or mv.size is None else mv.size / 1e6
        out.items.append(
            Item("model size (MB)", f"≤ {c['model_size_mb']:g}", size, _judge(size, None, c["model_size_mb"], m),
                 f"{mv.name}/{mv.version} stored bytes" if mv else no_report)
        )  # fmt: skip
    if "latency_p95_ms" in c or "cost_per_1k_predictions" in c:
        out.items.extend(_served(mv, problem))
    if "data_freshness_days" in c:
        out.items.append(_freshness(ws, mv, c["data_freshness_days"], m, no_report))
    return out


def _latest_runs(ws, problem: Problem) -> Item:
    from ..tracking.query import runs

    t = problem.target
    column = f"metrics.{t.logged_as}"
    df = runs(columns=["run_id", "name", column], order_by="start_time desc", limit=RECENT_RUNS)
    values = df[column].dropna() if column in df else []
    name = f"target {t.metric} (latest runs)"
    if not len(values):
        return Item(name, _bound_text(t.min, t.max), None, "unknown",
                    f"none of the newest {RECENT_RUNS} runs logged {t.logged_as!r}")  # fmt: skip
    best_at = values.idxmax() if t.min is not None else values.idxmin()
    best = float(values[best_at])
    run = df.loc[best_at]
    return Item(name, _bound_text(t.min, t.max), best, _judge(best, t.min, t.max, problem.at_risk_margin),
                f"best of {len(values)} recent runs: {run['name'] or run['run_id'][:10]}")  # fmt: skip


def _served(mv, problem: Problem) -> list[Item]:
    c = problem.constraints
    m = problem.at_risk_margin
    items = []
    log = None
    if mv is not None:
        from datetime import timedelta

        from ..monitor.log import read_log

        try:
            log = read_log(mv.name, since=timedelta(hours=LOG_WINDOW_HOURS), columns=["ts", "latency_ms"])
        except NotFound:
            log = None
    evidence = (
        f"prediction log of {mv.name}, last {LOG_WINDOW_HOURS} h ({0 if log is None else len(log)} predictions)"
        if mv is not None
        else "no production model yet"
    )
    empty = log is None or not len(log)
    if "latency_p95_ms" in c:
        p95 = None if empty else float(log["latency_ms"].quantile(0.95))
        items.append(Item("latency p95 (ms)", f"≤ {c['latency_p95_ms']:g}", p95,
                          _judge(p95, None, c["latency_p95_ms"], m), evidence))  # fmt: skip
    if "cost_per_1k_predictions" in c:
        cost = None
        if not empty:
            ts = log["ts"]
            span_h = max((ts.max() - ts.min()).total_seconds() / 3600, 1 / 60)
            per_hour = len(log) / span_h
            cost = c["serving_cost_per_hour"] / per_hour * 1000
        items.append(Item("cost per 1,000 predictions (USD)", f"≤ {c['cost_per_1k_predictions']:g}", cost,
                          _judge(cost, None, c["cost_per_1k_predictions"], m),
                          evidence + f", at {c['serving_cost_per_hour']:g} USD per hour"))  # fmt: skip
    return items


def _freshness(ws, mv, days: float, margin: float, no_model: str) -> Item:
    if mv is None or not mv.run_id:
        return Item("data freshness (days)", f"≤ {days:g}", None, "unknown",
                    no_model if mv is None else f"{mv.name}/{mv.version} has no run")  # fmt: skip
    ids = ws.models.run_inputs(mv.run_id)
    if not ids:
        return Item("data freshness (days)", f"≤ {days:g}", None, "unknown",
                    f"run {mv.run_id[:10]} read no snapshot (mlo.snapshot records what a run trains on)")  # fmt: skip
    newest = max(ws.snapshots.get(i).created_at for i in ids) / 1e6
    age = (time.time() - newest) / 86400
    return Item("data freshness (days)", f"≤ {days:g}", age, _judge(age, None, days, margin),
                f"newest snapshot read by run {mv.run_id[:10]}")  # fmt: skip
