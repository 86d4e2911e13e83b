"""Alias policies: what evidence a version needs before an alias (``production``, …) may point at it.

A policy comes from ``mlo.toml`` or from :func:`set_policy` (kept in the store, audited); for one model and alias
the most specific wins: ``set_policy(..., model="churn")``, then ``set_policy(...)`` for every model, then
``mlo.toml``::

    [policy.production]
    validation = { max_age_days = 7 }   # a passed validation of that very version, at most 7 days old
    drift = { max_age_days = 7 }        # a drift check without drift, linked to the version or its run
    # eval = { max_age_days = 7 }       # for a prompt: a passed mlo.llm.evaluate of that very version
    # models = ["churn"]                # only these models (default: all)

What counts as evidence (stored reports, see :mod:`mlo.store.reports`):

* **validation** — reports of kind ``validation`` about the version (subject ``model:<name>/<version>`` or a
  lineage edge between the report and the version). The newest one decides: it must have passed and, with
  ``max_age_days``, be at most that old. An older pass does not outweigh a newer failure.
* **drift** — reports of kind ``drift``. With ``scope = "version"`` (the default) only reports about the version
  or its run count: subject ``model:<name>/<version>`` or ``run:<run id>``, made in that run, or linked to
  either node in the lineage graph. With ``scope = "any"``, any drift report made after the version was
  registered counts (drift checks on production data that name no model). The newest one decides: with
  ``passed = true`` (the default) it must have found no drift; ``passed = false`` only asks that a check ran.
* **eval** — reports of kind ``llm_eval`` (:func:`mlo.llm.evaluate`) about the version — a prompt version, or any
  version evaluated as an LLM app. The newest one decides: its gates must have passed (with ``max_age_days``,
  recently enough).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import workspace
from ..errors import InvalidInput
from .versions import check_alias, check_name, who

if TYPE_CHECKING:
    from ..store.reports import ReportRecord
    from .versions import ModelVersion

KINDS = ("validation", "drift", "eval")
EVAL_KIND = "llm_eval"
DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Requirement:
    """One kind of evidence an alias needs."""

    kind: str
    max_age_days: float | None = None
    passed: bool = True
    scope: str = "version"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"max_age_days": self.max_age_days}
        if self.kind == "drift":
            d.update(passed=self.passed, scope=self.scope)
        return d

    def describe(self, ref: str = "the version") -> str:
        age = f" no older than {self.max_age_days:g} days" if self.max_age_days is not None else ""
        if self.kind == "validation":
            return f"a passed validation of {ref}{age}"
        if self.kind == "eval":
            return f"a passed evaluation of {ref}{age}"
        what = "a drift check without drift" if self.passed else "a drift check"
        where = f" of {ref} or its run" if self.scope == "version" else f" made after {ref} was registered"
        return f"{what}{where}{age}"


@dataclass(frozen=True)
class Policy:
    """The requirements of one alias, and where they were set (``mlo.toml`` or ``store``)."""

    alias: str
    requirements: tuple[Requirement, ...]
    scope: str = "*"
    source: str = "store"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "scope": self.scope,
            "source": self.source,
            "rules": {r.kind: r.to_dict() for r in self.requirements},
        }

    def describe(self, ref: str = "the version") -> str:
        if not self.requirements:
            return "no requirements"
        return "; ".join(r.describe(ref) for r in self.requirements)

    def __str__(self) -> str:
        who = "every model" if self.scope == "*" else self.scope
        return f"{self.alias} ({who}, from {self.source}): {self.describe()}"

    def _repr_html_(self) -> str:
        from html import escape

        from ..report.html import STYLE, table

        who = "every model" if self.scope == "*" else self.scope
        rows = [[r.kind, r.describe()] for r in self.requirements] or [["", "no requirements"]]
        return (
            STYLE
            + f"<div class='mlo-h'>policy of @{escape(self.alias)} for {escape(who)}</div>"
            + f"<div class='mlo-m'>from {escape(self.source)}</div>"
            + table(["evidence", "required"], rows)
        )


@dataclass
class Evaluation:
    """What a version has and lacks for an alias."""

    policy: Policy | None
    evidence: list[str] = field(default_factory=list)  # report ids
    missing: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)  # how to record each kind of evidence

    @property
    def ok(self) -> bool:
        return not self.missing


# -- reading policies -------------------------------------------------------------------------------------------------
def parse_rules(rules: Any, where: str) -> tuple[Requirement, ...]:
    """Requirements from ``{"validation": true | {max_age_days}, "drift": true | {max_age_days, passed, scope}}``."""
    if not isinstance(rules, dict):
        raise InvalidInput(f"{where}: a policy is a table like {{validation = {{max_age_days = 7}}}}")
    out = []
    for key, value in rules.items():
        if key == "models":
            continue
        if key not in KINDS:
            raise InvalidInput(f"{where}: unknown requirement {key!r}; use {' or '.join(KINDS)}")
        if value is False or value is None:
            continue
        opts = {} if value is True else value
        if not isinstance(opts, dict):
            raise InvalidInput(f"{where}.{key} must be true, false or a table of options")
        allowed = {"max_age_days"} | ({"passed", "scope"} if key == "drift" else set())
        unknown = set(opts) - allowed
        if unknown:
            raise InvalidInput(
                f"{where}.{key}: unknown option(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}"
            )
        age = opts.get("max_age_days")
        if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float)) or age <= 0):
            raise InvalidInput(f"{where}.{key}.max_age_days must be a positive number of days")
        scope = opts.get("scope", "version")
        if scope not in ("version", "any"):
            raise InvalidInput(f"{where}.{key}.scope must be 'version' or 'any'")
        passed = opts.get("passed", True)
        if not isinstance(passed, bool):
            raise InvalidInput(f"{where}.{key}.passed must be true or false")
        out.append(Requirement(key, None if age is None else float(age), passed, scope))
    return tuple(sorted(out, key=lambda r: KINDS.index(r.kind)))


def _toml_policy(config: dict, name: str, alias: str) -> Policy | None:
    table = (config.get("policy") or {}) if isinstance(config.get("policy"), dict) else {}
    rules = table.get(alias)
    if rules is None:
        return None
    where = f"mlo.toml [policy.{alias}]"
    models = rules.get("models") if isinstance(rules, dict) else None
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise InvalidInput(f"{where}.models must be a list of model names")
        if name not in models:
            return None
    return Policy(alias, parse_rules(rules, where), scope=name if models else "*", source="mlo.toml")


def policy_for(ws, name: str, alias: str) -> Policy | None:
    """The policy in force for ``alias`` of model ``name`` (None: the alias is not governed)."""
    stored = ws.models.policies()
    for scope in (name, "*"):
        rules = stored.get((scope, alias))
        if rules is not None:
            return Policy(alias, parse_rules(rules, f"policy {alias!r}"), scope=scope, source="store")
    return _toml_policy(ws.config, name, alias) or _problem_policy(ws.config, name, alias)


def _problem_policy(config: dict, name: str, alias: str) -> Policy | None:
    """``production`` needs what ``[problem]`` asks (a passed validation, recent enough) when no policy is set."""
    if alias != "production":
        return None
    from ..governance.problem import current

    problem = current(config)
    if problem is None or not problem.applies_to(name):
        return None
    rules = parse_rules(problem.policy_rules(), "[problem]")
    return Policy(alias, rules, scope=problem.model or "*", source="[problem]")


def governed_aliases(ws, name: str) -> list[str]:
    """Aliases with requirements for model ``name``."""
    table = ws.config.get("policy")
    aliases = {a for (_, a) in ws.models.policies()} | (set(table) if isinstance(table, dict) else set())
    aliases.add("production")  # [problem] may govern it (see _problem_policy)
    out = []
    for a in sorted(aliases):
        p = policy_for(ws, name, a)
        if p is not None and p.requirements:
            out.append(a)
    return out


def set_policy(
    alias: str,
    *,
    validation: bool | dict | None = None,
    drift: bool | dict | None = None,
    eval: bool | dict | None = None,  # noqa: A002 - the requirement's name in mlo.toml
    model: str | None = None,
    reason: str | None = None,
    clear: bool = False,
) -> Policy | None:
    """Say what ``alias`` requires before :func:`promote` may point it at a version (recorded in the audit log).

    Parameters
    ----------
    alias : str
        E.g. ``"production"``.
    validation : bool or dict, optional
        Require a passed validation of the version: ``True``, or ``{"max_age_days": 7}``.
    drift : bool or dict, optional
        Require a drift check: ``True``, or ``{"max_age_days": 7, "passed": True, "scope": "version" | "any"}``.
    eval : bool or dict, optional
        Require a passed :func:`mlo.llm.evaluate` of the version (a prompt): ``True``, or ``{"max_age_days": 7}``.
    model : str, optional
        Only for this model (default: every model).
    reason : str, optional
        Why, for the audit log.
    clear : bool
        Remove the policy set through the API (``mlo.toml``'s, if any, applies again).

    Returns
    -------
    Policy or None
        The policy now in force for the alias (of ``model``, when given).
    """
    check_alias(alias)
    scope = check_name(model) if model is not None else "*"
    if workspace.reproducing():
        from .aliases import skipped_in_reproduction

        return skipped_in_reproduction(f"set_policy({alias!r})")
    ws = workspace.current()
    if clear:
        rules = None
    else:
        rules = {}
        for key, value in (("validation", validation), ("drift", drift), ("eval", eval)):
            if value:
                rules[key] = value
        parse_rules(rules, f"set_policy({alias!r})")
        rules = {r.kind: r.to_dict() for r in parse_rules(rules, "")}
    ws.models.set_policy(scope, alias, rules, user=who(), reason=reason)
    return policy_for(ws, scope, alias)


# -- checking evidence ---------------------------------------------------------------------------------------------
def _age_days(record: ReportRecord, now_us: int) -> float:
    return (now_us - record.created_at) / DAY_US


def _fmt_age(days: float) -> str:
    return f"{days * 24:.1f} hours" if days < 1 else f"{days:.1f} days"


def evaluate(ws, mv: ModelVersion, alias: str, policy: Policy | None = None) -> Evaluation:
    """Check the evidence of ``mv`` against the policy of ``alias`` (the one in force when not given)."""
    if policy is None:
        policy = policy_for(ws, mv.name, alias)
    ev = Evaluation(policy)
    if policy is None:
        return ev
    now = int(time.time() * 1_000_000)
    for req in policy.requirements:
        if req.kind == "validation":
            candidates = _validation_reports(ws, mv)
        elif req.kind == "eval":
            candidates = _newest_first(ws.reports.list(kind=EVAL_KIND, subject=mv.node))
        else:
            candidates = _drift_reports(ws, mv, req)
        want = req.describe(mv.ref)
        if req.kind == "validation":
            ev.hints.append(f"mlo.validate(model, X, y, checks=[...], model_version='{mv.ref}')")
        elif req.kind == "eval":
            ev.hints.append(f"mlo.llm.evaluate('{mv.ref}', data=..., scorers=[...], checks=[...])")
        else:
            where = " in the version's run" if req.scope == "version" else ""
            ev.hints.append(f"mlo.drift(reference, current){where}")
        if not candidates:
            ev.missing.append(f"{want} (none found)")
            continue
        latest = candidates[0]
        age = _age_days(latest, now)
        if req.kind in ("validation", "eval") or req.passed:
            if latest.passed is not True:
                verdict = "failed" if latest.passed is False else "has no verdict"
                if req.kind == "drift" and latest.passed is False:
                    verdict = "found drift"
                ev.missing.append(f"{want} (the latest, report {latest.id}, {verdict})")
                continue
        if req.max_age_days is not None and age > req.max_age_days:
            ev.missing.append(f"{want} (the latest, report {latest.id}, is {_fmt_age(age)} old)")
            continue
        ev.evidence.append(latest.id)
    return ev


def _newest_first(records: list[ReportRecord]) -> list[ReportRecord]:
    seen: dict[str, ReportRecord] = {}
    for r in records:
        seen.setdefault(r.id, r)
    return sorted(seen.values(), key=lambda r: (r.created_at, r.id), reverse=True)


def _linked(ws, kind: str, nodes: list[str]) -> list[ReportRecord]:
    out = []
    for report_id in ws.models.linked_reports(nodes):
        try:
            rec = ws.reports.get(report_id)
        except Exception:
            continue
        if rec.kind == kind:
            out.append(rec)
    return out


def _validation_reports(ws, mv: ModelVersion) -> list[ReportRecord]:
    return _newest_first(
        ws.reports.list(kind="validation", subject=mv.node) + _linked(ws, "validation", [mv.node])
    )


def latest_validation(ws, mv: ModelVersion) -> ReportRecord | None:
    """The newest validation report of a version (its own or linked to it), or None."""
    reports = _validation_reports(ws, mv)
    return reports[0] if reports else None


def _drift_reports(ws, mv: ModelVersion, req: Requirement) -> list[ReportRecord]:
    if req.scope == "any":
        since = mv._row.created_at
        return _newest_first([r for r in ws.reports.list(kind="drift") if r.created_at >= since])
    found = ws.reports.list(kind="drift", subject=mv.node)
    nodes = [mv.node]
    if mv.run_id:
        run_node = f"run:{mv.run_id}"
        nodes.append(run_node)
        found += ws.reports.list(kind="drift", subject=run_node)
        found += ws.reports.list(kind="drift", run_id=mv.run_id)
    return _newest_first(found + _linked(ws, "drift", nodes))
