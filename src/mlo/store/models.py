"""SQL for the model registry: registered models, their versions, aliases, alias policies and the append-only
audit log. The registry core (:mod:`mlo.registry`) calls these; nothing else writes these tables.

Version numbers are allocated inside the registering transaction by bumping ``registered_models.last_version``
under the row's lock, so concurrent registrations of one name (threads, processes, hosts) get distinct numbers;
the unique (name, version) key is the backstop, and a unique-key collision is retried like a busy database.
Alias changes take the same row lock, so the "from" version recorded in the audit log is always the one replaced.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import InvalidInput, NotFound
from . import schema as s
from .db import Database
from .ids import new_id
from .runs import now_us

T = TypeVar("T")

UNIQUE_RETRIES = 50
_ANY = object()  # "no expectation" for change_alias
_UNIQUE_KEYS = ("uq_model_versions_name_version", "uq_audit_events_name_seq")


def _loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class VersionRow:
    id: str
    name: str
    version: int
    run_id: str | None
    flavor: str
    blob: str
    size: int
    model_class: str
    signature: dict | None
    input_example: Any
    env: dict
    details: dict
    tags: dict
    description: str | None
    created_at: int
    created_by: str | None

    @classmethod
    def from_row(cls, row) -> VersionRow:
        m = dict(row._mapping)
        m["signature"] = _loads(m["signature"])
        m["input_example"] = _loads(m["input_example"])
        m["env"] = _loads(m["env"], {})
        m["details"] = _loads(m["details"], {})
        m["tags"] = _loads(m["tags"], {})
        return cls(**m)


@dataclass(frozen=True)
class AuditRow:
    id: str
    name: str
    seq: int
    action: str
    alias: str | None
    version: int | None
    from_version: int | None
    to_version: int | None
    user: str | None
    created_at: int
    reason: str | None
    forced: bool
    evidence: list
    missing: list
    details: dict

    @classmethod
    def from_row(cls, row) -> AuditRow:
        m = dict(row._mapping)
        m["forced"] = bool(m["forced"])
        m["evidence"] = _loads(m["evidence"], [])
        m["missing"] = _loads(m["missing"], [])
        m["details"] = _loads(m["details"], {})
        return cls(**m)


# The fields of a version that decide which bytes are loaded and how: covered by the record digest that the
# registration's audit event keeps, so a version whose flavor, blob or checks were changed afterwards is refused.
RECORD_FIELDS = ("name", "version", "flavor", "blob", "size", "model_class", "signature", "details")


def record_digest(values: dict[str, Any]) -> str:
    """SHA-256 over the :data:`RECORD_FIELDS` of a version (as stored: JSON fields decoded)."""
    doc = {k: values.get(k) for k in RECORD_FIELDS}
    return hashlib.sha256(_dumps(doc).encode()).hexdigest()


def record_mismatch(row: VersionRow, audited: dict[str, Any] | None) -> str | None:
    """What differs between a version and the details its registration event recorded, or None when they agree.
    Events written before record digests existed hold the digest and flavor only; those are compared."""
    if audited is None:
        return "it has no registration event in the audit log"
    for key, field_name in (("flavor", "flavor"), ("digest", "blob")):
        was, now = audited.get(key), getattr(row, field_name)
        if was is not None and was != now:
            return f"its {key} was {was} at registration and is {now} now"
    expected = audited.get("record")
    if expected is not None and expected != record_digest(row.__dict__):
        return "its stored fields (signature, checks or size) changed after registration"
    return None


def unmatched_versions(conn: Connection) -> list[tuple[str, int, str]]:
    """``(name, version, what differs)`` of every version that no longer matches its registration event."""
    v, e = s.model_versions, s.audit_events
    registrations = (
        select(e.c.name, e.c.version, e.c.details).where(e.c.action == "register").order_by(e.c.seq.desc())
    )
    events = {(n, ver): _loads(d, {}) for n, ver, d in conn.execute(registrations)}  # the first one wins
    out = []
    for r in conn.execute(select(v)):
        row = VersionRow.from_row(r)
        why = record_mismatch(row, events.get((row.name, row.version)))
        if why is not None:
            out.append((row.name, row.version, why))
    return out


def _is_unique_collision(exc: IntegrityError) -> bool:
    """A violation of one of the registry's allocation keys (not of any other constraint)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint is not None:
        return constraint in _UNIQUE_KEYS
    text = str(orig)
    return "UNIQUE constraint failed: model_versions.name, model_versions.version" in text or (
        "UNIQUE constraint failed: audit_events.name, audit_events.seq" in text
    )


class ModelStore:
    """Registered models, versions, aliases, policies and audit events in one :class:`Database`."""

    def __init__(self, db: Database):
        self.db = db

    # -- transactions -----------------------------------------------------------------------------------------
    def _write(self, fn: Callable[[Connection], T]) -> T:
        """``db.write`` that also retries a collision on a registry allocation key. SQLite serializes writers
        (BEGIN IMMEDIATE), so collisions happen only on PostgreSQL, where two transactions can both read the
        same "next" number before either commits."""
        for attempt in range(UNIQUE_RETRIES):
            try:
                return self.db.write(fn)
            except IntegrityError as exc:
                if not _is_unique_collision(exc) or attempt == UNIQUE_RETRIES - 1:
                    raise
            time.sleep(0.002 * (attempt + 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _lock_model(self, conn: Connection, name: str) -> bool:
        """Take the registered model's row lock (PostgreSQL; SQLite's writer lock already serializes)."""
        row = conn.execute(
            select(s.registered_models.c.name).where(s.registered_models.c.name == name).with_for_update()
        ).first()
        return row is not None

    def _append_event(self, conn: Connection, name: str, action: str, **values: Any) -> AuditRow:
        reason = values.get("reason")
        if reason is not None and (not isinstance(reason, str) or "\x00" in reason):
            raise InvalidInput(
                f"reason must be text (for the audit log), got {type(reason).__name__} {reason!r:.40}"
            )
        seq = conn.execute(
            select(func.coalesce(func.max(s.audit_events.c.seq), 0)).where(s.audit_events.c.name == name)
        ).scalar_one()
        row = {
            "id": new_id(),
            "name": name,
            "seq": seq + 1,
            "action": action,
            "alias": values.get("alias"),
            "version": values.get("version"),
            "from_version": values.get("from_version"),
            "to_version": values.get("to_version"),
            "user": values.get("user"),
            "created_at": now_us(),
            "reason": values.get("reason"),
            "forced": bool(values.get("forced", False)),
            "evidence": _dumps(list(values.get("evidence") or [])),
            "missing": _dumps(list(values.get("missing") or [])),
            "details": _dumps(values.get("details") or {}),
        }
        conn.execute(s.audit_events.insert().values(**row))
        return AuditRow.from_row(_Row(row))

    # -- versions ---------------------------------------------------------------------------------------------
    def add_version(
        self,
        name: str,
        values: dict[str, Any],
        *,
        user: str | None,
        alias: str | None = None,
        link: Callable[[Connection, int], None] | None = None,
    ) -> VersionRow:
        """Register the next version of ``name`` (created on first use) in one transaction, with its audit event,
        its alias (when given) and its lineage (``link(conn, version)``)."""

        def register(conn: Connection) -> VersionRow:
            now = now_us()
            rm = s.registered_models
            conn.execute(
                self.db.insert(rm)
                .values(name=name, last_version=0, created_at=now, created_by=user)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            # the UPDATE takes the row lock: a concurrent registration waits here and then sees our number
            conn.execute(update(rm).where(rm.c.name == name).values(last_version=rm.c.last_version + 1))
            version = conn.execute(select(rm.c.last_version).where(rm.c.name == name)).scalar_one()
            row = {
                "id": new_id(),
                "name": name,
                "version": version,
                "run_id": values.get("run_id"),
                "flavor": values["flavor"],
                "blob": values["blob"],
                "size": values["size"],
                "model_class": values["model_class"],
                "signature": None if values.get("signature") is None else _dumps(values["signature"]),
                "input_example": None
                if values.get("input_example") is None
                else _dumps(values["input_example"]),
                "env": _dumps(values.get("env") or {}),
                "details": _dumps(values.get("details") or {}),
                "tags": _dumps(values.get("tags") or {}),
                "description": values.get("description"),
                "created_at": now,
                "created_by": user,
            }
            conn.execute(s.model_versions.insert().values(**row))
            stored = VersionRow.from_row(_Row(row))
            self._append_event(
                conn,
                name,
                "register",
                version=version,
                to_version=version,
                user=user,
                details={
                    "run_id": row["run_id"],
                    "digest": row["blob"],
                    "flavor": row["flavor"],
                    "record": record_digest(stored.__dict__),
                },
            )
            if alias is not None:
                self._set_alias(conn, name, alias, version, "set_alias", user=user)
            if link is not None:
                link(conn, version)
            return stored

        return self._write(register)

    def get_version(self, name: str, version: int, conn: Connection | None = None) -> VersionRow:
        q = select(s.model_versions).where(
            and_(s.model_versions.c.name == name, s.model_versions.c.version == int(version))
        )
        row = self._first(q, conn)
        if row is None:
            raise NotFound(f"model {name!r} has no version {version}{self._known_versions(name)}")
        return VersionRow.from_row(row)

    def latest_version(self, name: str) -> VersionRow:
        q = (
            select(s.model_versions)
            .where(s.model_versions.c.name == name)
            .order_by(s.model_versions.c.version.desc())
            .limit(1)
        )
        row = self._first(q)
        if row is None:
            raise NotFound(self._no_model(name))
        return VersionRow.from_row(row)

    def versions(self, name: str | None = None) -> list[VersionRow]:
        """Versions, by name then newest first."""
        q = select(s.model_versions).order_by(s.model_versions.c.name, s.model_versions.c.version.desc())
        if name is not None:
            q = q.where(s.model_versions.c.name == name)
        with self.db.read() as conn:
            return [VersionRow.from_row(r) for r in conn.execute(q)]

    def model_exists(self, name: str) -> bool:
        q = select(s.registered_models.c.name).where(s.registered_models.c.name == name)
        return self._first(q) is not None

    def model_names(self) -> list[str]:
        """Names of the registered models (not of the prompts, which share the registry: flavor ``prompt``)."""
        prompts = select(s.model_versions.c.name).where(s.model_versions.c.flavor == "prompt")
        q = (
            select(s.registered_models.c.name)
            .where(s.registered_models.c.name.not_in(prompts))
            .order_by("name")
        )
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(q)]

    def registration(self, name: str, version: int) -> dict[str, Any] | None:
        """The details that the registration event of a version recorded (digest, flavor, record digest)."""
        t = s.audit_events
        q = (
            select(t.c.details)
            .where(and_(t.c.name == name, t.c.action == "register", t.c.version == int(version)))
            .order_by(t.c.seq)
            .limit(1)
        )
        row = self._first(q)
        return None if row is None else _loads(row[0], {})

    # -- aliases ----------------------------------------------------------------------------------------------
    def aliases(self, name: str | None = None) -> dict[str, dict[str, int]]:
        """``{model name: {alias: version}}``."""
        t = s.model_aliases
        q = select(t.c.name, t.c.alias, t.c.version).order_by(t.c.name, t.c.alias)
        if name is not None:
            q = q.where(t.c.name == name)
        out: dict[str, dict[str, int]] = {}
        with self.db.read() as conn:
            for n, a, v in conn.execute(q):
                out.setdefault(n, {})[a] = v
        return out

    def alias_version(self, name: str, alias: str, conn: Connection | None = None) -> int | None:
        t = s.model_aliases
        row = self._first(select(t.c.version).where(and_(t.c.name == name, t.c.alias == alias)), conn)
        return None if row is None else row[0]

    def _set_alias(
        self, conn: Connection, name: str, alias: str, version: int | None, action: str, **event: Any
    ) -> AuditRow | None:
        """Point ``alias`` at ``version`` (None removes it) and append the audit event; None when nothing changes."""
        current = self.alias_version(name, alias, conn)
        if current == version:
            return None
        t = s.model_aliases
        if version is None:
            conn.execute(delete(t).where(and_(t.c.name == name, t.c.alias == alias)))
        else:
            ins = self.db.insert(t).values(
                name=name, alias=alias, version=version, updated_at=now_us(), updated_by=event.get("user")
            )
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["name", "alias"],
                    set_={
                        "version": ins.excluded.version,
                        "updated_at": ins.excluded.updated_at,
                        "updated_by": ins.excluded.updated_by,
                    },
                )
            )
        return self._append_event(
            conn,
            name,
            action,
            alias=alias,
            version=version if version is not None else current,
            from_version=current,
            to_version=version,
            **event,
        )

    def change_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        action: str,
        *,
        expect_current: Any = _ANY,
        **event: Any,
    ) -> AuditRow | None:
        """Set (or with ``version=None`` remove) an alias under the model's lock, with its audit event.

        ``expect_current``, when given, is the version the caller saw holding the alias (e.g. when it checked
        evidence); if another process moved the alias meanwhile, nothing is changed and InvalidInput says so.
        """

        def change(conn: Connection) -> AuditRow | None:
            if not self._lock_model(conn, name):
                raise NotFound(self._no_model(name))
            if version is not None:
                self.get_version(name, version, conn)
            if expect_current is not _ANY:
                current = self.alias_version(name, alias, conn)
                if current != expect_current:
                    raise InvalidInput(
                        f"{name}@{alias} moved to version {current} while this change was prepared; try again"
                    )
            return self._set_alias(conn, name, alias, version, action, **event)

        return self._write(change)

    def rollback(self, name: str, alias: str, **event: Any) -> AuditRow:
        """Point ``alias`` back at the version it held before its latest change (repeatable: each rollback undoes
        one more change). Raises InvalidInput when the alias held no version before (it is never removed)."""

        def roll(conn: Connection) -> AuditRow:
            if not self._lock_model(conn, name):
                raise NotFound(self._no_model(name))
            stack = self._alias_stack(conn, name, alias)
            if len(stack) < 2 or stack[-2] is None:
                now = f" before v{stack[-1]}" if len(stack) > 1 and stack[-1] is not None else ""
                raise InvalidInput(
                    f"{name}@{alias} had no version{now} to roll back to (remove it with mlo.delete_alias); "
                    f"`mlo audit {name}` shows its history"
                )
            target = stack[-2]
            ev = self._set_alias(conn, name, alias, target, "rollback", **event)
            if ev is None:  # the alias already holds the target (e.g. set back by hand): record it anyway
                ev = self._append_event(
                    conn,
                    name,
                    "rollback",
                    alias=alias,
                    version=target,
                    from_version=target,
                    to_version=target,
                    **event,
                )
            return ev

        return self._write(roll)

    def _alias_stack(self, conn: Connection, name: str, alias: str) -> list[int | None]:
        """The values the alias held, oldest first, with rolled-back changes popped off. A policy change for the
        alias is in the same log but moves nothing."""
        t = s.audit_events
        q = (
            select(t.c.action, t.c.to_version)
            .where(and_(t.c.name == name, t.c.alias == alias, t.c.action != "set_policy"))
            .order_by(t.c.seq)
        )
        stack: list[int | None] = [None]  # before its first change the alias did not exist
        for action, to_version in conn.execute(q):
            if action == "rollback":
                if len(stack) > 1:
                    stack.pop()
            else:
                stack.append(to_version)
        return stack

    # -- audit log --------------------------------------------------------------------------------------------
    def events(self, name: str | None = None, limit: int | None = None) -> list[AuditRow]:
        """Audit events, oldest first (per model in their recorded order)."""
        t = s.audit_events
        q = select(t)
        if name is not None:
            q = q.where(t.c.name == name).order_by(t.c.seq.desc())
        else:
            q = q.order_by(t.c.created_at.desc(), t.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as conn:
            rows = [AuditRow.from_row(r) for r in conn.execute(q)]
        return rows[::-1]

    # -- policies ---------------------------------------------------------------------------------------------
    def set_policy(
        self, scope: str, alias: str, rules: dict | None, *, user: str | None, reason: str | None
    ) -> AuditRow:
        """Store (or with ``rules=None`` remove) the policy of ``alias`` for one model or ``"*"``, audited."""
        t = s.model_policies

        def write(conn: Connection) -> AuditRow:
            old = conn.execute(select(t.c.rules).where(and_(t.c.scope == scope, t.c.alias == alias))).first()
            if rules is None:
                conn.execute(delete(t).where(and_(t.c.scope == scope, t.c.alias == alias)))
            else:
                ins = self.db.insert(t).values(
                    scope=scope, alias=alias, rules=_dumps(rules), updated_at=now_us(), updated_by=user
                )
                conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=["scope", "alias"],
                        set_={
                            "rules": ins.excluded.rules,
                            "updated_at": ins.excluded.updated_at,
                            "updated_by": ins.excluded.updated_by,
                        },
                    )
                )
            return self._append_event(
                conn,
                scope,
                "set_policy",
                alias=alias,
                user=user,
                reason=reason,
                details={"rules": rules, "previous": _loads(old[0]) if old else None},
            )

        return self._write(write)

    def policies(self) -> dict[tuple[str, str], dict]:
        """``{(scope, alias): rules}`` of the policies set through the API."""
        t = s.model_policies
        with self.db.read() as conn:
            return {
                (sc, a): json.loads(r) for sc, a, r in conn.execute(select(t.c.scope, t.c.alias, t.c.rules))
            }

    # -- reading other tables for the registry ----------------------------------------------------------------
    def run_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Latest metrics of several runs: ``{run_id: {key: value}}``."""
        ids = [r for r in set(run_ids) if r]
        out: dict[str, dict[str, float]] = {r: {} for r in ids}
        if not ids:
            return out
        t = s.latest_metrics
        with self.db.read() as conn:
            for i in range(0, len(ids), 500):
                q = select(t.c.run_id, t.c.key, t.c.value).where(t.c.run_id.in_(ids[i : i + 500]))
                for run_id, key, value in conn.execute(q):
                    out[run_id][key] = float("nan") if value is None else value
        return out

    def runs_with_tag(self, key: str, value: str, *, owner: str | None = None, limit: int = 20) -> list[str]:
        """Ids of runs tagged ``key=value`` (of one owner process when given), newest first."""
        r, tg = s.runs, s.tags
        q = (
            select(r.c.id)
            .select_from(r.join(tg, tg.c.run_id == r.c.id))
            .where(and_(tg.c.key == key, tg.c.value == value))
            .order_by(r.c.start_time.desc(), r.c.id.desc())
            .limit(limit)
        )
        if owner is not None:
            q = q.where(r.c.owner == owner)
        with self.db.read() as conn:
            return [row[0] for row in conn.execute(q)]

    def run_inputs(self, run_id: str) -> list[str]:
        """Snapshot ids recorded as inputs of a run, oldest link first."""
        t = s.lineage
        q = (
            select(t.c.src)
            .where(and_(t.c.dst == f"run:{run_id}", t.c.relation == "input", t.c.src.like("snapshot:%")))
            .order_by(t.c.created_at, t.c.src)
        )
        with self.db.read() as conn:
            return [row[0].partition(":")[2] for row in conn.execute(q)]

    def linked_reports(self, nodes: Iterable[str]) -> list[str]:
        """Ids of reports with a lineage edge to or from any of ``nodes``."""
        nodes = list(nodes)
        t = s.lineage
        out: list[str] = []
        with self.db.read() as conn:
            for a, b in conn.execute(
                select(t.c.src, t.c.dst).where(
                    (t.c.src.in_(nodes) & t.c.dst.like("report:%"))
                    | (t.c.dst.in_(nodes) & t.c.src.like("report:%"))
                )
            ):
                other = b if a in nodes else a
                out.append(other.partition(":")[2])
        return out

    # -- helpers ----------------------------------------------------------------------------------------------
    def _first(self, q, conn: Connection | None = None):
        if conn is not None:
            return conn.execute(q).first()
        with self.db.read() as c:
            return c.execute(q).first()

    def _known_versions(self, name: str) -> str:
        q = select(func.max(s.model_versions.c.version)).where(s.model_versions.c.name == name)
        latest = self._first(q)
        if latest is None or latest[0] is None:
            return f" (no model named {name!r}; `mlo models` lists the models there are)"
        return f" (its versions are 1 to {latest[0]})"

    def _no_model(self, name: str) -> str:
        names = self.model_names()
        known = ", ".join(names[:10]) + (" …" if len(names) > 10 else "") if names else "none yet"
        return f"no model named {name!r} (registered models: {known})"


class _Row:
    """A dict that looks like a result row to ``from_row`` (for rows just inserted)."""

    def __init__(self, mapping: dict):
        self._mapping = mapping
