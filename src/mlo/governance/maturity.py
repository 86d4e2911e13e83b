"""``mlo maturity``: the project's MLOps maturity level, 0 to 3, computed from its own records — never declared.

| level | name | what the records must show |
|---|---|---|
| 0 | manual | (nothing yet) |
| 1 | tracked | runs with params and metrics; data snapshots read by runs; registered model versions |
| 2 | automated pipeline | a problem defined; pipeline runs; validations stored as evidence; promotions checked against a policy |
| 3 | automated operations | predictions logged and monitored; alert rules; an alert that fired; a retraining or rollback done by an alert |

The level is the highest whose criteria, and those of every level below, are all met. Each criterion says what
evidence it found, and an unmet one the command that would meet it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = {0: "manual", 1: "tracked", 2: "automated pipeline", 3: "automated operations"}


@dataclass
class Criterion:
    level: int
    name: str
    met: bool
    evidence: str
    next_step: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "name": self.name,
            "met": self.met,
            "evidence": self.evidence,
            "next_step": None if self.met else self.next_step,
        }


@dataclass
class Maturity:
    """The level reached, and every criterion with its evidence."""

    criteria: list[Criterion] = field(default_factory=list)

    @property
    def level(self) -> int:
        reached = 0
        for level in (1, 2, 3):
            if all(c.met for c in self.criteria if c.level <= level):
                reached = level
            else:
                break
        return reached

    @property
    def name(self) -> str:
        return LEVELS[self.level]

    @property
    def next_steps(self) -> list[Criterion]:
        """The unmet criteria of the next level (then of the levels above it)."""
        return sorted((c for c in self.criteria if not c.met), key=lambda c: c.level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "name": self.name,
            "criteria": [c.to_dict() for c in self.criteria],
        }

    def __str__(self) -> str:
        lines = [f"maturity level {self.level} ({self.name})"]
        for c in self.criteria:
            mark = "✓" if c.met else "✗"
            lines.append(
                f"  {mark} L{c.level} {c.name}: {c.evidence}" + ("" if c.met else f" — {c.next_step}")
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .render import maturity_html

        return maturity_html(self)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def maturity() -> Maturity:
    """Measure the workspace's maturity level from its runs, snapshots, registry, reports and audit trail."""
    from .. import workspace
    from ..monitor.rules import load_rules
    from ..tracking.query import runs
    from .problem import current

    ws = workspace.current(create=False)
    out = Maturity()
    add = out.criteria.append

    listing = runs(columns=["run_id"], limit=1)
    n_runs = int(listing.attrs.get("total", len(listing)))
    with_metrics = _runs_with_metrics(ws)
    add(Criterion(1, "experiments tracked", with_metrics > 0,
                  f"{_count(n_runs, 'run')}, {with_metrics:,} with metrics",
                  "track a run: with mlo.start_run('baseline'): mlo.log_params(...); mlo.log_metric(...)"))  # fmt: skip
    snaps = ws.snapshots.list()
    read = _runs_reading_snapshots(ws)
    add(Criterion(1, "data versioned", bool(snaps) and read > 0,
                  f"{_count(len(snaps), 'snapshot')}, read by {_count(read, 'run')}",
                  "snapshot what a run trains on inside the run: mlo.snapshot(df, 'train')"))  # fmt: skip
    versions = ws.models.versions()
    add(Criterion(1, "models registered", bool(versions),
                  f"{_count(len(versions), 'model version')} of {_count(len({v.name for v in versions}), 'model')}",
                  "register the model a run made: mlo.register_model(model, 'churn', input_example=X.head())"))  # fmt: skip

    problem = current(ws.config)
    add(Criterion(2, "problem defined", problem is not None,
                  f"[problem] from {problem.source}: {problem.objective}" if problem else "no [problem]",
                  'add [problem] to mlo.toml: objective = "…", target = { metric = "roc_auc", min = 0.8 }'))  # fmt: skip
    pipeline_runs = _runs_tagged(ws, "mlo.pipeline")
    add(Criterion(2, "pipelines run", pipeline_runs > 0, f"{_count(pipeline_runs, 'pipeline run')}",
                  "describe the notebooks as stages in pipeline.yaml and run: mlo pipeline run"))  # fmt: skip
    validations = ws.reports.list(kind="validation", limit=100_000)
    gated = [r for r in validations if r.subject and r.subject.startswith("model:")]
    add(Criterion(2, "models validated as evidence", bool(gated),
                  f"{_count(len(validations), 'validation report')}, {len(gated):,} about a model version",
                  "validate each version: mlo.validate(model, X, y, model_version=mv) (in a pipeline stage, it gates)"))  # fmt: skip
    events = ws.models.events()
    promotions = [e for e in events if e.action == "promote"]
    checked = [e for e in promotions if (e.details or {}).get("policy") and not e.forced]
    add(Criterion(2, "promotions gated by a policy", bool(checked),
                  f"{_count(len(promotions), 'promotion')}, {len(checked):,} checked against a policy without override",
                  "set a policy ([policy.production] in mlo.toml, or [problem]) and promote: mlo.promote(name, v, 'production')"))  # fmt: skip

    logged = _logged_models(ws)
    add(Criterion(3, "predictions monitored", bool(logged),
                  f"prediction logs of {', '.join(logged) if logged else 'no model'}",
                  "serve the model (mlo serve churn@production) or log predictions: mlo.monitor.log(...)"))  # fmt: skip
    rules = load_rules(ws.reread_config())
    derived = sum(r.name.startswith("problem: ") for r in rules)
    add(Criterion(3, "alert rules", bool(rules), _count(len(rules), "alert rule") + (f" ({derived:,} derived from [problem])" if derived else ""),
                  'add [[monitor.rules]] to mlo.toml: when = "dataset_drift", actions = [...]; check with mlo monitor check'))  # fmt: skip
    alerts = ws.reports.list(kind="alert", limit=100_000)
    add(Criterion(3, "alerts fired", bool(alerts), _count(len(alerts), "alert"),
                  "run mlo monitor check on a schedule (cron or CI) so rules are evaluated"))  # fmt: skip
    automated = [e for e in events if e.action == "rollback" and (e.reason or "").startswith("alert ")]
    retrains = sum(
        1
        for r in alerts
        for a in (r.summary or {}).get("actions", [])
        if isinstance(a, dict) and a.get("type") == "retrain" and a.get("ok")
    )
    add(Criterion(3, "automated retraining or rollback", bool(automated) or retrains > 0,
                  f"{_count(len(automated), 'rollback')} and {_count(retrains, 'retraining')} done by alerts",
                  "give a rule an action: actions = [{ type = \"retrain\", pipeline = \"pipeline.yaml\" }] or "
                  "[{ type = \"rollback\", alias = \"production\" }]"))  # fmt: skip
    return out


def _runs_with_metrics(ws) -> int:
    from sqlalchemy import func, select

    from ..store import schema as s

    with ws.db.read() as conn:
        q = select(func.count(func.distinct(s.latest_metrics.c.run_id)))
        return int(conn.execute(q).scalar_one())


def _runs_tagged(ws, key: str) -> int:
    from sqlalchemy import func, select

    from ..store import schema as s

    with ws.db.read() as conn:
        q = select(func.count(func.distinct(s.tags.c.run_id))).where(s.tags.c.key == key)
        return int(conn.execute(q).scalar_one())


def _runs_reading_snapshots(ws) -> int:
    from sqlalchemy import and_, func, select

    from ..store import schema as s

    t = s.lineage
    with ws.db.read() as conn:
        q = select(func.count(func.distinct(t.c.dst))).where(
            and_(t.c.relation == "input", t.c.src.like("snapshot:%"), t.c.dst.like("run:%"))
        )
        return int(conn.execute(q).scalar_one())


def _logged_models(ws) -> list[str]:
    folder = ws.home / "monitor"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))
