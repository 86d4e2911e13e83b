"""SQL for the stage run cache of notebook pipelines."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from . import schema as s
from .db import Database
from .runs import now_us


@dataclass(frozen=True)
class CacheEntry:
    key: str
    stage: str
    task: str
    run_id: str
    outs: list[dict]
    notebook: str | None
    created_at: int


class StageCache:
    def __init__(self, db: Database):
        self.db = db

    def get(self, key: str) -> CacheEntry | None:
        with self.db.read() as c:
            row = c.execute(select(s.stage_cache).where(s.stage_cache.c.key == key)).first()
        if row is None:
            return None
        m = dict(row._mapping)
        m["outs"] = json.loads(m["outs"])
        return CacheEntry(**m)

    def put(
        self, key: str, stage: str, task: str, run_id: str, outs: list[dict], notebook: str | None
    ) -> None:
        values = {
            "key": key,
            "stage": stage,
            "task": task,
            "run_id": run_id,
            "outs": json.dumps(outs, sort_keys=True),
            "notebook": notebook,
            "created_at": now_us(),
        }
        stmt = self.db.insert(s.stage_cache)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={k: stmt.excluded[k] for k in values if k != "key"}
        )

        def write(c: Connection) -> None:
            c.execute(stmt, [values])

        self.db.write(write)
