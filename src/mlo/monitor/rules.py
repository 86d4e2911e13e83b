"""Alert rules: conditions on a monitoring report's windows, read from ``mlo.toml``, and what to do when they hold.

```toml
[monitor]
window = "1h"

[[monitor.rules]]
name = "inputs drifted"
model = "churn"                 # default: every model with a prediction log
when = "dataset_drift"          # a window column that is true, or "<column> <op> <number>"
for = 2                         # on this many consecutive windows (the newest ones); default 1
actions = [
  { type = "webhook", url = "https://hooks.example.com/mlo" },
  { type = "retrain", pipeline = "pipeline.yaml", stages = ["train"] },
]

[[monitor.rules]]
name = "canary worse"
when = "canary_worse"
actions = [{ type = "rollback", alias = "canary" }]

[[monitor.rules]]
name = "guardrails tripping"
prompt = "support"              # a served prompt (mlo serve prompt:support@…): the LLM columns below
when = "block_rate > 0.2"
for = 2
actions = [{ type = "rollback", alias = "production" }]
```

A rule with ``prompt =`` reads :func:`mlo.llm.monitor`'s windows instead: ``block_rate``, ``redact_rate``,
``flag_rate``, ``refusal_rate``, ``error_rate``, ``latency_p50/p95``, ``tokens_per_s``, ``cost_per_request``,
``output_chars``, ``output_length_shift``, ``n`` and the canary's (see :data:`mlo.llm.monitoring.METRICS`).

Columns are those of :attr:`MonitorReport.windows` (:data:`METRICS`): ``dataset_drift``, ``prediction_drift``,
``canary_worse`` (true/false), ``drift_share``, ``accuracy``, ``mae``, ``rmse``, ``latency_p50/p95/p99``,
``error_rate``, ``missing_rate``, ``unseen_rate``, ``n``, ``labeled`` and the canary's and stable side's figures.
A rule naming anything else is refused when the rules load, with the closest name ("did you mean"), so a
misspelt rule never sits silent. Operators: ``< <= > >= == !=``. A window without the value (no labels yet, no
canary) does not satisfy the condition.

Webhook actions are checked as they load too (http(s) only, secrets from the environment; see
:mod:`.webhooks`), and a mistake in an action never shows the action's URL, secret or headers.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from . import webhooks

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_COND = re.compile(
    r"^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*(%?)\s*$", re.I
)
_FLAG = re.compile(r"^\s*(not\s+)?([a-z_][a-z0-9_.]*)\s*$", re.I)
ACTION_TYPES = ("webhook", "command", "retrain", "rollback")
ACTION_KEYS = {
    "command": {"type", "run"},
    "retrain": {"type", "pipeline", "stages", "params", "force"},
    "rollback": {"type", "alias", "model"},
}
# what a window measures (MonitorReport.windows), that a rule can test
METRICS = (
    "n",
    "drift_share",
    "dataset_drift",
    "prediction_drift",
    "missing_rate",
    "unseen_rate",
    "labeled",
    "accuracy",
    "mae",
    "rmse",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "canary_n",
    "canary_worse",
    "canary_error_rate",
    "canary_latency_p95",
    "canary_accuracy",
    "canary_mae",
    "stable_error_rate",
    "stable_latency_p95",
    "stable_accuracy",
    "stable_mae",
    # throughput, and what the server sampled of its process (see .resources)
    "rows_per_s",
    "requests_per_s",
    "cpu_percent",
    "rss_mb",
    "rss_growth_mb",
    "queue_depth",
)


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    consecutive: int = 1
    model: str | None = None
    actions: tuple[dict, ...] = field(default_factory=tuple, repr=False)  # may hold secrets: never shown
    prompt: str | None = None  # a served prompt: the LLM monitor's columns

    def holds(self, window: dict[str, Any]) -> tuple[bool, Any]:
        """Whether one window satisfies the condition, and the value it read."""
        column, test = _parse(self.when, self.name, llm=self.prompt is not None)
        value = window.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False, None
        return bool(test(value)), value

    @property
    def column(self) -> str:
        return _parse(self.when, self.name, llm=self.prompt is not None)[0]


def _parse(when: str, rule: str, llm: bool = False):
    m = _COND.match(when)
    if m:
        column, op, number, pct = m.groups()
        limit = float(number) / (100 if pct else 1)
        return _metric(column, rule, llm), lambda v: _OPS[op](float(v), limit)
    m = _FLAG.match(when)
    if m:
        negate = bool(m.group(1))
        column = _metric(m.group(2), rule, llm)
        return column, (lambda v: not bool(v)) if negate else (lambda v: bool(v))
    raise InvalidInput(
        f"monitor rule {rule!r}: cannot read when = {when!r}; write a window column that is true "
        "(dataset_drift, prediction_drift, canary_worse) or '<column> <op> <number>' such as 'accuracy < 0.8'"
    )


def _metric(name: str, rule: str, llm: bool = False) -> str:
    column = name.lower()
    if llm:
        from ..llm.monitoring import METRICS as known
    else:
        known = METRICS
    if column in known or (llm and column.startswith("score.")):
        return column
    import difflib

    hint = difflib.get_close_matches(column, known, 1, 0.6)
    raise InvalidInput(
        f"monitor rule {rule!r}: no metric {name!r}"
        + (f"; did you mean {hint[0]!r}?" if hint else "")
        + f" (metrics: {', '.join(known)})"
    )


def _check_action(a: Any, rule: str) -> None:
    kind = a.get("type") if isinstance(a, dict) else None
    if kind not in ACTION_TYPES:
        shown = repr(kind) if isinstance(kind, str) else f"a {type(a).__name__}"  # never the action: secrets
        raise InvalidInput(
            f"monitor rule {rule!r}: each action needs type = one of {', '.join(ACTION_TYPES)}, got {shown}"
        )
    if kind == "webhook":
        webhooks.resolve(a, rule)
        return
    need = {"command": "run", "retrain": "pipeline", "rollback": "alias"}[kind]
    if not isinstance(a.get(need), str) or not a[need]:
        raise InvalidInput(f'monitor rule {rule!r}: a {kind} action needs {need} = "…"')
    unknown = sorted(set(a) - ACTION_KEYS[kind])
    if unknown:
        raise InvalidInput(
            f"monitor rule {rule!r}: a {kind} action has no key {unknown[0]!r} "
            f"(keys: {', '.join(sorted(ACTION_KEYS[kind] - {'type'}))})"
        )


def load_rules(config: dict) -> list[Rule]:
    """The rules of ``[[monitor.rules]]`` in mlo.toml, checked: a mistake is a one-line error naming the rule."""
    table = config.get("monitor") or {}
    raw = table.get("rules", []) if isinstance(table, dict) else []
    if not isinstance(raw, list):
        raise InvalidInput("mlo.toml: monitor.rules must be an array of tables ([[monitor.rules]])")
    rules = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"mlo.toml: monitor rule #{i} must be a table")
        name = str(item.get("name") or f"rule {i}")
        when = item.get("when")
        if not isinstance(when, str):
            raise InvalidInput(
                f'monitor rule {name!r}: give when = "<condition>", e.g. when = "accuracy < 0.8"'
            )
        prompt = item.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or not prompt or item.get("model")):
            raise InvalidInput(
                f'monitor rule {name!r}: prompt = "NAME" names one served prompt (and no model =)'
            )
        _parse(when, name, llm=prompt is not None)
        n = item.get("for", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidInput(
                f"monitor rule {name!r}: for = must be a whole number of windows ≥ 1, got {n!r}"
            )
        actions = item.get("actions", [])
        if isinstance(actions, dict):
            actions = [actions]
        if not isinstance(actions, list):
            raise InvalidInput(f"monitor rule {name!r}: actions = [...] is a list of tables")
        for a in actions:
            _check_action(a, name)
        unknown = set(item) - {"name", "when", "for", "model", "prompt", "actions"}
        if unknown:
            raise InvalidInput(f"monitor rule {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
        rules.append(Rule(name, when, n, item.get("model"), tuple(dict(a) for a in actions), prompt))
    return rules + _problem_rules(config, rules)


def _problem_rules(config: dict, explicit: list[Rule]) -> list[Rule]:
    """The rules ``[problem]`` derives (see :mod:`mlo.problem`), for the columns no explicit rule watches."""
    from ..governance.problem import current

    problem = current(config)
    if problem is None:
        return []
    watched = {(r.column, r.model) for r in explicit}
    out = []
    for item in problem.monitor_rules():
        rule = Rule(item["name"], item["when"], item["for"], item.get("model"))
        if (rule.column, rule.model) not in watched and (rule.column, None) not in watched:
            out.append(rule)
    return out


def firing(rule: Rule, windows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The newest ``rule.consecutive`` windows as evidence when every one of them satisfies the rule, else None."""
    if len(windows) < rule.consecutive:
        return None
    evidence = []
    for w in windows[-rule.consecutive :]:
        ok, value = rule.holds(w)
        if not ok:
            return None
        evidence.append(
            {"start": _iso(w.get("start")), "end": _iso(w.get("end")), "n": w.get("n"), rule.column: value}
        )
    return evidence


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
