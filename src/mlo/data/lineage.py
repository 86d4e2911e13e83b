"""The lineage graph: which data fed which run, and which run made which snapshot, model or report.

Nodes are ``"<kind>:<id>"`` strings (``run:<id>``, ``snapshot:<id>``, ``model:<name>/<version>``,
``report:<id>``); the edges live in the store (:mod:`mlo.store.lineage`). Each kind knows how to turn a user's
reference into a node (``resolve``) and how to label its nodes (``describe``); other parts of mlo register their
kinds with :func:`register_kind`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .. import workspace
from ..errors import InvalidInput, NotFound
from ..store import schema as s

Resolve = Callable[[workspace.Workspace, str], str]
Describe = Callable[[workspace.Workspace, list[str]], dict[str, dict[str, Any]]]

_RESOLVE: dict[str, Resolve] = {}
_DESCRIBE: dict[str, Describe] = {}
# kinds registered by modules that may not be imported yet (the API loads lazily)
_PROVIDERS = {"model": "mlo.registry", "feature": "mlo.features.views"}


def _load_provider(kind: str) -> None:
    module = _PROVIDERS.get(kind)
    if module is not None and kind not in _RESOLVE:
        import importlib

        try:
            importlib.import_module(module)
        except ImportError:
            pass


_ID_CHARS = re.compile(r"^[0-9a-hjkmnp-tv-z]{4,26}\Z")


def register_kind(kind: str, *, resolve: Resolve | None = None, describe: Describe | None = None) -> None:
    """Teach lineage a node kind: ``resolve(ws, text)`` turns what follows ``kind:`` in a user's reference into
    a node id; ``describe(ws, ids)`` returns ``{id: {"label": …, "detail": …, "attrs": {…}}}`` for node ids
    (the part after ``kind:``)."""
    if resolve is not None:
        _RESOLVE[kind] = resolve
    if describe is not None:
        _DESCRIBE[kind] = describe


@dataclass
class Node:
    id: str  # "<kind>:<key>"
    kind: str
    label: str
    detail: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "detail": self.detail,
            "attrs": self.attrs,
        }


@dataclass
class Edge:
    src: str
    dst: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation}


class Lineage:
    """The ancestors and descendants of one node. Renders as SVG in a notebook; exports to DOT and JSON."""

    def __init__(
        self,
        root: str,
        nodes: dict[str, Node],
        edges: list[Edge],
        up: set[str],
        down: set[str],
        truncated: bool = False,
    ):
        self.root = nodes[root]
        self.nodes = nodes
        self.edges = edges
        self._up = up
        self._down = down
        self.truncated = truncated

    def upstream(self, kind: str | None = None) -> list[Node]:
        """Everything the root was made from, nearest first."""
        return [self.nodes[n] for n in self._order(self._up) if kind is None or self.nodes[n].kind == kind]

    def downstream(self, kind: str | None = None) -> list[Node]:
        """Everything made from the root, nearest first."""
        return [self.nodes[n] for n in self._order(self._down) if kind is None or self.nodes[n].kind == kind]

    def _order(self, ids: set[str]) -> list[str]:
        return [n for n in self.nodes if n in ids]  # nodes are kept in discovery (breadth-first) order

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root.id,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
            "upstream": [n.id for n in self.upstream()],
            "downstream": [n.id for n in self.downstream()],
            "truncated": self.truncated,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_dot(self) -> str:
        from ..report.lineage import lineage_dot

        return lineage_dot(self)

    def to_svg(self) -> str:
        from ..report.lineage import lineage_svg

        return lineage_svg(self)

    def to_text(self) -> str:
        from ..report.lineage import lineage_text

        return lineage_text(self)

    def _repr_html_(self) -> str:
        from ..report.lineage import lineage_html

        return lineage_html(self)

    def __repr__(self) -> str:
        return (
            f"<Lineage of {self.root.id} ({self.root.label}): {len(self._up)} upstream, "
            f"{len(self._down)} downstream>"
        )


# -- resolving references ----------------------------------------------------------------------------------------------
def resolve(ws: workspace.Workspace, ref: str) -> str:
    """The node a user's reference names: ``run:<id>``, a bare run id or prefix, ``snapshot:train@3``,
    ``model:churn@production``, ``report:<id>``, or a bare snapshot reference like ``train@3``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("give a lineage reference: a run id, snapshot:NAME[@VERSION] or model:NAME@ALIAS")
    text = ref.strip()
    kind, sep, rest = text.partition(":")
    if sep:
        _load_provider(kind)
        fn = _RESOLVE.get(kind)
        if fn is None:
            known = ", ".join(sorted(_RESOLVE))
            raise InvalidInput(f"unknown lineage node kind {kind!r} in {ref!r}; use one of: {known}")
        return fn(ws, rest)
    if _ID_CHARS.match(text.lower()):
        try:
            return _resolve_run(ws, text)
        except NotFound:
            pass
    return _resolve_snapshot(ws, text)


def _resolve_run(ws: workspace.Workspace, text: str) -> str:
    return f"run:{ws.runs.resolve_run_id(text)}"


def _resolve_snapshot(ws: workspace.Workspace, text: str) -> str:
    return f"snapshot:{ws.snapshots.resolve(text).id}"


def _resolve_report(ws: workspace.Workspace, text: str) -> str:
    return f"report:{ws.reports.get(text).id}"


def _describe_runs(ws: workspace.Workspace, ids: list[str]) -> dict[str, dict[str, Any]]:
    r, e = s.runs, s.experiments
    q = (
        select(r.c.id, r.c.name, r.c.status, r.c.start_time, e.c.name.label("experiment"))
        .select_from(r.join(e, r.c.experiment_id == e.c.id))
        .where(r.c.id.in_(ids))
    )
    with ws.db.read() as c:
        rows = c.execute(q).all()
    return {
        row.id: {
            "label": row.name,
            "detail": f"{row.experiment} · {row.status}",
            "attrs": {"status": row.status, "experiment": row.experiment, "start_time": row.start_time},
        }
        for row in rows
    }


def _describe_snapshots(ws: workspace.Workspace, ids: list[str]) -> dict[str, dict[str, Any]]:
    t = s.snapshots
    q = select(t.c.id, t.c.name, t.c.version, t.c.digest, t.c.kind, t.c.rows, t.c.n_columns).where(
        t.c.id.in_(ids)
    )
    with ws.db.read() as c:
        rows = c.execute(q).all()
    out = {}
    for row in rows:
        shape = (
            f"{row.rows:,}×{row.n_columns}"
            if row.n_columns is not None and row.rows is not None
            else row.kind
        )
        out[row.id] = {
            "label": f"{row.name}@{row.version}",
            "detail": f"{shape} · {row.digest[:10]}",
            "attrs": {
                "name": row.name,
                "version": row.version,
                "digest": row.digest,
                "kind": row.kind,
                "rows": row.rows,
            },
        }
    return out


def _describe_reports(ws: workspace.Workspace, ids: list[str]) -> dict[str, dict[str, Any]]:
    t = s.reports
    with ws.db.read() as c:
        rows = c.execute(select(t.c.id, t.c.kind, t.c.passed).where(t.c.id.in_(ids))).all()
    return {
        row.id: {
            "label": f"{row.kind} report",
            "detail": {True: "passed", False: "failed"}.get(row.passed, ""),
            "attrs": {"kind": row.kind, "passed": row.passed},
        }
        for row in rows
    }


register_kind("run", resolve=_resolve_run, describe=_describe_runs)
register_kind("snapshot", resolve=_resolve_snapshot, describe=_describe_snapshots)
register_kind("report", resolve=_resolve_report, describe=_describe_reports)


# -- traversal -------------------------------------------------------------------------------------------------------
def build(ws: workspace.Workspace, root: str, *, depth: int | None = None, max_nodes: int = 500) -> Lineage:
    """Walk the edges from ``root``: upstream against their direction, downstream along it."""
    order: dict[str, None] = {root: None}
    edges: dict[tuple[str, str, str], None] = {}
    truncated = False
    sides: dict[str, set[str]] = {}
    with ws.db.read() as conn:
        for direction in ("up", "down"):
            seen: set[str] = set()
            frontier = {root}
            level = 0
            while frontier and (depth is None or level < depth):
                level += 1
                nxt: set[str] = set()
                for a, b, rel in sorted(ws.lineage.edges_touching(frontier, conn)):
                    if direction == "up" and b in frontier:
                        other = a
                    elif direction == "down" and a in frontier:
                        other = b
                    else:
                        continue
                    if other == root or other in seen:
                        edges[(a, b, rel)] = None
                        continue
                    if len(order) >= max_nodes and other not in order:
                        truncated = True
                        continue
                    edges[(a, b, rel)] = None
                    seen.add(other)
                    nxt.add(other)
                    order.setdefault(other, None)
                frontier = nxt
            sides[direction] = seen
    nodes = _describe(ws, list(order))
    return Lineage(
        root,
        nodes,
        [Edge(*e) for e in edges if e[0] in nodes and e[1] in nodes],
        sides["up"],
        sides["down"],
        truncated,
    )


def _describe(ws: workspace.Workspace, ids: list[str]) -> dict[str, Node]:
    by_kind: dict[str, list[str]] = {}
    for node in ids:
        kind, _, key = node.partition(":")
        by_kind.setdefault(kind, []).append(key)
    info: dict[str, dict[str, Any]] = {}
    for kind, keys in by_kind.items():
        _load_provider(kind)
        fn = _DESCRIBE.get(kind)
        found = fn(ws, keys) if fn is not None else {}
        for key in keys:
            info[f"{kind}:{key}"] = found.get(key) or {"label": key, "detail": "(not found)" if fn else ""}
    return {
        n: Node(n, n.partition(":")[0], info[n]["label"], info[n].get("detail", ""), info[n].get("attrs", {}))
        for n in ids
    }


def lineage(ref: str, *, depth: int | None = None, max_nodes: int = 500) -> Lineage:
    """The lineage of a run, snapshot, model or report.

    Parameters
    ----------
    ref : str
        ``run:<id>`` or a run id (prefix), ``snapshot:train@3`` (or ``train@3``), ``model:churn@production``,
        ``report:<id>``.
    depth : int, optional
        How many edges to follow each way (all by default).
    max_nodes : int
        Stop growing the graph at this many nodes (``Lineage.truncated`` then says so).
    """
    ws = workspace.current(create=False)
    return build(ws, resolve(ws, ref), depth=depth, max_nodes=max_nodes)
