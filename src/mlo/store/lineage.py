"""Edges of the lineage graph. Nodes are strings ``"<kind>:<id>"``: ``run:<run id>``, ``snapshot:<snapshot id>``,
``model:<name>/<version>``, ``report:<report id>``. Edges point the way data flows (a run's input snapshot →
the run → its model) and are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from . import schema as s
from .db import Database
from .runs import now_us

Edge = tuple[str, str, str]  # (src, dst, relation)


class LineageStore:
    def __init__(self, db: Database, *, paused: bool = False):
        self.db = db
        self.paused = paused

    def link(self, edges: Iterable[Edge], conn: Connection | None = None) -> None:
        """Record edges (idempotent: an edge recorded twice is kept once). A paused store (a reproduction's
        replay) records none."""
        if self.paused:
            return
        ts = now_us()
        rows = [{"src": a, "dst": b, "relation": r, "created_at": ts} for a, b, r in edges]
        if not rows:
            return
        stmt = self.db.insert(s.lineage).on_conflict_do_nothing(index_elements=["src", "dst", "relation"])

        def write(c: Connection) -> None:
            c.execute(stmt, rows)

        if conn is not None:
            write(conn)
        else:
            self.db.write(write)

    def edges_touching(self, nodes: Iterable[str], conn: Connection) -> list[Edge]:
        """All edges into or out of any of ``nodes``."""
        nodes = list(nodes)
        out: list[Edge] = []
        lt = s.lineage
        for i in range(0, len(nodes), 500):
            part = nodes[i : i + 500]
            q = select(lt.c.src, lt.c.dst, lt.c.relation).where(or_(lt.c.src.in_(part), lt.c.dst.in_(part)))
            out.extend((a, b, r) for a, b, r in conn.execute(q))
        return out
