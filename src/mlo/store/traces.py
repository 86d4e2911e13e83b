"""SQL for LLM traces: a row per trace (its totals, for listings) and a row per span (its tree, usage and the
digests of what it sent and received). :mod:`mlo.llm.tracing` writes them, :mod:`mlo.llm.query` reads them.

A trace is written twice: a ``running`` row when it starts (so a trace in progress, or one whose process was
killed, is visible) and, when its root span ends, its totals and every span in one transaction (executemany).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from . import schema as s
from .db import Database

TRACE_TOTALS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
_INSERT_TRACE = s.llm_traces.insert()
_INSERT_SPANS = s.llm_spans.insert()
_DELETE_TRACE = delete(s.llm_traces).where(s.llm_traces.c.id == bindparam("trace_id"))


class TraceStore:
    """The ``llm_traces`` and ``llm_spans`` tables of one :class:`Database`."""

    def __init__(self, db: Database):
        self.db = db

    # -- writing ----------------------------------------------------------------------------------------------
    def start(self, row: dict[str, Any]) -> None:
        """Record a trace that has just started (status ``running``)."""
        values = {
            "status": "running",
            "end_time": None,
            "spans": 0,
            "llm_calls": 0,
            "replayed": False,
            "models": None,
            "prompts": None,
            "error": None,
            **{k: 0 for k in TRACE_TOTALS},
            **row,
        }
        # statements with bound parameters only: compiled once, cached by SQLAlchemy (tracing is a hot path)
        self.db.write(lambda conn: conn.execute(_INSERT_TRACE, [values]))

    def finish(self, trace: dict[str, Any], spans: Sequence[dict[str, Any]], *, started: bool) -> None:
        """Write a finished trace: its totals and all its spans, in one transaction. ``started`` says whether
        :meth:`start` wrote its running row (which the finished row replaces)."""

        def write(conn: Connection) -> None:
            if started:
                conn.execute(_DELETE_TRACE, {"trace_id": trace["id"]})
            conn.execute(_INSERT_TRACE, [trace])
            if spans:
                conn.execute(_INSERT_SPANS, list(spans))

        self.db.write(write)

    def mark_unfinished(self, trace_ids: Iterable[str], end_time: int) -> None:
        ids = list(trace_ids)
        if not ids:
            return
        t = s.llm_traces
        self.db.write(
            lambda conn: conn.execute(
                update(t)
                .where(and_(t.c.id.in_(ids), t.c.status == "running"))
                .values(status="unfinished", end_time=end_time)
            )
        )

    # -- reading ----------------------------------------------------------------------------------------------
    def traces(
        self,
        *,
        run_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        name: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        trace_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Trace rows, newest first."""
        t = s.llm_traces
        q = self._filtered(select(t), run_ids, since, until, name, trace_ids)
        q = q.order_by(t.c.start_time.desc(), t.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count(
        self,
        *,
        run_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        name: str | None = None,
    ) -> int:
        """How many traces :meth:`traces` would list without a limit."""
        q = self._filtered(select(func.count()).select_from(s.llm_traces), run_ids, since, until, name, None)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar_one())

    @staticmethod
    def _filtered(q, run_ids, since, until, name, trace_ids):
        t = s.llm_traces
        if run_ids is not None:
            q = q.where(t.c.run_id.in_(list(run_ids)))
        if trace_ids is not None:
            q = q.where(t.c.id.in_(list(trace_ids)))
        if since is not None:
            q = q.where(t.c.start_time >= since)
        if until is not None:
            q = q.where(t.c.start_time < until)
        if name is not None:
            q = q.where(t.c.name == name)
        return q

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        t = s.llm_traces
        with self.db.read() as conn:
            row = conn.execute(select(t).where(t.c.id == trace_id)).first()
        return None if row is None else dict(row._mapping)

    def resolve(self, prefix: str) -> list[str]:
        """Ids of traces starting with ``prefix`` (at most 2: enough to tell unique from ambiguous)."""
        t = s.llm_traces
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(t.c.id)
                    .where(t.c.id.like(prefix.replace("%", "").replace("_", "") + "%"))
                    .order_by(t.c.id)
                    .limit(2)
                ).scalars()
            )

    def spans(self, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The spans of some traces, in start order per trace."""
        sp = s.llm_spans
        out: list[dict[str, Any]] = []
        ids = list(trace_ids)
        with self.db.read() as conn:
            for i in range(0, len(ids), 500):
                q = select(sp).where(sp.c.trace_id.in_(ids[i : i + 500])).order_by(sp.c.trace_id, sp.c.seq)
                out.extend(dict(r._mapping) for r in conn.execute(q))
        return out

    def llm_spans(
        self,
        *,
        run_ids: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        prompt: str | None = None,
    ) -> list[dict[str, Any]]:
        """The spans that carry usage (LLM and embedding calls), oldest first: what costs are summed over."""
        sp = s.llm_spans
        cols = [
            sp.c.trace_id,
            sp.c.span_id,
            sp.c.run_id,
            sp.c.model,
            sp.c.prompt,
            sp.c.start_time,
            sp.c.status,
            sp.c.input_tokens,
            sp.c.output_tokens,
            sp.c.cached_tokens,
            sp.c.reasoning_tokens,
        ]
        q = select(*cols).where(sp.c.kind.in_(("llm", "embedding"))).order_by(sp.c.start_time, sp.c.seq)
        if run_ids is not None:
            q = q.where(sp.c.run_id.in_(list(run_ids)))
        if since is not None:
            q = q.where(sp.c.start_time >= since)
        if until is not None:
            q = q.where(sp.c.start_time < until)
        if prompt is not None:
            q = q.where(or_(sp.c.prompt == prompt, sp.c.prompt.like(f"{prompt}/%")))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def recorded(self, request_key: str, run_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """The recorded answers to a request (spans with that key and a response), oldest first."""
        sp = s.llm_spans
        q = (
            select(sp.c.trace_id, sp.c.span_id, sp.c.output_blob, sp.c.attributes, sp.c.status, sp.c.run_id)
            .where(and_(sp.c.request_key == request_key, sp.c.output_blob.is_not(None)))
            .order_by(sp.c.start_time, sp.c.seq)
        )
        if run_ids is not None:
            q = q.where(sp.c.run_id.in_(list(run_ids)))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def recorded_requests(self, run_ids: Sequence[str] | None, limit: int = 200) -> list[dict[str, Any]]:
        """The LLM requests recorded in some runs (newest first): what a replay that found nothing compares with."""
        sp = s.llm_spans
        q = (
            select(sp.c.request_key, sp.c.input_blob, sp.c.model, sp.c.start_time)
            .where(and_(sp.c.request_key.is_not(None), sp.c.output_blob.is_not(None)))
            .order_by(sp.c.start_time.desc())
            .limit(limit)
        )
        if run_ids is not None:
            q = q.where(sp.c.run_id.in_(list(run_ids)))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def descendants(self, run_id: str) -> list[str]:
        """``run_id`` and every run below it (children, their children, …)."""
        r = s.runs
        found = [run_id]
        frontier = [run_id]
        with self.db.read() as conn:
            for _ in range(100):  # bounded: parent chains are short
                if not frontier:
                    break
                children = list(conn.execute(select(r.c.id).where(r.c.parent_id.in_(frontier))).scalars())
                frontier = [c for c in children if c not in found]
                found.extend(frontier)
        return found

    # -- upkeep -----------------------------------------------------------------------------------------------
    @staticmethod
    def remove_runs(conn: Connection, run_ids: Sequence[str]) -> None:
        """Delete the traces and spans of purged runs (inside the purge's transaction)."""
        t, sp = s.llm_traces, s.llm_spans
        ids = list(run_ids)
        traces = select(t.c.id).where(t.c.run_id.in_(ids))
        conn.execute(delete(sp).where(sp.c.trace_id.in_(traces)))
        conn.execute(delete(t).where(t.c.run_id.in_(ids)))


def attributes(row: dict[str, Any]) -> dict[str, Any]:
    """The decoded attributes of a span row."""
    text = row.get("attributes")
    return json.loads(text) if text else {}
