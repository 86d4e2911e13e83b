"""The problem, as code: what the project set out to do, from ``[problem]`` in ``mlo.toml`` (or
:func:`mlo.problem` for this process), and the gates derived from it.

```toml
[problem]
objective = "Call the customers likely to leave next month, before they do"
owner = "retention-ds"
model = "churn"                                    # the registered model it is about (default: every model)
target = { metric = "roc_auc", min = 0.80 }        # success: a scikit-learn metric and its bound
guardrails = ["recall"]                            # metrics that must not fall below the production model's
tolerance = 0.01                                   # how much worse a guardrail may be
promotion_max_age_days = 30                        # production needs a passed validation this recent

[problem.constraints]
latency_p95_ms = 50                                # served p95 latency (monitoring)
model_size_mb = 20                                 # the registered version's size
cost_per_1k_predictions = 0.02                     # USD, with serving_cost_per_hour and served throughput
serving_cost_per_hour = 0.10
data_freshness_days = 30                           # the production model's training data, at most this old
fairness = { sensitive = "region", max_dp_difference = 0.10 }
```

Derived from it (explicit settings still win): the checks :func:`mlo.validate` runs when given none (and adds to
explicit ones that do not cover the same metric) — a threshold on the target, no regression of each guardrail
against ``<model>@production`` (a first version passes), fairness; a ``production`` promotion policy needing a passed
validation; monitoring rules on the target (``accuracy``, ``mae``, ``rmse``) and on the p95 latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidInput

GREATER_IS_WORSE = ("error", "loss", "mae", "mse", "rmse", "log_loss", "mape", "brier")
MONITORED = {"accuracy": "accuracy", "mae": "mae", "mean_absolute_error": "mae", "rmse": "rmse"}
KEYS = {
    "objective",
    "owner",
    "model",
    "target",
    "guardrails",
    "tolerance",
    "promotion_max_age_days",
    "at_risk_margin",
    "constraints",
}
CONSTRAINTS = {
    "latency_p95_ms",
    "model_size_mb",
    "cost_per_1k_predictions",
    "serving_cost_per_hour",
    "data_freshness_days",
    "fairness",
}

_session: list[Problem | None] = [None]  # a problem set by mlo.problem(...) for this process


def lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return any(part in name for part in GREATER_IS_WORSE) and "neg_" not in name


@dataclass(frozen=True)
class Target:
    """The success metric and its bound: ``min`` for a score, ``max`` for an error."""

    metric: str
    min: float | None = None
    max: float | None = None
    run_metric: str | None = None  # the name runs log it under, when not the metric's own

    @property
    def logged_as(self) -> str:
        return self.run_metric or self.metric

    def met(self, value: float | None) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"≥ {self.min:g}")
        if self.max is not None:
            parts.append(f"≤ {self.max:g}")
        return f"{self.metric} {' and '.join(parts)}"


@dataclass(frozen=True)
class Problem:
    """What the project set out to do: an objective in words, a target, guardrails and constraints."""

    objective: str
    owner: str | None = None
    model: str | None = None
    target: Target | None = None
    guardrails: tuple[str, ...] = ()
    tolerance: float = 0.0
    promotion_max_age_days: float | None = 30.0
    at_risk_margin: float = 0.02
    constraints: dict[str, Any] = field(default_factory=dict)
    source: str = "mlo.toml"

    # -- what it derives ------------------------------------------------------------------------------------
    def applies_to(self, model_name: str | None) -> bool:
        return self.model is None or model_name is None or model_name == self.model

    def checks(self, model_name: str | None = None) -> list:
        """The validation checks the problem asks for: the target's threshold, no regression of each guardrail
        against ``<model>@production`` (passing while there is none), and the fairness bound."""
        from ..validate import checks

        out = []
        if self.target is not None:
            t = self.target
            out.append(checks.threshold(t.metric, min=t.min, max=t.max, name=f"problem.target.{t.metric}"))
        name = self.model or model_name
        if name:
            for metric in self.guardrails:
                out.append(
                    checks.no_regression(
                        f"{name}@production",
                        metric,
                        self.tolerance,
                        if_missing="pass",
                        name=f"problem.guardrail.{metric}",
                    )
                )
        fair = self.constraints.get("fairness")
        if fair:
            opts = {k: v for k, v in fair.items() if k != "sensitive"}
            defaults = {"max_dp_difference": None, "min_dp_ratio": None, "max_eo_difference": None}
            out.append(checks.fairness(fair["sensitive"], **{**defaults, **opts}, name="problem.fairness"))
        return out

    def policy_rules(self) -> dict[str, Any]:
        """The ``production`` policy it derives: a passed validation, at most ``promotion_max_age_days`` old."""
        age = self.promotion_max_age_days
        return {"validation": {"max_age_days": age} if age else True}

    def monitor_rules(self) -> list[dict[str, Any]]:
        """Alert rules (as ``[[monitor.rules]]`` tables) on what monitoring measures: the target when it is
        ``accuracy``, ``mae`` or ``rmse``, and the p95 latency."""
        rules = []
        t = self.target
        column = MONITORED.get(t.metric.lower()) if t else None
        if t is not None and column:
            if t.min is not None:
                rules.append(
                    {"name": f"problem: {column} below target", "when": f"{column} < {t.min:g}", "for": 2}
                )
            if t.max is not None:
                rules.append(
                    {"name": f"problem: {column} above target", "when": f"{column} > {t.max:g}", "for": 2}
                )
        latency = self.constraints.get("latency_p95_ms")
        if latency is not None:
            rules.append(
                {
                    "name": "problem: p95 latency over its bound",
                    "when": f"latency_p95 > {latency:g}",
                    "for": 2,
                }
            )
        for r in rules:
            if self.model:
                r["model"] = self.model
        return rules

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "objective": self.objective,
            "owner": self.owner,
            "model": self.model,
            "target": None
            if t is None
            else {"metric": t.metric, "min": t.min, "max": t.max, "run_metric": t.run_metric},
            "guardrails": list(self.guardrails),
            "tolerance": self.tolerance,
            "promotion_max_age_days": self.promotion_max_age_days,
            "at_risk_margin": self.at_risk_margin,
            "constraints": dict(self.constraints),
            "source": self.source,
        }

    def __str__(self) -> str:
        bits = [self.objective]
        if self.target:
            bits.append(f"target {self.target.describe()}")
        if self.guardrails:
            bits.append(f"guardrails {', '.join(self.guardrails)}")
        return "; ".join(bits)

    def _repr_html_(self) -> str:
        from .render import problem_html

        return problem_html(self)


# -- reading --------------------------------------------------------------------------------------------------------
def _num(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{where} must be a number, got {value!r}")
    if positive and value <= 0:
        raise InvalidInput(f"{where} must be above 0, got {value!r}")
    return float(value)


def _target(value: Any, where: str) -> Target:
    if isinstance(value, str):
        value = {"metric": value}
    if not isinstance(value, dict):
        raise InvalidInput(f'{where} is a table like {{ metric = "roc_auc", min = 0.8 }}')
    unknown = set(value) - {"metric", "min", "max", "run_metric"}
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use metric, min, max, run_metric"
        )
    metric = value.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidInput(f'{where}.metric names the success metric, e.g. metric = "roc_auc"')
    lo = None if value.get("min") is None else _num(value["min"], f"{where}.min")
    hi = None if value.get("max") is None else _num(value["max"], f"{where}.max")
    if lo is None and hi is None:
        raise InvalidInput(
            f"{where}: give the success bound, min = … for a score or max = … for an error (e.g. min = 0.8)"
        )
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInput(f"{where}: min {lo:g} is above max {hi:g}")
    run_metric = value.get("run_metric")
    if run_metric is not None and (not isinstance(run_metric, str) or not run_metric.strip()):
        raise InvalidInput(
            f'{where}.run_metric must be the metric name runs log, e.g. run_metric = "val_auc"'
        )
    return Target(metric.strip(), lo, hi, run_metric)


def _constraints(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} is a table ([problem.constraints])")
    from ..config import did_you_mean

    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in CONSTRAINTS:
            raise InvalidInput(
                f"{where}: unknown constraint {key!r}{did_you_mean(key, CONSTRAINTS)} "
                f"(constraints: {', '.join(sorted(CONSTRAINTS))})"
            )
        if key == "fairness":
            if (
                not isinstance(v, dict)
                or not isinstance(v.get("sensitive"), (str, list))
                or not v["sensitive"]
            ):
                raise InvalidInput(
                    f'{where}.fairness is a table like {{ sensitive = "region", max_dp_difference = 0.1 }}'
                )
            allowed = {"sensitive", "max_dp_difference", "min_dp_ratio", "max_eo_difference"}
            unknown = set(v) - allowed
            if unknown:
                raise InvalidInput(
                    f"{where}.fairness: unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}"
                )
            if len(v) == 1:
                raise InvalidInput(f"{where}.fairness: give a bound, e.g. max_dp_difference = 0.1")
            out[key] = {
                k: (x if k == "sensitive" else _num(x, f"{where}.fairness.{k}", positive=True))
                for k, x in v.items()
            }
        else:
            out[key] = _num(v, f"{where}.{key}", positive=True)
    if "cost_per_1k_predictions" in out and "serving_cost_per_hour" not in out:
        raise InvalidInput(
            f"{where}: cost_per_1k_predictions needs serving_cost_per_hour (USD) to price what is served"
        )
    return out


def parse(table: Any, source: str = "mlo.toml") -> Problem:
    """A :class:`Problem` from the ``[problem]`` table (or the same keys as a dict); one-line errors."""
    where = "problem" if source == "mlo.problem()" else "[problem]"
    if not isinstance(table, dict):
        raise InvalidInput(f"{source}: {where} must be a table")
    from ..config import did_you_mean

    unknown = [k for k in table if k not in KEYS]
    if unknown:
        k = unknown[0]
        raise InvalidInput(
            f"{source}: unknown key {k!r} in {where}{did_you_mean(k, KEYS)} (keys: {', '.join(sorted(KEYS))})"
        )
    objective = table.get("objective")
    if not isinstance(objective, str) or not objective.strip():
        raise InvalidInput(
            f'{source}: {where} needs objective = "…", the objective in words (what the model is for)'
        )
    for key in ("owner", "model"):
        if table.get(key) is not None and (not isinstance(table[key], str) or not table[key].strip()):
            raise InvalidInput(f"{source}: {where}.{key} must be a non-empty string")
    guardrails = table.get("guardrails", [])
    if isinstance(guardrails, str):
        guardrails = [guardrails]
    if not isinstance(guardrails, (list, tuple)) or not all(
        isinstance(g, str) and g.strip() for g in guardrails
    ):
        raise InvalidInput(f'{source}: {where}.guardrails is a list of metric names, e.g. ["recall"]')
    tolerance = _num(table.get("tolerance", 0.0), f"{source}: {where}.tolerance")
    if tolerance < 0:
        raise InvalidInput(f"{source}: {where}.tolerance must be >= 0")
    age = table.get("promotion_max_age_days", 30)
    age = None if age is False else _num(age, f"{source}: {where}.promotion_max_age_days", positive=True)
    margin = _num(table.get("at_risk_margin", 0.02), f"{source}: {where}.at_risk_margin")
    return Problem(
        objective=objective.strip(),
        owner=table.get("owner"),
        model=table.get("model"),
        target=None if table.get("target") is None else _target(table["target"], f"{source}: {where}.target"),
        guardrails=tuple(g.strip() for g in guardrails),
        tolerance=tolerance,
        promotion_max_age_days=age,
        at_risk_margin=margin,
        constraints=_constraints(table.get("constraints", {}), f"{source}: {where}.constraints"),
        source=source,
    )


def current(config: dict | None = None) -> Problem | None:
    """The problem in force: the one :func:`define` set in this process, else ``[problem]`` in ``mlo.toml``."""
    if _session[0] is not None:
        return _session[0]
    if config is None:
        from .. import workspace

        home = workspace.find_home()
        if home is None:
            return None
        config = workspace.current(create=False).config
    table = config.get("problem")
    return None if table is None else parse(table)


def problem(objective: str | None = None, *, clear: bool = False, **fields: Any) -> Problem | None:
    """The problem in force (``mlo.problem()``), or set one for this process: ``mlo.problem("Call the customers
    likely to leave", target={"metric": "roc_auc", "min": 0.8}, guardrails=["recall"], model="churn")``. It
    overrides ``[problem]`` of ``mlo.toml`` until ``mlo.problem(clear=True)``; pipelines and CI read
    ``mlo.toml``, so write it there to make it the project's. The fields are those of ``[problem]`` (see this
    module), with ``constraints={...}`` as a dict."""
    if clear:
        _session[0] = None
        return current()
    if objective is None and not fields:
        return current()
    table = {"objective": objective, **{k: v for k, v in fields.items() if v is not None}}
    defined = parse(table, source="mlo.problem()")
    _session[0] = replace(defined, source="this session (mlo.problem)")
    return _session[0]


def reset() -> None:
    _session[0] = None
