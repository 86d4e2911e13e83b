"""Model cards: one page per version with its lineage (run, code, data), metrics, signature, the validation and
drift evidence, where it stands against each alias policy, and its audit trail. HTML and Markdown."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import workspace
from ..errors import InvalidInput, NotFound
from .policy import Requirement, _drift_reports, _validation_reports, evaluate, governed_aliases, policy_for
from .versions import ModelVersion, resolve

if TYPE_CHECKING:
    from ..store.models import VersionRow
    from ..store.reports import ReportRecord

MAX_REPORTS = 10


def _iso(us: int | None) -> str | None:
    return (
        None
        if us is None
        else datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat(timespec="seconds")
    )


def cells_digest(cells: list[dict]) -> str | None:
    """SHA-256 over the sources of a run's captured cells, in order: what code made the model."""
    if not cells:
        return None
    h = hashlib.sha256()
    for c in cells:
        h.update(c["source"].encode("utf-8"))
        h.update(b"\n\x00")
    return h.hexdigest()


def _report(rec: ReportRecord) -> dict[str, Any]:
    shown = {
        k: v
        for k, v in rec.summary.items()
        if k not in ("passed", "model_version") and isinstance(v, (int, float, str, bool, list)) and v != []
    }
    return {
        "id": rec.id,
        "kind": rec.kind,
        "created_at": _iso(rec.created_at),
        "passed": rec.passed,
        "subject": rec.subject,
        "run_id": rec.run_id,
        "summary": shown,
    }


class ModelCard:
    """The card of one model version: ``to_html()`` (a standalone page), ``to_markdown()``, ``save(path)``,
    ``to_dict()``; shows itself in a notebook."""

    def __init__(self, ws, row: VersionRow):
        self._ws = ws
        self._row = row
        self._data: dict[str, Any] | None = None

    @property
    def model_version(self) -> ModelVersion:
        return ModelVersion(self._ws, self._row)

    def to_dict(self) -> dict[str, Any]:
        if self._data is None:
            self._data = _collect(self._ws, self.model_version)
        return self._data

    def to_markdown(self) -> str:
        from ..report.models import card_markdown

        return card_markdown(self.to_dict())

    def to_html(self) -> str:
        from ..report.models import card_page

        return card_page(self.to_dict())

    def _repr_html_(self) -> str:
        from ..report.models import card_html

        return card_html(self.to_dict())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card to ``path``: HTML for ``.html``/``.htm``, Markdown for ``.md``/``.markdown``."""
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidInput(f"save takes a file path (card.md or card.html), got {type(path).__name__}")
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".html", ".htm"):
            text = self.to_html()
        elif suffix in (".md", ".markdown"):
            text = self.to_markdown()
        else:
            raise InvalidInput(f"cannot tell the card format from {p.name!r}: use a .html or .md file name")
        from ..report.html import write_text

        return write_text(p, text)

    def __repr__(self) -> str:
        return f"<ModelCard {self._row.name}/{self._row.version}>"


def _features(ws, sig) -> list[dict[str, Any]]:
    """The feature view versions the model reads (from its signature), with their digests and sources."""
    out = []
    for f in (sig.features if sig is not None else ()) or ():
        item = {"view": f["view"], "version": f["version"], "ref": f"{f['view']}@{f['version']}",
                "columns": list(f.get("columns") or []), "digest": None, "source": None}  # fmt: skip
        try:
            row = ws.features.get(f["view"], int(f["version"]))
            item["digest"] = row.digest
            srow = ws.snapshots.get(row.snapshot_id)
            item["source"] = f"{srow.name}@{srow.version}"
        except NotFound:
            pass
        out.append(item)
    return out


def model_card(name: Any, version: Any = None) -> ModelCard:
    """The model card of a version: ``model_card("churn", 3)``, ``model_card("churn", "production")`` or
    ``model_card("churn@production")``."""
    ws = workspace.current(create=False)
    return ModelCard(ws, resolve(ws, name, version))


def _governance(ws, mv: ModelVersion) -> dict[str, Any]:
    """The card's problem (each objective judged for this version), feature importance and maturity level."""
    from ..governance.maturity import maturity
    from ..governance.problem import current
    from ..governance.status import status

    out: dict[str, Any] = {"problem": None, "importance": None, "maturity": None}
    problem = current(ws.config)
    if problem is not None and problem.applies_to(mv.name):
        judged = status(mv.name, version=mv)
        out["problem"] = {
            "objective": problem.objective,
            "owner": problem.owner,
            "state": judged.state,
            "items": [i.to_dict() for i in judged.items],
        }
    reports = _validation_reports(ws, mv)
    for rec in reports:
        payload = ws.reports.payload(rec) or {}
        if payload.get("importance"):
            out["importance"] = {"report": rec.id, **payload["importance"]}
            break
    m = maturity()
    out["maturity"] = {"level": m.level, "name": m.name, "next": [c.name for c in m.next_steps[:3]]}
    return out


def _collect(ws, mv: ModelVersion) -> dict[str, Any]:
    from ..store import schema

    d: dict[str, Any] = {
        "name": mv.name,
        "version": mv.version,
        "ref": mv.ref,
        "uri": mv.uri,
        "aliases": mv.aliases,
        "flavor": mv.flavor,
        "model_class": mv.model_class,
        "digest": mv.digest,
        "size": mv.size,
        "created_at": mv.created_at.isoformat(timespec="seconds"),
        "created_by": mv.created_by,
        "description": mv.description,
        "tags": mv.tags,
        "env": mv.env,
        "details": mv.details,
    }
    sig = mv.signature
    d["signature"] = sig.to_dict() if sig else None
    run = code = None
    data: list[dict] = []
    params: dict = {}
    if mv.run_id:
        try:
            row = ws.runs.run_row(mv.run_id)
        except NotFound:
            row = None
        if row is not None:
            run = {
                "id": mv.run_id,
                "name": row["name"],
                "experiment": row["experiment"],
                "status": row["status"],
                "user": row["user"],
                "source": row["source"],
                "git_commit": row["git_commit"],
                "git_dirty": row["git_dirty"],
                "start_time": _iso(row["start_time"]),
            }
            cells = ws.runs.cells(mv.run_id)
            if cells:
                code = {"cells": len(cells), "digest": cells_digest(cells)}
            from ..tracking.run import decode_param

            params = {k: decode_param(v) for k, v in ws.runs.key_values(schema.params, mv.run_id).items()}
        for snap_id in ws.models.run_inputs(mv.run_id):
            try:
                srow = ws.snapshots.get(snap_id)
            except Exception:
                data.append({"id": snap_id, "ref": f"snapshot:{snap_id}", "digest": None})
                continue
            data.append(
                {
                    "id": srow.id,
                    "ref": f"{srow.name}@{srow.version}",
                    "digest": srow.digest,
                    "rows": srow.rows,
                    "columns": srow.n_columns,
                }
            )
    d["lineage"] = {"run": run, "code": code, "data": data}
    features = _features(ws, sig)
    if features:  # the feature view versions the model reads
        d["lineage"]["features"] = features
    d["metrics"] = mv.metrics
    d["params"] = params
    d["validation"] = [_report(r) for r in _validation_reports(ws, mv)[:MAX_REPORTS]]
    d["drift"] = [_report(r) for r in _drift_reports(ws, mv, Requirement("drift"))[:MAX_REPORTS]]
    policies = []
    for alias in governed_aliases(ws, mv.name):
        policy = policy_for(ws, mv.name, alias)
        ev = evaluate(ws, mv, alias, policy)
        policies.append(
            {
                "alias": alias,
                "source": policy.source if policy else None,
                "requires": policy.describe(mv.ref) if policy else "",
                "ok": ev.ok,
                "missing": ev.missing,
                "evidence": ev.evidence,
            }
        )
    d["policies"] = policies
    d.update(_governance(ws, mv))
    d["audit"] = [
        {
            "time": _iso(e.created_at),
            "action": e.action,
            "alias": e.alias,
            "from_version": e.from_version,
            "to_version": e.to_version,
            "user": e.user,
            "reason": e.reason,
            "forced": e.forced,
            "evidence": e.evidence,
            "missing": e.missing,
        }
        for e in ws.models.events(mv.name)
        if e.version == mv.version or mv.version in (e.from_version, e.to_version)
    ]
    return d
