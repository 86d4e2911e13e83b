"""Model serving speed of mlo, side by side with MLflow's scoring server, and the prediction log's read speed.

What it measures, in a temporary workspace (``MLO_HOME``) holding a LogisticRegression on 10 float features:

1. Single-row latency over loopback: ``POST /predict`` with one record, sequential requests on one keep-alive
   connection (``http.client``, TCP_NODELAY), against ``mlo serve`` with the prediction log on, the same with
   ``--no-log``, and MLflow's ``mlflow models serve --env-manager local`` (uvicorn, one worker) on the same
   model. Each server is its own process, as in production; the rounds take turns between them so that load
   from other work hits all of them alike. p50, p95 and mean; the server's CPU time per request (psutil,
   process and children); logging overhead = p50 with the log / p50 without − 1 (and the same in CPU time).
2. Throughput: 4 client threads, each with its own connection, against each server for a fixed time, in 8
   alternating turns of 1 s (4 in --quick).
3. The prediction log: 1,000,000 rows × 10 features written with ``mlo.monitor.log`` in batches of 100,000,
   then ``mlo.monitor.read_log`` of everything (first call, then the median of repeats), of the last tenth by
   ``since=`` and of three columns.

MLflow runs only when ``.venv-anchors/bin/python`` imports mlflow: the model is written with joblib here,
saved by ``mlflow.sklearn.save_model`` there, and served by its CLI. Its body is ``{"dataframe_records":
[...]}`` on ``/invocations``; mlo's is ``{"records": [...]}`` on ``/predict``. Both stacks run Starlette 1.x
on uvicorn (h11).

    .venv/bin/python benchmarks/serve.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/serve.py --quick    # fewer requests, about a minute
    .venv/bin/python benchmarks/serve.py --no-mlflow --json out.json

Targets: single-row p50 ≤ 5 ms with logging on; logging overhead ≤ 10%; read_log of 1M rows well under 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_BIN = ROOT / ".venv-anchors" / "bin"
ANCHOR_PYTHON = ANCHOR_BIN / "python"
FEATURES = [f"x{i}" for i in range(10)]
START_TIMEOUT = 180.0
TARGET_P50_MS = 5.0
TARGET_OVERHEAD = 0.10
TARGET_READ_S = 1.0

SIZES = {
    "full": {
        "requests": 6000,
        "rounds": 60,
        "warmup": 300,
        "throughput_s": 8.0,
        "log_rows": 1_000_000,
        "reads": 5,
    },
    "quick": {
        "requests": 1500,
        "rounds": 30,
        "warmup": 150,
        "throughput_s": 4.0,
        "log_rows": 1_000_000,
        "reads": 3,
    },
}

now = time.perf_counter


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- the model and the servers -------------------------------------------------------------------------------
def make_model(folder: Path):
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mlo

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5000, 10)), columns=FEATURES)
    y = (X.x0 + 0.5 * X.x1 - X.x2 + rng.normal(0, 0.5, len(X)) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    mlo.init(folder)
    mlo.register_model(model, "bench", input_example=X.head(), alias="production")
    joblib.dump(model, folder / "model.joblib")
    return model, X


class Proc:
    """A server process started here (its own session, so it and its children stop together)."""

    def __init__(self, name: str, cmd: list[str], env: dict, url_from_stderr: bool, port: int | None = None):
        self.name = name
        self.popen = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.stderr: list[str] = []
        self.port = port
        found = threading.Event()

        def drain() -> None:
            assert self.popen.stderr is not None
            for line in self.popen.stderr:
                self.stderr.append(line)
                m = re.search(r"at http://127\.0\.0\.1:(\d+) ", line)
                if url_from_stderr and m:
                    self.port = int(m.group(1))
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        if url_from_stderr:
            found.wait(START_TIMEOUT)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = now() + START_TIMEOUT
        path = "/health" if self.name.startswith("mlo") else "/ping"
        while now() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {''.join(self.stderr)[-2000:]}")
            if self.port:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.request("GET", path)
                    if conn.getresponse().status == 200:
                        conn.close()
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not start in {START_TIMEOUT:.0f} s: {''.join(self.stderr)[-2000:]}"
        )

    def cpu_seconds(self) -> float:
        import psutil

        try:
            p = psutil.Process(self.popen.pid)
            procs = [p, *p.children(recursive=True)]
            return sum(sum(q.cpu_times()[:2]) for q in procs)
        except psutil.Error:
            return float("nan")

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                return self.popen.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlo(folder: Path, log_on: bool) -> Proc:
    env = {**os.environ, "MLO_HOME": str(folder / ".mlo")}
    cmd = [sys.executable, "-m", "mlo", "serve", "bench@production", "--port", "0"]
    return Proc("mlo" if log_on else "mlo-nolog", cmd + ([] if log_on else ["--no-log"]), env, True)


def start_mlflow(folder: Path) -> tuple[Proc | None, str]:
    if not ANCHOR_PYTHON.exists():
        return None, f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLO_")},
        "PATH": f"{ANCHOR_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn, not ours
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    save = (
        "import joblib, sys, mlflow.sklearn\n"
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])\n"
    )
    target = folder / "mlflow-model"
    try:
        proc = subprocess.run(
            [str(ANCHOR_PYTHON), "-c", save, str(folder / "model.joblib"), str(target)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=folder,
        )
    except subprocess.TimeoutExpired:
        return None, "mlflow.sklearn.save_model took longer than 300 s"
    if proc.returncode != 0:
        if "No module named 'mlflow'" in proc.stderr:
            return None, "mlflow is not importable in .venv-anchors"
        return None, "mlflow.sklearn.save_model failed: " + proc.stderr.strip().splitlines()[-1]
    port = free_port()
    cmd = [str(ANCHOR_BIN / "mlflow"), "models", "serve", "-m", str(target), "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    try:
        return Proc("mlflow", cmd, env, False, port), ""
    except RuntimeError as exc:
        return None, f"MLflow's scoring server did not start ({str(exc)[:300]})"


# -- clients -------------------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection (reopened when a server closed it after its keep-alive timeout)."""

    def __init__(self, port: int, path: str, body_key: str):
        self.port = port
        self.path = path
        self.key = body_key
        self.headers = {"Content-Type": "application/json"}
        self.reconnects = 0
        self._connect()

    def _connect(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def body(self, record: dict) -> bytes:
        return json.dumps({self.key: [record]}).encode()

    def call(self, body: bytes) -> bytes:
        try:
            self.conn.request("POST", self.path, body, self.headers)
            resp = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()
            self.reconnects += 1
            self._connect()
            self.conn.request("POST", self.path, body, self.headers)
            resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{self.path}: HTTP {resp.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def client_for(p: Proc) -> Client:
    if p.name == "mlflow":
        return Client(p.port, "/invocations", "dataframe_records")
    return Client(p.port, "/predict", "records")


def predictions(p: Proc, records: list[dict]) -> list:
    c = client_for(p)
    out = json.loads(c.call(json.dumps({c.key: records}).encode()))
    c.close()
    return out["predictions"]


def latency_rounds(procs: list[Proc], records: list[dict], size: dict) -> dict:
    """Sequential single-row requests; servers take turns, ``rounds`` times."""
    clients = {p.name: client_for(p) for p in procs}
    bodies = {p.name: [clients[p.name].body(r) for r in records] for p in procs}
    for p in procs:  # warm-up: imports, first predict, connection
        for i in range(size["warmup"]):
            clients[p.name].call(bodies[p.name][i % len(records)])
    per_round = size["requests"] // size["rounds"]
    samples: dict[str, list[float]] = {p.name: [] for p in procs}
    round_p50: dict[str, list[float]] = {p.name: [] for p in procs}
    cpu: dict[str, float] = {p.name: 0.0 for p in procs}
    wall: dict[str, float] = {p.name: 0.0 for p in procs}
    for r in range(size["rounds"]):
        order = procs if r % 2 == 0 else procs[::-1]
        for p in order:
            c, b, out = clients[p.name], bodies[p.name], samples[p.name]
            cpu0, w0 = p.cpu_seconds(), now()
            for i in range(per_round):
                t0 = now()
                c.call(b[(r * per_round + i) % len(b)])
                out.append(now() - t0)
            wall[p.name] += now() - w0
            cpu[p.name] += p.cpu_seconds() - cpu0
            round_p50[p.name].append(statistics.median(out[-per_round:]))
    for c in clients.values():
        c.close()
    n = per_round * size["rounds"]
    result = {}
    for name, s in samples.items():
        s_sorted = sorted(s)
        result[name] = {
            "requests": n,
            "p50_ms": statistics.median(s) * 1e3,
            "p95_ms": s_sorted[int(0.95 * (len(s) - 1))] * 1e3,
            "mean_ms": statistics.fmean(s) * 1e3,
            "server_cpu_ms": cpu[name] / n * 1e3,
            "seconds": wall[name],
            "round_p50_ms": [v * 1e3 for v in round_p50[name]],
        }
    # logging overhead from pairs of adjacent rounds (load from other work moves both alike)
    pairs = zip(round_p50["mlo"], round_p50["mlo-nolog"], strict=True)
    result["paired_overhead"] = statistics.median(a / b - 1 for a, b in pairs)
    return result


def throughput(p: Proc, records: list[dict], seconds: float, threads: int = 4) -> dict:
    counts = [0] * threads
    errors: list[str] = []
    start = threading.Barrier(threads + 1)
    stop_at: list[float] = []

    def work(k: int) -> None:
        c = client_for(p)
        bodies = [c.body(r) for r in records[k::threads]]
        start.wait()
        i = 0
        try:
            while now() < stop_at[0]:
                c.call(bodies[i % len(bodies)])
                i += 1
        except Exception as exc:
            errors.append(str(exc))
        counts[k] = i
        c.close()

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    stop_at.append(now() + seconds)
    t0 = now()
    start.wait()
    for t in ts:
        t.join()
    elapsed = now() - t0
    if errors:
        raise RuntimeError(f"{p.name}: {errors[0]}")
    return {"requests": sum(counts), "seconds": elapsed, "rps": sum(counts) / elapsed}


def throughput_rounds(procs: list[Proc], records: list[dict], seconds: float, slices: int = 8) -> dict:
    """:func:`throughput` in ``slices`` turns per server, alternating, ``seconds`` per server in all."""
    runs: dict[str, list[dict]] = {p.name: [] for p in procs}
    for s in range(slices):
        for p in procs if s % 2 == 0 else procs[::-1]:
            runs[p.name].append(throughput(p, records, seconds / slices))
    out = {}
    for name, rs in runs.items():
        n, secs = sum(r["requests"] for r in rs), sum(r["seconds"] for r in rs)
        out[name] = {"requests": n, "seconds": secs, "rps": n / secs, "rps_each": [r["rps"] for r in rs]}
    pairs = zip(out["mlo"]["rps_each"], out["mlo-nolog"]["rps_each"], strict=True)
    out["paired_ratio"] = statistics.median(a / b for a, b in pairs)
    return out


# -- the prediction log --------------------------------------------------------------------------------------
def log_figures(folder: Path, model, X, rows: int, reads: int) -> dict:
    import numpy as np
    import pandas as pd

    import mlo

    mlo.register_model(model, "logbench", input_example=X.head(), alias="production")
    batch = 100_000
    rng = np.random.default_rng(1)
    Xb = pd.DataFrame(rng.normal(size=(batch, 10)), columns=FEATURES)
    pb = model.predict(Xb)
    t_start = pd.Timestamp("2025-01-01", tz="UTC")
    step = pd.Timedelta(seconds=1)
    times = []
    for k in range(rows // batch):
        ts = pd.date_range(t_start + k * batch * step, periods=batch, freq=step)
        t0 = now()
        mlo.monitor.log("logbench@production", Xb, pb, timestamps=ts)
        times.append(now() - t0)
    out = {
        "rows": rows,
        "batch": batch,
        "write_s": sum(times),
        "write_batch_median_s": statistics.median(times),
    }
    t0 = now()
    df = mlo.monitor.read_log("logbench")
    out["read_first_s"] = now() - t0
    assert len(df) == rows, len(df)
    out["columns"] = len(df.columns)
    del df
    full = []
    for _ in range(reads):
        t0 = now()
        mlo.monitor.read_log("logbench")
        full.append(now() - t0)
    out["read_s"] = statistics.median(full)
    out["read_all_s"] = full
    since = t_start + int(rows * 0.9) * step
    tail, cols = [], []
    for _ in range(reads):
        t0 = now()
        part = mlo.monitor.read_log("logbench", since=since)
        tail.append(now() - t0)
        t0 = now()
        mlo.monitor.read_log("logbench", columns=["ts", "prediction", "f.x0"])
        cols.append(now() - t0)
    assert len(part) == rows // 10, len(part)
    out["read_tail_s"] = statistics.median(tail)
    out["read_columns_s"] = statistics.median(cols)
    size = sum(p.stat().st_size for p in (folder / ".mlo" / "monitor" / "logbench").glob("seg-*.parquet"))
    out["bytes"] = size
    return out


def model_alone(model, X, n: int = 2000) -> float:
    """The model's own predict on a one-row DataFrame, in process (what no server can go below)."""
    row = X.head(1)
    for _ in range(100):
        model.predict(row)
    ts = []
    for _ in range(n):
        t0 = now()
        model.predict(row)
        ts.append(now() - t0)
    return statistics.median(ts)


# -- report --------------------------------------------------------------------------------------------------
def ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} ms"


def secs(v: float) -> str:
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def report(f: dict) -> None:
    lat, tp, mlf = f["latency"], f["throughput"], f.get("mlflow_version")
    on, off, base = lat["mlo"], lat["mlo-nolog"], lat.get("mlflow")
    overhead = on["p50_ms"] / off["p50_ms"] - 1
    cpu_overhead = on["server_cpu_ms"] / off["server_cpu_ms"] - 1
    bname = f"MLflow {mlf}" if base else "MLflow"

    def vs(a: float | None, b: float | None, faster_is_lower: bool = True) -> str:
        if not a or not b:
            return "—"
        r = b / a if faster_is_lower else a / b
        return f"{r:.1f}x {'faster' if r >= 1 else 'slower'}"

    rows = [
        [
            "single row p50, log on",
            ms(on["p50_ms"]),
            f"{bname} {ms(base['p50_ms'])}" if base else f"not measured ({f['mlflow_skipped']})",
            vs(on["p50_ms"], base and base["p50_ms"]),
            f"≤ {TARGET_P50_MS:g} ms {verdict(on['p50_ms'] <= TARGET_P50_MS)}",
        ],
        [
            "single row p95, log on",
            ms(on["p95_ms"]),
            f"{bname} {ms(base['p95_ms'])}" if base else "—",
            vs(on["p95_ms"], base and base["p95_ms"]),
            "—",
        ],
        [
            "server CPU per request, log on",
            ms(on["server_cpu_ms"]),
            f"{bname} {ms(base['server_cpu_ms'])}" if base else "—",
            vs(on["server_cpu_ms"], base and base["server_cpu_ms"]),
            "—",
        ],
        ["single row p50, log off", ms(off["p50_ms"]), "", "", "—"],
        [
            "logging overhead (p50 on / off − 1)",
            f"{overhead:+.1%}",
            "",
            "",
            f"≤ {TARGET_OVERHEAD:.0%} {verdict(overhead <= TARGET_OVERHEAD)}",
        ],
        [
            f"  median over {len(on['round_p50_ms'])} pairs of adjacent rounds",
            f"{lat['paired_overhead']:+.1%}",
            "",
            "",
            f"≤ {TARGET_OVERHEAD:.0%} {verdict(lat['paired_overhead'] <= TARGET_OVERHEAD)}",
        ],
        ["  the same in server CPU per request", f"{cpu_overhead:+.1%}", "", "", "—"],
        [
            "throughput, 4 client threads, log on",
            f"{tp['mlo']['rps']:.0f} req/s",
            f"{bname} {tp['mlflow']['rps']:.0f} req/s" if "mlflow" in tp else "—",
            vs(tp["mlo"]["rps"], tp.get("mlflow", {}).get("rps"), faster_is_lower=False),
            "—",
        ],
        ["throughput, 4 client threads, log off", f"{tp['mlo-nolog']['rps']:.0f} req/s", "", "", "—"],
        [
            f"  log on / off, median over {len(tp['mlo']['rps_each'])} pairs of adjacent turns",
            f"{tp['paired_ratio']:.2f}x",
            "",
            "",
            "—",
        ],
    ]
    print_table(["figure", "mlo", "baseline", "ratio", "target"], rows)
    print(
        f"\nmodel.predict on a one-row DataFrame in process: {f['model_alone_ms']:.2f} ms (the floor under "
        f"any server); mean latency: mlo {ms(on['mean_ms'])} with log, {ms(off['mean_ms'])} without"
        + (f", MLflow {ms(base['mean_ms'])}" if base else "")
        + f"; {on['requests']} requests per server in {f['rounds']} alternating rounds."
    )
    print(
        f"the log server wrote {f['logged']} records for the {f['sent_to_log_server']} rows it answered "
        f"({'none lost' if f['logged'] == f['sent_to_log_server'] else 'RECORDS MISSING'})"
    )
    lg = f["log"]
    print(
        f"\nprediction log: {lg['rows']:,} rows × 10 features ({lg['columns']} columns), "
        f"{lg['bytes'] / 1e6:.0f} MB"
    )
    print_table(
        ["figure", "time", "target"],
        [
            [
                f"mlo.monitor.log, {lg['rows'] // lg['batch']} batches of {lg['batch']:,}",
                f"{secs(lg['write_s'])} ({lg['rows'] / lg['write_s'] / 1e6:.2f}M rows/s)",
                "—",
            ],
            [
                f"read_log, all rows (median of {len(lg['read_all_s'])})",
                secs(lg["read_s"]),
                f"< {TARGET_READ_S:g} s {verdict(lg['read_s'] < TARGET_READ_S)}",
            ],
            ["read_log, all rows, first call in the process", secs(lg["read_first_s"]), "—"],
            ["read_log, since= the last 10%", secs(lg["read_tail_s"]), "—"],
            ["read_log, columns=[ts, prediction, f.x0]", secs(lg["read_columns_s"]), "—"],
        ],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Serving latency and throughput of mlo (and MLflow), read_log speed."
    )
    ap.add_argument("--quick", action="store_true", help="fewer requests (the log is still 1M rows)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    started, load_start = now(), loadavg()
    folder = Path(tempfile.mkdtemp(prefix="mlo-bench-serve-"))
    os.environ["MLO_HOME"] = str(folder / ".mlo")
    procs: list[Proc] = []
    figures: dict = {"mode": mode, "rounds": size["rounds"]}
    try:
        log("fitting and registering the model…")
        model, X = make_model(folder)
        records = json.loads(X.head(500).to_json(orient="records"))
        figures["model_alone_ms"] = model_alone(model, X) * 1e3
        log("starting servers…")
        procs = [start_mlo(folder, True), start_mlo(folder, False)]
        mlflow, why = (None, "--no-mlflow") if args.no_mlflow else start_mlflow(folder)
        if mlflow is not None:
            procs.append(mlflow)
            out = subprocess.run(
                [str(ANCHOR_PYTHON), "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True,
                text=True,
            )
            figures["mlflow_version"] = out.stdout.strip()
        figures["mlflow_skipped"] = why or None
        expected = model.predict(X.head(50)).tolist()
        for p in procs:
            got = predictions(p, records[:50])
            if got != expected:
                raise SystemExit(f"{p.name} predicts differently from the model: {got[:5]} vs {expected[:5]}")
        log("latency rounds…")
        figures["latency"] = latency_rounds(procs, records, size)
        log("throughput…")
        figures["throughput"] = throughput_rounds(
            procs, records, size["throughput_s"], 8 if mode == "full" else 4
        )
        # records the log server answered: the 50-row check, the warm-up, the rounds, the throughput run
        sent = (
            50
            + size["warmup"]
            + figures["latency"]["mlo"]["requests"]
            + figures["throughput"]["mlo"]["requests"]
        )
        for p in procs:
            p.stop(signal.SIGINT if p.name.startswith("mlo") else signal.SIGTERM)
        import mlo

        figures["sent_to_log_server"] = sent
        figures["logged"] = len(mlo.monitor.read_log("bench", columns=["id"]))
        log("prediction log: writing and reading 1M rows…")
        figures["log"] = log_figures(folder, model, X, size["log_rows"], size["reads"])
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.stop(signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
    figures["load"] = [load_start, loadavg()]
    print(
        f"\nmlo serving benchmark ({mode}; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"LogisticRegression on 10 float features; each server its own process on loopback; "
        f"load average {load_start} at start, {loadavg()} at end)\n"
    )
    report(figures)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
