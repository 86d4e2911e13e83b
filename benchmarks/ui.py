"""Speed of mlo's notebook and lab UI: the ``mlo.compare()`` widget and the REST runs endpoint of the Jupyter
server extension, with MLflow's tracking server side by side.

What it measures, on one temporary workspace holding 10,000 runs of one experiment (10 params, 3 of them the same
in every run, and 10 metrics each; 10 of the runs also log 50 steps of two metrics):

1. ``mlo.compare()`` in a fresh Python process: the import of ``mlo.jupyter.widgets``, the first build, then the
   median of 5 warm builds, and what a user then does, each the median of 5: a header click (sort by a metric,
   alternating direction), a page turn, a filter typed in the box (and cleared), ticking 5 runs (their metric
   histories drawn as SVG), opening the parallel-coordinates tab, the "Best run" button. The widgets talk to a
   comm that JSON-encodes every message it would send to the browser, as a kernel does, and counts the bytes.
   Also the bytes of one page of rows against the whole listing as JSON.
2. The REST endpoint ``GET /mlo/api/runs`` of a real Jupyter server (a subprocess with the mlo server extension,
   token auth): 30 requests per query on one keep-alive connection, median and 95th percentile, for a page of
   100 runs newest first, at offset 5,000, ordered by a metric, filtered by a metric, and projected to 2 columns,
   with the CPU time the server spent per request.
3. MLflow's tracking server (``mlflow server`` in ``.venv-anchors``, SQLite store, one worker) holding N runs
   (2,000 by default, ``--mlflow-runs``) of the same shape: ``POST /api/2.0/mlflow/runs/search`` for the same
   pages, on its own keep-alive connection, the requests of both servers taking turns.

The stores go to a temporary folder on tmpfs (``/dev/shm``) when it has room, so that creating the runs does not
wait on the disk; MLflow's store is filled and its server started in the background while mlo's runs are created.

Run from the repository root:

    .venv/bin/python benchmarks/ui.py                    # 10,000 runs, MLflow 2,000: about 3 minutes on 2 cores
    .venv/bin/python benchmarks/ui.py --quick            # 2,000 runs, MLflow 300, 10 requests: about 50 s
    .venv/bin/python benchmarks/ui.py --json out.json --no-mlflow
    .venv/bin/python benchmarks/ui.py --mlflow-runs 10000  # about 7 minutes (MLflow's metric order is slow)

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from text_table import print_table, verdict

from tracking import ANCHOR_PYTHON, ROOT, close_mlo, load_average

SIZES = {
    "full": {"runs": 10_000, "history_runs": 10, "history_steps": 50, "repeats": 5, "requests": 30},
    "quick": {"runs": 2_000, "history_runs": 10, "history_steps": 50, "repeats": 5, "requests": 10},
}
MLFLOW_RUNS = {"full": 2_000, "quick": 300}

EXPERIMENT = "bench-ui"
WIDGET_FILTER = "metrics.m1 > 0.5 and params.p2 = 'x'"  # typed in the filter box
REST_FILTER = "metrics.m1 > 0.5"  # the same on both servers
SORT_METRIC = "metrics.m0"
TARGET_BUILD_S = 0.5
TARGET_PAGE_MS = 50.0
SERVER_START_TIMEOUT = 120  # seconds
CHILD_TIMEOUT = 300

now = time.perf_counter


STARTED = time.perf_counter()


def log(msg: str) -> None:
    print(f"  [{time.perf_counter() - STARTED:5.1f} s] {msg}", file=sys.stderr, flush=True)


# -- data (both interpreters) --------------------------------------------------------------------------------------
def ui_params(i: int, rng: random.Random) -> dict:
    """10 params: 7 vary from run to run, 3 are the same everywhere (the table highlights the 7)."""
    return {
        "p0": i,
        "p1": round(rng.random(), 6),
        "p2": rng.choice("xyz"),
        "p3": rng.choice([16, 32, 64, 128]),
        "p4": rng.choice(["relu", "gelu", "silu"]),
        "p5": 10.0 ** -rng.randint(2, 5),
        "p6": i % 7,
        "p7": "adam",
        "p8": True,
        "p9": "resnet18",
    }


def ui_metrics(rng: random.Random) -> dict:
    return {f"m{j}": rng.random() for j in range(10)}


def history_indices(n: int, k: int) -> list[int]:
    """Which runs also log metric histories: ``k`` of them, spread over the listing."""
    return [int(j * n / k) + 3 for j in range(k)]


def spread(values: list[float]) -> dict:
    s = sorted(values)
    return {
        "median_ms": statistics.median(s) * 1e3,
        "p95_ms": s[round(0.95 * (len(s) - 1))] * 1e3,
        "min_ms": s[0] * 1e3,
        "max_ms": s[-1] * 1e3,
        "n": len(s),
    }


# -- mlo: the workspace ----------------------------------------------------------------------------------------------
def build_workspace(sizes: dict, tmp: Path) -> dict:
    """``runs`` runs in one experiment; the history runs log ``history_steps`` steps of m0 and m1."""
    os.environ["MLO_HOME"] = str(tmp / ".mlo")
    import mlo

    mlo.init(tmp)
    n, steps = sizes["runs"], sizes["history_steps"]
    with_history = set(history_indices(n, sizes["history_runs"]))
    rng = random.Random(7)
    history_ids, widget_matches, rest_matches = [], 0, 0
    t0 = now()
    for i in range(n):
        params, metrics = ui_params(i, rng), ui_metrics(rng)
        widget_matches += metrics["m1"] > 0.5 and params["p2"] == "x"
        rest_matches += metrics["m1"] > 0.5
        with mlo.start_run(f"r{i}", experiment=EXPERIMENT, params=params) as run:
            if i in with_history:
                for s in range(steps):  # curves that end at the run's final values
                    f = (s + 1) / steps
                    mlo.log_metrics({"m0": metrics["m0"] * f, "m1": metrics["m1"] + (1 - f) * 0.5}, step=s)
                mlo.log_metrics({k: v for k, v in metrics.items() if k not in ("m0", "m1")})
                history_ids.append(run.id)
            else:
                mlo.log_metrics(metrics)
    return {
        "runs": n,
        "build_s": now() - t0,
        "history_ids": history_ids,
        "history_steps": steps,
        "widget_filter_matches": widget_matches,
        "rest_filter_matches": rest_matches,
    }


# -- mlo: the compare widget, in a fresh process -------------------------------------------------------------------
WIRE = {"messages": 0, "bytes": 0}


def install_wire() -> None:
    """Widgets outside a kernel talk to the ``comm`` package's dummy comm, which drops messages unseen. This one
    JSON-encodes each message as a kernel's session does before sending it (the cost stays in the figures) and
    counts the bytes."""
    import comm
    from comm import DummyComm

    class JsonComm(DummyComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            text = json.dumps({"data": data, "metadata": metadata or {}}, ensure_ascii=False, default=str)
            WIRE["messages"] += 1
            WIRE["bytes"] += len(text.encode()) + sum(len(b) for b in buffers or ())

    comm.create_comm = JsonComm


def timed(fn) -> dict:
    """Wall time, CPU time of this process and bytes sent to the browser by one ``fn()``."""
    sent = WIRE["bytes"]
    t0, c0 = now(), time.process_time()
    fn()
    return {"s": now() - t0, "cpu_s": time.process_time() - c0, "bytes": WIRE["bytes"] - sent}


def medians(samples: list[dict]) -> dict:
    return {
        "ms": statistics.median(x["s"] for x in samples) * 1e3,
        "cpu_ms": statistics.median(x["cpu_s"] for x in samples) * 1e3,
        "bytes": statistics.median(x["bytes"] for x in samples),
        "runs_ms": [round(x["s"] * 1e3, 2) for x in samples],
    }


def check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"compare widget: {what}")


def compare_child(info_file: str, out_file: str) -> int:
    info = json.loads(Path(info_file).read_text())
    repeats, n = info["repeats"], info["runs"]
    out: dict = {}

    t0, c0 = now(), time.process_time()
    import mlo

    out["import_mlo_s"] = now() - t0
    import mlo.jupyter.widgets  # noqa: F401

    out["import_s"], out["import_cpu_s"] = now() - t0, time.process_time() - c0
    install_wire()

    first = {}

    def build():
        first["w"] = mlo.compare(experiment=EXPERIMENT)

    out["first_build"] = timed(build)
    w = first["w"]
    cmp = w.comparison
    check(len(cmp.frame) == n, f"{len(cmp.frame)} runs listed, {n} expected")
    out["page_rows"] = len(w.table.rows)
    out["page_rows_bytes"] = len(json.dumps(w.table.rows).encode())
    out["page_columns"] = len(w.table.columns)
    out["listing_columns"] = cmp.frame.shape[1]
    out["compare_listing_bytes"] = len(cmp.frame.to_json(orient="records", date_format="iso").encode())
    full = mlo.runs(experiment=EXPERIMENT)
    out["full_listing_bytes"] = len(full.to_json(orient="records", date_format="iso").encode())
    out["full_listing_columns"] = full.shape[1]
    del full

    warm = []
    for _ in range(repeats):
        warm.append(timed(build))
    out["warm_build"] = medians(warm)
    w = first["w"]
    cmp, table = w.comparison, w.table

    # a header click: the view sets `sort`; the first click leaves start_time, later ones flip the direction
    clicks = []
    for k in range(repeats):
        ascending = bool(k % 2)
        clicks.append(
            timed(lambda a=ascending: setattr(table, "sort", {"column": SORT_METRIC, "ascending": a}))
        )
        check(cmp.sort_column == SORT_METRIC and cmp.ascending == ascending, "the header click did not sort")
    out["sort"] = medians(clicks)

    # a page turn
    pages = cmp.pages
    wanted = [1, pages // 3, pages // 2, pages - 1, 2][:repeats]
    turns = []
    for p in wanted:
        turns.append(timed(lambda p=p: setattr(table, "page", p)))
        check(cmp.page == p and len(table.rows) == min(cmp.page_size, n - p * cmp.page_size), "page turn")
    out["page"] = medians(turns)
    out["pages"] = pages

    # a filter typed in the box (Enter), then cleared
    applied, cleared = [], []
    for _ in range(repeats):
        applied.append(timed(lambda: setattr(w.filter_box, "value", WIDGET_FILTER)))
        check(len(cmp.frame) == info["widget_filter_matches"], f"filter kept {len(cmp.frame)} runs")
        cleared.append(timed(lambda: setattr(w.filter_box, "value", "")))
        check(len(cmp.frame) == n, "clearing the filter")
    out["filter"], out["filter_clear"] = medians(applied), medians(cleared)
    out["filter_matches"] = info["widget_filter_matches"]

    # ticking 5 runs (the view sets `selected`): the metric histories tab is open, so they are drawn
    ids = info["history_ids"]
    sets = [ids[:5], ids[5:10]]
    out["first_tick"] = timed(lambda: setattr(table, "selected", sets[0]))  # imports matplotlib
    check(bool(w.charts.payload.get("charts")), "no history chart drawn")
    ticks = []
    for k in range(repeats):
        chosen = sets[(k + 1) % 2]
        ticks.append(timed(lambda c=chosen: setattr(table, "selected", c)))
        check(cmp.selected == chosen and bool(w.charts.payload.get("charts")), "ticking runs")
    out["tick"] = medians(ticks)

    # the parallel-coordinates tab, made stale by a new selection while the param diff tab is open
    tabs = []
    for k in range(repeats):
        w.charts.tab = "diff"
        table.selected = sets[k % 2]
        tabs.append(timed(lambda: setattr(w.charts, "tab", "parallel")))
        check(bool(w.charts.payload.get("rows")), "no parallel-coordinates data")
    out["parallel_tab"] = medians(tabs)

    # the "Best run" button, with 5 runs ticked, the table in its default order and the param diff tab open (with
    # the histories tab open, the click also redraws the plots: about one tick more)
    best = []
    for _ in range(repeats):
        w.charts.tab = "diff"
        table.selected = sets[0]
        table.sort = {"column": "start_time", "ascending": False}
        best.append(timed(w.best_button.click))
        check(table.rows[0]["id"] == w.best.run_id and w.best.run_id in table.selected, "best run")
    out["best"] = medians(best)
    out["best_metric"] = w.best.metric
    out["best_in_selection"] = w.best.run_id in sets[0]
    out["wire_messages"] = WIRE["messages"]

    close_mlo()
    Path(out_file).write_text(json.dumps(out))
    return 0


def run_compare(tmp: Path, data: dict, sizes: dict) -> dict:
    info_file, out_file = tmp / "compare-info.json", tmp / "compare-figures.json"
    info_file.write_text(json.dumps({**data, "repeats": sizes["repeats"]}))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--compare-child", str(info_file), str(out_file)]
    proc = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    if proc.returncode != 0 or not out_file.exists():
        raise SystemExit(f"compare scenario failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out_file.read_text())


# -- MLflow: the store (runs in the .venv-anchors interpreter) ---------------------------------------------------------
def mlflow_child(out_file: str, store: str, n: int) -> int:
    """Create MLflow's SQLite store (its tables), say so through a marker file, then write ``n`` runs into it.
    The server is started on the store as soon as the marker appears, so its start overlaps the writing."""
    try:
        import mlflow
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return 3
    store_dir = Path(store)
    client = MlflowClient(tracking_uri=f"sqlite:///{store_dir / 'mlflow.db'}")
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(store_dir / "artifacts").as_uri())
    (store_dir / "schema-ready").touch()
    rng = random.Random(7)
    matches, per_run = 0, []
    t0 = now()
    for i in range(n):
        params, metrics = ui_params(i, rng), ui_metrics(rng)
        matches += metrics["m1"] > 0.5
        t1 = now()
        run_id = client.create_run(exp_id, run_name=f"r{i}").info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        per_run.append(now() - t1)  # (left RUNNING: set_terminated would add a commit and change no search)
    out = {
        "version": mlflow.__version__,
        "experiment_id": exp_id,
        "runs": n,
        "build_s": now() - t0,
        "run_ms": statistics.median(per_run) * 1e3,
        "rest_filter_matches": matches,
    }
    Path(out_file).write_text(json.dumps(out))
    return 0


def mlflow_env() -> dict:
    # no background job runner beside the server (its consumers would share the 2 cores with the timed requests)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLO_HOME", None)
    return env


class MlflowSide:
    """MLflow's side, in the background while mlo's runs are created: a child process creates the store and
    fills it; a thread starts the server on the store once its tables exist and waits until it answers."""

    def __init__(self, n: int, store: Path):
        self.n, self.store = n, store
        self.server: Server | None = None
        self.port = 0
        self.server_ready_s: float | None = None
        self.server_error = ""
        self.populate: subprocess.Popen | None = None
        self.info: dict | None = None
        self.why = ""
        self._stopping = threading.Event()
        if not ANCHOR_PYTHON.exists():
            self.why = f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
            return
        store.mkdir()
        self.out_file = store / "populate.json"
        cmd = [
            str(ANCHOR_PYTHON),
            str(Path(__file__).resolve()),
            "--mlflow-child",
            str(self.out_file),
            str(store),
        ]
        cmd.append(str(n))
        self.populate_log = open(store / "populate.log", "wb")  # noqa: SIM115  (closed in finish)
        self.populate = subprocess.Popen(
            cmd, env=mlflow_env(), cwd=store, stdout=self.populate_log, stderr=subprocess.STDOUT
        )
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        assert self.populate is not None
        while not (self.store / "schema-ready").exists():
            if self.populate.poll() is not None or self._stopping.is_set():
                return
            time.sleep(0.1)
        self.server, self.port = start_mlflow(self.store)
        try:
            self.server_ready_s = self.server.wait_ready(self.port, "/health", self._stopping)
        except RuntimeError as exc:
            self.server_error = str(exc)

    def finish(self) -> None:
        """Wait for the store to be filled and the server to answer; on failure stop both and say why."""
        if self.populate is None:
            return
        timeout = SERVER_START_TIMEOUT + 60 + self.n * 0.2
        try:
            code = self.populate.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.populate.kill()
            self.populate.wait()
            code = None
        self.populate_log.close()
        self.thread.join()
        text = (self.store / "populate.log").read_text(errors="replace").strip()
        tail = "\n".join(text.splitlines()[-15:])
        if code is None:
            self.why = f"creating {self.n:,} MLflow runs took longer than {timeout:.0f} s"
        elif code == 3:
            self.why = "mlflow is not importable in .venv-anchors"
        elif code != 0 or not self.out_file.exists():
            self.why = f"creating the MLflow runs failed (exit {code}):\n{tail}"
        elif self.server_error or self.server_ready_s is None:
            self.why = f"the MLflow server did not start: {self.server_error}"
        else:
            self.info = json.loads(self.out_file.read_text())
            self.info["server_ready_s"] = self.server_ready_s
        if self.info is None:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self.populate is not None:
            if self.populate.poll() is None:
                self.populate.kill()
                self.populate.wait()
            self.thread.join()
        if self.server is not None:
            self.server.stop()


# -- servers -------------------------------------------------------------------------------------------------------
def scratch_dir() -> str | None:
    """Where the stores go: tmpfs (``/dev/shm``) when it has room. Creating the runs then skips the disk's
    fsyncs (MLflow's SQLite store commits 2-3 times a run, ~15 ms each on this box's disk); the timed reads come
    from memory wherever the files are (the page cache)."""
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
    except OSError:
        return None
    return shm if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize > 2 << 30 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) of a process, from /proc (in clock ticks: sums over many requests are exact on
    average)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = (
                fh.read().rsplit(b")", 1)[1].split()
            )  # after the name: state, ppid, …, utime (11), stime (12)
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def serving_pid(pgid: int, marker: bytes) -> int:
    """The process of a group whose command line holds ``marker`` (MLflow's command starts uvicorn and a job
    runner); the group leader when none does."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                pgrp = int(fh.read().rsplit(b")", 1)[1].split()[2])
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if pgrp == pgid and marker in cmdline:
            return int(entry.name)
    return pgid


class Server:
    """A server subprocess in its own process group (stopped as a group: MLflow starts uvicorn and a job runner
    under its command), its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path, log_file: Path, serving: bytes = b""):
        self.name, self.log_file = name, log_file
        self.serving_marker, self.cpu_pid = serving, None
        self.log = open(log_file, "wb")  # noqa: SIM115  (closed in stop)
        self.started = now()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self, lines: int = 15) -> str:
        self.log.flush()
        return "\n".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])

    def cpu_s(self) -> float:
        """CPU time of the process that serves the requests."""
        if self.cpu_pid is None:
            self.cpu_pid = serving_pid(self.proc.pid, self.serving_marker)
        return process_cpu_s(self.cpu_pid)

    def wait_ready(self, port: int, path: str, stopping: threading.Event | None = None) -> float:
        """Seconds from the start until ``GET path`` answers 200; raises RuntimeError if the server exits, answers
        with an error or does not answer in time."""
        deadline = max(self.started + SERVER_START_TIMEOUT, now() + 10)  # started long ago: one last chance
        while now() < deadline and not (stopping and stopping.is_set()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                text = resp.read()
                if resp.status == 200:
                    return now() - self.started
                if resp.status not in (502, 503):
                    raise RuntimeError(f"{self.name}: GET {path} answered {resp.status}: {text[:300]!r}")
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                pass
            finally:
                conn.close()
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer within {SERVER_START_TIMEOUT} s:\n{self.tail()}")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # whatever the group left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def start_jupyter(tmp: Path) -> tuple[Server, int, str]:
    port, token = free_port(), secrets.token_hex(16)
    for d in ("jupyter-config", "jupyter-runtime"):
        (tmp / d).mkdir(exist_ok=True)
    env = {
        **os.environ,
        "MLO_HOME": str(tmp / ".mlo"),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={tmp}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return Server("Jupyter server", cmd, env, tmp, tmp / "jupyter.log"), port, token


def start_mlflow(store: Path) -> tuple[Server, int]:
    port = free_port()
    cmd = [
        str(ANCHOR_PYTHON),
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--default-artifact-root",
        (store / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return Server("MLflow server", cmd, mlflow_env(), store, store / "server.log", serving=b"uvicorn"), port


# -- HTTP timing ---------------------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection; reconnects (and counts it) if the server drops it."""

    def __init__(self, port: int, headers: dict):
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.reconnects = 0

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        for attempt in range(2):
            try:
                t0 = now()
                self.conn.request(method, path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return now() - t0, resp.status, data
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                if attempt:
                    raise
                self.conn.close()
                self.reconnects += 1
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def mlo_cases(n: int) -> dict[str, str]:
    q = urllib.parse.quote
    return {
        "newest": "/mlo/api/runs?limit=100",
        "offset": f"/mlo/api/runs?limit=100&offset={n // 2}",
        "order": f"/mlo/api/runs?limit=100&order_by={q(SORT_METRIC + ' desc')}",
        "where": f"/mlo/api/runs?limit=100&where={q(REST_FILTER)}",
        "columns": "/mlo/api/runs?limit=100&columns=name,metrics.m0",
    }


def mlflow_cases(exp_id: str, n: int) -> dict[str, bytes]:
    base = {"experiment_ids": [exp_id], "max_results": 100}
    # MLflow pages with tokens; its SQL store's token is base64 of {"offset": k}, so the middle page is one call
    token = base64.b64encode(json.dumps({"offset": n // 2}).encode()).decode()
    bodies = {
        "newest": base,
        "offset": {**base, "page_token": token},
        "order": {**base, "order_by": ["metrics.m0 DESC"]},
        "where": {**base, "filter": REST_FILTER},
    }
    return {k: json.dumps(v).encode() for k, v in bodies.items()}


def check_mlo(case: str, status: int, data: bytes, n: int, matches: int) -> None:
    if status != 200:
        raise RuntimeError(f"mlo {case}: HTTP {status}: {data[:300]!r}")
    page = json.loads(data)
    total = matches if case == "where" else n
    if page["total"] != total or len(page["runs"]) != min(100, total):
        raise RuntimeError(f"mlo {case}: total {page['total']} ({total} expected), {len(page['runs'])} rows")
    if case == "columns" and set(page["runs"][0]) != {"run_id", "name", "metrics.m0"}:
        raise RuntimeError(f"mlo columns: got {sorted(page['runs'][0])}")


def check_mlflow(case: str, status: int, data: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"MLflow {case}: HTTP {status}: {data[:300]!r}")
    got = len(json.loads(data).get("runs", []))
    if got != 100:
        raise RuntimeError(f"MLflow {case}: {got} runs, 100 expected")


def measure_rest(data: dict, sizes: dict, jupyter: Server, port: int, token: str, ml: MlflowSide | None):
    """Returns (mlo figures, MLflow figures or None, why MLflow was not measured)."""
    n, requests = data["runs"], sizes["requests"]
    jupyter.wait_ready(port, f"/mlo/api/experiments?token={token}")
    mlo_out: dict = {}
    client = Client(port, {"Authorization": f"token {token}"})
    cases = mlo_cases(n)
    # the first runs request in the server process: imports pandas and the query code, opens the store
    dt, status, body = client.send("GET", cases["newest"])
    check_mlo("newest", status, body, n, data["rest_filter_matches"])
    mlo_out["first_request_ms"] = dt * 1e3
    plan = [("mlo", case, client, jupyter, "GET", path, None) for case, path in cases.items()]

    mlflow_out, why, mclient = None, "", None
    if ml is not None:
        log("waiting for the MLflow side…")
        ml.finish()
        why = ml.why
    if ml is not None and ml.info is not None and ml.server is not None:
        try:
            mlflow_out = {}
            mclient = Client(ml.port, {"Content-Type": "application/json"})
            bodies = mlflow_cases(ml.info["experiment_id"], ml.info["runs"])
            dt, status, body = mclient.send("POST", "/api/2.0/mlflow/runs/search", bodies["newest"])
            check_mlflow("newest", status, body)
            mlflow_out["first_request_ms"] = dt * 1e3
            log("timing both servers…")
            plan += [
                ("mlflow", case, mclient, ml.server, "POST", "/api/2.0/mlflow/runs/search", b)
                for case, b in bodies.items()
            ]
        except (RuntimeError, OSError, http.client.HTTPException) as exc:
            why, mlflow_out = f"the MLflow server could not be used: {exc}", None
            ml.stop()

    # one untimed request per query, then rounds in which every query is sent once; the CPU time of the serving
    # process is read around each request
    for side, case, c, _server, method, path, body in plan:
        dt, status, resp = c.send(method, path, body)
        if side == "mlo":
            check_mlo(case, status, resp, n, data["rest_filter_matches"])
        else:
            check_mlflow(case, status, resp)
    times: dict = {(side, case): [] for side, case, *_ in plan}
    cpu: dict = {(side, case): 0.0 for side, case, *_ in plan}
    size: dict = {}
    for _ in range(requests):
        for side, case, c, server, method, path, body in plan:
            cpu0 = server.cpu_s()
            dt, status, resp = c.send(method, path, body)
            cpu[(side, case)] += server.cpu_s() - cpu0
            if status != 200:
                raise RuntimeError(f"{side} {case}: HTTP {status}: {resp[:300]!r}")
            times[(side, case)].append(dt)
            size[(side, case)] = len(resp)
    for key, values in times.items():
        target = mlo_out if key[0] == "mlo" else mlflow_out
        assert target is not None
        target[key[1]] = {**spread(values), "server_cpu_ms": cpu[key] / len(values) * 1e3, "bytes": size[key]}
    mlo_out["reconnects"] = client.reconnects
    client.close()
    if mlflow_out is not None and mclient is not None:
        mlflow_out["reconnects"] = mclient.reconnects
        mclient.close()
    return mlo_out, mlflow_out, why


# -- report --------------------------------------------------------------------------------------------------------
def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v / 1e3:.2f} s"
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def fmt_bytes(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f} MB"
    return f"{v / 1e3:.1f} KB" if v >= 1e3 else f"{v:.0f} B"


def goal_ms(value: float, target_ms: float) -> str:
    return f"≤ {fmt_ms(target_ms)} {verdict(value <= target_ms)}"


def table_rows(data: dict, cw: dict, rest: dict, ml: dict | None) -> list[list[str]]:
    n = data["runs"]
    dash = "—"
    build_goal = TARGET_BUILD_S * 1e3

    def widget(label: str, x: dict, goal: float | None = None) -> list[str]:
        ms, cpu = (x["s"] * 1e3, x["cpu_s"] * 1e3) if "s" in x else (x["ms"], x["cpu_ms"])
        return [label, f"{fmt_ms(ms)} (CPU {fmt_ms(cpu)})", dash, dash, goal_ms(ms, goal) if goal else dash]

    def rest_cell(x: dict) -> str:
        return f"{fmt_ms(x['median_ms'])} (p95 {fmt_ms(x['p95_ms'])}, CPU/req {fmt_ms(x['server_cpu_ms'])})"

    rows = [
        ["import mlo.jupyter.widgets (fresh process)", fmt_ms(cw["import_s"] * 1e3), dash, dash, dash],
        widget(f"mlo.compare(), first build ({n:,} runs)", cw["first_build"], build_goal),
        widget("mlo.compare(), warm build, median of 5", cw["warm_build"], build_goal),
        widget(f"header click: sort by {SORT_METRIC}", cw["sort"]),
        widget("page turn", cw["page"]),
        widget(f"filter typed ({cw['filter_matches']:,} runs match)", cw["filter"]),
        widget("filter cleared", cw["filter_clear"]),
        widget("tick 5 runs (histories drawn, SVG)", cw["tick"]),
        widget("open parallel-coordinates tab (5 runs)", cw["parallel_tab"]),
        widget("Best run button (sort, tick, param diff)", cw["best"]),
        [
            f"rows sent for one page ({cw['page_rows']} runs)",
            fmt_bytes(cw["page_rows_bytes"]),
            dash,
            dash,
            f"whole listing {fmt_bytes(cw['full_listing_bytes'])}",
        ],
    ]
    labels = {
        "newest": "GET runs?limit=100, newest first",
        "offset": f"… &offset={n // 2}",
        "order": f"… &order_by={SORT_METRIC} desc",
        "where": f"… &where={REST_FILTER}",
        "columns": "… &columns=name,metrics.m0",
    }
    for case, label in labels.items():
        m, f = rest[case], (ml.get(case) if ml else None)
        rows.append(
            [
                label,
                rest_cell(m),
                rest_cell(f) if f else dash,
                f"{f['median_ms'] / m['median_ms']:.1f}x" if f else dash,
                goal_ms(m["median_ms"], TARGET_PAGE_MS),
            ]
        )
    rows.append(
        [
            "first runs request after server start",
            fmt_ms(rest["first_request_ms"]),
            fmt_ms(ml["first_request_ms"]) if ml else dash,
            dash,
            dash,
        ]
    )
    return rows


def print_details(data, cw, rest, ml, ml_info, why) -> None:
    n = data["runs"]
    print()
    print(
        f"Workspace: {n:,} runs in one experiment (10 params, 7 varying; 10 metrics), built in {data['build_s']:.1f} s; "
        f"{len(data['history_ids'])} runs also log {data['history_steps']} steps of m0 and m1."
    )
    print(
        f"Widget (fresh process): import {cw['import_s'] * 1e3:.0f} ms (import mlo alone {cw['import_mlo_s'] * 1e3:.0f} ms, "
        f"CPU {cw['import_cpu_s'] * 1e3:.0f} ms); first build {cw['first_build']['s'] * 1e3:.0f} ms "
        f"(CPU {cw['first_build']['cpu_s'] * 1e3:.0f} ms), warm builds {cw['warm_build']['runs_ms']} ms "
        f"(CPU median {cw['warm_build']['cpu_ms']:.0f} ms). The build reads {cw['listing_columns']} columns "
        f"(base, params, metrics; no tags) and shows {cw['page_columns']} of them, {cw['pages']} pages of "
        f"{cw['page_rows']}."
    )
    print(
        f"Widget state sent at the first build (comm messages JSON-encoded): {fmt_bytes(cw['first_build']['bytes'])}; "
        f"one page of rows {fmt_bytes(cw['page_rows_bytes'])} against {fmt_bytes(cw['compare_listing_bytes'])} for "
        f"the compared listing as JSON records and {fmt_bytes(cw['full_listing_bytes'])} for mlo.runs() with all "
        f"{cw['full_listing_columns']} columns ({cw['full_listing_bytes'] / cw['page_rows_bytes']:,.0f}x)."
    )
    parts = []
    for key, label in [
        ("sort", "sort"),
        ("page", "page"),
        ("filter", "filter"),
        ("filter_clear", "clear"),
        ("tick", "tick"),
        ("parallel_tab", "parallel tab"),
        ("best", "best"),
    ]:
        x = cw[key]
        parts.append(f"{label} {x['runs_ms']} ms (CPU {x['cpu_ms']:.0f} ms, sent {fmt_bytes(x['bytes'])})")
    print("Interactions, each of 5: " + "; ".join(parts) + ".")
    print(
        f"The first tick took {cw['first_tick']['s'] * 1e3:.0f} ms (imports matplotlib). The Best run button ranks "
        f"by {cw['best_metric']}, sorts, ticks the best run and redraws the open tab, here the param diff (6 runs)."
    )
    print(
        f"REST: {rest['newest']['n']} requests per query, one keep-alive connection each side, the queries of both "
        f"servers taking turns; median and 95th percentile of the wall time, and CPU/req: the CPU time of the "
        f"serving process per request (mean; read from /proc around each request). Response sizes: "
        + ", ".join(
            f"{c} {fmt_bytes(rest[c]['bytes'])}" for c in ("newest", "offset", "order", "where", "columns")
        )
        + f"; reconnects {rest['reconnects']}."
    )
    if ml is None:
        print(f"MLflow: not measured ({why}).")
        return
    print(
        f"MLflow {ml_info['version']}: its store held {ml_info['runs']:,} runs against mlo's {n:,} (created in "
        f"{ml_info['build_s']:.0f} s, {ml_info['run_ms']:.1f} ms a run with MlflowClient.log_batch)"
        + (", so the ratios are conservative" if ml_info["runs"] < n else "")
        + f"; POST /api/2.0/mlflow/runs/search with max_results=100 (offset: "
        f"page_token for offset {ml_info['runs'] // 2:,}; order_by metrics.m0 DESC; filter {REST_FILTER}). "
        f"Server ready (/health) {ml_info['server_ready_s']:.1f} s after start; response sizes "
        + ", ".join(f"{c} {fmt_bytes(ml[c]['bytes'])}" for c in ("newest", "offset", "order", "where"))
        + f"; reconnects {ml['reconnects']}."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="UI speed of mlo: compare widget and REST runs endpoint.")
    ap.add_argument("--quick", action="store_true", help="2,000 runs, MLflow 300 (well under a minute)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--mlflow-runs", type=int, metavar="N", help="runs in MLflow's store (2,000; quick 300)")
    ap.add_argument("--compare-child", nargs=2, metavar=("INFO", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--mlflow-child", nargs=3, metavar=("OUT", "STORE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compare_child:
        return compare_child(*args.compare_child)
    if args.mlflow_child:
        out, store, n = args.mlflow_child
        return mlflow_child(out, store, int(n))

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    mlflow_runs = args.mlflow_runs or MLFLOW_RUNS[mode]
    started = now()
    load_before = load_average()
    scratch = scratch_dir()
    with tempfile.TemporaryDirectory(prefix="mlo-bench-ui-", dir=scratch) as name:
        tmp = Path(name)
        ml = None if args.no_mlflow else MlflowSide(mlflow_runs, tmp / "mlflow")
        jupyter = None
        try:
            if ml is not None and ml.populate is not None:
                log(
                    f"MLflow server starting and {mlflow_runs:,} MLflow runs being created, in the background"
                )
            jupyter, port, token = start_jupyter(
                tmp
            )  # idle until asked: its start overlaps the runs' creation
            log(f"creating {sizes['runs']:,} mlo runs…")
            data = build_workspace(sizes, tmp)
            close_mlo()
            log("REST endpoints…")
            try:
                rest, ml_rest, why = measure_rest(data, sizes, jupyter, port, token, ml)
            except RuntimeError as exc:  # mlo's endpoint did not answer as it should: nothing to compare
                raise SystemExit(f"REST benchmark failed: {exc}") from None
            log("servers stopping…")
        finally:
            for server in (jupyter, ml.server if ml is not None else None):
                if server is not None:
                    server.terminate()  # both at once, then wait for each
            if jupyter is not None:
                jupyter.stop()
            if ml is not None:
                ml.stop()
        if args.no_mlflow:
            why = "--no-mlflow"
        elif why:
            log(f"MLflow side skipped: {why}")
        ml_info = ml.info if ml is not None and ml_rest is not None else None
        log("compare widget in a fresh process…")
        widget = run_compare(tmp, data, sizes)
        log("done")

    load_after = load_average()
    print(
        f"\nmlo UI benchmark ({mode} sizes; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"stores in a temporary folder {'on tmpfs, ' + scratch if scratch else 'on disk'}; "
        f"load average {load_before} at the start, {load_after} at the end)\n"
    )
    header = ["figure", "mlo", "MLflow", "ratio (MLflow / mlo)", "target"]
    print_table(header, table_rows(data, widget, rest, ml_rest))
    print_details(data, widget, rest, ml_rest, ml_info, why)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        report = {
            "mode": mode,
            "sizes": {**sizes, "mlflow_runs": mlflow_runs},
            "targets": {"compare_build_s": TARGET_BUILD_S, "rest_page_ms": TARGET_PAGE_MS},
            "scratch": scratch or tempfile.gettempdir(),
            "machine": {
                "load_average_start": load_before,
                "load_average_end": load_after,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "workspace": {k: v for k, v in data.items() if k != "history_ids"},
            "widget": widget,
            "rest": rest,
            "mlflow": {"store": ml_info, "rest": ml_rest} if ml_rest else None,
            "mlflow_skipped": why or None,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
