"""MLflow traces into mlo traces, as part of ``mlo import mlflow``.

Each MLflow trace (``mlflow.trace`` / ``mlflow.start_span``, autologged LLM calls) becomes one mlo trace with its
span tree: span ids and parents kept, times in microseconds, MLflow's span types mapped to mlo's kinds
(``CHAT_MODEL``/``LLM`` → ``llm``, ``RETRIEVER`` → ``retrieval``, …), inputs and outputs kept (in the span's
attributes when small, as blobs otherwise), token usage (``mlflow.chat.tokenUsage``) and the model named, and the
trace attached to the mlo run its MLflow run (``mlflow.sourceRun``) was imported as. MLflow's own attributes stay
as they were, under their names.

The mlo trace id is made from the MLflow trace's start time and its id, so importing again finds it and skips it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..store.ids import _ALPHABET

PAGE = 500
_KINDS = {
    "LLM": "llm",
    "CHAT_MODEL": "llm",
    "EMBEDDING": "embedding",
    "RETRIEVER": "retrieval",
    "TOOL": "tool",
    "CHAIN": "chain",
    "AGENT": "agent",
}
_MODEL_KEYS = ("mlflow.llm.model", "gen_ai.request.model", "model", "model_name")
INLINE_BYTES = 2048


def trace_id_for(mlflow_trace_id: str, request_time_ms: int) -> str:
    """The mlo trace id of an MLflow trace: its start time, then 80 bits of a digest of its id (stable)."""
    rand = int.from_bytes(hashlib.blake2b(mlflow_trace_id.encode(), digest_size=10).digest(), "big")
    value = (int(request_time_ms) << 80) | rand
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _search(client, experiment_id: str):
    token = None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _inline_or_blob(ws, value: Any) -> tuple[Any, str | None]:
    data = json.dumps(value, ensure_ascii=False, default=str).encode()
    if len(data) <= INLINE_BYTES:
        return value, None
    return None, ws.blobs.put_bytes(data)


def _rows(ws, trace, trace_id: str, run_id: str | None) -> list[dict[str, Any]]:
    rows = []
    for seq, sp in enumerate(sorted(trace.data.spans, key=lambda s: s.start_time_ns)):
        attrs = dict(sp.attributes or {})
        kind = _KINDS.get(str(sp.span_type or "").upper(), "custom")
        usage = attrs.get("mlflow.chat.tokenUsage") or {}
        if isinstance(usage, str):
            try:
                usage = json.loads(usage)
            except ValueError:
                usage = {}
        model = next((attrs[k] for k in _MODEL_KEYS if isinstance(attrs.get(k), str)), None)
        inputs = attrs.pop("mlflow.spanInputs", None)
        outputs = attrs.pop("mlflow.spanOutputs", None)
        in_blob = out_blob = None
        if inputs is not None:
            inline, in_blob = _inline_or_blob(ws, inputs)
            if in_blob is None:
                attrs["mlo.inputs"] = inline
        if outputs is not None:
            inline, out_blob = _inline_or_blob(ws, outputs)
            if out_blob is None:
                attrs["mlo.outputs"] = inline
        status = str(getattr(sp.status, "status_code", "OK")).rsplit(".", 1)[-1].upper()
        error = (getattr(sp.status, "description", "") or "error") if status == "ERROR" else None
        attrs["mlflow.spanType"] = sp.span_type
        rows.append(
            {
                "trace_id": trace_id,
                "span_id": sp.span_id,
                "parent_id": sp.parent_id,
                "seq": seq,
                "name": str(sp.name)[:255],
                "kind": kind,
                "status": "error" if status == "ERROR" else "ok",
                "start_time": int(sp.start_time_ns) // 1000,
                "end_time": int(sp.end_time_ns) // 1000 if sp.end_time_ns else None,
                "run_id": run_id,
                "model": model if kind in ("llm", "embedding") else None,
                "input_tokens": usage.get("input_tokens"),
                "output_tokens": usage.get("output_tokens"),
                "cached_tokens": None,
                "reasoning_tokens": None,
                "prompt": None,
                "request_key": None,
                "input_blob": in_blob,
                "output_blob": out_blob,
                "attributes": json.dumps(attrs, ensure_ascii=False, default=str),
                "error": error,
            }
        )
    return rows


def import_traces(ws, client, experiment_id: str, runs_done: dict[str, str]) -> tuple[int, int, int]:
    """Import the traces of one MLflow experiment; (traces imported, spans imported, traces skipped)."""
    imported = spans = skipped = 0
    batch: list = []

    def flush() -> None:
        nonlocal imported, spans, skipped
        if not batch:
            return
        ids = {trace_id_for(t.info.trace_id, t.info.request_time): t for t in batch}
        have = {r["id"] for r in ws.traces.traces(trace_ids=list(ids))}
        for tid, t in ids.items():
            if tid in have:
                skipped += 1
                continue
            info = t.info
            run_id = runs_done.get((info.trace_metadata or {}).get("mlflow.sourceRun", ""))
            rows = _rows(ws, t, tid, run_id)
            llm = [r for r in rows if r["kind"] in ("llm", "embedding")]
            models = list(dict.fromkeys(r["model"] for r in llm if r["model"]))
            state = str(getattr(info.state, "value", info.state)).upper()
            errors = [r for r in rows if r["status"] == "error"]
            start = int(info.request_time) * 1000
            ws.traces.finish(
                {
                    "id": tid,
                    "name": (info.tags or {}).get("mlflow.traceName")
                    or (rows[0]["name"] if rows else "trace"),
                    "run_id": run_id,
                    "notebook": None,
                    "cell": None,
                    "status": "error" if state == "ERROR" else "ok" if state == "OK" else "unfinished",
                    "start_time": start,
                    "end_time": start + int(info.execution_duration or 0) * 1000,
                    "spans": len(rows),
                    "llm_calls": len(llm),
                    "input_tokens": sum(r["input_tokens"] or 0 for r in llm),
                    "output_tokens": sum(r["output_tokens"] or 0 for r in llm),
                    "cached_tokens": 0,
                    "reasoning_tokens": 0,
                    "models": ", ".join(models) or None,
                    "prompts": None,
                    "replayed": False,
                    "error": f"{errors[0]['name']}: {errors[0]['error']}" if errors else None,
                },
                rows,
                started=False,
            )
            imported += 1
            spans += len(rows)
        batch.clear()

    for t in _search(client, experiment_id):
        batch.append(t)
        if len(batch) >= PAGE:
            flush()
    flush()
    return imported, spans, skipped
