"""``mlo.monitor.check()``: run the alert rules of ``mlo.toml`` once (from cron, CI or a notebook).

For each model a rule names (or every model with a prediction log), a monitoring report is made; each rule whose
condition holds on its newest windows fires once: an alert record is stored (kind ``alert``) with the evidence
(the windows and their values, the monitoring report's id) and the results of its actions. A rule fires once per
incident — an unbroken run of windows satisfying it — so a check every few minutes raises one alert, not one per
check or per window; when the condition clears and comes back, it fires again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from .actions import run_action
from .log import FOLDER
from .reporting import MonitorReport, report
from .rules import Rule, firing, load_rules


@dataclass
class Alert:
    """A rule that fired."""

    rule: str
    model: str
    message: str
    evidence: list[dict[str, Any]]
    report_id: str | None
    actions: list[dict[str, Any]] = field(default_factory=list)
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "model": self.model,
            "message": self.message,
            "evidence": self.evidence,
            "report_id": self.report_id,
            "actions": self.actions,
            "id": self.id,
        }

    def __str__(self) -> str:
        done = "; ".join(
            f"{a['type']}: {'ok' if a['ok'] else 'FAILED'} ({a['detail']})" for a in self.actions
        )
        return f"ALERT {self.rule!r} on {self.model}: {self.message}" + (f" — {done}" if done else "")


def _models_with_logs(ws) -> list[str]:
    root = ws.home / FOLDER
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _message(rule: Rule, evidence: list[dict[str, Any]]) -> str:
    value = evidence[-1].get(rule.column)
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    span = f"{len(evidence)} consecutive windows" if len(evidence) > 1 else "the latest window"
    return f"{rule.when} on {span} (latest {rule.column} = {shown}, window from {evidence[-1]['start']})"


def _streak(rule: Rule, rows: list[dict[str, Any]]) -> set[str]:
    """The starts of the unbroken run of newest windows that satisfy the rule: the incident so far."""
    starts = set()
    for w in reversed(rows):
        if not rule.holds(w)[0]:
            break
        start = w.get("start")
        starts.add(start.isoformat() if hasattr(start, "isoformat") else start)
    return starts


def _already_alerted(ws, rule: Rule, model: str, incident: set[str]) -> bool:
    """Whether the newest alert of this rule was raised within the same incident (an unbroken run of windows
    satisfying the rule): one alert per incident, however often the check runs."""
    for record in ws.reports.list(kind="alert", subject=f"model:{model}", limit=200):
        if record.summary.get("rule") == rule.name:
            return any(w.get("start") in incident for w in record.summary.get("evidence", []))
    return False


def _check_models(ws, rules: list[Rule], logged: list[str], wanted: list[str] | None = None) -> None:
    """A rule naming a model that has neither a log nor a registration would never fire: say so (for the rules
    this check runs: ``wanted`` narrows them)."""
    known = None
    for rule in rules:
        if rule.model is None or rule.model in logged or (wanted is not None and rule.model not in wanted):
            continue
        if known is None:
            known = sorted(set(logged) | set(ws.models.model_names()))
        if rule.model in known:
            continue
        import difflib

        hint = difflib.get_close_matches(rule.model, known, 1, 0.6)
        raise InvalidInput(
            f"monitor rule {rule.name!r}: no model {rule.model!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + " (check model = in mlo.toml)"
        )


def check(
    models: list[str] | str | None = None,
    *,
    window: Any = None,
    since: Any = None,
    dry_run: bool = False,
) -> list[Alert]:
    """Evaluate the ``[[monitor.rules]]`` of mlo.toml once; return the alerts that fired (and ran their actions,
    unless ``dry_run``). ``models`` narrows the check; ``window``/``since`` are passed to the reports."""
    ws = workspace.current(create=False)
    rules = load_rules(ws.reread_config())  # rules edited since the workspace was opened count
    if not rules:
        raise InvalidInput("no alert rules: add [[monitor.rules]] to mlo.toml (see docs/monitoring.md)")
    wanted = [models] if isinstance(models, str) else models
    logged = _models_with_logs(ws)
    _check_models(ws, rules, logged, wanted)
    project = ws.home.parent
    alerts: list[Alert] = []
    reports: dict[str, MonitorReport] = {}
    llm_reports: dict[str, Any] = {}
    for rule in rules:
        names = [rule.prompt] if rule.prompt else [rule.model] if rule.model else logged
        for model in names:
            if wanted is not None and model not in wanted:
                continue
            if rule.prompt:  # a served prompt: the LLM monitor's windows, from its request traces
                if model not in llm_reports:
                    from ..llm.monitoring import monitor as llm_monitor

                    table = ws.config.get("monitor") or {}
                    llm_reports[model] = llm_monitor(
                        model, window=window or table.get("window") or "1h", since=since
                    )
                rep = llm_reports[model]
            else:
                if model not in reports:
                    reports[model] = report(model, window=window, since=since)
                rep = reports[model]
            rows = rep.windows.to_dict("records")
            evidence = firing(rule, rows)
            if evidence is None or _already_alerted(ws, rule, model, _streak(rule, rows)):
                continue
            alert = Alert(rule.name, model, _message(rule, evidence), evidence, rep.id)
            if not dry_run:
                alert.actions = [run_action(a, alert.to_dict(), project) for a in rule.actions]
                alert.id = ws.reports.save(
                    "alert",
                    {k: v for k, v in alert.to_dict().items() if k != "id"},
                    subject=f"model:{model}",
                    passed=False,
                )
                links = [(f"report:{rep.id}", f"report:{alert.id}", "alert")] if rep.id else []
                if links:
                    ws.lineage.link(links)
            alerts.append(alert)
    return alerts


def alerts(model: str | None = None, limit: int | None = 100) -> pd.DataFrame:
    """Alerts that fired, newest first: time, rule, model, message, actions (with their outcome), id."""
    ws = workspace.current(create=False)
    subject = None if model is None else f"model:{model}"
    rows = []
    for record in ws.reports.list(kind="alert", subject=subject, limit=limit):
        s = record.summary
        rows.append(
            {
                "time": pd.Timestamp(record.created_at, unit="us", tz="UTC"),
                "rule": s.get("rule"),
                "model": s.get("model"),
                "message": s.get("message"),
                "actions": json.dumps(
                    [{"type": a["type"], "ok": a["ok"], "detail": a["detail"]} for a in s.get("actions", [])]
                ),
                "report_id": s.get("report_id"),
                "id": record.id,
            }
        )
    return pd.DataFrame(rows, columns=["time", "rule", "model", "message", "actions", "report_id", "id"])
