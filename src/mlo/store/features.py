"""Feature views and their online values in the metadata database.

A feature view version is added once per distinct definition (its digest); re-running the cell that defines it
finds the same version. The online table holds one row per view and entity; a materialization replaces a view's
rows in one transaction, so a reader (a serving process) sees the whole old set or the whole new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from ..errors import NotFound
from . import schema as s
from .db import Database
from .ids import new_id
from .lineage import Edge
from .runs import now_us

INSERT_BATCH = 5_000


@dataclass(frozen=True)
class FeatureViewRow:
    id: str
    name: str
    version: int
    digest: str
    code_digest: str
    snapshot_id: str
    entity: str
    timestamp: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    code: str
    blob: str
    description: str | None
    created_at: int
    created_by: str | None


def _row(r) -> FeatureViewRow:
    return FeatureViewRow(
        id=r.id,
        name=r.name,
        version=r.version,
        digest=r.digest,
        code_digest=r.code_digest,
        snapshot_id=r.snapshot_id,
        entity=r.entity,
        timestamp=r.timestamp,
        inputs=json.loads(r.inputs),
        outputs=json.loads(r.outputs),
        code=r.code,
        blob=r.blob,
        description=r.description,
        created_at=r.created_at,
        created_by=r.created_by,
    )


class FeatureStore:
    def __init__(self, db: Database, lineage):
        self.db = db
        self.lineage = lineage

    # -- definitions -------------------------------------------------------------------------------------------
    def add(
        self, name: str, fields: dict[str, Any], edges: Callable[[str, int], Iterable[Edge]]
    ) -> tuple[FeatureViewRow, bool]:
        """The version of ``name`` with ``fields["digest"]``, added as the next version when there is none;
        ``(row, created)``. ``edges(id, version)`` are recorded with a new version, in its transaction."""
        t = s.feature_views

        def write(conn: Connection) -> tuple[FeatureViewRow, bool]:
            same = conn.execute(
                select(t).where(t.c.name == name, t.c.digest == fields["digest"]).order_by(t.c.version.desc())
            ).first()
            if same is not None:
                return _row(same), False
            if self.db.dialect == "postgresql":  # versions of one name are numbered one writer at a time
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("mlo-feature:" + name))))
            last = conn.execute(select(func.max(t.c.version)).where(t.c.name == name)).scalar()
            values = {
                "id": new_id(),
                "name": name,
                "version": (last or 0) + 1,
                "created_at": now_us(),
                **fields,
                "inputs": json.dumps(fields["inputs"]),
                "outputs": json.dumps(fields["outputs"]),
            }
            conn.execute(t.insert().values(**values))
            self.lineage.link(edges(values["id"], values["version"]), conn=conn)
            return _row(conn.execute(select(t).where(t.c.id == values["id"])).one()), True

        return self.db.write(write)

    def get(self, name: str, version: int | None = None) -> FeatureViewRow:
        t = s.feature_views
        q = select(t).where(t.c.name == name)
        q = q.where(t.c.version == version) if version is not None else q.order_by(t.c.version.desc())
        with self.db.read() as conn:
            row = conn.execute(q.limit(1)).first()
        if row is None:
            known = self.names()
            hint = (
                f"; defined: {', '.join(known[:10])}" if known else "; define one with mlo.features.view(...)"
            )
            what = f"{name}@{version}" if version is not None else name
            raise NotFound(f"no feature view {what!r}{hint}")
        return _row(row)

    def by_id(self, view_id: str) -> FeatureViewRow:
        t = s.feature_views
        with self.db.read() as conn:
            row = conn.execute(select(t).where(t.c.id == view_id)).first()
        if row is None:
            raise NotFound(f"no feature view with id {view_id!r}")
        return _row(row)

    def names(self) -> list[str]:
        t = s.feature_views
        with self.db.read() as conn:
            return list(conn.execute(select(t.c.name).distinct().order_by(t.c.name)).scalars())

    def list(self, name: str | None = None) -> list[FeatureViewRow]:
        t = s.feature_views
        q = select(t).order_by(t.c.name, t.c.version)
        if name is not None:
            q = q.where(t.c.name == name)
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(q)]

    # -- online values -----------------------------------------------------------------------------------------
    def replace_online(
        self,
        view: str,
        version: int,
        snapshot_id: str,
        as_of: int | None,
        rows: Iterable[tuple[str, int, str]],
    ) -> int:
        """Replace the online rows of ``view`` with ``rows`` of (entity, event time, features JSON), in one
        transaction; returns how many were written."""
        o, m = s.online_features, s.feature_materializations

        def write(conn: Connection) -> int:
            conn.execute(delete(o).where(o.c.view == view))
            n = 0
            batch: list[dict[str, Any]] = []
            for entity, event_time, features in rows:
                batch.append(
                    {"view": view, "entity": entity, "version": version, "event_time": event_time,
                     "features": features}
                )  # fmt: skip
                if len(batch) >= INSERT_BATCH:
                    conn.execute(o.insert(), batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.execute(o.insert(), batch)
                n += len(batch)
            record = {"version": version, "snapshot_id": snapshot_id, "as_of": as_of, "entities": n,
                      "materialized_at": now_us()}  # fmt: skip
            conn.execute(
                self.db.insert(m)
                .values(view=view, **record)
                .on_conflict_do_update(index_elements=["view"], set_=record)
            )
            return n

        return self.db.write(write)

    def online(self, view: str, entities: list[str]) -> dict[str, tuple[int, int, str]]:
        """``{entity: (version, event time, features JSON)}`` for the entities of ``view`` that have values."""
        o = s.online_features
        out: dict[str, tuple[int, int, str]] = {}
        with self.db.read() as conn:
            for i in range(0, len(entities), 500):
                part = entities[i : i + 500]
                q = select(o.c.entity, o.c.version, o.c.event_time, o.c.features).where(
                    o.c.view == view, o.c.entity.in_(part)
                )
                for e, v, t, f in conn.execute(q):
                    out[e] = (v, t, f)
        return out

    def materialization(self, view: str) -> dict[str, Any] | None:
        m = s.feature_materializations
        with self.db.read() as conn:
            row = conn.execute(select(m).where(m.c.view == view)).first()
        return dict(row._mapping) if row is not None else None
