"""Aliases and the audit log: ``set_alias``, ``delete_alias``, ``promote`` (gated by the alias's policy),
``rollback``, and ``audit`` to read every change back.

Each change is one transaction that moves the alias and appends its audit event (who, when, from which version
to which, why, the evidence report ids, and — for a forced promotion — the requirements that were overridden).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import workspace
from ..errors import InvalidInput, NotFound
from .errors import PromotionRefused
from .policy import evaluate, policy_for
from .versions import ModelVersion, check_alias, check_name, resolve, who

if TYPE_CHECKING:
    import pandas as pd

    from ..store.models import AuditRow


@dataclass(frozen=True)
class AuditEvent:
    """One change in the registry, as recorded."""

    id: str
    name: str
    seq: int
    action: str
    alias: str | None
    version: int | None
    from_version: int | None
    to_version: int | None
    user: str | None
    created_at: datetime
    reason: str | None
    forced: bool
    evidence: tuple[str, ...]
    missing: tuple[str, ...]
    details: dict

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEvent:
        return cls(
            row.id,
            row.name,
            row.seq,
            row.action,
            row.alias,
            row.version,
            row.from_version,
            row.to_version,
            row.user,
            datetime.fromtimestamp(row.created_at / 1e6, tz=timezone.utc),
            row.reason,
            row.forced,
            tuple(row.evidence),
            tuple(row.missing),
            dict(row.details),
        )

    def describe(self) -> str:
        """One line, e.g. ``churn@production: v2 → v3 (promote by ana, forced)``."""

        def v(x):
            return "none" if x is None else f"v{x}"

        if self.action == "register":
            what = f"{self.name} v{self.version} registered"
        elif self.action == "set_policy":
            what = f"policy of {self.alias!r} for {'every model' if self.name == '*' else self.name} set"
        else:
            what = f"{self.name}@{self.alias}: {v(self.from_version)} → {v(self.to_version)} ({self.action})"
        extra = " [forced]" if self.forced else ""
        why = f" — {self.reason}" if self.reason else ""
        return f"{what} by {self.user or '?'}{extra}{why}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "seq": self.seq,
            "action": self.action,
            "alias": self.alias,
            "version": self.version,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "user": self.user,
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
            "forced": self.forced,
            "evidence": list(self.evidence),
            "missing": list(self.missing),
            "details": self.details,
        }

    def __str__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        from ..report.models import audit_html

        return audit_html([self])


def skipped_in_reproduction(call: str) -> None:
    """A registry change asked for while replaying a run for ``mlo reproduce``: not made, and said so."""
    import sys

    print(f"mlo: {call} skipped: a reproduction does not change the registry", file=sys.stderr)
    return None


def _version_number(ws, name: str, version: Any) -> int:
    """A version number from a number, ``"3"``, an alias (``"staging"``) or ``"latest"``."""
    if isinstance(version, ModelVersion):
        if version.name != name:
            raise InvalidInput(f"version {version.ref} belongs to model {version.name!r}, not {name!r}")
        return version.version
    return resolve(ws, name, version).version


def set_alias(name: str, alias: str, version: Any, *, reason: str | None = None) -> AuditEvent | None:
    """Point ``alias`` of model ``name`` at ``version`` (a number, or another alias to copy).

    Aliases that a policy governs (see :func:`set_policy`) refuse: use :func:`promote`, which checks the evidence.
    Returns the audit event, or None when the alias already pointed there.
    """
    check_name(name)
    check_alias(alias)
    if workspace.reproducing():
        return skipped_in_reproduction(f"set_alias({name!r}, {alias!r}, {version!r})")
    ws = workspace.current(create=False)
    number = _version_number(ws, name, version)
    policy = policy_for(ws, name, alias)
    if policy is not None and policy.requirements:
        raise InvalidInput(
            f"alias {alias!r} of {name!r} is governed by a policy ({policy.describe(f'{name}/{number}')}): use "
            f"mlo.promote({name!r}, {number}, {alias!r}), which checks it"
        )
    row = ws.models.change_alias(name, alias, number, "set_alias", user=who(), reason=reason)
    return AuditEvent.from_row(row) if row else None


def delete_alias(name: str, alias: str, *, reason: str | None = None) -> AuditEvent:
    """Remove ``alias`` from model ``name`` (recorded; :func:`rollback` can restore it)."""
    check_name(name)
    check_alias(alias)
    if workspace.reproducing():
        return skipped_in_reproduction(f"delete_alias({name!r}, {alias!r})")
    ws = workspace.current(create=False)
    if ws.models.alias_version(name, alias) is None:
        resolve(ws, name, alias)  # raises the helpful NotFound
    row = ws.models.change_alias(name, alias, None, "delete_alias", user=who(), reason=reason)
    if row is None:  # removed by someone else meanwhile
        resolve(ws, name, alias)
    return AuditEvent.from_row(row)


def promote(
    name: str, version: Any, alias: str, *, reason: str | None = None, force: bool = False
) -> AuditEvent | None:
    """Point ``alias`` at ``version`` if the version has the evidence the alias's policy asks for.

    Parameters
    ----------
    name : str
    version : int or str
        A version number, or an alias whose version to promote (e.g. ``"staging"``).
    alias : str
        E.g. ``"production"``.
    reason : str, optional
        Why, for the audit log.
    force : bool
        Promote even though evidence is missing; the override and what was missing go into the audit log.

    Returns
    -------
    AuditEvent or None
        The recorded change, or None when the alias already pointed at the version.

    Raises
    ------
    PromotionRefused
        (a ``GateFailed``: exit code 1 in the CLI) listing every missing piece of evidence.
    """
    check_name(name)
    check_alias(alias)
    if workspace.reproducing():
        return skipped_in_reproduction(f"promote({name!r}, {version!r}, {alias!r})")
    ws = workspace.current(create=False)
    mv = ModelVersion(
        ws, resolve(ws, name, version if not isinstance(version, ModelVersion) else version.version)
    )
    current = ws.models.alias_version(name, alias)
    policy = policy_for(ws, name, alias)
    ev = evaluate(ws, mv, alias, policy)
    if ev.missing and not force:
        raise PromotionRefused(
            f"cannot promote {mv.ref} to {alias!r}: it needs "
            + "; ".join(ev.missing)
            + f". Record the evidence ({' and '.join(ev.hints)}) and promote again, or pass force=True with a "
            "reason (the override is audited)",
            ev.missing,
        )
    details = {"policy": policy.to_dict() if policy else None}
    row = ws.models.change_alias(
        name,
        alias,
        mv.version,
        "promote",
        expect_current=current,
        user=who(),
        reason=reason,
        forced=bool(ev.missing),
        evidence=ev.evidence,
        missing=ev.missing,
        details=details,
    )
    return AuditEvent.from_row(row) if row else None


def rollback(name: str, alias: str, *, reason: str | None = None) -> AuditEvent:
    """Point ``alias`` back at the version it held before its latest change; again to go one further back.

    A rollback restores a version that held the alias before, so the policy is not checked again (its evidence
    may have aged since); the event says so.
    """
    check_name(name)
    check_alias(alias)
    if workspace.reproducing():
        return skipped_in_reproduction(f"rollback({name!r}, {alias!r})")
    ws = workspace.current(create=False)
    row = ws.models.rollback(name, alias, user=who(), reason=reason, details={"policy_checked": False})
    return AuditEvent.from_row(row)


def audit(name: str | None = None, *, limit: int | None = None) -> pd.DataFrame:
    """The audit log (of one model, or all), oldest first: time, name, action, alias, version, from_version,
    to_version, user, reason, forced, evidence, missing, id."""
    import pandas as pd

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be a whole number >= 1, got {limit!r}")
    ws = workspace.current(create=False)
    if name is not None and name != "*":
        check_name(name)
    events = [AuditEvent.from_row(r) for r in ws.models.events(name, limit=limit)]
    if name is not None and name != "*" and not events and not ws.models.model_exists(name):
        raise NotFound(ws.models._no_model(name))
    cols = [
        "time",
        "name",
        "action",
        "alias",
        "version",
        "from_version",
        "to_version",
        "user",
        "reason",
        "forced",
        "evidence",
        "missing",
        "id",
    ]
    records = [
        {
            "time": pd.Timestamp(e.created_at),
            "name": e.name,
            "action": e.action,
            "alias": e.alias,
            "version": e.version,
            "from_version": e.from_version,
            "to_version": e.to_version,
            "user": e.user,
            "reason": e.reason,
            "forced": e.forced,
            "evidence": list(e.evidence),
            "missing": list(e.missing),
            "id": e.id,
        }
        for e in events
    ]
    df = pd.DataFrame.from_records(records, columns=cols)
    for c in ("version", "from_version", "to_version"):
        df[c] = df[c].astype("Int64")
    return df


def events(name: str | None = None, *, limit: int | None = None) -> list[AuditEvent]:
    """The audit log as :class:`AuditEvent` objects, oldest first."""
    ws = workspace.current(create=False)
    return [AuditEvent.from_row(r) for r in ws.models.events(name, limit=limit)]
