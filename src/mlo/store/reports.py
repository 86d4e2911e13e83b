"""Stored reports (drift, validation, …): a JSON summary in the metadata store, the full payload as a blob.

The domain modules build their reports; this module only keeps them, so listings, gates and model cards can
find the evidence later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..errors import AmbiguousRef, NotFound
from . import schema as s
from .blobs import LocalBlobStore
from .db import Database
from .ids import new_id
from .runs import now_us


@dataclass(frozen=True)
class ReportRecord:
    id: str
    kind: str
    subject: str | None
    run_id: str | None
    passed: bool | None
    summary: dict
    payload: str | None
    created_at: int

    @classmethod
    def _from_row(cls, row) -> ReportRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            kind=m["kind"],
            subject=m["subject"],
            run_id=m["run_id"],
            passed=m["passed"],
            summary=json.loads(m["summary"]),
            payload=m["payload"],
            created_at=m["created_at"],
        )


class ReportStore:
    def __init__(self, db: Database, blobs: LocalBlobStore):
        self.db = db
        self.blobs = blobs

    def save(
        self,
        kind: str,
        summary: dict,
        payload: dict | None = None,
        *,
        subject: str | None = None,
        run_id: str | None = None,
        passed: bool | None = None,
        conn: Connection | None = None,
    ) -> str:
        """Keep a report; return its id. ``payload`` (JSON-able) goes to the blob store first, so a report row
        never points at a missing blob."""
        digest = None
        if payload is not None:
            digest = self.blobs.put_bytes(json.dumps(payload, sort_keys=True, default=str).encode())
        report_id = new_id()
        row = {
            "id": report_id,
            "kind": kind,
            "subject": subject,
            "run_id": run_id,
            "passed": passed,
            "summary": json.dumps(summary, sort_keys=True, default=str),
            "payload": digest,
            "created_at": now_us(),
        }

        def write(c: Connection) -> None:
            c.execute(s.reports.insert().values(**row))

        if conn is not None:
            write(conn)
        else:
            self.db.write(write)
        return report_id

    def get(self, ref: str) -> ReportRecord:
        """A report by id or unique id prefix."""
        with self.db.read() as c:
            rows = c.execute(select(s.reports).where(s.reports.c.id.like(f"{ref.lower()}%")).limit(2)).all()
        if not rows:
            raise NotFound(f"no report {ref!r}")
        if len(rows) > 1:
            raise AmbiguousRef(f"report prefix {ref!r} matches several reports; give more characters")
        return ReportRecord._from_row(rows[0])

    def load(self, ref: str, kind: str) -> tuple[ReportRecord, dict]:
        """A stored report of ``kind`` by id or unique id prefix, and its payload (with its full ``id``)."""
        record = self.get(ref)
        if record.kind != kind:
            raise NotFound(f"report {record.id} is a {record.kind} report, not a {kind} report")
        payload = self.payload(record) or {}
        payload["id"] = record.id
        return record, payload

    def payload(self, record: ReportRecord) -> dict | None:
        if record.payload is None:
            return None
        return json.loads(self.blobs.get_bytes(record.payload))

    def list(
        self,
        kind: str | None = None,
        subject: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[ReportRecord]:
        """Reports, newest first."""
        q = select(s.reports).order_by(s.reports.c.created_at.desc(), s.reports.c.id.desc())
        if kind is not None:
            q = q.where(s.reports.c.kind == kind)
        if subject is not None:
            q = q.where(s.reports.c.subject == subject)
        if run_id is not None:
            q = q.where(s.reports.c.run_id == run_id)
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as c:
            return [ReportRecord._from_row(r) for r in c.execute(q)]
