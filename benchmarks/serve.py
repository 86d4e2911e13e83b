"""Model serving speed of mlo, side by side with MLflow's scoring server, and the prediction log's read speed.

What it measures, in a temporary workspace (``MLO_HOME``) holding a LogisticRegression on 10 float features:

1. Single-row latency over loopback: ``POST /predict`` with one record, sequential requests on one keep-alive
   connection (``http.client``, TCP_NODELAY), against ``mlo serve`` with the prediction log on, the same with
   ``--no-log``, and MLflow's ``mlflow models serve --env-manager local`` (uvicorn, one worker) on the same
   model. Each server is its own process, as in production; the rounds take turns between them so that load
   from other work hits all of them alike. p50, p95 and mean; the server's CPU time per request (psutil,
   process and children); logging overhead = p50 with the log / p50 without − 1 (and the same in CPU time).
2. Throughput: 4 client threads, each with its own connection, against each server for a fixed time, in 16
   alternating turns of 0.5 s (4 of 1 s in --quick).
3. The prediction log: 1,000,000 rows × 10 features written with ``mlo.monitor.log`` in batches of 100,000,
   then ``mlo.monitor.read_log`` of everything (first call, then the median of repeats), of the last tenth by
   ``since=`` and of three columns.
4. What the door costs and what it holds: ``mlo serve`` as deployed (a bearer token from ``--token-file`` and the
   default limits) against the same command with no token and every limit off (``mlo-open``: ``mlo serve`` whose
   server is given ``Auth()`` and ``Limits.unlimited()``), in the same alternating rounds: p50
   and throughput side by side, cost = on / off − 1. Then, on the deployed server: its memory (RSS) before, at
   the peak of and after requests at the row cap (10,000 rows, about 2.4 MB of JSON each), and after a 50 MB body
   (announced: refused before it is read; streamed without a length: cut at the 4 MiB cap); and /health while
   2,000 idle connections are open (latency against none open, and how many the header timeout closed).

MLflow runs only when ``.venv-anchors/bin/python`` imports mlflow: the model is written with joblib here,
saved by ``mlflow.sklearn.save_model`` there, and served by its CLI. Its body is ``{"dataframe_records":
[...]}`` on ``/invocations``; mlo's is ``{"records": [...]}`` on ``/predict``. Both stacks run Starlette 1.x
on uvicorn (h11).

    .venv/bin/python benchmarks/serve.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/serve.py --quick    # fewer requests, about a minute
    .venv/bin/python benchmarks/serve.py --no-mlflow --json out.json

Targets: single-row p50 ≤ 5 ms with logging on; logging overhead ≤ 10%; read_log of 1M rows well under 1 s;
auth and limits cost ≤ 5% of p50 and of throughput; memory back within 10% of its baseline after large requests;
/health answered, every time, while 2,000 idle connections are open.
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
TARGET_GUARD_COST = 0.05
TARGET_MEMORY_BACK = 0.10
TOKEN = "bench-token-0123456789abcdefghijklmnop"
IDLE_CONNECTIONS = 2000
CAP_ROWS = 10_000

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
    tokens = folder / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    return model, X


class Proc:
    """A server process started here (its own session, so it and its children stop together)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict,
        url_from_stderr: bool,
        port: int | None = None,
        token: str | None = None,
    ):
        self.name = name
        self.token = token
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

    def rss_mb(self) -> float:
        import psutil

        try:
            return psutil.Process(self.popen.pid).memory_info().rss / 1e6
        except psutil.Error:
            return float("nan")

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
    """``mlo serve`` as deployed: a token from ``--token-file`` and the default limits."""
    env = {**os.environ, "MLO_HOME": str(folder / ".mlo")}
    env.pop("MLO_SERVE_TOKEN", None)
    cmd = [sys.executable, "-m", "mlo", "serve", "bench@production", "--port", "0"]
    cmd += ["--token-file", str(folder / "tokens")]
    return Proc(
        "mlo" if log_on else "mlo-nolog", cmd + ([] if log_on else ["--no-log"]), env, True, token=TOKEN
    )


OPEN_SERVER = """
from mlo.cli import main
from mlo.serve.auth import Auth
from mlo.serve.limits import Limits
from mlo.serve.server import Server

deployed = Server.__init__


def open_server(self, *args, **kwargs):
    deployed(self, *args, **{**kwargs, "auth": Auth(), "limits": Limits.unlimited()})


Server.__init__ = open_server  # no token, every limit off; the command as it is in all else
main(["serve", "bench@production", "--port", "0"], prog_name="mlo")
"""


def start_open(folder: Path) -> Proc:
    """The same command with no token and every limit off (the server is given ``Auth()`` and
    ``Limits.unlimited()``; the process is the same in all else: the same modules, the same logging): the
    baseline of what the door costs."""
    env = {**os.environ, "MLO_HOME": str(folder / ".mlo")}
    env.pop("MLO_SERVE_TOKEN", None)
    return Proc("mlo-open", [sys.executable, "-c", OPEN_SERVER], env, True)


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

    def __init__(self, port: int, path: str, body_key: str, token: str | None = None):
        self.port = port
        self.path = path
        self.key = body_key
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
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
    return Client(p.port, "/predict", "records", p.token)


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
    pairs = zip(round_p50["mlo"], round_p50["mlo-open"], strict=True)
    result["paired_guard_cost"] = statistics.median(a / b - 1 for a, b in pairs)
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
    cpu: dict[str, float] = {p.name: 0.0 for p in procs}
    for s in range(slices):
        for p in procs if s % 2 == 0 else procs[::-1]:
            cpu0 = p.cpu_seconds()
            runs[p.name].append(throughput(p, records, seconds / slices))
            cpu[p.name] += p.cpu_seconds() - cpu0
    out = {}
    for name, rs in runs.items():
        n, secs = sum(r["requests"] for r in rs), sum(r["seconds"] for r in rs)
        out[name] = {
            "requests": n,
            "seconds": secs,
            "rps": n / secs,
            "rps_each": [r["rps"] for r in rs],
            "server_cpu_ms": cpu[name] / n * 1e3,
        }
    pairs = zip(out["mlo"]["rps_each"], out["mlo-nolog"]["rps_each"], strict=True)
    out["paired_ratio"] = statistics.median(a / b for a, b in pairs)
    pairs = zip(out["mlo"]["rps_each"], out["mlo-open"]["rps_each"], strict=True)
    out["paired_guard_ratio"] = statistics.median(a / b for a, b in pairs)
    return out


# -- the door: memory after large requests, idle connections ----------------------------------------------
def _status(sock: socket.socket) -> int | None:
    try:
        head = sock.recv(4096)
    except OSError:
        return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None


def memory_figures(p: Proc, rounds: int = 5) -> dict:
    """RSS of the server before, at the peak of and after requests at the row cap, then after a 50 MB body."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    big = pd.DataFrame(rng.normal(size=(CAP_ROWS, 10)), columns=FEATURES)
    body = json.dumps({"records": json.loads(big.to_json(orient="records", double_precision=15))}).encode()
    time.sleep(1.5)  # the log's flush of the rounds before
    base = p.rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(p.rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    c = client_for(p)
    t0 = now()
    for _ in range(rounds):
        c.call(body)
    per_request = (now() - t0) / rounds
    c.close()
    time.sleep(2.0)  # the log's flush of those rows
    done.set()
    sampler.join()
    after = p.rss_mb()
    auth = f"Authorization: Bearer {p.token}\r\n".encode() if p.token else b""
    # 50 MB announced by Content-Length: refused on the headers
    with socket.create_connection(("127.0.0.1", p.port), timeout=30) as sock:
        t0 = now()
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: b\r\nContent-Length: 52428800\r\n" + auth + b"\r\n")
        announced = _status(sock)
        announced_ms = (now() - t0) * 1e3
    # 50 MB streamed without a length: cut at the cap
    sent = 0
    chunk = b" " * (1 << 20)
    with socket.create_connection(("127.0.0.1", p.port), timeout=30) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n" + auth + b"\r\n")
        try:
            while sent < 50 << 20:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass
        streamed = _status(sock)
    time.sleep(0.5)
    return {
        "body_mb": len(body) / 1e6,
        "rounds": rounds,
        "rows": rounds * CAP_ROWS,
        "request_s": per_request,
        "rss_base_mb": base,
        "rss_peak_mb": max(peak),
        "rss_after_mb": after,
        "announced_status": announced,
        "announced_ms": announced_ms,
        "streamed_status": streamed,
        "streamed_sent_mb": sent / 1e6,
        "rss_after_50mb": p.rss_mb(),
    }


DOOR_APP_CALLS = 20_000


def door_in_process(model, X) -> dict:
    """What the door costs per single-row request, measured in this process (free of the load that moves the
    HTTP figures by ±10% here): the guard (token check, concurrency count, capped body read under a timer) against
    a guard with no token and no limit, the check of the values against the signature, and signing the id."""
    import asyncio

    from mlo.monitor.log import new_ids
    from mlo.serve.auth import Auth
    from mlo.serve.guard import Guard
    from mlo.serve.inputs import check_values, parse_body
    from mlo.serve.limits import Limits
    from mlo.serve.service import Service

    body = json.dumps({"records": [{f: 0.1 for f in FEATURES}]}).encode()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        pass

    headers = [
        (b"host", b"b"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {TOKEN}".encode()),
    ]

    async def per_call(guard: Guard) -> float:
        t0 = now()
        for _ in range(DOOR_APP_CALLS):
            await guard(
                {"type": "http", "path": "/predict", "method": "POST", "headers": headers}, receive, send
            )
        return (now() - t0) / DOOR_APP_CALLS

    on = Guard(app, Auth.from_tokens([(TOKEN, ["predict", "labels"])]), Limits())
    off = Guard(app, Auth(), Limits.unlimited())

    async def rounds() -> tuple[float, float]:
        a, b = [], []
        for _ in range(5):
            a.append(await per_call(on))
            b.append(await per_call(off))
        return statistics.median(a), statistics.median(b)

    guard_on, guard_off = asyncio.run(rounds())
    service = Service("bench@production", log=False)
    try:
        dep = service.stable.current
        kind, data, _ = parse_body(json.loads(body))

        def each(fn, n: int = 20_000) -> float:
            t0 = now()
            for _ in range(n):
                fn()
            return (now() - t0) / n

        checks = statistics.median(each(lambda: check_values(dep, kind, data)) for _ in range(5))
        signed = statistics.median(each(lambda: service.signer.new(1)) for _ in range(5))
        plain = statistics.median(each(lambda: new_ids(1)) for _ in range(5))
    finally:
        service.close()
    total = guard_on - guard_off + checks + signed - plain
    return {
        "guard_us": (guard_on - guard_off) * 1e6,
        "checks_us": checks * 1e6,
        "signing_us": (signed - plain) * 1e6,
        "total_us": total * 1e6,
    }


def _health_latencies(p: Proc, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    times, failed = [], 0
    for _ in range(n):
        t0 = now()
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            failed += resp.status != 200
        except OSError:
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
        times.append(now() - t0)
    conn.close()
    return times, failed


def idle_figures(p: Proc, header_timeout: float = 10.0) -> dict:
    """/health while IDLE_CONNECTIONS connections are open and idle, and how many the header timeout closed."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CONNECTIONS + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    before, _ = _health_latencies(p, 200)
    t0 = now()
    socks = []
    for _ in range(IDLE_CONNECTIONS):
        socks.append(socket.create_connection(("127.0.0.1", p.port), timeout=30))
    opened_s = now() - t0
    try:
        during, failed = _health_latencies(p, 200)
        c = client_for(p)
        c.call(c.body({f: 0.1 for f in FEATURES}))
        c.close()
        time.sleep(max(0.0, header_timeout + 1.5 - (now() - t0)))
        closed = 0
        for sock in socks:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for sock in socks:
            sock.close()
    return {
        "connections": IDLE_CONNECTIONS,
        "opened_s": opened_s,
        "health_p50_before_ms": statistics.median(before) * 1e3,
        "health_p50_ms": statistics.median(during) * 1e3,
        "health_p99_ms": sorted(during)[int(0.99 * (len(during) - 1))] * 1e3,
        "health_failed": failed,
        "health_checks": len(during),
        "closed_by_header_timeout": closed,
        "header_timeout_s": header_timeout,
    }


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
        f"the logging servers wrote {f['logged']} records for the {f['sent_to_log_server']} rows they answered "
        f"({'none lost' if f['logged'] == f['sent_to_log_server'] else 'RECORDS MISSING'})"
    )
    door(f)
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


def door(f: dict) -> None:
    lat, tp = f["latency"], f["throughput"]
    on, off = lat["mlo"], lat["mlo-open"]
    cost = on["p50_ms"] / off["p50_ms"] - 1
    paired = lat["paired_guard_cost"]
    tp_cost = 1 - tp["paired_guard_ratio"]
    d = f["door"]
    share = d["total_us"] / 1e3 / off["server_cpu_ms"]
    print("\nauth and limits: mlo serve as deployed (token + default limits) vs no token and every limit off")
    print_table(
        ["figure", "on", "off", "cost (on / off − 1)", "target"],
        [
            ["single row p50", ms(on["p50_ms"]), ms(off["p50_ms"]), f"{cost:+.1%}", "—"],
            [
                f"  median over {len(on['round_p50_ms'])} pairs of adjacent rounds",
                "",
                "",
                f"{paired:+.1%}",
                f"≤ {TARGET_GUARD_COST:.0%} {verdict(paired <= TARGET_GUARD_COST)}",
            ],
            ["single row p95", ms(on["p95_ms"]), ms(off["p95_ms"]), "", "—"],
            [
                "server CPU per request",
                ms(on["server_cpu_ms"]),
                ms(off["server_cpu_ms"]),
                f"{on['server_cpu_ms'] / off['server_cpu_ms'] - 1:+.1%}",
                "—",
            ],
            [
                "throughput, 4 client threads",
                f"{tp['mlo']['rps']:.0f} req/s",
                f"{tp['mlo-open']['rps']:.0f} req/s",
                f"{tp['mlo']['rps'] / tp['mlo-open']['rps'] - 1:+.1%}",
                "—",
            ],
            [
                f"  median over {len(tp['mlo']['rps_each'])} pairs of adjacent turns",
                "",
                "",
                f"{-tp_cost:+.1%}",
                f"≥ −{TARGET_GUARD_COST:.0%} {verdict(tp_cost <= TARGET_GUARD_COST)}",
            ],
            [
                "  server CPU per request, 4 client threads",
                ms(tp["mlo"]["server_cpu_ms"]),
                ms(tp["mlo-open"]["server_cpu_ms"]),
                f"{tp['mlo']['server_cpu_ms'] / tp['mlo-open']['server_cpu_ms'] - 1:+.1%}",
                "—",
            ],
            [
                "in process: guard + value checks + id signing",
                f"{d['total_us']:.1f} µs",
                "",
                f"{share:+.1%} of the CPU per request",
                f"≤ {TARGET_GUARD_COST:.0%} {verdict(share <= TARGET_GUARD_COST)}",
            ],
        ],
    )
    print(
        f"  (in process, per single-row request: the guard {d['guard_us']:.1f} µs, the value checks "
        f"{d['checks_us']:.1f} µs, signing the id {d['signing_us']:.1f} µs)"
    )
    m, idle = f["memory"], f["idle"]
    back = m["rss_after_mb"] / m["rss_base_mb"] - 1
    print(
        f"\nmemory of the deployed server (RSS): {m['rounds']} requests at the row cap ({CAP_ROWS:,} rows, "
        f"{m['body_mb']:.1f} MB of JSON each, {secs(m['request_s'])} each)"
    )
    print_table(
        ["figure", "value", "target"],
        [
            ["before", f"{m['rss_base_mb']:.0f} MB", "—"],
            ["peak during", f"{m['rss_peak_mb']:.0f} MB", "—"],
            [
                "after (2 s later)",
                f"{m['rss_after_mb']:.0f} MB ({back:+.1%})",
                f"within {TARGET_MEMORY_BACK:.0%} {verdict(back <= TARGET_MEMORY_BACK)}",
            ],
            [
                "50 MB body, announced",
                f"{m['announced_status']} in {m['announced_ms']:.1f} ms, nothing read",
                "413",
            ],
            [
                "50 MB body, streamed without a length",
                f"{m['streamed_status']} after {m['streamed_sent_mb']:.0f} MB sent",
                "413",
            ],
            ["after both", f"{m['rss_after_50mb']:.0f} MB", "—"],
        ],
    )
    ok = idle["health_failed"] == 0
    print(f"\n{idle['connections']:,} idle connections (opened in {secs(idle['opened_s'])}), deployed server")
    print_table(
        ["figure", "value", "target"],
        [
            ["/health p50, none open", ms(idle["health_p50_before_ms"]), "—"],
            [f"/health p50, {idle['connections']:,} open", ms(idle["health_p50_ms"]), "—"],
            [f"/health p99, {idle['connections']:,} open", ms(idle["health_p99_ms"]), "—"],
            [
                "/health answered",
                f"{idle['health_checks'] - idle['health_failed']} of {idle['health_checks']}",
                f"all {verdict(ok)}",
            ],
            [
                f"closed by the {idle['header_timeout_s']:g} s header timeout",
                f"{idle['closed_by_header_timeout']:,} of {idle['connections']:,}",
                "all",
            ],
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
        procs = [start_mlo(folder, True), start_open(folder), start_mlo(folder, False)]
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
            procs, records, size["throughput_s"], 16 if mode == "full" else 4
        )
        log("the door's cost in process…")
        figures["door"] = door_in_process(model, X)
        log("memory after large requests…")
        figures["memory"] = memory_figures(procs[0])
        log(f"{IDLE_CONNECTIONS} idle connections…")
        figures["idle"] = idle_figures(procs[0])
        # records the two logging servers answered (one log): the 50-row check, the warm-up, the rounds, the
        # throughput run; and on the deployed one the requests at the row cap and the one among idle connections
        sent = sum(
            50
            + size["warmup"]
            + figures["latency"][name]["requests"]
            + figures["throughput"][name]["requests"]
            for name in ("mlo", "mlo-open")
        )
        sent += figures["memory"]["rows"] + 1
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
