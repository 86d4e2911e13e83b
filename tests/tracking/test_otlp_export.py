"""Runs and traces out as OpenTelemetry spans: a real OTLP/HTTP receiver on loopback decodes what mlo sends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from otlp_receiver import Receiver, has_proto, spans

import mlo
from mlo.errors import InvalidInput
from strict import need


@pytest.fixture
def collector():
    need(has_proto(), "the OTLP export tests need opentelemetry-proto (pip install -e '.[dev]')")
    recv = Receiver()
    yield recv.url, recv.bodies
    recv.close()


_has_proto = has_proto
_spans = spans


def test_traces_arrive_as_spans_with_their_tree_times_status_and_attributes(sqlite_ws, collector):
    from mlo.otlp import export_traces, trace_id_bytes

    url, bodies = collector
    with mlo.start_run("rag") as run:
        with mlo.trace("answer", kind="chain", attributes={"question": "why?", "k": 3}):
            with mlo.trace("retrieve", kind="retrieval"):
                pass
            with pytest.raises(ValueError), mlo.trace("rerank", kind="tool"):
                raise ValueError("no documents")
    summary = export_traces(url)
    assert (summary.traces, summary.spans, summary.requests) == (1, 3, 1)
    path, ctype, _ = bodies[0]
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    spans = {s.name: s for _, s in _spans(bodies)}
    assert {svc for svc, _ in _spans(bodies)} == {"mlo"}
    trace_id = mlo.traces()["trace_id"].iloc[0]
    root, child, failed = spans["answer"], spans["retrieve"], spans["rerank"]
    assert root.trace_id == child.trace_id == trace_id_bytes(trace_id) and len(root.trace_id) == 16
    assert child.parent_span_id == root.span_id == failed.parent_span_id and root.parent_span_id == b""
    assert root.start_time_unix_nano <= child.start_time_unix_nano <= child.end_time_unix_nano
    assert child.end_time_unix_nano <= root.end_time_unix_nano
    assert failed.status.code == failed.status.STATUS_CODE_ERROR and "no documents" in failed.status.message
    assert root.status.code == root.status.STATUS_CODE_OK
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["mlo.run_id"].string_value == run.id and attrs["mlo.span.kind"].string_value == "chain"
    assert attrs["mlo.trace.name"].string_value == "answer"


def test_a_wrong_or_silent_endpoint_is_one_line(sqlite_ws, tmp_path):
    need(_has_proto(), "the OTLP export tests need opentelemetry-proto (pip install -e '.[dev]')")
    from mlo.otlp import export_traces

    with pytest.raises(InvalidInput, match="http"):
        export_traces("localhost:4318")
    with mlo.trace("t"):
        pass
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, "-m", "mlo", "export", "otlp", "--endpoint", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "cannot reach the OTLP endpoint" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_pipeline_run_and_its_stages_are_one_trace(sqlite_ws, collector, tmp_path):
    from mlo.otlp import trace_id_bytes

    url, bodies = collector
    with mlo.start_run("pipeline", experiment="churn") as top:
        with mlo.start_run("train", nested=True) as stage:
            mlo.log_params({"C": 0.5})
            mlo.log_metric("acc", 0.9)
    with pytest.raises(RuntimeError), mlo.start_run("broken", experiment="churn"):
        raise RuntimeError("diverged")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlo",
            "export",
            "otlp",
            "--endpoint",
            url,
            "--what",
            "runs",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    spans = {s.name: s for _, s in _spans(bodies)}
    assert set(spans) == {"pipeline", "train", "broken"}
    assert spans["train"].trace_id == spans["pipeline"].trace_id == trace_id_bytes(top.id)
    assert spans["train"].parent_span_id == spans["pipeline"].span_id == trace_id_bytes(top.id)[8:]
    assert spans["broken"].trace_id != spans["pipeline"].trace_id
    assert spans["broken"].status.code == spans["broken"].status.STATUS_CODE_ERROR
    attrs = {a.key: a.value for a in spans["train"].attributes}
    assert attrs["mlo.run_id"].string_value == stage.id
    assert attrs["mlo.param.C"].double_value == 0.5 and attrs["mlo.metric.acc"].double_value == 0.9
    assert spans["train"].start_time_unix_nano <= spans["train"].end_time_unix_nano
