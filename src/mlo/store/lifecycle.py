"""SQL for the lifecycle of runs and experiments: archive, delete, restore, purge, and which runs default listings
leave out.

A run is *active*, *archived* (kept, out of default listings) or *deleted* (out of default listings, restorable
until a purge removes it for good). A run of an archived or deleted experiment counts as archived or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidInput, NotFound
from . import schema as s
from .db import Database
from .ids import now_us
from .tags import REPRODUCES_TAG  # noqa: F401 (also imported from here)
from .traces import TraceStore

# Runs that default listings leave out, by the word of ``include=`` that brings them back. Each rule is a SQL
# condition on ``runs`` joined with ``experiments``, and a cheap probe: whether any run could match it at all
# (when none can, listings skip the condition). One more rule is one more entry.
HIDDEN: dict[str, tuple[Callable[[], ColumnElement], Callable[[], ColumnElement]]] = {
    "archived": (
        lambda: or_(s.runs.c.lifecycle == "archived", s.experiments.c.lifecycle == "archived"),
        lambda: or_(
            select(s.runs.c.id).where(s.runs.c.lifecycle == "archived").exists(),
            select(s.experiments.c.id).where(s.experiments.c.lifecycle == "archived").exists(),
        ),
    ),
    "deleted": (
        lambda: or_(s.runs.c.lifecycle == "deleted", s.experiments.c.lifecycle == "deleted"),
        lambda: or_(
            select(s.runs.c.id).where(s.runs.c.lifecycle == "deleted").exists(),
            select(s.experiments.c.id).where(s.experiments.c.lifecycle == "deleted").exists(),
        ),
    ),
    # the replays of `mlo reproduce`: every run of one is tagged with the run it reproduces
    "reproductions": (
        lambda: (
            select(s.tags.c.run_id)
            .where(s.tags.c.run_id == s.runs.c.id, s.tags.c.key == REPRODUCES_TAG)
            .exists()
        ),
        lambda: select(s.tags.c.run_id).where(s.tags.c.key == REPRODUCES_TAG).exists(),
    ),
}


def check_include(include: str | Iterable[str] | None) -> frozenset[str]:
    """``include=`` of a listing as a set of :data:`HIDDEN` words; ``"all"`` names every one."""
    if include is None:
        return frozenset()
    if not isinstance(include, (str, list, tuple, set, frozenset)):
        raise InvalidInput(
            f"include= takes a word or a list of them ({', '.join([*HIDDEN, 'all'])}), got {include!r}"
        )
    words = [include] if isinstance(include, str) else list(include)
    out = set()
    for word in words:
        w = str(word).strip().lower()
        if w == "all":
            out |= set(HIDDEN)
        elif w in HIDDEN:
            out.add(w)
        elif w != "active":
            raise InvalidInput(f"include={word!r}: use one or more of {', '.join([*HIDDEN, 'all'])}")
    return frozenset(out)


def hidden_condition(db: Database, include: frozenset[str]) -> ColumnElement | None:
    """A condition that keeps the runs a listing shows (on ``runs`` joined with ``experiments``), or None when
    it would keep every run (nothing hidden exists, or ``include`` covers it)."""
    rules = [rule for word, rule in HIDDEN.items() if word not in include]
    if not rules:
        return None
    with db.read() as conn:
        present = conn.execute(select(*[probe().label(f"p{i}") for i, (_, probe) in enumerate(rules)])).one()
    conditions = [cond() for (cond, _), hit in zip(rules, present, strict=True) if hit]
    if not conditions:
        return None
    return ~or_(*conditions)


@dataclass
class PurgeResult:
    """What :meth:`LifecycleStore.purge` removed for good, and what it kept although deleted (and why)."""

    runs: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # run id -> why it stays

    def to_dict(self) -> dict:
        return {"runs": self.runs, "experiments": self.experiments, "kept": self.kept}


class LifecycleStore:
    def __init__(self, db: Database):
        self.db = db

    # -- runs -------------------------------------------------------------------------------------------------
    @staticmethod
    def _with_descendants(conn: Connection, run_ids: Sequence[str]) -> list[str]:
        r = s.runs
        tree = select(r.c.id).where(r.c.id.in_(list(run_ids))).cte("tree", recursive=True)
        tree = tree.union(select(r.c.id).where(r.c.parent_id == tree.c.id))
        return [row[0] for row in conn.execute(select(tree.c.id))]

    def set_runs(self, run_ids: Sequence[str], lifecycle: str) -> list[str]:
        """Move runs and their descendants (a pipeline run's stages, nested runs) to ``lifecycle``. Refuses a
        running run. Returns the ids that changed."""
        if lifecycle not in s.LIFECYCLES:
            raise InvalidInput(f"lifecycle must be one of {', '.join(s.LIFECYCLES)}, got {lifecycle!r}")
        r = s.runs

        def write(conn: Connection) -> list[str]:
            ids = self._with_descendants(conn, run_ids)
            rows = conn.execute(
                select(r.c.id, r.c.name, r.c.status, r.c.lifecycle).where(r.c.id.in_(ids))
            ).all()
            if lifecycle != "active":
                running = [f"{name!r} ({rid})" for rid, name, status, _ in rows if status == "running"]
                if running:
                    raise InvalidInput(
                        f"run {running[0]} is still running: end it first (mlo.end_run() or %mlo end)"
                    )
            changed = [rid for rid, _, _, current in rows if current != lifecycle]
            if changed:
                conn.execute(
                    update(r)
                    .where(r.c.id.in_(changed))
                    .values(lifecycle=lifecycle, deleted_at=None if lifecycle == "active" else now_us())
                )
            return changed

        return self.db.write(write)

    def set_note(self, run_id: str, note: str | None) -> None:
        self.db.write(
            lambda conn: conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(note=note))
        )

    def note(self, run_id: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(select(s.runs.c.note).where(s.runs.c.id == run_id)).scalar()

    # -- experiments ------------------------------------------------------------------------------------------
    def set_experiment(self, name: str, lifecycle: str) -> bool:
        """Move experiment ``name`` to ``lifecycle``; whether it changed. Deleting or archiving one with a
        running run is refused."""
        e, r = s.experiments, s.runs

        def write(conn: Connection) -> bool:
            row = conn.execute(select(e.c.id, e.c.lifecycle).where(e.c.name == name)).first()
            if row is None:
                raise NotFound(f"no experiment named {name!r}; `mlo experiments` lists them")
            if row.lifecycle == lifecycle:
                return False
            if lifecycle != "active":
                running = conn.execute(
                    select(r.c.id).where(and_(r.c.experiment_id == row.id, r.c.status == "running")).limit(1)
                ).first()
                if running:
                    raise InvalidInput(
                        f"experiment {name!r} has a running run ({running[0]}): end it before you {lifecycle[:-1]}"
                        f"{'e' if lifecycle == 'archived' else ''} the experiment"
                    )
            conn.execute(
                update(e)
                .where(e.c.id == row.id)
                .values(lifecycle=lifecycle, deleted_at=None if lifecycle == "active" else now_us())
            )
            return True

        return self.db.write(write)

    def experiment_lifecycle(self, conn: Connection, experiment_id: str) -> str | None:
        return conn.execute(
            select(s.experiments.c.lifecycle).where(s.experiments.c.id == experiment_id)
        ).scalar()

    def experiments(self, include: frozenset[str]) -> list[dict]:
        """Experiments (those ``include`` shows), with how many runs each shows and when the last started."""
        e, r = s.experiments, s.runs
        keep = hidden_condition(self.db, include)
        run_join = r.c.experiment_id == e.c.id
        if keep is not None:
            run_join = and_(run_join, r.c.lifecycle.in_(["active", *sorted(include & set(s.LIFECYCLES))]))
            if "reproductions" not in include:
                run_join = and_(run_join, ~HIDDEN["reproductions"][0]())
        q = (
            select(
                e.c.id,
                e.c.name,
                e.c.lifecycle,
                e.c.created_at,
                e.c.deleted_at,
                func.count(r.c.id).label("runs"),
                func.max(r.c.start_time).label("last_run"),
            )
            .select_from(e.outerjoin(r, run_join))
            .group_by(e.c.id, e.c.name, e.c.lifecycle, e.c.created_at, e.c.deleted_at)
            .order_by(e.c.name)
        )
        shown = {"active", *include}
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(q) if row.lifecycle in shown]

    # -- purge ------------------------------------------------------------------------------------------------
    def purge(self, cutoff_us: int, dry_run: bool = False) -> PurgeResult:
        """Remove for good the runs deleted before ``cutoff_us`` (and those of experiments deleted before it),
        with everything logged to them, and the deleted experiments left empty. A run that a registered model
        version, a snapshot, the lineage of a snapshot or model, or the evidence of an audited registry change
        refers to stays (deleted), and so do its ancestors. Blobs are left to the garbage collector."""

        def write(conn: Connection) -> PurgeResult:
            if self.db.dialect == "postgresql":
                # writers that could start referring to a run wait until the purge commits; and so does another
                # purge (SHARE ROW EXCLUSIVE conflicts with itself; two purges holding SHARE each waited for the
                # other to let go before deleting, a deadlock that came back at every retry)
                conn.exec_driver_sql(
                    "LOCK TABLE model_versions, snapshots, lineage, reports, audit_events, runs "
                    "IN SHARE ROW EXCLUSIVE MODE"
                )
            return self._purge(conn, cutoff_us, dry_run)

        return self.db.write(write)

    def _purge(self, conn: Connection, cutoff_us: int, dry_run: bool) -> PurgeResult:
        r, e = s.runs, s.experiments
        gone_experiments = select(e.c.id).where(and_(e.c.lifecycle == "deleted", e.c.deleted_at <= cutoff_us))
        candidates = {
            rid: parent
            for rid, parent in conn.execute(
                select(r.c.id, r.c.parent_id).where(
                    or_(
                        and_(r.c.lifecycle == "deleted", r.c.deleted_at <= cutoff_us),
                        r.c.experiment_id.in_(gone_experiments),
                    )
                )
            )
        }
        result = PurgeResult()
        if candidates:
            kept = self._needed(conn, list(candidates))
            # a kept run keeps its ancestors, and a run whose child is not purged keeps its place as a parent
            parents = dict(
                conn.execute(select(r.c.id, r.c.parent_id).where(r.c.parent_id.is_not(None))).all()
            )
            for rid in list(kept):
                parent = parents.get(rid)
                while parent is not None and parent not in kept:
                    if parent in candidates:
                        kept[parent] = f"parent of {rid}, which is kept"
                    parent = parents.get(parent)
            children_elsewhere = {
                parent
                for child, parent in parents.items()
                if parent in candidates and child not in candidates
            }
            for rid in children_elsewhere:
                kept.setdefault(rid, "parent of a run that is not deleted")
            result.kept = {rid: why for rid, why in kept.items() if rid in candidates}
            result.runs = sorted(set(candidates) - set(result.kept))
        if not dry_run and result.runs:
            self._remove_runs(conn, result.runs)
        left = select(r.c.id).where(r.c.experiment_id == e.c.id).exists()
        empty = [
            row[0] for row in conn.execute(select(e.c.name).where(and_(e.c.id.in_(gone_experiments), ~left)))
        ]
        if dry_run:  # the experiments whose every run would go
            still = {
                row[0]
                for row in conn.execute(
                    select(e.c.name)
                    .select_from(e.join(r, r.c.experiment_id == e.c.id))
                    .where(and_(e.c.id.in_(gone_experiments), r.c.id.not_in(result.runs or [""])))
                )
            }
            everything = [
                row[0] for row in conn.execute(select(e.c.name).where(e.c.id.in_(gone_experiments)))
            ]
            empty = [name for name in everything if name not in still]
        elif empty:
            conn.execute(delete(e).where(and_(e.c.name.in_(empty), e.c.id.in_(gone_experiments))))
        result.experiments = sorted(empty)
        return result

    @staticmethod
    def _needed(conn: Connection, run_ids: list[str]) -> dict[str, str]:
        """Which of ``run_ids`` something else refers to, and what."""
        needed: dict[str, str] = {}
        mv, sn, lt, rp = s.model_versions, s.snapshots, s.lineage, s.reports
        for i in range(0, len(run_ids), 500):
            part = run_ids[i : i + 500]
            for rid, name, version in conn.execute(
                select(mv.c.run_id, mv.c.name, mv.c.version).where(mv.c.run_id.in_(part))
            ):
                needed.setdefault(rid, f"model {name}/{version} was registered from it")
            for rid, name, version in conn.execute(
                select(sn.c.run_id, sn.c.name, sn.c.version).where(sn.c.run_id.in_(part))
            ):
                needed.setdefault(rid, f"snapshot {name}@{version} was taken in it")
            nodes = [f"run:{rid}" for rid in part]
            produced = or_(lt.c.dst.like("snapshot:%"), lt.c.dst.like("model:%"))
            for src, dst in conn.execute(
                select(lt.c.src, lt.c.dst).where(and_(lt.c.src.in_(nodes), produced))
            ):
                needed.setdefault(src[len("run:") :], f"the lineage of {dst} goes through it")
            for rid, report, subject in conn.execute(
                select(rp.c.run_id, rp.c.id, rp.c.subject).where(
                    and_(rp.c.run_id.in_(part), rp.c.subject.like("model:%"))
                )
            ):
                needed.setdefault(rid, f"report {report} about {subject} was made in it")
        evidence: set[str] = set()
        for (text,) in conn.execute(
            select(s.audit_events.c.evidence).where(s.audit_events.c.evidence != "[]")
        ):
            evidence.update(str(x) for x in json.loads(text or "[]"))
        if evidence:
            ids = list(evidence)
            for i in range(0, len(ids), 500):
                for rid, report in conn.execute(
                    select(rp.c.run_id, rp.c.id).where(
                        and_(rp.c.id.in_(ids[i : i + 500]), rp.c.run_id.is_not(None))
                    )
                ):
                    if rid in run_ids:
                        needed.setdefault(rid, f"report {report} is evidence in the registry's audit log")
        return needed

    @staticmethod
    def _remove_runs(conn: Connection, run_ids: list[str]) -> None:
        for i in range(0, len(run_ids), 500):
            part = run_ids[i : i + 500]
            for table in (s.params, s.tags, s.latest_metrics, s.metric_chunks, s.artifacts, s.cells):
                conn.execute(delete(table).where(table.c.run_id.in_(part)))
            nodes = [f"run:{rid}" for rid in part]
            conn.execute(delete(s.lineage).where(or_(s.lineage.c.src.in_(nodes), s.lineage.c.dst.in_(nodes))))
            conn.execute(delete(s.stage_cache).where(s.stage_cache.c.run_id.in_(part)))
            conn.execute(delete(s.reports).where(s.reports.c.run_id.in_(part)))
            TraceStore.remove_runs(conn, part)
            conn.execute(delete(s.runs).where(s.runs.c.id.in_(part)))
