"""SQL for experiments, runs and everything logged to them. The tracking core calls these; nothing else
in mlo writes these tables.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from array import array
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, bindparam, case, cast, delete, func, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..errors import AmbiguousRef, InvalidInput, NotFound
from . import schema as s
from .db import Database
from .ids import common_prefix, new_id, now_us  # noqa: F401 (now_us: also imported from here)

# numpy loads on first use: opening a store (`mlo runs` on a new workspace, a notebook loading mlo) stays light
if TYPE_CHECKING:
    import numpy as np


# -- metric chunk codec: packed little-endian arrays -------------------------------------------------------------
def encode_series(
    steps: np.ndarray, values: np.ndarray, timestamps: np.ndarray
) -> tuple[bytes, bytes, bytes]:
    """Steps (int64), values (float64) and timestamps (int64 microseconds) as little-endian bytes; typed arrays
    (``array('q')``, ``array('d')``) of a few points pass without numpy."""
    if _native(steps, "q") and _native(values, "d") and _native(timestamps, "q"):
        return steps.tobytes(), values.tobytes(), timestamps.tobytes()
    import numpy as np

    return (
        np.ascontiguousarray(steps, dtype="<i8").tobytes(),
        np.ascontiguousarray(values, dtype="<f8").tobytes(),
        np.ascontiguousarray(timestamps, dtype="<i8").tobytes(),
    )


def _native(a, typecode: str) -> bool:
    return isinstance(a, array) and a.typecode == typecode and a.itemsize == 8 and sys.byteorder == "little"


def last_point(steps, stamps) -> int:
    """The index of a series' latest point: the highest step, then the latest time, then the last logged."""
    if isinstance(steps, array):
        return max(range(len(steps)), key=lambda j: (steps[j], stamps[j], j))
    import numpy as np

    steps, stamps = np.asarray(steps), np.asarray(stamps)
    idx = np.flatnonzero(steps == steps.max())
    if len(idx) > 1:
        at = stamps[idx]
        idx = idx[at == at.max()]
    return int(idx[-1])


def decode_series(steps: bytes, values: bytes, timestamps: bytes):
    import numpy as np

    return (
        np.frombuffer(steps, dtype="<i8"),
        np.frombuffer(values, dtype="<f8"),
        np.frombuffer(timestamps, dtype="<i8"),
    )


def _latest_set(ins) -> dict:
    """Keep the value of the highest step; count every point."""
    lm = s.latest_metrics
    newer = ins.excluded.step >= lm.c.step
    return {
        "value": case((newer, ins.excluded.value), else_=lm.c.value),
        "step": case((newer, ins.excluded.step), else_=lm.c.step),
        "timestamp": case((newer, ins.excluded.timestamp), else_=lm.c.timestamp),
        "n": lm.c.n + ins.excluded.n,
    }


# Statements run for every run, built once (building an expression per call costs more than executing it)
_INSERT_RUN = s.runs.insert()
_INSERT_CHUNKS = s.metric_chunks.insert()
_CHUNK_SEQS = (
    select(s.metric_chunks.c.key, func.max(s.metric_chunks.c.seq))
    .where(s.metric_chunks.c.run_id == bindparam("rid"))
    .group_by(s.metric_chunks.c.key)
)
_EXPERIMENT_STATE = select(s.experiments.c.name, s.experiments.c.lifecycle).where(
    s.experiments.c.id == bindparam("eid")
)
_FINISH_RUN = (
    update(s.runs)
    .where(s.runs.c.id == bindparam("rid"))
    .values(status=bindparam("st"), end_time=bindparam("et"), heartbeat=bindparam("et"))
)


class RunStore:
    """Experiments, runs, params, metrics, tags, artifacts and cells in one :class:`Database`."""

    def __init__(self, db: Database, listing_cache: Path | None = None):
        self.db = db
        self.listing_cache = listing_cache  # the file of the decoded whole listing (see listing_cache)
        self.listing_memo: dict = {}  # a whole listing kept in memory by mlo.tracking.query, by change_token()
        self._watch = None  # the connection change_token() asks
        self._watch_lock = threading.Lock()
        self._experiment_ids: dict[str, str] = {}
        self._upserts: dict[str, object] = {}
        self._has_json: bool | None = None

    def _upsert_stmt(self, table, keys: list[str], set_: dict | None = None):
        """An INSERT … ON CONFLICT DO UPDATE built once per table, executed with a list of rows (executemany),
        so SQLAlchemy compiles it once instead of once per call."""
        stmt = self._upserts.get(table.name)
        if stmt is None:
            ins = self.db.insert(table)
            values = (
                set_(ins) if set_ else {c.name: ins.excluded[c.name] for c in table.c if c.name not in keys}
            )
            stmt = self._upserts[table.name] = ins.on_conflict_do_update(index_elements=keys, set_=values)
        return stmt

    def change_token(self) -> int | None:
        """A number that changes whenever any connection (of this process or another) commits to the database:
        SQLite's ``data_version``, asked on a read-only connection of its own that never writes. None where the
        database cannot tell (PostgreSQL, an in-memory SQLite)."""
        if self.db.dialect != "sqlite" or self.db.path is None:
            return None
        import sqlite3

        from .db import read_only_uri

        with self._watch_lock:
            try:
                if self._watch is None:
                    uri = read_only_uri(self.db.path)
                    if "immutable=1" in uri:  # opened as a file that cannot change: it would not tell
                        return None
                    self._watch = sqlite3.connect(uri, uri=True, check_same_thread=False)
                return self._watch.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self._watch = None
                return None

    # -- experiments ------------------------------------------------------------------------------------------
    def experiment_id(self, name: str, create: bool = True) -> str:
        cached = self._experiment_ids.get(name)
        if cached:
            return cached
        with self.db.read() as conn:
            row = conn.execute(select(s.experiments.c.id).where(s.experiments.c.name == name)).first()
        if row is None:
            if not create:
                raise NotFound(f"no experiment named {name!r}; see `mlo runs` for the experiments there are")

            def create_it(conn: Connection) -> str:
                conn.execute(
                    self.db.insert(s.experiments)
                    .values(id=new_id(), name=name, created_at=now_us())
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                return conn.execute(
                    select(s.experiments.c.id).where(s.experiments.c.name == name)
                ).scalar_one()

            exp_id = self.db.write(create_it)
        else:
            exp_id = row[0]
        self._experiment_ids[name] = exp_id
        return exp_id

    def experiments(self, include: frozenset[str] = frozenset()) -> list[dict]:
        """Experiments with their run counts (see :meth:`mlo.store.lifecycle.LifecycleStore.experiments`)."""
        from .lifecycle import LifecycleStore

        return LifecycleStore(self.db).experiments(include)

    # -- runs -------------------------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        run_id: str,
        experiment_id: str,
        name: str,
        start_time: int,
        owner: str,
        user: str | None,
        source: str | None,
        parent_id: str | None,
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> None:
        row = {
            "id": run_id,
            "experiment_id": experiment_id,
            "name": name,
            "status": "running",
            "start_time": start_time,
            "owner": owner,
            "heartbeat": start_time,
            "user": user,
            "source": source,
            "parent_id": parent_id,
        }

        def create(conn: Connection) -> None:
            name, lifecycle = conn.execute(_EXPERIMENT_STATE, {"eid": experiment_id}).one()
            if lifecycle != "active":
                raise InvalidInput(
                    f"experiment {name!r} is {lifecycle}: restore it first (mlo.restore_experiment({name!r}) or "
                    f"`mlo experiments restore {name}`), or start the run in another experiment"
                )
            conn.execute(_INSERT_RUN, row)
            self._upsert(conn, s.params, run_id, params)
            self._upsert(conn, s.tags, run_id, tags)

        self.db.write(create)

    def import_run(
        self,
        run: Mapping,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        series: Mapping,
        artifacts: Iterable[dict],
    ) -> None:
        """Record a whole run that ended elsewhere (an import): the run row (with its status and end time), its
        params, tags, metric series and artifacts (blobs already stored), in one transaction, so a run is
        imported whole or not at all."""
        row = {"owner": None, "heartbeat": run.get("end_time") or run["start_time"], **run}
        items = [{"run_id": run["id"], "created_at": row["heartbeat"], **a} for a in artifacts]

        def record(conn: Connection) -> None:
            conn.execute(_INSERT_RUN, row)
            self._upsert(conn, s.params, run["id"], params)
            self._upsert(conn, s.tags, run["id"], tags)
            if series:
                self._write_metrics(conn, run["id"], series)
            if items:
                conn.execute(self._upsert_stmt(s.artifacts, ["run_id", "path"]), items)

        self.db.write(record)

    def tagged(self, key: str) -> dict[str, str]:
        """``{value: run id}`` of the runs that carry the tag ``key`` (e.g. where imported runs came from)."""
        q = select(s.tags.c.value, s.tags.c.run_id).where(s.tags.c.key == key)
        with self.db.read() as conn:
            return dict(conn.execute(q).all())

    def resume_run(self, run_id: str, owner: str) -> None:
        def resume(conn: Connection) -> None:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(status="running", end_time=None, owner=owner, heartbeat=now_us())
            )

        self.db.write(resume)

    def end_run(
        self, run_id: str, status: str, end_time: int | None = None, series: Mapping | None = None
    ) -> None:
        """Set the final status; ``series`` (the last buffered metrics) are written in the same transaction."""
        end = end_time or now_us()

        def finish(conn: Connection) -> None:
            if series:
                self._write_metrics(conn, run_id, series)
            conn.execute(_FINISH_RUN, {"rid": run_id, "st": status, "et": end})

        self.db.write(finish)

    def update_run(self, run_id: str, **values) -> None:
        self.db.write(lambda conn: conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(**values)))

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        t = now_us()
        self.db.write(
            lambda conn: conn.execute(
                update(s.runs)
                .where(and_(s.runs.c.id.in_(list(run_ids)), s.runs.c.status == "running"))
                .values(heartbeat=t)
            )
        )

    def running(self) -> list[tuple[str, str | None, int | None]]:
        """(id, owner, heartbeat) of every run marked running."""
        q = select(s.runs.c.id, s.runs.c.owner, s.runs.c.heartbeat).where(s.runs.c.status == "running")
        with self.db.read() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def mark_killed(self, ends: Mapping[str, int]) -> None:
        """Mark runs of dead processes killed (best effort: a read-only workspace keeps them as they are)."""
        if self.db.read_only:
            return

        def mark(conn: Connection) -> None:
            for run_id, end in ends.items():
                conn.execute(
                    update(s.runs)
                    .where(and_(s.runs.c.id == run_id, s.runs.c.status == "running"))
                    .values(status="killed", end_time=end)
                )

        self.db.write(mark)

    def resolve_run_id(self, ref: str) -> str:
        """A full run id from a full id or a unique prefix (at least 4 characters)."""
        ref = ref.strip().lower()
        with self.db.read() as conn:
            if conn.execute(select(s.runs.c.id).where(s.runs.c.id == ref)).first():
                return ref
            if len(ref) >= 4:
                rows = conn.execute(
                    select(s.runs.c.id)
                    .where(s.runs.c.id.like(ref.replace("%", "").replace("_", "") + "%"))
                    .limit(2)
                ).all()
                if len(rows) == 1:
                    return rows[0][0]
                if len(rows) > 1:
                    raise AmbiguousRef(f"run id prefix {ref!r} matches several runs; give more characters")
        raise NotFound(f"no run with id {ref!r}; `mlo runs` lists the runs there are")

    def prefix_length(self, run_ids: Sequence[str], minimum: int) -> int:
        """The shortest length (at least ``minimum``) at which the prefix of every run in ``run_ids`` names only
        that run in the whole store: one more character than each shares with its neighbours in id order."""
        r = s.runs
        other = r.alias("other")
        before = select(func.max(other.c.id)).where(other.c.id < r.c.id).scalar_subquery()
        after = select(func.min(other.c.id)).where(other.c.id > r.c.id).scalar_subquery()
        length = minimum
        ids = sorted(set(run_ids))
        with self.db.read() as conn:
            for i in range(0, len(ids), 500):
                q = select(r.c.id, before, after).where(r.c.id.in_(ids[i : i + 500]))
                for rid, prev, nxt in conn.execute(q):
                    for neighbour in (prev, nxt):
                        if neighbour:
                            length = max(length, common_prefix(rid, neighbour) + 1)
        return length

    def any_run(self) -> bool:
        """Whether the store holds a run at all (of any experiment or lifecycle)."""
        with self.db.read() as conn:
            return conn.execute(select(s.runs.c.id).limit(1)).first() is not None

    def run_row(self, run_id: str) -> dict:
        q = (
            select(s.runs, s.experiments.c.name.label("experiment"))
            .select_from(s.runs.join(s.experiments, s.runs.c.experiment_id == s.experiments.c.id))
            .where(s.runs.c.id == run_id)
        )
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}; `mlo runs` lists the runs there are")
        return dict(row._mapping)

    # -- params and tags --------------------------------------------------------------------------------------
    def _upsert(self, conn: Connection, table, run_id: str, values: Mapping[str, str]) -> None:
        if not values:
            return
        # one cached statement, executed with a list of rows (a multi-VALUES insert is compiled anew every time)
        conn.execute(
            self._upsert_stmt(table, ["run_id", "key"]),
            [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()],
        )

    def set_params(self, run_id: str, values: Mapping[str, str]) -> None:
        self.db.write(lambda conn: self._upsert(conn, s.params, run_id, values))

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        self.db.write(lambda conn: self._upsert(conn, s.tags, run_id, values))

    def delete_tag(self, run_id: str, key: str) -> None:
        self.db.write(
            lambda conn: conn.execute(
                delete(s.tags).where(and_(s.tags.c.run_id == run_id, s.tags.c.key == key))
            )
        )

    def key_values(self, table, run_id: str) -> dict[str, str]:
        with self.db.read() as conn:
            return dict(
                conn.execute(select(table.c.key, table.c.value).where(table.c.run_id == run_id)).all()
            )

    # -- metrics ----------------------------------------------------------------------------------------------
    def write_metrics(
        self, run_id: str, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> None:
        """Append one chunk per key and move each key's latest value forward (by step, then time)."""
        if series:
            self.db.write(lambda conn: self._write_metrics(conn, run_id, series))

    def _write_metrics(self, conn: Connection, run_id: str, series: Mapping) -> None:
        seqs = dict(conn.execute(_CHUNK_SEQS, {"rid": run_id}).all())
        chunks, latest = [], []
        for key, (steps, values, stamps) in series.items():
            if not len(values):
                continue
            st, va, ts = encode_series(steps, values, stamps)
            chunks.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "seq": seqs.get(key, -1) + 1,
                    "n": len(values),
                    "steps": st,
                    "vals": va,
                    "timestamps": ts,
                }
            )
            i = last_point(steps, stamps)
            value = float(values[i])
            latest.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": None if value != value else value,  # NaN → NULL
                    "step": int(steps[i]),
                    "timestamp": int(stamps[i]),
                    "n": len(values),
                }
            )
        if not chunks:
            return
        conn.execute(_INSERT_CHUNKS, chunks)
        conn.execute(self._upsert_stmt(s.latest_metrics, ["run_id", "key"], _latest_set), latest)

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        q = select(s.latest_metrics.c.key, s.latest_metrics.c.value).where(
            s.latest_metrics.c.run_id == run_id
        )
        with self.db.read() as conn:
            return {k: float("nan") if v is None else v for k, v in conn.execute(q)}

    def metric_series(self, run_id: str, key: str):
        """(steps, values, timestamps) of one metric in logging order, or None when never logged."""
        import numpy as np

        q = (
            select(s.metric_chunks.c.steps, s.metric_chunks.c.vals, s.metric_chunks.c.timestamps)
            .where(and_(s.metric_chunks.c.run_id == run_id, s.metric_chunks.c.key == key))
            .order_by(s.metric_chunks.c.seq)
        )
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return None
        parts = [decode_series(*r) for r in rows]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    def metric_histories(self, run_id: str, keys: Sequence[str] | None = None) -> dict:
        """``{key: (steps, values, timestamps)}`` of every metric of a run (or of ``keys``) in one query, each in
        logging order."""
        import numpy as np

        c = s.metric_chunks.c
        q = select(c.key, c.steps, c.vals, c.timestamps).where(c.run_id == run_id).order_by(c.key, c.seq)
        if keys is not None:
            q = q.where(c.key.in_(list(keys)))
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        parts: dict[str, list] = {}
        for key, *blobs in rows:
            parts.setdefault(key, []).append(decode_series(*blobs))
        return {
            key: tuple(np.concatenate([p[i] for p in chunks]) for i in range(3))
            for key, chunks in parts.items()
        }

    # -- artifacts and cells ----------------------------------------------------------------------------------
    def add_artifacts(self, run_id: str, items: Iterable[dict]) -> None:
        rows = [{"run_id": run_id, "created_at": now_us(), **item} for item in items]
        if not rows:
            return
        stmt = self._upsert_stmt(s.artifacts, ["run_id", "path"])
        self.db.write(lambda conn: conn.execute(stmt, rows))

    def artifacts(self, run_id: str) -> list[dict]:
        q = select(s.artifacts).where(s.artifacts.c.run_id == run_id).order_by(s.artifacts.c.path)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def add_cell(self, run_id: str, **cell) -> None:
        self.db.write(lambda conn: self._add_cells(conn, run_id, [cell]))

    def _add_cells(self, conn: Connection, run_id: str, cells: Sequence[dict]) -> None:
        if not cells:
            return
        seq = conn.execute(
            select(func.coalesce(func.max(s.cells.c.seq), -1)).where(s.cells.c.run_id == run_id)
        ).scalar_one()
        conn.execute(
            s.cells.insert(), [{**cell, "run_id": run_id, "seq": seq + 1 + i} for i, cell in enumerate(cells)]
        )

    def store_records(
        self,
        run_id: str,
        cells: Sequence[dict] = (),
        metrics: Sequence[Mapping] = (),
        tags: Mapping[str, str] | None = None,
        artifacts: Sequence[dict] = (),
        drop_tags: Sequence[str] = (),
    ) -> None:
        """Records of one run, in one transaction: its cells (appended in order), metric chunks, tags (set, then
        ``drop_tags`` removed) and artifacts (see :mod:`mlo.tracking.journal`)."""

        def store(conn: Connection) -> None:
            self._add_cells(conn, run_id, cells)
            for series in metrics:
                self._write_metrics(conn, run_id, series)
            self._upsert(conn, s.tags, run_id, tags or {})
            if drop_tags:
                conn.execute(
                    delete(s.tags).where(s.tags.c.run_id == run_id, s.tags.c.key.in_(list(drop_tags)))
                )
            rows = [{"run_id": run_id, "created_at": now_us(), **item} for item in artifacts]
            if rows:
                conn.execute(self._upsert_stmt(s.artifacts, ["run_id", "path"]), rows)

        self.db.write(store)

    def cells(self, run_id: str) -> list[dict]:
        q = select(s.cells).where(s.cells.c.run_id == run_id).order_by(s.cells.c.seq)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- tables for run listings ------------------------------------------------------------------------------
    def _run_rows_query(
        self, experiment_ids: Sequence[str] | None, run_ids: Sequence[str] | None = None, shown: Any = None
    ):
        r, e = s.runs, s.experiments
        q = select(
            r.c.id,
            e.c.name,
            r.c.name,
            r.c.status,
            r.c.start_time,
            r.c.end_time,
            r.c.git_commit,
            r.c.parent_id,
            r.c.user,
            r.c.source,
            r.c.lifecycle,
        ).select_from(r.join(e, r.c.experiment_id == e.c.id))
        if run_ids is not None:  # a page of ids listed in this experiment: found by key, not by a scan of it
            q = q.where(r.c.id.in_(list(run_ids)))
        elif experiment_ids is not None:
            q = q.where(r.c.experiment_id.in_(list(experiment_ids)))
        if shown is not None:
            q = q.where(shown)
        return q.order_by(r.c.start_time.desc(), r.c.id.desc())

    # run columns a page can be ordered by in SQL (as runs() orders them: nulls last, then newest first)
    ORDERABLE = (
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
        "git_commit",
        "user",
        "source",
    )

    def page_ids(
        self,
        experiment_ids: Sequence[str] | None,
        orders: Sequence[tuple[str, bool]],
        offset: int,
        limit: int,
        where: Any = None,
        shown: Any = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[str], bool] | None:
        """How many runs match, the ids of one page of them, and whether that count is exact, in one snapshot:
        filtered by ``where`` (a parsed filter, see :mod:`mlo.tracking.where`), ordered by ``orders``, each
        ``(column, ascending)`` (then newest first), as :func:`mlo.runs` would filter and order the whole
        listing. None when some part of the filter or the order has to be evaluated on the listing in Python
        (see :mod:`mlo.store.run_filter`). ``shown`` keeps the runs to list (see
        :func:`mlo.store.lifecycle.hidden_condition`).

        ``count_up_to``: the count stops there (or at the page's end, if further), and is then a lower bound
        (not exact); None counts every match. A page that ends short of ``limit`` tells the count itself, so
        the filter is then evaluated once."""
        from .run_filter import RunFilter

        r, e = s.runs, s.experiments
        while orders and tuple(orders[-1]) == ("start_time", False):
            orders = orders[:-1]  # newest first is what breaks every order's ties already
        cap = None if count_up_to is None else max(int(count_up_to), offset + limit, 1)
        scope = [c for c in (shown,) if c is not None]
        if experiment_ids is not None:
            scope.append(r.c.experiment_id.in_(list(experiment_ids)))
        sql = RunFilter(self.db, json_functions=self._json_aggregates(), scope=scope)
        with self._snapshot() as conn:
            condition = None if where is None else sql.where(conn, where)
            if where is not None and condition is None:
                return None
            keys = []
            for order, ascending in orders:
                if order in self.ORDERABLE:
                    column = {"run_id": r.c.id, "experiment": e.c.name}.get(order, r.c.get(order))
                    if self.db.dialect == "postgresql" and order not in ("start_time", "end_time"):
                        column = column.collate("C")  # code point order, as pandas sorts strings
                else:
                    try:
                        column = sql.order(conn, order)  # NaN and missing values are NULL: last
                    except KeyError:
                        raise InvalidInput(f"cannot order by {order!r}: no such column") from None
                    if column is None:
                        return None
                keys.append((column.asc() if ascending else column.desc()).nulls_last())
            # the experiments joined only where a condition reads them (hidden experiments, a filter on the
            # experiment's name): a lookup per listed run is a fifth of a count at 100,000 runs
            reads_experiments = any(_reads_experiments(c) for c in (*scope, condition))
            joined = r.join(e, r.c.experiment_id == e.c.id) if reads_experiments else r
            matches = _matching_ids(condition)
            keyed = _keyed_ids(condition, negated=None) if self.db.dialect == "postgresql" else None
            whole = (
                (condition is None or keyed is not None)
                and shown is None
                and self.db.dialect == "postgresql"
                and self._lists_every_run(conn, experiment_ids)
            )
            negated = False
            if whole:
                # every run is listed, and a run has at most one row per key, whose run exists (PostgreSQL
                # enforces the foreign key): the rows satisfying the condition are the count, read from the
                # (key, value) index without looking each run up (a join: 0.6-2.6 s at 1,000,000 runs)
                ids_of, negated = keyed if keyed is not None else (None, False)
                rows = select(literal(1)).select_from(r if ids_of is None else ids_of.subquery())
            elif matches is not None:
                # one condition on a key: a join of its matches (one per run, from the (key, value) index) with
                # the listing, so the database may start from the matches rather than probe every listed run
                m = matches.subquery()
                rows = select(literal(1)).select_from(m.join(joined, r.c.id == m.c.run_id)).where(*scope)
            listed = list(scope)  # the listing's own bounds, before the filter
            if condition is not None:
                scope.append(condition)
            if matches is None and not whole:
                rows = select(literal(1)).select_from(joined).where(*scope)

            def count(probing: bool = False) -> tuple[int, bool]:
                """(how many match, up to the cap; whether that is all of them)."""
                if negated:
                    # not among the key's matches: every run less those (an anti-join would hash them all);
                    # capped, every run counted up to the cap plus the matches
                    among = conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one()
                    every = select(literal(1)).select_from(r)
                    counted = _count(conn, every, None if cap is None else cap + among)
                    return counted - among, cap is None or counted < cap + among
                if probing:  # each listed run probed, newest first, until the cap: no set of every match
                    probed = select(literal(1)).select_from(joined).where(*listed, _probing(condition))
                    with self._probes_only(conn):
                        n = _count(conn, probed, cap)
                else:
                    n = _count(conn, rows, cap)
                return n, cap is None or n < cap

            # the experiments' names only when a condition or the order reads them
            by_name = reads_experiments or any(o == "experiment" for o, _ in orders)

            def page(where: list) -> list[str]:
                q = select(r.c.id).select_from(r.join(e, r.c.experiment_id == e.c.id) if by_name else r)
                q = q.where(*where)
                q = q.order_by(*keys, r.c.start_time.desc(), r.c.id.desc()).offset(offset).limit(limit)
                return [row[0] for row in conn.execute(q)]

            walk = sql.walk(orders[0][0], conn) if len(orders) == 1 else None
            probe = not orders and condition is not None
            total = exact = ids = None
            probed = False
            window = max(self.PROBE_FIRST_RUNS, 20 * (offset + limit))
            if probe and window <= 10 * self.PROBE_FIRST_RUNS:
                # SQLite builds the set of every match whatever the selectivity (PostgreSQL often hashes it): a
                # page of the newest runs probes the newest listed runs first, and finds the page there when a
                # twentieth of them match
                ids = self._newest_probed(conn, joined, listed, page, condition, window, limit)
                probed = ids is not None
            elif probe:
                total, exact = count()
                if self._probe_newest(conn, listed, joined, total, offset + limit):
                    ids = page([*listed, _probing(condition)])
                    probed = True
            if ids is None:
                if total is not None and offset >= total:
                    ids = []
                elif walk is not None:
                    ids = self._walk(
                        conn, walk, orders[0][1], scope, offset, limit, whole and condition is None
                    )
                else:
                    ids = page(scope)
            if total is None:
                if len(ids) < limit and (ids or offset == 0):
                    total, exact = offset + len(ids), True  # the page ends short: the matches end there
                else:
                    # a capped count of a filter the newest runs often pass probes them too, rather than build
                    # the set of every match: on SQLite for one condition (several, each probed per run, cost
                    # more than their sets at 100,000 runs); on PostgreSQL for any, unless the key's rows alone
                    # count (whole: a range of its index)
                    single = _keyed_ids(condition, negated=None) is not None and matches is None
                    pg = self.db.dialect == "postgresql"
                    probing = probed and cap is not None and (not whole if pg else single)
                    total, exact = count(probing=probing)
        return total, ids, exact

    # a filtered page of the newest runs probes at least this many newest listed runs first (twenty times the
    # page's end; see page_ids)
    PROBE_FIRST_RUNS = 2000

    def _newest_probed(
        self, conn: Connection, runs: Any, listed: list, page, condition, window: int, limit: int
    ) -> list[str] | None:
        """The page of the newest runs matching ``condition``, probing only the ``window`` newest listed runs;
        None when the page is not all among them (a selective filter: its set costs less than probing)."""
        r = s.runs
        bound = conn.execute(
            select(r.c.start_time, r.c.id)
            .select_from(runs)
            .where(*listed)
            .order_by(r.c.start_time.desc(), r.c.id.desc())
            .offset(window - 1)
            .limit(1)
        ).first()
        if bound is None:  # fewer listed runs than that: probing them all is the page
            return page([*listed, _probing(condition)])
        t, rid = bound
        newest = or_(r.c.start_time > t, and_(r.c.start_time == t, r.c.id >= rid))
        with self._probes_only(conn):
            ids = page([*listed, newest, _probing(condition)])
        return ids if len(ids) == limit else None

    @contextmanager
    def _probes_only(self, conn: Connection):
        """On PostgreSQL, a statement that probes each run's rows by key plans without hash tables: the planner
        may otherwise hash every match of a condition under ``or`` (300,000 rows at 1,000,000 runs, 200 ms) to
        check a few thousand runs against it. A hash table needs memory; with 1 MB of work memory it has none,
        and the probes, an index lookup each, are the plan."""
        if self.db.dialect != "postgresql":
            yield
            return
        conn.exec_driver_sql("SET LOCAL work_mem = '1MB'")
        try:
            yield
        finally:
            conn.exec_driver_sql("SET LOCAL work_mem TO DEFAULT")

    def _probe_newest(self, conn: Connection, listed: list, runs: Any, matches: int, wanted: int) -> bool:
        """Whether a filtered page of the newest runs is cheaper walking the listed runs newest first and probing
        each against the filter (its keys' rows looked up by (run, key)) than building the set of every match
        first: SQLite builds the set whatever the selectivity, which at 100,000 runs costs tens of ms for a
        filter half the runs pass, where the walk probes some 200. The walk probes about ``wanted`` × listed /
        ``matches`` runs, the set costs about ``matches``."""
        if self.db.dialect != "sqlite" or matches == 0:
            return False
        n = conn.execute(select(func.count()).select_from(runs).where(*listed)).scalar_one()
        return wanted * n <= matches * matches

    def _lists_every_run(self, conn: Connection, experiment_ids: Sequence[str] | None) -> bool:
        """Whether the runs of these experiments are every run of the store (an index probe per other
        experiment)."""
        if experiment_ids is None:
            return True
        r, e = s.runs, s.experiments
        first_run = select(r.c.id).where(r.c.experiment_id == e.c.id).limit(1).scalar_subquery()
        other = select(e.c.id).where(e.c.id.not_in(list(experiment_ids)), first_run.is_not(None)).limit(1)
        return conn.execute(other).first() is None

    def _walk(
        self,
        conn: Connection,
        walk: tuple,
        ascending: bool,
        scope: list,
        offset: int,
        limit: int,
        whole: bool,
    ):
        """A page ordered by one metric, tag or param: the runs that have it, walked in the order of the (key,
        value) index up to the page's end (or, for a param, its first values taken with their ties), then (past
        them) the runs without it, newest first. ``whole``: every run is listed (no filter, nothing hidden)."""
        table, key, sort, presorted = walk
        r, e = s.runs, s.experiments
        has = and_(table.c.key == key, table.c.value.is_not(None))  # a NaN metric is missing
        if not presorted:
            has = and_(has, sort[0].is_not(None))  # a param that does not decode to its kind is missing
        # the key's entries are the outer loop (a join would let the database start from the runs and sort them
        # all); each entry walked is checked against the listing, and ties are broken as runs() breaks them
        listed = (
            select(r.c.id).select_from(r.join(e, r.c.experiment_id == e.c.id)).where(r.c.id == table.c.run_id)
        )
        started = select(r.c.start_time).where(r.c.id == table.c.run_id).scalar_subquery()
        in_order = [x.asc() if ascending else x.desc() for x in sort]
        if presorted:
            first = (
                select(table.c.run_id)
                .where(has, listed.where(*scope).exists())
                .order_by(*in_order, started.desc(), table.c.run_id.desc())
                .limit(offset + limit)
            )
        else:
            # the page's values and any equal to its last (FETCH … WITH TIES), then their runs in runs() order
            first_values = select(table.c.run_id, sort[0].label("v")).where(has)
            if not whole:
                first_values = first_values.where(listed.where(*scope).exists())
            if self.db.dialect == "postgresql":
                taken = first_values.order_by(*in_order).fetch(offset + limit, with_ties=True).subquery()
            else:
                # no FETCH … WITH TIES: the key's k-th value in order, from its values alone (checking each
                # against the listing would look every run up), then the listed runs up to it, ties included;
                # when fewer than the page's end are listed there, k grows
                values = select(sort[0].label("v")).where(has).subquery()
                in_order_v = values.c.v.asc() if ascending else values.c.v.desc()
                k = offset + limit
                while True:
                    last = conn.execute(
                        select(values.c.v).order_by(in_order_v).offset(k - 1).limit(1)
                    ).scalar()
                    if last is None:  # fewer than k values: all of them
                        break
                    upto = first_values.where(sort[0] >= last if not ascending else sort[0] <= last)
                    if (
                        conn.execute(select(func.count()).select_from(upto.subquery())).scalar_one()
                        >= offset + limit
                    ):
                        first_values = upto
                        break
                    k *= 4
                taken = first_values.subquery()
            first = (
                select(taken.c.run_id)
                .join(r, r.c.id == taken.c.run_id)
                .order_by(
                    taken.c.v.asc() if ascending else taken.c.v.desc(), r.c.start_time.desc(), r.c.id.desc()
                )  # fmt: skip
                .limit(offset + limit)
            )
        ids = [row[0] for row in conn.execute(first)]
        page = ids[offset:]
        if len(ids) < offset + limit:  # past the runs with a value
            rest = (
                select(r.c.id)
                .select_from(r.join(e, r.c.experiment_id == e.c.id))
                .where(*scope, r.c.id.not_in(select(table.c.run_id).where(has)))
                .order_by(r.c.start_time.desc(), r.c.id.desc())
                .offset(max(0, offset - len(ids)))
                .limit(limit - len(page))
            )
            page += [row[0] for row in conn.execute(rest)]
        return page

    def run_rows(self, experiment_ids: Sequence[str] | None) -> list[tuple]:
        """(id, experiment, name, status, start_time, end_time, git_commit, parent_id, user, source, lifecycle)
        per run, newest first."""
        with self.db.read() as conn:
            return conn.execute(self._run_rows_query(experiment_ids)).all()

    def listing(
        self,
        experiment_ids: Sequence[str] | None,
        keys: Mapping[str, Sequence[str] | None],
        run_ids: Sequence[str] | None = None,
        shown: Any = None,
    ) -> RunListing:
        """Runs and their params, metrics and tags for a run table, read in one snapshot.

        ``keys`` maps each kind to read (``"params"``, ``"metrics"``, ``"tags"``) to the keys wanted, or to None
        for every key. Rather than a row per value, the database builds per run a JSON object of its params and
        tags and a JSON list of its metric keys, returned with the run's row; the metric values follow as a
        bare column of floats. Listing 10,000 runs then moves 10,000 rows through the driver (plus one float
        per metric value) instead of 200,000 (run, key, value) rows. ``run_ids`` narrows the listing to those
        runs (a page of a run table); ``shown`` keeps the runs to list (see
        :func:`mlo.store.lifecycle.hidden_condition`).
        """
        scope = (experiment_ids, None if run_ids is None else list(run_ids), shown)
        json_aggregates = self._json_aggregates()
        # a whole listing makes millions of short-lived tuples, strings and floats, none of them in a cycle: the
        # cyclic collector would walk them over and over for nothing (8% of the read's CPU at 100,000 runs)
        collecting = gc.isenabled()
        gc.disable()
        try:
            if run_ids is None and json_aggregates and self.listing_cache is not None:
                return self._cached_listing(scope, keys)
            return self._read_listing(scope, keys, json_aggregates)
        finally:
            if collecting:
                gc.enable()

    def _read_listing(self, scope: tuple, keys: Mapping[str, Sequence[str] | None], json_aggregates: bool):
        with self._snapshot() as conn:
            if not json_aggregates:
                return self._listing_from_long_rows(conn, scope, keys)
            return self._read_rows(conn, scope, keys)

    def _read_rows(self, conn: Connection, scope: tuple, keys: Mapping[str, Sequence[str] | None]):
        """:meth:`listing` read from the database (with JSON aggregates), in the snapshot of ``conn``."""
        q = self._run_rows_query(*scope)
        for kind, wanted in keys.items():
            table = _LISTING_TABLES[kind]
            agg = self._json_agg(table.c.key) if kind == "metrics" else self._json_object(table)
            per_run = select(agg).where(table.c.run_id == s.runs.c.id)
            if wanted is not None:
                per_run = per_run.where(table.c.key.in_(list(wanted)))
            q = q.add_columns(per_run.scalar_subquery())
        fetched = conn.execute(q).cursor.fetchall()
        columns = list(zip(*fetched, strict=True)) if fetched else [()] * (_RUN_FIELDS + len(keys))
        values, present = {}, None
        for i, (kind, wanted) in enumerate(keys.items()):
            texts = columns[_RUN_FIELDS + i]
            if kind == "metrics":
                names, grid, present = self._metric_grid(conn, scope, wanted, columns[0], texts)
                values[kind] = names, grid
            else:
                values[kind] = _text_grid(texts)
        return RunListing(columns[:_RUN_FIELDS], values, present)

    # a listing of fewer runs reads the database alone (the cache would cost more than it saves)
    CACHE_MIN_RUNS = 1000
    # a listing read from the cache re-reads the changed runs by id, up to this many; past it, every listed run
    STALE_READ_LIMIT = 5000

    def _cached_listing(self, scope: tuple, keys: Mapping[str, Sequence[str] | None]) -> RunListing:
        """:meth:`listing` of whole experiments from the decoded listing cached on disk (see
        :mod:`mlo.store.listing_cache`), brought up to date first with the listed runs changed since it was
        written. Everything the database gives comes from one snapshot."""
        import numpy as np
        import pandas as pd

        from . import listing_cache as lc
        from .listing_table import read_table

        experiment_ids, _, shown = scope
        r, e = s.runs, s.experiments
        picks = [c for c in (shown,) if c is not None]
        if experiment_ids is not None:
            picks.append(r.c.experiment_id.in_(list(experiment_ids)))
        # the listed runs, in listing order, with their stamps (from the experiment's index when it is one)
        q = (
            select(r.c.id, func.coalesce(r.c.listing_stamp, 0))
            .select_from(r.join(e, r.c.experiment_id == e.c.id))
            .where(*picks)
            .order_by(r.c.start_time.desc(), r.c.id.desc())
        )
        with self._snapshot() as conn:
            if not self.listing_cache.exists():  # (a stat: no need to read the stamps of every run)
                count = select(func.count()).select_from(r.join(e, r.c.experiment_id == e.c.id)).where(*picks)
                if conn.execute(count).scalar_one() < self.CACHE_MIN_RUNS:
                    return self._read_rows(conn, scope, keys)
                experiment_names = dict(conn.execute(select(e.c.id, e.c.name)).all())
                listed = read_table(self, conn, scope)  # in listing order
                lc.save(self.listing_cache, listed)
                return _listing_of_table(listed, keys, experiment_names)
            rows = conn.execute(q).cursor.fetchall()
            if len(rows) < self.CACHE_MIN_RUNS or not rows:
                return self._read_rows(conn, scope, keys)
            experiment_names = dict(conn.execute(select(e.c.id, e.c.name)).all())
            ids_column, stamps_column = zip(*rows, strict=True)
            ids = np.array(ids_column, dtype=object)
            stamps = np.array(stamps_column, dtype=np.int64)
            n = len(ids)
            cached, listed, where = lc.load(self.listing_cache), None, None
            if cached is not None:
                cached_ids = cached.column("id").to_numpy(zero_copy_only=False)
                # the file holds the last listing's runs first, in its order: the same listing is a slice
                same = len(cached_ids) >= n and bool((cached_ids[:n] == ids).all())
                where = np.arange(n) if same else pd.Index(cached_ids).get_indexer(ids)
                stale = where < 0
                known = ~stale
                stale[known] = cached.column("stamp").to_numpy()[where[known]] != stamps[known]
                if not stale.any():
                    listed = cached.slice(0, n) if same else cached.take(where)
                    if same:
                        return _listing_of_table(listed, keys, experiment_names)
                elif stale.sum() <= self.STALE_READ_LIMIT:
                    fresh = read_table(self, conn, (None, ids[stale].tolist(), None))
                    listed = lc.merge(cached.take(where[~stale]), fresh)
            if listed is None:  # the file unreadable, or most of it changed: every listed run
                listed = read_table(self, conn, (experiment_ids, None, shown))
        order = listed.column("id").to_numpy(zero_copy_only=False)
        if not (len(order) == n and (order == ids).all()):
            listed = listed.take(pd.Index(order).get_indexer(ids))
        # the file: this listing's runs first, then the other runs it held (all runs listed: none, so the runs
        # gone from the database leave it)
        table = listed
        if cached is not None and (experiment_ids is not None or shown is not None):
            others = np.ones(cached.num_rows, dtype=bool)
            others[where[where >= 0]] = False
            if others.any():
                table = lc.merge(listed, cached.filter(others))
        lc.save(self.listing_cache, table)
        return _listing_of_table(listed, keys, experiment_names)

    @contextmanager
    def _snapshot(self):
        """A read transaction in which every statement sees the same data (see :meth:`Database.snapshot`).
        On PostgreSQL without JIT compilation: a listing's statements run for milliseconds, and compiling the
        plans of the costlier ones (a count over a million runs) took 15-190 ms more than they saved."""
        with self.db.snapshot() as conn:
            if self.db.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL jit = off")
            yield conn

    def _json_aggregates(self) -> bool:
        """Whether the database has JSON aggregates: PostgreSQL always; SQLite built in since 3.38 and as the
        JSON1 extension in most older builds."""
        if self._has_json is None:
            if self.db.dialect == "postgresql":
                self._has_json = True
            else:
                try:
                    with self.db.read() as conn:
                        conn.exec_driver_sql("SELECT json_group_object('k', 'v'), json_group_array(1)").all()
                    self._has_json = True
                except DBAPIError:  # no such function
                    self._has_json = False
        return self._has_json

    def _json_object(self, table):
        if self.db.dialect == "postgresql":
            return cast(func.json_object_agg(table.c.key, table.c.value), Text)
        return func.json_group_object(table.c.key, table.c.value)

    def _json_agg(self, column):
        if self.db.dialect == "postgresql":
            return cast(func.json_agg(column), Text)
        return func.json_group_array(column)

    def _where_listed(self, q, table, scope: tuple, keys: Sequence[str] | None):
        """Rows of ``table`` for the runs in ``scope`` (experiment ids or None, run ids or None, the condition
        keeping shown runs or None)."""
        experiment_ids, run_ids, shown = scope
        if run_ids is not None:
            # a page: its ids were listed in this scope, so they alone pick the rows (a subquery for every run of
            # the experiment would cost more than the page; a run that left the scope since is dropped later,
            # as the run rows no longer hold it)
            q = q.where(table.c.run_id.in_(run_ids))
            return q if keys is None else q.where(table.c.key.in_(list(keys)))
        if shown is not None:
            r, e = s.runs, s.experiments
            q = q.where(
                table.c.run_id.in_(
                    select(r.c.id).select_from(r.join(e, r.c.experiment_id == e.c.id)).where(shown)
                )
            )
        if experiment_ids is not None:
            q = q.where(
                table.c.run_id.in_(
                    select(s.runs.c.id).where(s.runs.c.experiment_id.in_(list(experiment_ids)))
                )
            )
        if keys is not None:
            q = q.where(table.c.key.in_(list(keys)))
        return q

    def _long_query(self, table, scope: tuple, keys: Sequence[str] | None):
        return self._where_listed(select(table.c.run_id, table.c.key, table.c.value), table, scope, keys)

    def _metric_grid(self, conn: Connection, scope: tuple, keys, run_ids: tuple, layouts_json: tuple):
        """The latest metric values of the listed runs, given each run's key list (JSON) from the run rows.
        The values come as bare floats in (run id, key) order, since SQLite's JSON prints floats with only 15
        significant digits."""
        import numpy as np

        lm = s.latest_metrics
        by_code_point = (lambda c: c.collate("C")) if self.db.dialect == "postgresql" else (lambda c: c)
        q = self._where_listed(select(lm.c.value), lm, scope, keys)
        value_rows = conn.execute(
            q.order_by(by_code_point(lm.c.run_id), by_code_point(lm.c.key))
        ).cursor.fetchall()

        # runs logging the same keys share a layout: decode and sort each distinct key list once
        layouts: dict[str, int] = {}
        run_layout = np.fromiter(
            (layouts.setdefault(text or "[]", len(layouts)) for text in layouts_json),
            np.intp,
            len(layouts_json),
        )
        layout_keys = [sorted(json.loads(text)) for text in layouts]  # code point order, as the values
        names = sorted(set().union(*layout_keys))
        code = {name: j for j, name in enumerate(names)}
        flat = np.array([code[k] for ks in layout_keys for k in ks], dtype=np.intp)
        size = np.array([len(ks) for ks in layout_keys], dtype=np.intp)
        if int(size[run_layout].sum()) != len(value_rows):  # values of unlisted runs (orphan rows): slow path
            long = conn.execute(self._long_query(lm, scope, keys)).cursor.fetchall()
            names, grid = _scatter(long, {run_id: i for i, run_id in enumerate(run_ids)}, numeric=True)
            present = np.zeros(grid.shape, dtype=bool)
            position, code = (
                {run_id: i for i, run_id in enumerate(run_ids)},
                {k: j for j, k in enumerate(names)},
            )
            for run_id, key, _ in long:
                if run_id in position:
                    present[position[run_id], code[key]] = True
            return names, grid, present

        # the values walk the runs in id order: value v belongs to run rows[v], key cols[v]
        by_id = np.argsort(np.array(run_ids, dtype=str), kind="stable")
        layout = run_layout[by_id]
        counts = size[layout]
        rows = np.repeat(by_id, counts)
        offset = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = flat[np.repeat((np.cumsum(size) - size)[layout], counts) + offset]
        grid = np.full((len(run_ids), len(names)), np.nan)
        grid[rows, cols] = _floats(value_rows)
        present = np.zeros(grid.shape, dtype=bool)  # a key logged as NaN is a column all the same
        present[rows, cols] = True
        return names, grid, present

    def _listing_from_long_rows(self, conn: Connection, scope: tuple, keys) -> RunListing:
        """:meth:`listing` from (run, key, value) rows, for SQLite builds without JSON functions."""
        fetched = conn.execute(self._run_rows_query(*scope)).cursor.fetchall()
        columns = list(zip(*fetched, strict=True)) if fetched else [()] * _RUN_FIELDS
        position = {run_id: i for i, run_id in enumerate(columns[0])}
        values = {}
        for kind, wanted in keys.items():
            long = conn.execute(self._long_query(_LISTING_TABLES[kind], scope, wanted)).cursor.fetchall()
            values[kind] = _scatter(long, position, numeric=kind == "metrics")
        return RunListing(columns, values)


def _count(conn: Connection, rows: Any, cap: int | None) -> int:
    """How many rows ``rows`` (a SELECT) gives, counting no further than ``cap`` (None: all)."""
    if cap is not None:
        rows = rows.limit(cap)
    return conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one()


def _keyed_ids(condition: Any, negated: bool | None = False):
    """The subquery of ``runs.id IN (SELECT run_id FROM … WHERE key = … AND …)``, the SQL of one filter
    condition on a param, metric or tag (see :mod:`mlo.store.run_filter`): each run at most once, as the table
    is keyed by (run_id, key). None for any other condition. With ``negated=None``, also ``NOT IN``: then
    (the subquery, whether negated)."""
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import BinaryExpression
    from sqlalchemy.sql.selectable import ScalarSelect, Select

    if not isinstance(condition, BinaryExpression):
        return None
    ops = {operators.in_op: False, operators.not_in_op: True} if negated is None else {operators.in_op: False}
    if condition.operator not in ops:
        return None
    if condition.left is not s.runs.c.id:
        return None
    right = condition.right.element if isinstance(condition.right, ScalarSelect) else condition.right
    if not isinstance(right, Select) or len(right.selected_columns) != 1:
        return None
    table = right.selected_columns[0].table
    if table not in (s.params, s.latest_metrics, s.tags) or right.selected_columns[0] is not table.c.run_id:
        return None
    return right if negated is not None else (right, ops[condition.operator])


def _reads_experiments(condition: Any) -> bool:
    """Whether ``condition`` (None: no) reads a column of ``experiments``."""
    if condition is None:
        return False
    from sqlalchemy.sql.visitors import iterate

    return any(getattr(x, "table", None) is s.experiments for x in iterate(condition))


def _probing(condition: Any):
    """``condition`` with each ``runs.id [NOT] IN (SELECT run_id FROM … WHERE …)`` as ``[NOT] EXISTS (SELECT 1
    FROM … WHERE run_id = runs.id AND …)``: the same runs (run_id is never NULL), found by probing each run's row
    of the key through the table's (run_id, key) key instead of by a set of every match."""
    from sqlalchemy import literal
    from sqlalchemy.sql.visitors import replacement_traverse

    def probe(element):
        found = _keyed_ids(element, negated=None)
        if found is None:
            return None
        right, negated = found
        table = right.selected_columns[0].table
        probed = select(literal(1)).where(table.c.run_id == s.runs.c.id, right.whereclause).exists()
        return ~probed if negated else probed

    return replacement_traverse(condition, {}, probe)


def _matching_ids(condition: Any):
    """:func:`_keyed_ids` of a condition of equalities alone; None for any other condition."""
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

    right = _keyed_ids(condition)
    if right is None:
        return None
    # equalities alone: the index gives one value's matches in run id order, so their lookups in runs walk it in
    # order; the matches of a range come in value order, and looking them up at random costs more than probing
    # every listed run against them (3x at 100,000 runs)
    parts = [right.whereclause]
    while parts:
        part = parts.pop()
        if isinstance(part, BooleanClauseList) and part.operator is operators.and_:
            parts.extend(part.clauses)
        elif not (isinstance(part, BinaryExpression) and part.operator in (operators.eq, operators.in_op)):
            return None
    return right


_LISTING_TABLES = {"params": s.params, "metrics": s.latest_metrics, "tags": s.tags}
_RUN_FIELDS = 11  # the columns of RunStore.run_rows


@dataclass
class RunListing:
    """What :meth:`RunStore.listing` read.

    ``columns`` holds the fields of :meth:`RunStore.run_rows` (id, experiment, …, source), one tuple each with
    a value per run, newest run first. ``values`` maps each kind read to its keys (sorted) and a 2-D array with
    a row per run and a column per key: float64 for metrics (NaN where a run lacks the key or logged NaN),
    object for params and tags (the stored text; None where a run lacks the key).
    """

    columns: list[tuple]
    values: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    present: np.ndarray | None = None  # where a run has the metric (NaN included), as the metrics grid

    # From the cache, ``columns`` holds arrays and each kind's grid is a list of columns, one per key: float64
    # arrays for metrics, object arrays for tags, and ``(codes, texts)`` for params (the distinct stored texts
    # of the key, as Arrow strings, and per run the index of its text in them, -1 where the run lacks the key);
    # the run fields' strings are in pandas' Arrow-backed string arrays where pandas infers that dtype.


def _listing_of_table(table, keys: Mapping[str, Sequence[str] | None], experiment_names: dict) -> RunListing:
    """A :class:`RunListing` (columnar) of the listed rows of the cache's table."""
    import numpy as np
    import pandas as pd

    from . import listing_cache as lc

    n = table.num_rows
    columns = [_texts(table.column("id"))]
    codes, distinct = pd.factorize(table.column("experiment_id").to_numpy(zero_copy_only=False))
    names = np.array([experiment_names[eid] for eid in distinct] + [None], dtype=object)
    columns.append(names[codes])
    for name in lc.RUN_FIELDS[2:]:
        column = table.column(name)
        if name in ("start_time", "end_time"):
            columns.append(column.to_numpy() if column.null_count else column.to_numpy().astype(np.int64))
        else:
            columns.append(_texts(column))
    values = {}
    for kind, wanted in keys.items():
        found = lc.key_columns(table, kind, None if wanted is None else set(wanted))
        out = []
        for _, column in found:
            if kind == "metrics":
                out.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
                continue
            if n and column.null_count:
                index = column.indices.fill_null(-1).to_numpy()
            else:
                index = column.indices.to_numpy(zero_copy_only=False) if n else np.empty(0, np.int64)
            # the texts the listed runs hold (a slice or a selection of the file's runs may hold fewer), in
            # dictionary order, and each run's position in them (-1: none)
            held = np.bincount(index + 1, minlength=len(column.dictionary) + 1)[1:] > 0
            used = column.dictionary
            if not held.all():
                position = np.cumsum(held) - 1
                index = np.where(index >= 0, position[np.maximum(index, 0)], -1)
                used = used.filter(held)
            if kind == "params":
                out.append((index.astype(np.intp), used))
            else:
                out.append(np.append(used.to_numpy(zero_copy_only=False), None).astype(object)[index])
        values[kind] = [key for key, _ in found], out
    return RunListing(columns, values)


def _texts(column):
    """An Arrow column of strings as pandas holds the same Python strings (and None where null) in a frame:
    pandas' string dtype when it infers one (pandas 3), taken from Arrow without a Python object per value;
    else (or when every value is null) an object array."""
    import pandas as pd

    inferred = _inferred_string_dtype()
    if inferred is None or column.null_count == len(column):
        return column.to_numpy(zero_copy_only=False)
    return pd.array(column, dtype=inferred)


@lru_cache(maxsize=1)
def _inferred_string_dtype():
    """The dtype pandas gives a column of Python strings with a None among them, when it is Arrow-backed."""
    import numpy as np
    import pandas as pd

    dtype = pd.Series(np.array(["a", None], dtype=object)).dtype
    return dtype if getattr(dtype, "storage", None) == "pyarrow" else None


def _text_grid(objects_json: tuple) -> tuple:
    """Params or tags: one ``{key: value}`` JSON object per run (None: no keys) → (keys, grid)."""
    import numpy as np

    objects = json.loads("[" + ",".join(text or "{}" for text in objects_json) + "]")
    names = sorted(set().union(*objects))
    counts = np.fromiter(map(len, objects), np.intp, len(objects))
    if len(names) > 1 and (counts == len(names)).all():  # every run has every key: a row at a time
        return names, np.array(list(map(itemgetter(*names), objects)), dtype=object)
    grid = np.full((len(objects), len(names)), None, dtype=object)
    if len(names) * len(objects) <= 4 * int(counts.sum()):  # dense enough: a column at a time
        for j, name in enumerate(names):
            grid[:, j] = [o.get(name) for o in objects]
    else:  # sparse (many keys, each in few runs): a value at a time
        code = {name: j for j, name in enumerate(names)}
        cols = np.fromiter((code[k] for o in objects for k in o), np.intp, int(counts.sum()))
        vals = np.empty(len(cols), dtype=object)
        vals[:] = [v for o in objects for v in o.values()]
        grid[np.repeat(np.arange(len(objects)), counts), cols] = vals
    return names, grid


def _floats(rows: list[tuple]) -> np.ndarray:
    import numpy as np

    try:
        return np.fromiter(chain.from_iterable(rows), np.float64, len(rows))
    except TypeError:  # a NULL (a logged NaN) is in there
        return np.array([v for (v,) in rows], dtype=np.float64)


def _scatter(rows: list[tuple], position: dict, numeric: bool) -> tuple:
    """(run_id, key, value) rows → (keys, grid) as in :class:`RunListing`; rows of unlisted runs are left out."""
    import numpy as np

    rows = [r for r in rows if r[0] in position]
    names = sorted({key for _, key, _ in rows})
    code = {name: j for j, name in enumerate(names)}
    grid = np.full(
        (len(position), len(names)), np.nan if numeric else None, dtype=float if numeric else object
    )
    for run_id, key, value in rows:
        grid[position[run_id], code[key]] = np.nan if value is None else value
    return names, grid
