"""Runs and LLM traces out to any tracing backend, as OpenTelemetry spans over OTLP/HTTP (protobuf).

Runs: each run is a span named after it, in the trace of its topmost parent (a pipeline run and its stages are
one trace, each stage a child span); ids come from the runs' own 128-bit ids, so exporting again sends the same
ids. Its status, start and end, experiment, params (``mlo.param.<key>``), latest metrics (``mlo.metric.<key>``)
and tags (``mlo.tag.<key>``) are attributes.

Traces: each mlo trace becomes one OpenTelemetry trace: its id is the trace's own 128-bit id (a ULID is 128 bits), each
span keeps its 64-bit id, its parent, its start and end, its status and error, and its attributes (the GenAI
semantic conventions mlo records, ``gen_ai.request.model`` and the token counts among them), plus
``mlo.span.kind``, ``mlo.trace.name`` and ``mlo.run_id``. The spans go in requests of :data:`BATCH` spans to
``<endpoint>/v1/traces``, as an OpenTelemetry Collector, Jaeger, Tempo, Phoenix or Langfuse receive them.

Exporting reads the store and sends; it changes nothing, so exporting again sends the same spans (backends
deduplicate by ids, or show them twice: export a window with ``since=``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput

BATCH = 512
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass
class ExportSummary:
    endpoint: str
    traces: int
    spans: int
    requests: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return f"exported {self.traces} trace(s), {self.spans} span(s) to {self.endpoint} in {self.requests} request(s)"


def trace_id_bytes(trace_id: str) -> bytes:
    """The 16 bytes of an mlo trace id (26 Crockford base32 characters: a 128-bit ULID)."""
    value = 0
    for ch in trace_id:
        value = (value << 5) | _ALPHABET.index(ch)
    return (value & ((1 << 128) - 1)).to_bytes(16, "big")


def _value(v: Any):
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int) and -(1 << 63) <= v < 1 << 63:
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    return AnyValue(string_value=json.dumps(v, default=str))


def _attributes(values: dict[str, Any]):
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return [KeyValue(key=str(k), value=_value(v)) for k, v in values.items() if v is not None]


def trace_span(row: dict[str, Any], trace_name: str):
    """One recorded span (a row of the traces store) as an OTLP span."""
    return _span(row, trace_name)


def _span(row: dict[str, Any], trace_name: str):
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    try:
        attrs = json.loads(row.get("attributes") or "{}")
    except ValueError:
        attrs = {}
    if not isinstance(attrs, dict):
        attrs = {"mlo.attributes": attrs}
    attrs.update(
        {
            "mlo.span.kind": row["kind"],
            "mlo.trace.name": trace_name,
            "mlo.run_id": row.get("run_id"),
            "mlo.prompt": row.get("prompt"),
        }
    )
    if row.get("model"):
        attrs.setdefault("gen_ai.request.model", row["model"])
    for ours, theirs in (
        ("input_tokens", "gen_ai.usage.input_tokens"),
        ("output_tokens", "gen_ai.usage.output_tokens"),
    ):
        if row.get(ours) is not None:
            attrs.setdefault(theirs, int(row[ours]))
    status = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}.get(
        row["status"], Status.STATUS_CODE_UNSET
    )
    end = row.get("end_time") or row["start_time"]
    return Span(
        trace_id=trace_id_bytes(row["trace_id"]),
        span_id=bytes.fromhex(row["span_id"]),
        parent_span_id=bytes.fromhex(row["parent_id"]) if row.get("parent_id") else b"",
        name=row["name"],
        kind=Span.SPAN_KIND_CLIENT if row["kind"] in ("llm", "embedding") else Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=int(row["start_time"]) * 1000,
        end_time_unix_nano=int(end) * 1000,
        attributes=_attributes(attrs),
        status=Status(code=status, message=row.get("error") or ""),
    )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise InvalidInput(
            f"the OTLP endpoint {url} refused the spans (HTTP {exc.code} {exc.reason}): check the URL and the "
            "headers it wants (OTEL_EXPORTER_OTLP_HEADERS)"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InvalidInput(
            f"cannot reach the OTLP endpoint {url} ({reason}): check the URL and that the collector runs"
        ) from None


def _env_headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` (``key=value,key2=value2``), as OpenTelemetry's exporters read it."""
    out = {}
    for part in os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = urllib.request.unquote(value.strip())
    return out


def export_traces(
    endpoint: str | None = None,
    where: str | None = None,
    *,
    run: Any = None,
    since: Any = None,
    limit: int | None = None,
    service_name: str | None = None,
    timeout: float = 30.0,
) -> ExportSummary:
    """Send recorded traces to an OTLP/HTTP endpoint (e.g. ``http://localhost:4318``).

    Parameters
    ----------
    endpoint : str, optional
        The collector's base URL; default ``OTEL_EXPORTER_OTLP_ENDPOINT``. Spans go to ``<endpoint>/v1/traces``.
    where, run, since, limit
        Which traces, as in :func:`mlo.traces` (default: all of them, oldest first).
    service_name : str, optional
        The ``service.name`` of the resource; default ``OTEL_SERVICE_NAME``, else ``mlo``.
    """
    _need_proto()
    from . import workspace
    from .llm.query import traces

    url = _url(endpoint)
    frame = traces(where, run=run, since=since, limit=limit)
    names = dict(zip(frame["trace_id"], frame["name"], strict=True))
    rows = workspace.current().traces.spans(sorted(names))
    spans = [_span(r, names.get(r["trace_id"], "")) for r in rows]
    requests = _send(url, spans, service_name, timeout)
    return ExportSummary(url, len(names), len(rows), requests)


def _need_proto() -> None:
    try:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
    except ImportError:
        raise InvalidInput(
            "exporting spans needs OpenTelemetry's protocol: pip install 'mlo-workbench[otel]'"
        ) from None


def _url(endpoint: str | None) -> str:
    base = (endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidInput(
            f"the OTLP endpoint must be an http(s) URL such as http://localhost:4318, got {endpoint!r} "
            "(or set OTEL_EXPORTER_OTLP_ENDPOINT)"
        )
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def encode(spans: list, service_name: str | None = None) -> bytes:
    """An ``ExportTraceServiceRequest`` of ``spans``, serialized (the body of one POST)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    resource = Resource(
        attributes=_attributes({"service.name": service_name or os.environ.get("OTEL_SERVICE_NAME") or "mlo"})
    )
    part = ScopeSpans(scope=InstrumentationScope(name="mlo"), spans=spans)
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[part])]
    ).SerializeToString()


def _send(url: str, spans: list, service_name: str | None, timeout: float) -> int:
    """POST the spans in requests of :data:`BATCH`; the number of requests."""
    headers = _env_headers()
    requests = 0
    for i in range(0, len(spans), BATCH):
        _post(url, encode(spans[i : i + BATCH], service_name), headers, timeout)
        requests += 1
    return requests


_RUN_STATUS = {"finished": 1, "failed": 2}  # Status.STATUS_CODE_OK, STATUS_CODE_ERROR; the rest unset


def run_span(run, parent: str | None, root: str):
    """One run as a span in the trace of its topmost run ``root``, a child of ``parent`` (a run id or None)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    attrs: dict[str, Any] = {"mlo.run_id": run.id, "mlo.experiment": run.experiment, "mlo.status": run.status}
    attrs.update({f"mlo.param.{k}": v for k, v in run.params.items()})
    attrs.update({f"mlo.metric.{k}": float(v) for k, v in run.metrics.items()})
    attrs.update({f"mlo.tag.{k}": v for k, v in run.tags.items()})
    start = int(run.start_time.timestamp() * 1e6) * 1000
    end = int(run.end_time.timestamp() * 1e6) * 1000 if run.end_time is not None else start
    return Span(
        trace_id=trace_id_bytes(root),
        span_id=trace_id_bytes(run.id)[8:],
        parent_span_id=trace_id_bytes(parent)[8:] if parent else b"",
        name=run.name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_attributes(attrs),
        status=Status(code=_RUN_STATUS.get(run.status, 0)),
    )


def export_runs(
    endpoint: str | None = None,
    experiment: str | Sequence[str] | None = None,
    where: str | None = None,
    *,
    service_name: str | None = None,
    timeout: float = 30.0,
) -> ExportSummary:
    """Send runs (pipeline stages included, as children of their pipeline run) to an OTLP/HTTP endpoint as
    spans; ``traces`` in the summary counts the topmost runs.

    Parameters
    ----------
    endpoint : str, optional
        The collector's base URL; default ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    experiment, where
        Which runs, as in :func:`mlo.runs`. A run's parents are exported with it, so its trace is whole.
    """
    _need_proto()
    from .tracking.query import runs as list_runs
    from .tracking.session import get_run

    url = _url(endpoint)
    frame = list_runs(experiment=experiment, where=where)
    chosen: dict[str, Any] = {}
    todo = list(frame["run_id"])
    while todo:
        rid = todo.pop()
        if rid in chosen:
            continue
        chosen[rid] = run = get_run(rid)
        if run.parent_id and run.parent_id not in chosen:
            todo.append(run.parent_id)

    def root(rid: str) -> str:
        seen = set()
        while chosen[rid].parent_id in chosen and rid not in seen:
            seen.add(rid)
            rid = chosen[rid].parent_id
        return rid

    spans = [
        run_span(run, run.parent_id if run.parent_id in chosen else None, root(rid))
        for rid, run in chosen.items()
    ]
    requests = _send(url, spans, service_name, timeout)
    roots = {root(r) for r in chosen}
    return ExportSummary(url, len(roots), len(spans), requests)
