"""Reading traces back: ``mlo.traces(where=…)`` as a DataFrame, and ``mlo.llm.get_trace(id)`` as a tree."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import workspace
from ..config import did_you_mean
from ..errors import AmbiguousRef, InvalidInput, NotFound
from .genai import Usage

COLUMNS = [
    "trace_id", "name", "status", "start_time", "duration", "run_id", "notebook", "cell", "spans", "llm_calls",
    "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost_usd", "models", "prompts",
    "replayed", "error",
]  # fmt: skip
_ALIASES = {"id": "trace_id", "model": "models", "prompt": "prompts", "cost": "cost_usd", "run": "run_id"}


def _column(ident: str) -> str:
    name = ident.strip("`")
    if name.startswith("attributes."):
        name = name[len("attributes.") :]
    name = _ALIASES.get(name, name)
    if name not in COLUMNS:
        raise InvalidInput(
            f"unknown field {name!r} in the filter{did_you_mean(name, COLUMNS)}; fields: {', '.join(COLUMNS)}"
        )
    return name


def traces(
    where: str | None = None,
    *,
    run: Any = None,
    name: str | None = None,
    since: Any = None,
    limit: int | None = 1000,
    offset: int = 0,
):
    """Recorded traces, newest first, as a DataFrame: trace_id, name, status (running | ok | error |
    unfinished), start_time, duration (s), run_id, notebook, cell, spans, llm_calls, the token counts, cost_usd
    (NaN when a call's model has no price), models, prompts, replayed, error.

    Parameters
    ----------
    where : str, optional
        A filter over those columns, as in :func:`mlo.runs`: ``"status = 'error'"``,
        ``"cost_usd > 0.01 and models like '%gpt%'"``, ``"prompts like 'support/%'"``.
    run : Run or str, optional
        Only the traces of this run and the runs under it.
    name : str, optional
        Only traces with this (root span) name.
    since : date, datetime or ISO string, optional
    limit : int, optional
        At most this many (newest first); None for all.
    offset : int, optional
        Skip this many first (for paging); ``df.attrs["total"]`` is how many match in all.
    """
    import pandas as pd

    from ..tracking.where import evaluate, parse
    from .pricing import price_table
    from .spending import _run_ids, _us

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be a whole number >= 1 or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"offset must be a whole number >= 0, got {offset!r}")
    if name is not None and not isinstance(name, str):
        raise InvalidInput(f"name must be a trace name, got {type(name).__name__}")
    node = parse(where, _column) if where is not None else None
    ws = workspace.current(create=False)
    run_ids = _run_ids(ws, run)
    since_us = _us(since, "since")
    if node is None:
        rows = ws.traces.traces(run_ids=run_ids, since=since_us, name=name, limit=limit, offset=offset)
        total = len(rows) + offset if (limit is None or len(rows) < limit) and (rows or not offset) else None
        if total is None:
            total = ws.traces.count(run_ids=run_ids, since=since_us, name=name)
    else:
        rows = ws.traces.traces(run_ids=run_ids, since=since_us, name=name)
    cost: dict[str, float] = {}
    if rows:
        table = price_table(ws.config)
        first = min(r["start_time"] for r in rows)
        wanted = {r["id"] for r in rows}
        for s in ws.traces.llm_spans(run_ids=run_ids, since=first):
            if s["trace_id"] not in wanted:
                continue
            usage = Usage(s["input_tokens"], s["output_tokens"], s["cached_tokens"], s["reasoning_tokens"])
            c = table.cost(s["model"] or "", usage, when=s["start_time"] / 1e6).usd
            prev = cost.get(s["trace_id"], 0.0)
            cost[s["trace_id"]] = float("nan") if c is None or prev != prev else prev + c
    records = [
        {
            "trace_id": r["id"],
            "name": r["name"],
            "status": r["status"],
            "start_time": pd.Timestamp(r["start_time"], unit="us", tz="UTC"),
            "duration": (r["end_time"] - r["start_time"]) / 1e6 if r["end_time"] else None,
            "run_id": r["run_id"],
            "notebook": r["notebook"],
            "cell": r["cell"],
            "spans": r["spans"],
            "llm_calls": r["llm_calls"],
            "input_tokens": r["input_tokens"],
            "cached_tokens": r["cached_tokens"],
            "output_tokens": r["output_tokens"],
            "reasoning_tokens": r["reasoning_tokens"],
            "cost_usd": cost.get(r["id"], 0.0),
            "models": r["models"],
            "prompts": r["prompts"],
            "replayed": bool(r["replayed"]),
            "error": r["error"],
        }
        for r in rows
    ]
    df = pd.DataFrame.from_records(records, columns=COLUMNS)
    df["cell"] = df["cell"].astype("Int64")
    df["duration"] = df["duration"].astype(float)
    if node is not None:
        df = df[evaluate(node, df)]
        total = len(df)
        df = df.iloc[offset : None if limit is None else offset + limit].reset_index(drop=True)
    df.attrs["total"] = total
    return df


# -- one trace --------------------------------------------------------------------------------------------------
@dataclass
class SpanRecord:
    """A recorded span: its place in the tree, timing, outcome, attributes and usage."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    status: str
    start_time: int
    end_time: int | None
    model: str | None
    usage: Usage
    prompt: str | None
    error: str | None
    attributes: dict[str, Any]
    input_blob: str | None = None
    output_blob: str | None = None
    children: list[SpanRecord] = field(default_factory=list)
    _ws: Any = None

    @property
    def duration(self) -> float | None:
        return (self.end_time - self.start_time) / 1e6 if self.end_time else None

    def _blob(self, digest: str | None) -> Any:
        if not digest:
            return None
        data = self._ws.blobs.get_bytes(digest)
        encoding = (self.attributes.get("mlo.response.headers") or {}).get("content-encoding")
        if digest == self.output_blob and encoding:
            from .genai import decode_body

            data = decode_body(data, encoding)
        text = data.decode("utf-8", "replace")
        try:
            return json.loads(text)
        except ValueError:
            return text

    def request(self) -> Any:
        """What the span took: the request body of an LLM call (decoded JSON), or a custom span's inputs."""
        if "mlo.inputs" in self.attributes:
            return self.attributes["mlo.inputs"]
        return self._blob(self.input_blob)

    def response(self) -> Any:
        """What it gave: the response body of an LLM call (JSON, or the event stream as text), or outputs."""
        if "mlo.outputs" in self.attributes:
            return self.attributes["mlo.outputs"]
        return self._blob(self.output_blob)

    def to_dict(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_s": self.duration,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "prompt": self.prompt,
            "error": self.error,
            "attributes": self.attributes,
            "children": [c.to_dict() for c in self.children],
        }


class Trace:
    """A recorded trace: ``spans`` in start order, ``roots`` as a tree (``children``), totals and cost."""

    def __init__(self, ws, row: dict[str, Any], spans: list[dict[str, Any]]):
        self._ws = ws
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.status: str = row["status"]
        self.run_id: str | None = row["run_id"]
        self.cell: int | None = row["cell"]
        self.notebook: str | None = row["notebook"]
        self.start_time: int = row["start_time"]
        self.end_time: int | None = row["end_time"]
        self.error: str | None = row["error"]
        self.replayed = bool(row["replayed"])
        self.usage = Usage(
            row["input_tokens"], row["output_tokens"], row["cached_tokens"], row["reasoning_tokens"]
        )
        self.spans: list[SpanRecord] = []
        by_id: dict[str, SpanRecord] = {}
        for s in spans:
            rec = SpanRecord(
                s["trace_id"], s["span_id"], s["parent_id"], s["name"], s["kind"], s["status"], s["start_time"],
                s["end_time"], s["model"],
                Usage(s["input_tokens"], s["output_tokens"], s["cached_tokens"], s["reasoning_tokens"]),
                s["prompt"], s["error"], json.loads(s["attributes"] or "{}"), s["input_blob"], s["output_blob"],
                _ws=ws,
            )  # fmt: skip
            self.spans.append(rec)
            by_id[rec.span_id] = rec
        self.roots: list[SpanRecord] = []
        for rec in self.spans:
            parent = by_id.get(rec.parent_id) if rec.parent_id else None
            (parent.children if parent is not None else self.roots).append(rec)

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.start_time / 1e6, tz=timezone.utc)

    @property
    def duration(self) -> float | None:
        return (self.end_time - self.start_time) / 1e6 if self.end_time else None

    @property
    def cost(self) -> float | None:
        """USD of its LLM calls (None when one of them has no price)."""
        from .pricing import price_table

        table = price_table(self._ws.config)
        total = 0.0
        for s in self.spans:
            if s.kind in ("llm", "embedding"):
                c = table.cost(s.model or "", s.usage, when=s.start_time / 1e6).usd
                if c is None:
                    return None
                total += c
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.id,
            "name": self.name,
            "status": self.status,
            "run_id": self.run_id,
            "notebook": self.notebook,
            "cell": self.cell,
            "start_time": self.started.isoformat(),
            "duration_s": self.duration,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost,
            "replayed": self.replayed,
            "error": self.error,
            "spans": [r.to_dict() for r in self.roots],
        }

    def to_view(self, *, max_chars: int = 8000, budget: int = 2_000_000) -> dict[str, Any]:
        """The trace for a viewer (the REST API, the JupyterLab trace tab): :meth:`to_dict` plus, per span, its
        cost and what it took and gave (``input``/``output``: an LLM call's messages and answer, a custom span's
        inputs and outputs) as text cut to ``max_chars``, until ``budget`` characters are spent in all; after
        that a span's ``content`` is ``"omitted"``. A blob that cannot be read is said in ``content_error``."""
        from .pricing import price_table

        table = price_table(self._ws.config)
        spent = 0
        out = self.to_dict()

        def text(value: Any) -> str | None:
            if value is None:
                return None
            t = (
                value
                if isinstance(value, str)
                else json.dumps(value, indent=1, ensure_ascii=False, default=str)
            )
            if len(t) > max_chars:
                t = t[:max_chars] + f"\n… ({len(t) - max_chars:,} more characters)"
            return t

        def visit(rec: SpanRecord, d: dict[str, Any]) -> None:
            nonlocal spent
            d["cost_usd"] = None
            if rec.kind in ("llm", "embedding"):
                d["cost_usd"] = table.cost(rec.model or "", rec.usage, when=rec.start_time / 1e6).usd
            d["attributes"] = {
                k: v
                for k, v in rec.attributes.items()
                if k not in ("mlo.inputs", "mlo.outputs", "mlo.response.text")
            }
            d["input"] = d["output"] = None
            if spent >= budget:
                d["content"] = "omitted"
            else:
                d["content"] = "full"
                try:
                    d["input"], d["output"] = (text(v) for v in span_contents(rec))
                except Exception as exc:  # a missing or corrupt blob: say so, show the rest of the tree
                    d["content_error"] = f"{type(exc).__name__}: {exc}"
                spent += len(d["input"] or "") + len(d["output"] or "")
            for child, cd in zip(rec.children, d["children"], strict=True):
                visit(child, cd)

        for rec, d in zip(self.roots, out["spans"], strict=True):
            visit(rec, d)
        out["span_count"] = len(self.spans)
        return out

    def __repr__(self) -> str:
        return f"<Trace {self.id[:10]} {self.name!r} {self.status} {len(self.spans)} spans>"

    def _repr_html_(self) -> str:
        from .render import trace_html

        return trace_html(self)


def span_contents(rec: SpanRecord) -> tuple[Any, Any]:
    """What a span took and gave, for reading: an LLM call's messages as ``[role] content`` lines and its answer
    text; a custom span's inputs and outputs as recorded."""
    if rec.kind not in ("llm", "embedding"):
        return rec.request(), rec.response()
    req = rec.request()
    if isinstance(req, dict) and isinstance(req.get("messages"), list):
        req = "\n".join(
            f"[{m.get('role')}] {m.get('content')}" for m in req["messages"] if isinstance(m, dict)
        )
    answer = rec.attributes.get("mlo.response.text")
    return req, answer if answer is not None else rec.response()


def get_trace(ref: str) -> Trace:
    """The trace with id (or unique id prefix) ``ref``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"a trace id must be a non-empty string, got {ref!r}")
    ws = workspace.current(create=False)
    ids = ws.traces.resolve(ref.strip().lower())
    if not ids:
        raise NotFound(f"no trace {ref!r}; mlo.traces() lists them")
    if len(ids) > 1:
        raise AmbiguousRef(f"{ref!r} matches several traces; give more of its id")
    row = ws.traces.trace(ids[0])
    return Trace(ws, row, ws.traces.spans([ids[0]]))
