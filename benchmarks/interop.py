"""The MLflow trace import rate of ``mlo import mlflow``, side by side with MLflow's own client reading the same
traces (the floor: the import reads through that client, then writes mlo's records).

An MLflow store (SQLite, MLflow's client in this environment) is filled with N traces of 4 spans each — a chain, a
retriever, a chat model call with token usage, a tool — logged synchronously from one run. Then, each in a fresh
mlo workspace:

1. MLflow alone: ``MlflowClient.search_traces`` over every page, spans included (nothing written);
2. ``import_mlflow(uri)``: the run, then the traces as mlo traces (rows per trace and per span, one transaction
   per trace);
3. the same import again: everything is found and skipped.

    .venv/bin/python benchmarks/interop.py            # 1,000 traces
    .venv/bin/python benchmarks/interop.py --quick    # 200 traces
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def fill(uri: str, folder: Path, n: int) -> float:
    import mlflow

    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    mlflow.set_tracking_uri(uri)
    mlflow.MlflowClient(uri).create_experiment("rag", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("rag")
    t0 = time.perf_counter()
    with mlflow.start_run(run_name="answers"):
        for i in range(n):
            with mlflow.start_span("answer", span_type="CHAIN") as root:
                root.set_inputs({"question": f"question {i}"})
                with mlflow.start_span("retrieve", span_type="RETRIEVER") as sp:
                    sp.set_outputs([f"document {i}"])
                with mlflow.start_span("chat", span_type="CHAT_MODEL") as sp:
                    sp.set_attributes(
                        {
                            "mlflow.llm.model": "gpt-4o-mini",
                            "mlflow.chat.tokenUsage": {
                                "input_tokens": 40,
                                "output_tokens": 12,
                                "total_tokens": 52,
                            },
                        }
                    )
                    sp.set_outputs(f"answer {i}")
                with mlflow.start_span("format", span_type="TOOL"):
                    pass
                root.set_outputs(f"answer {i}")
    mlflow.set_tracking_uri(None)
    return time.perf_counter() - t0


def read_all(uri: str) -> tuple[float, int]:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("rag").experiment_id
    t0 = time.perf_counter()
    token, n = None, 0
    while True:
        page = client.search_traces(locations=[exp], max_results=500, page_token=token)
        n += sum(len(t.data.spans) for t in page)
        token = page.token
        if not token:
            break
    return time.perf_counter() - t0, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--traces", type=int)
    a = p.parse_args()
    n = a.traces or (200 if a.quick else 1000)
    import mlo
    from mlo.interop.mlflow_import import import_mlflow

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        filled = fill(uri, folder, n)
        read_s, spans = read_all(uri)
        ws = folder / "ws"
        ws.mkdir()
        os.chdir(ws)
        mlo.init(str(ws))
        t0 = time.perf_counter()
        s = import_mlflow(uri, artifacts=False, models=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = import_mlflow(uri, artifacts=False, models=False)
        second = time.perf_counter() - t0
        assert s.traces == n and again.traces_skipped == n and len(mlo.traces(limit=None)) == n
        os.chdir(Path(__file__).resolve().parent)
    load1 = os.getloadavg()
    import mlflow

    print(
        f"mlo interop benchmark: {n} MLflow traces x 4 spans, MLflow {mlflow.__version__}, "
        f"Python {platform.python_version()}, load average {load0[0]:.2f} → {load1[0]:.2f}"
    )
    print(f"  writing them with MLflow (synchronous): {filled:.2f} s ({n / filled:.0f} traces/s)")
    print(
        f"  MLflow's client reading them all back: {read_s:.2f} s ({n / read_s:.0f} traces/s, {spans} spans)"
    )
    print(
        f"  mlo import mlflow (read + write as mlo traces): {first:.2f} s ({n / first:.0f} traces/s, "
        f"{s.trace_spans / first:.0f} spans/s), {first / read_s:.2f}x MLflow's read alone"
    )
    print(f"  the same import again (all skipped): {second:.2f} s")


if __name__ == "__main__":
    main()
