"""The live OTLP exporter: runs, nested (stage) runs and traces reach a real OTLP/HTTP receiver on loopback as
they finish, and a collector that fails, hangs or is gone never fails or holds up the code being traced."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest
from otlp_receiver import Receiver, has_proto, spans

import mlo
from mlo import otlp_live
from strict import need


@pytest.fixture
def receiver():
    need(has_proto(), "the OTLP export tests need opentelemetry-proto (pip install -e '.[dev]')")
    recv = Receiver()
    yield recv
    recv.close()


def _configure(ws, text: str) -> None:
    (ws.home.parent / "mlo.toml").write_text(text)
    ws.reread_config()


def test_runs_stages_and_traces_are_sent_as_they_finish(sqlite_ws, receiver):
    from mlo.otlp import trace_id_bytes

    _configure(sqlite_ws, f'[otel]\nendpoint = "{receiver.url}"\nservice_name = "churn"\n')
    with mlo.start_run("pipeline", experiment="churn") as top:
        with mlo.start_run("train", nested=True) as stage:
            mlo.log_params({"C": 0.5})
            mlo.log_metric("acc", 0.9)
        with mlo.trace("answer", kind="chain"), mlo.trace("retrieve", kind="retrieval"):
            pass
    ex = otlp_live.exporter_for(sqlite_ws)
    assert ex is not None and ex.flush(30), ex.to_dict()
    got = {s.name: (svc, s) for svc, s in spans(receiver.bodies)}
    assert set(got) == {"pipeline", "train", "answer", "retrieve"}
    assert {svc for svc, _ in got.values()} == {"churn"}
    train = got["train"][1]
    assert train.trace_id == got["pipeline"][1].trace_id == trace_id_bytes(top.id)
    assert train.parent_span_id == trace_id_bytes(top.id)[8:]
    attrs = {a.key: a.value for a in train.attributes}
    # read after the end was written: the final status and the last metric
    assert attrs["mlo.run_id"].string_value == stage.id and attrs["mlo.status"].string_value == "finished"
    assert attrs["mlo.metric.acc"].double_value == 0.9 and train.status.code == train.status.STATUS_CODE_OK
    answer = got["answer"][1]
    assert got["retrieve"][1].parent_span_id == answer.span_id
    assert ex.to_dict()["sent"] == 4 and not ex.failing


def test_a_failing_then_hanging_collector_neither_fails_nor_holds_up_the_code(sqlite_ws, receiver):
    _configure(sqlite_ws, f'[otel]\nendpoint = "{receiver.url}"\n')
    receiver.statuses[:] = [503, 503]  # down for two tries: the spans wait and are sent after
    with mlo.start_run("first"):
        pass
    ex = otlp_live.exporter_for(sqlite_ws)
    assert ex.flush(60), ex.to_dict()
    assert [s.name for _, s in spans(receiver.bodies)] == ["first"]
    assert ex.stats["failures"] == 2 and "HTTP 503" in ex.last_error and not ex.failing

    receiver.gate.clear()  # now the collector takes requests and never answers
    with mlo.start_run("second"):
        pass
    assert not ex.flush(2)  # the exporter's thread is stuck in its request ...
    with mlo.start_run("third"):  # ... and the user's code goes on all the same
        mlo.log_metric("loss", 0.1)
        with mlo.trace("step"):
            pass
    assert mlo.get_run(mlo.runs()["run_id"].iloc[0]).status == "finished"
    receiver.gate.set()
    assert ex.flush(60), ex.to_dict()
    assert {s.name for _, s in spans(receiver.bodies)} == {"first", "second", "third", "step"}


def test_off_switches_and_a_bad_endpoint(sqlite_ws, receiver, monkeypatch, caplog):
    _configure(sqlite_ws, f'[otel]\nendpoint = "{receiver.url}"\nlive = false\n')
    assert otlp_live.exporter_for(sqlite_ws) is None
    _configure(sqlite_ws, "")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    assert otlp_live.exporter_for(sqlite_ws).url == receiver.url + "/v1/traces"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert otlp_live.exporter_for(sqlite_ws) is None
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")
    with caplog.at_level("WARNING", logger="mlo.otlp"):
        with mlo.start_run("quiet"):
            pass
    assert "not an http(s) URL" in caplog.text
    with pytest.raises(mlo.InvalidInput, match="otel"):
        _configure(sqlite_ws, "[otel]\nendpont = 'http://x'\n")


def test_a_collector_that_is_gone_costs_a_short_script_nothing(sqlite_ws, tmp_path):
    need(has_proto(), "the OTLP export tests need opentelemetry-proto (pip install -e '.[dev]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import mlo
            with mlo.start_run("offline") as run:
                mlo.log_metric("loss", 0.5)
                with mlo.trace("step"):
                    pass
            print("done", run.id)
            """
        )
    )
    import os

    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=sqlite_ws.home.parent,
        env=env,
    )
    assert out.returncode == 0 and out.stdout.startswith("done"), out.stderr
    assert "Traceback" not in out.stderr
    assert mlo.runs()["status"].tolist() == ["finished"]
