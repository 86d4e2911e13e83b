"""LLM tracing speed of mlo, side by side with MLflow tracing on the same calls.

What it measures (each side in a fresh temporary folder with a SQLite store):

1. Tracing overhead per call: the same chat completions sent by the official ``openai`` client to mlo's fake
   OpenAI-compatible endpoint on 127.0.0.1 (answers at once), untraced, then traced by ``mlo.llm.autolog()``
   (and by ``mlflow.openai.autolog()``). Overhead = traced minus untraced, per call (median of rounds).
2. Span ingest: traces of 10 nested ``mlo.trace`` spans (``@mlflow.trace`` for MLflow), spans written per second.
   Target: >= 10,000 spans/s on SQLite.
3. Replay: the recorded calls answered by ``mlo.llm.replay`` (no endpoint), calls per second, against live calls.
4. Price table lookup: microseconds per ``PriceTable.price(model)`` on the seeded table (~1,500 models), for a
   name seen before and for names resolved the first time (provider prefixes, date suffixes).

MLflow is never imported by mlo: when ``.venv-anchors/bin/python`` can import mlflow and openai, this script runs
itself there with ``--mlflow-child URL`` against the same fake endpoint and reads the figures back.

    .venv/bin/python benchmarks/llm.py            # about a minute on 2 cores
    .venv/bin/python benchmarks/llm.py --quick
    .venv/bin/python benchmarks/llm.py --json out.json --no-mlflow

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
SIZES = {
    "full": {
        "calls": 400,
        "rounds": 3,
        "traces": 2000,
        "spans_per_trace": 10,
        "mlflow_traces": 300,
        "lookups": 200_000,
    },
    "quick": {
        "calls": 100,
        "rounds": 3,
        "traces": 300,
        "spans_per_trace": 10,
        "mlflow_traces": 60,
        "lookups": 50_000,
    },
}
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def _calls(client, n: int, tag: str) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"{tag} {i}"}]
        )
    return (time.perf_counter() - t0) / n


def _spans(trace, n_traces: int, width: int) -> float:
    @trace
    def leaf(i):
        return i

    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_traces):
        with_root(trace, leaf, width)
    _spans.cpu = n_traces * width / max(time.process_time() - c0, 1e-9)  # type: ignore[attr-defined]
    return n_traces * width / (time.perf_counter() - t0)


def with_root(trace, leaf, width):  # a root span and width - 1 children
    @trace
    def root():
        for i in range(width - 1):
            leaf(i)

    root()


# -- mlo -----------------------------------------------------------------------------------------------------------
def run_mlo(size: dict, url: str) -> dict:
    import openai

    import mlo
    from mlo.llm.pricing import price_table

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLO_HOME"] = str(Path(tmp) / ".mlo")
        mlo.init(tmp)
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        _calls(client, 20, "warm")
        plain, traced = [], []
        for r in range(size["rounds"]):
            mlo.llm.autolog(disable=True)
            plain.append(_calls(client, size["calls"], f"plain{r}"))
            mlo.llm.autolog()
            traced.append(_calls(client, size["calls"], f"traced{r}"))
        mlo.llm.autolog(disable=True)
        out["call_untraced_us"] = statistics.median(plain) * 1e6
        out["call_traced_us"] = statistics.median(traced) * 1e6
        out["overhead_us"] = out["call_traced_us"] - out["call_untraced_us"]

        out["spans_per_s"] = _spans(mlo.trace, size["traces"], size["spans_per_trace"])
        out["spans_per_cpu_s"] = _spans.cpu  # type: ignore[attr-defined]
        n = len(mlo.traces(limit=None))
        out["traces_written"] = n

        mlo.llm.autolog()
        with mlo.start_run("record") as run:
            live = _calls(client, size["calls"], "replay")
        with mlo.llm.replay(run):
            replayed = _calls(client, size["calls"], "replay")
        out["live_call_us"] = live * 1e6
        out["replayed_call_us"] = replayed * 1e6
        out["replay_calls_per_s"] = 1 / replayed

        table = price_table({})
        names = table.models()
        table.price("gpt-4o-mini")
        t0 = time.perf_counter()
        for _ in range(size["lookups"]):
            table.price("gpt-4o-mini")
        out["price_lookup_us"] = (time.perf_counter() - t0) / size["lookups"] * 1e6
        fresh = [f"openai/{m}-2025-01-01" for m in names[:2000]]
        cold = price_table({"llm": {"prices": {"bench-x": {"input": 1, "output": 1}}}})
        t0 = time.perf_counter()
        for m in fresh:
            cold.price(m)
        out["price_lookup_cold_us"] = (time.perf_counter() - t0) / len(fresh) * 1e6
        out["price_models"] = len(table)
        mlo.workspace.reset_cache()
    return out


# -- MLflow (runs in .venv-anchors) ----------------------------------------------------------------------------------
def run_mlflow(size: dict, url: str) -> dict:
    import logging

    import mlflow
    import openai

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # MLflow writes trace artifacts under ./mlruns, wherever the script was started
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment("bench")
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        _calls(client, 10, "warm")
        n = max(20, size["calls"] // 4)
        plain, traced = [], []
        for r in range(size["rounds"]):
            mlflow.openai.autolog(disable=True)
            plain.append(_calls(client, n, f"plain{r}"))
            mlflow.openai.autolog()
            traced.append(_calls(client, n, f"traced{r}"))
        mlflow.openai.autolog(disable=True)
        try:
            mlflow.flush_trace_async_logging()
        except Exception:
            pass
        out["call_untraced_us"] = statistics.median(plain) * 1e6
        out["call_traced_us"] = statistics.median(traced) * 1e6
        out["overhead_us"] = out["call_traced_us"] - out["call_untraced_us"]
        out["calls"] = n
        t0 = time.perf_counter()
        rate = _spans(mlflow.trace, size["mlflow_traces"], size["spans_per_trace"])
        try:
            mlflow.flush_trace_async_logging()
        except Exception:
            pass
        out["spans_per_s_no_flush"] = rate
        out["spans_per_cpu_s"] = _spans.cpu  # type: ignore[attr-defined]
        out["spans_per_s"] = size["mlflow_traces"] * size["spans_per_trace"] / (time.perf_counter() - t0)
        out["traces"] = size["mlflow_traces"]
        out["version"] = mlflow.__version__
    return out


def mlflow_side(size_name: str, url: str) -> tuple[dict | None, str]:
    if not ANCHOR_PYTHON.exists():
        return None, "no .venv-anchors"
    proc = subprocess.run(
        [str(ANCHOR_PYTHON), __file__, "--mlflow-child", url, "--size", size_name],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        return None, f"mlflow child failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--mlflow-child")
    ap.add_argument("--size", default="full")
    a = ap.parse_args()
    if a.mlflow_child:
        print(json.dumps(run_mlflow(SIZES[a.size], a.mlflow_child)))
        return
    size_name = "quick" if a.quick else "full"
    size = SIZES[size_name]
    from mlo.llm import FakeEndpoint

    load = os.getloadavg()
    with FakeEndpoint() as ep:
        mine = run_mlo(size, ep.url)
        theirs, why = (None, "--no-mlflow") if a.no_mlflow else mlflow_side(size_name, ep.url)
    print(f"mlo LLM benchmark ({size_name}) — Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load {load[0]:.2f} → {os.getloadavg()[0]:.2f}")  # fmt: skip
    mf = theirs or {}

    def row(label, ours, other=None, unit="", better="lower"):
        ratio = ""
        if other:
            r = other / ours if better == "lower" else ours / other
            ratio = f"{r:,.1f}×"
        o = f"{other:,.1f} {unit}" if other is not None else "—"
        print(f"  {label:<44} {ours:>12,.1f} {unit:<8} {o:>16}   {ratio}")

    print(f"  {'figure':<44} {'mlo':>12} {'':<8} {'MLflow ' + mf.get('version', ''):>16}   mlo better by")
    row("chat call, untraced (fake endpoint)", mine["call_untraced_us"], mf.get("call_untraced_us"), "µs")
    row("chat call, traced", mine["call_traced_us"], mf.get("call_traced_us"), "µs")
    row("tracing overhead per call", mine["overhead_us"], mf.get("overhead_us"), "µs")
    row(
        "span ingest (10-span traces, SQLite)",
        mine["spans_per_s"],
        mf.get("spans_per_s"),
        "spans/s",
        "higher",
    )
    row("span ingest per CPU second", mine["spans_per_cpu_s"], mf.get("spans_per_cpu_s"), "spans/s", "higher")
    row("live call (traced, recorded)", mine["live_call_us"], None, "µs")
    row("replayed call (no endpoint)", mine["replayed_call_us"], None, "µs")
    row("price lookup, known name", mine["price_lookup_us"], None, "µs")
    row("price lookup, first time a name is seen", mine["price_lookup_cold_us"], None, "µs")
    print(f"  sizes: {size['calls']} calls × {size['rounds']} rounds (MLflow {mf.get('calls', '—')}), "
          f"{size['traces']} traces × {size['spans_per_trace']} spans (MLflow {mf.get('traces', '—')}), "
          f"{mine['price_models']} priced models")  # fmt: skip
    print(f"  target: ≥ 10,000 spans/s → {'met' if mine['spans_per_s'] >= 10_000 else 'NOT met'}")
    if theirs is None:
        print(f"  MLflow: not run ({why})")
    if a.json:
        Path(a.json).write_text(json.dumps({"mlo": mine, "mlflow": theirs, "size": size}, indent=2))


if __name__ == "__main__":
    main()
