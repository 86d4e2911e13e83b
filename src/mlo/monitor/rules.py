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
```

Columns are those of :attr:`MonitorReport.windows`: ``dataset_drift``, ``prediction_drift``, ``canary_worse``
(true/false), ``drift_share``, ``accuracy``, ``mae``, ``rmse``, ``latency_p50/p95/p99``, ``error_rate``,
``missing_rate``, ``unseen_rate``, ``n``, ``labeled``. Operators: ``< <= > >= == !=``. A window without the value
(no labels yet, no canary) does not satisfy the condition.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_COND = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*(%?)\s*$", re.I)
_FLAG = re.compile(r"^\s*(not\s+)?([a-z_][a-z0-9_]*)\s*$", re.I)
ACTION_TYPES = ("webhook", "command", "retrain", "rollback")


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    consecutive: int = 1
    model: str | None = None
    actions: tuple[dict, ...] = field(default_factory=tuple)

    def holds(self, window: dict[str, Any]) -> tuple[bool, Any]:
        """Whether one window satisfies the condition, and the value it read."""
        column, test = _parse(self.when, self.name)
        value = window.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False, None
        return bool(test(value)), value

    @property
    def column(self) -> str:
        return _parse(self.when, self.name)[0]


def _parse(when: str, rule: str):
    m = _COND.match(when)
    if m:
        column, op, number, pct = m.groups()
        limit = float(number) / (100 if pct else 1)
        return column.lower(), lambda v: _OPS[op](float(v), limit)
    m = _FLAG.match(when)
    if m:
        negate = bool(m.group(1))
        return m.group(2).lower(), (lambda v: not bool(v)) if negate else (lambda v: bool(v))
    raise InvalidInput(
        f"monitor rule {rule!r}: cannot read when = {when!r}; write a window column that is true "
        "(dataset_drift, prediction_drift, canary_worse) or '<column> <op> <number>' such as 'accuracy < 0.8'"
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
        _parse(when, name)
        n = item.get("for", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidInput(
                f"monitor rule {name!r}: for = must be a whole number of windows ≥ 1, got {n!r}"
            )
        actions = item.get("actions", [])
        if isinstance(actions, dict):
            actions = [actions]
        for a in actions:
            if not isinstance(a, dict) or a.get("type") not in ACTION_TYPES:
                raise InvalidInput(
                    f"monitor rule {name!r}: each action needs type = one of {', '.join(ACTION_TYPES)}, got {a!r}"
                )
            need = {"webhook": "url", "command": "run", "retrain": "pipeline", "rollback": "alias"}[a["type"]]
            if not isinstance(a.get(need), str) or not a[need]:
                raise InvalidInput(f'monitor rule {name!r}: a {a["type"]} action needs {need} = "…"')
        unknown = set(item) - {"name", "when", "for", "model", "actions"}
        if unknown:
            raise InvalidInput(f"monitor rule {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
        rules.append(Rule(name, when, n, item.get("model"), tuple(dict(a) for a in actions)))
    return rules


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
