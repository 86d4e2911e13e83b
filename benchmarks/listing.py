"""Run listings of a big workspace: the pages the REST API and the compare widget ask for, and ``runs()`` of
everything, this checkout side by side with a baseline revision of mlo.

One SQLite workspace of N runs (100,000 by default) in one experiment, each with 10 params, 10 metrics and 2
tags (the shape of ``benchmarks/ui.py``: p0 unique, p2 one of x/y/z, …). The rows are written straight into
the store's tables in bulk (with ids and times as mlo makes them), since creating 100,000 runs through the API
would take minutes; a handful of runs made through the API first check that the bulk rows read like real ones.
mlo never runs ``ANALYZE``, so neither does the benchmark (SQLite plans as it would for a user).

Each side runs in a fresh interpreter (``PYTHONPATH`` = the baseline's ``src/``, unpacked with ``git archive``,
or this checkout) over the same file, taking turns, and times each query as the median of the repeats: pages of
100 newest first, filtered on params, metrics and tags (and/or/not/like/in), ordered by a metric, a param and a
tag, at offset N/2, and ``runs()`` of everything: with no cached listing on disk (each repeat removes it), with
it, and after 10 runs changed (a tag set on each, before each repeat); then the slow pages again in a process
that has listed everything since the last change (the whole listing kept in memory). Each in wall-clock time
and in the CPU time of the probing process (``time.process_time``; SQLite runs in that process, so this is the
work done, which a busy machine stretches less than the wall clock). Beside them, the machine's limits: SQLite's
raw insert rate (``executemany`` of the params rows into a bare table) and raw scan rate (reading them back with
``sqlite3``), and the peak memory ``runs()`` of everything adds to a fresh process, with and without the cache.

``--anchor-python`` (or ``MLO_ANCHOR_PYTHON``): a Python with MLflow installed; MLflow's ``search_runs`` over
10,000 runs of the same shape (its SQLite store filled in bulk the same way) beside ``runs()`` of a 10,000-run
workspace of this checkout.

``--postgres`` builds the workspace (1,000,000 runs by default) in a throwaway PostgreSQL cluster of its own
(``initdb`` + ``pg_ctl``, as the test suite does), writing the rows with ``INSERT … SELECT generate_series``
on the server, and times the pages (not ``runs()`` of everything), the baseline's code and this checkout's
taking turns on the same database (``--no-baseline``: this checkout alone). ``--keep DIR`` keeps the cluster
in DIR, and a later run with the same DIR and ``--runs`` starts it again instead of rebuilding it.

Target (issue "at scale"): any page ≤ 100 ms and everything ≤ 1.5 s at 100,000 runs on SQLite; pages ≤ 200 ms at
1,000,000 runs on PostgreSQL.

    .venv/bin/python benchmarks/listing.py                    # 100,000 runs, about 5 minutes on 2 cores
    .venv/bin/python benchmarks/listing.py --runs 10000 --repeats 3
    .venv/bin/python benchmarks/listing.py --postgres         # 1,000,000 runs; needs PostgreSQL's binaries
    .venv/bin/python benchmarks/listing.py --postgres --keep /var/tmp/pg1m   # build once, measure again later
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EXPERIMENT = "sweep"

CASES = {
    "page of 100, newest first": "dict(limit=100)",
    "page filtered on a param": "dict(limit=100, where=\"params.p2 = 'x'\")",
    "page filtered on a numeric param": 'dict(limit=100, where="params.p1 > 0.5")',
    "page filtered on a metric": 'dict(limit=100, where="metrics.m1 > 0.5")',
    "page filtered on a tag": "dict(limit=100, where=\"tags.team in ('core', 'ml')\")",
    "page filtered: and/or/like": "dict(limit=100, where=\"params.p4 like 'g%' and (metrics.m2 < 0.3 or params.p3 = 64)\")",
    "page filtered: not, one match": 'dict(limit=100, where="not params.p0 != 77")',
    "page ordered by a metric": 'dict(limit=100, order_by="metrics.m3 desc")',
    "page ordered by a param": 'dict(limit=100, order_by="params.p1 desc")',
    "page ordered by a tag": 'dict(limit=100, order_by="tags.shard")',
    "page at offset N/2": "dict(limit=100, offset=N // 2)",
    "runs() of everything, no cache on disk": "dict()",
    "runs() of everything": "dict()",
    "runs() after 10 runs changed": "dict()",
    "runs() of everything, listing in memory": "dict()",
}
# the same pages in a process that has listed everything since the last change (a notebook, the REST server):
# answered from the whole listing kept in memory
MEMORY_PAGES = ("page filtered on a numeric param", "page filtered on a metric", "page filtered: and/or/like",
                "page filtered: not, one match", "page ordered by a param", "page filtered on a param")  # fmt: skip
CASES.update({f"{name}, listing in memory": CASES[name] for name in MEMORY_PAGES})
PG_CASES = {k: v for k, v in CASES.items() if not k.startswith("runs()") and "in memory" not in k}
# run before each timed repeat of a case (not timed): the cached listing removed, or 10 runs changed
SETUP = {
    "runs() of everything, no cache on disk": "drop_cache()",
    "runs() of everything": 'getattr(ws.runs, "listing_memo", {}).clear()',
    "runs() after 10 runs changed": "change_runs(10)",
}

PROBE = """
import glob, inspect, json, os, sys, time, statistics
import mlo
N, repeats, out = int(sys.argv[1]), int(sys.argv[2]), {}
cases, setup = json.loads(sys.argv[3]), json.loads(sys.argv[4])
mlo.runs(limit=1)  # imports and the first connection
ws = mlo.workspace.current()

def drop_cache():
    getattr(ws.runs, "listing_memo", {}).clear()  # (the baseline has none)
    for path in glob.glob(os.path.join(os.environ["MLO_HOME"], "cache", "run-listing-*")):
        os.remove(path)

def change_runs(k):
    for run_id in mlo.runs(experiment="sweep", limit=k)["run_id"]:
        ws.runs.set_tags(run_id, {"bench": str(time.time())})

# a page is timed as the REST API asks for it: its count capped at 10,000 (where this mlo can), and then with
# the exact count (what the baseline, without capped counts, always does)
capped = "count_up_to" in inspect.signature(mlo.runs).parameters
for name, args in cases.items():
    page = name.startswith("page")
    for exact in ((False, True) if page and capped else (True,)):
        kw = eval(args)
        if page and not exact:
            kw["count_up_to"] = 10_000
        times, cpu = [], []
        for _ in range(repeats):
            exec(setup.get(name, ""))
            t, c = time.perf_counter(), time.process_time()
            df = mlo.runs(experiment="sweep", **kw)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        got = {"s": statistics.median(times), "cpu": statistics.median(cpu), "rows": len(df),
               "total": df.attrs.get("total"), "first": df["run_id"].head(3).tolist()}
        if page and capped and exact:
            out[name].update({"exact_s": got["s"], "exact_total": got["total"]})
        else:
            out[name] = got
        if page and not capped:
            out[name]["exact_s"], out[name]["exact_total"] = got["s"], got["total"]
print(json.dumps(out))
"""


def build(home: Path, n: int) -> float:
    """The workspace: a few runs through the API, then ``n`` in bulk (same experiment, same shapes). Run with
    the baseline's mlo on the path, so both sides can open it (this checkout then brings a copy forward)."""
    os.environ["MLO_HOME"] = str(home)
    import mlo
    from mlo.store import schema as s
    from mlo.store.ids import new_id

    mlo.init(home.parent)
    with mlo.start_run("api", experiment=EXPERIMENT, params={"p0": -1}, tags={"team": "core"}):
        mlo.log_metrics({"m0": 0.5})
    ws = mlo.workspace.current()
    exp_id = ws.runs.experiment_id(EXPERIMENT)
    rng = random.Random(7)
    t0 = time.perf_counter()
    start = time.time() - n  # one run a second, ending now
    runs, params, metrics, tags = [], [], [], []
    for i in range(n):
        at = start + i
        rid = new_id(at)
        us = int(at * 1e6)
        runs.append(
            {"id": rid, "experiment_id": exp_id, "name": f"r{i}", "status": "finished", "start_time": us,
             "end_time": us + 500_000, "user": "bench", "lifecycle": "active"}
        )  # fmt: skip
        p = {
            "p0": i, "p1": round(rng.random(), 6), "p2": rng.choice("xyz"), "p3": rng.choice([16, 32, 64, 128]),
            "p4": rng.choice(["relu", "gelu", "silu"]), "p5": 10.0 ** -rng.randint(2, 5), "p6": i % 7,
            "p7": "adam", "p8": True, "p9": "resnet18",
        }  # fmt: skip
        params += [{"run_id": rid, "key": k, "value": json.dumps(v)} for k, v in p.items()]
        metrics += [
            {"run_id": rid, "key": f"m{j}", "value": rng.random(), "step": 0, "timestamp": us, "n": 1}
            for j in range(10)
        ]
        team = rng.choice(["core", "ml", "infra", "research", "edge"])
        tags += [
            {"run_id": rid, "key": "team", "value": team},
            {"run_id": rid, "key": "shard", "value": f"s{i % 97}"},
        ]
    with ws.db.engine.begin() as conn:
        conn.execute(s.runs.insert(), runs)
        conn.execute(s.params.insert(), params)
        conn.execute(s.latest_metrics.insert(), metrics)
        conn.execute(s.tags.insert(), tags)
    return time.perf_counter() - t0


def raw_sqlite(tmp: Path, rows: list[tuple]) -> tuple[float, float]:
    """The machine's limits: SQLite's insert rate (rows/s, one transaction, a bare table with its primary key)
    and scan rate (rows/s read back) for the params rows, with the standard library alone."""
    import sqlite3

    db = sqlite3.connect(tmp / "raw.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE p (run_id TEXT, key TEXT, value TEXT, PRIMARY KEY (run_id, key))")
    t = time.perf_counter()
    with db:
        db.executemany("INSERT INTO p VALUES (?, ?, ?)", rows)
    insert = len(rows) / (time.perf_counter() - t)
    t = time.perf_counter()
    got = db.execute("SELECT run_id, key, value FROM p").fetchall()
    scan = len(got) / (time.perf_counter() - t)
    db.close()
    return insert, scan


def probe(src: Path | None, home: Path, n: int, repeats: int, cases: dict, store: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update({"MLO_HOME": str(home), "MLO_SYSTEM_METRICS": "0"})
    if store:
        env["MLO_STORE"] = store
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run(
        [PY, "-c", PROBE, str(n), str(repeats), json.dumps(cases), json.dumps(SETUP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


MEMORY = """
import glob, json, os, sys
import mlo

def peak_kb():  # this program's own high-water mark (ru_maxrss would carry the forking parent's over exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

mlo.runs(limit=1)
out = {}
for state in ("no cache on disk", "cached"):
    if state == "no cache on disk":
        for path in glob.glob(os.path.join(os.environ["MLO_HOME"], "cache", "run-listing-*")):
            os.remove(path)
    before = peak_kb()
    df = mlo.runs(experiment="sweep")
    out[state] = (peak_kb() - before) / 1024
    del df
print(json.dumps(out))
"""


def peak_memory(src: Path | None, home: Path) -> dict:
    """Peak resident memory added by ``runs()`` of everything (MB), the first call of a fresh interpreter after
    ``runs(limit=1)``: without the cached listing, then (a new process) with it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update({"MLO_HOME": str(home), "MLO_SYSTEM_METRICS": "0"})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = {}
    for state in ("no cache on disk", "cached"):
        code = MEMORY.replace('("no cache on disk", "cached")', repr((state,)))
        got = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=3600)
        if got.returncode != 0:
            raise SystemExit(got.stderr)
        out.update(json.loads(got.stdout.strip().splitlines()[-1]))  # (the first leaves the cache written)
    return out


# MLflow's search_runs over the same shape of runs, in MLflow's own environment (given by --anchor-python or
# MLO_ANCHOR_PYTHON); its SQLite store is filled in bulk as mlo's is, after one run made through its API
MLFLOW = """
import json, random, sqlite3, statistics, sys, time, uuid, warnings
warnings.filterwarnings("ignore")
import mlflow
path, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mlflow.set_tracking_uri("sqlite:///" + path)
eid = mlflow.create_experiment("sweep")
with mlflow.start_run(experiment_id=eid):
    mlflow.log_param("p0", -1)
db = sqlite3.connect(path)
cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
template = dict(zip(cols, db.execute("SELECT * FROM runs").fetchone()))
rng, start = random.Random(7), int((time.time() - n) * 1000)
runs, params, metrics, latest, tags = [], [], [], [], []
for i in range(n):
    rid, at = uuid.UUID(int=rng.getrandbits(128)).hex, start + i * 1000
    row = {**template, "run_uuid": rid, "name": f"r{i}", "start_time": at, "end_time": at + 500}
    runs.append(tuple(row[c] for c in cols))
    p = {"p0": i, "p1": round(rng.random(), 6), "p2": rng.choice("xyz"), "p3": rng.choice([16, 32, 64, 128]),
         "p4": rng.choice(["relu", "gelu", "silu"]), "p5": 10.0 ** -rng.randint(2, 5), "p6": i % 7,
         "p7": "adam", "p8": True, "p9": "resnet18"}
    params += [(k, str(v), rid) for k, v in p.items()]
    for j in range(10):
        v = rng.random()
        metrics.append((f"m{j}", v, at, rid, 0, 0))
        latest.append((f"m{j}", v, at, 0, 0, rid))
    tags += [("team", rng.choice(["core", "ml", "infra", "research", "edge"]), rid), ("shard", f"s{i % 97}", rid)]
with db:
    db.executemany(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", runs)
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
    db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", metrics)
    db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)", latest)
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
times = []
for _ in range(repeats):
    t = time.perf_counter()
    df = mlflow.search_runs(experiment_ids=[eid], max_results=n + 10)
    times.append(time.perf_counter() - t)
print(json.dumps({"s": statistics.median(times), "rows": len(df), "version": mlflow.__version__}))
"""


def mlflow_side_by_side(a, tmp: Path) -> list[str]:
    """``runs()`` of 10,000 runs (this checkout, without and with its cached listing) and MLflow's
    ``search_runs`` of the same shape."""
    n = 10_000
    home = tmp / "anchor-mlo" / ".mlo"
    home.parent.mkdir()
    _in_fresh_interpreter(None, BUILD, str(home), str(n))
    cases = {k: v for k, v in CASES.items() if k.startswith("runs() of everything")}
    ours = probe(None, home, n, 3, cases)
    got = subprocess.run(
        [a.anchor_python, "-c", MLFLOW, str(tmp / "anchor-mlflow.db"), str(n), "3"],
        capture_output=True, text=True, timeout=3600, cwd=tmp,
    )  # fmt: skip
    if got.returncode != 0:
        return [f"MLflow side by side skipped: {got.stderr.strip().splitlines()[-1:]}"]
    theirs = json.loads(got.stdout.strip().splitlines()[-1])
    cold, warm = ours["runs() of everything, no cache on disk"]["s"], ours["runs() of everything"]["s"]
    return [
        f"{n:,} runs: MLflow {theirs['version']} search_runs {theirs['s'] * 1000:,.0f} ms ({theirs['rows']:,} rows); "
        f"mlo runs() {cold * 1000:,.0f} ms without its cached listing ({theirs['s'] / cold:,.1f}x), "
        f"{warm * 1000:,.0f} ms with it ({theirs['s'] / warm:,.1f}x)"
    ]


def _in_fresh_interpreter(src: Path | None, code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update(
        {"MLO_SYSTEM_METRICS": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(src or ""), HERE]))}
    )
    out = subprocess.run([PY, "-c", code, *args], env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout.strip().splitlines()[-1]


HERE = str(Path(__file__).resolve().parent)
BUILD = (
    "import sys, listing; from pathlib import Path; print(listing.build(Path(sys.argv[1]), int(sys.argv[2])))"
)
MIGRATE = """
import os, sys, time
os.environ["MLO_HOME"] = sys.argv[1]
t = time.perf_counter()
from mlo.store.db import Database
Database("sqlite:///" + sys.argv[1] + "/mlo.db").dispose()
print(time.perf_counter() - t)
"""


def sqlite_mode(a, tmp: Path, base: Path) -> tuple[dict, dict, list[str]]:
    import shutil
    import sqlite3

    before_home, after_home = tmp / "before" / ".mlo", tmp / "after" / ".mlo"
    before_home.parent.mkdir()
    built = float(_in_fresh_interpreter(base / "src", BUILD, str(before_home), str(a.runs)))
    shutil.copytree(before_home.parent, after_home.parent)
    migrated = float(_in_fresh_interpreter(None, MIGRATE, str(after_home)))
    with sqlite3.connect(before_home / "mlo.db") as db:
        rows = db.execute("SELECT run_id, key, value FROM params").fetchall()
    insert, scan = raw_sqlite(tmp, rows)
    notes = [
        f"{a.runs:,} runs written in {built:.1f} s (baseline's schema); this checkout's copy brought forward "
        f"to its schema (version 8) in {migrated:.1f} s",
        f"machine's limits: SQLite raw insert {insert:,.0f} rows/s, raw scan {scan:,.0f} rows/s "
        f"({len(rows):,} params rows: a listing of everything reads 20 values per run)",
    ]
    sides: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(a.rounds):
        sides["before"].append(probe(base / "src", before_home, a.runs, a.repeats, CASES))
        sides["after"].append(probe(None, after_home, a.runs, a.repeats, CASES))
    memory = {"before": peak_memory(base / "src", before_home), "after": peak_memory(None, after_home)}
    notes.append(
        "peak memory added by runs() of everything (first call of a process, MB): "
        + "; ".join(
            f"{side}: " + ", ".join(f"{state} +{mb:,.0f}" for state, mb in m.items())
            for side, m in memory.items()
        )
    )
    if a.anchor_python:
        notes += mlflow_side_by_side(a, tmp)
    return sides, CASES, notes


class Postgres:
    """A throwaway PostgreSQL cluster (as tests/conftest.py starts one): initdb, pg_ctl, trust on 127.0.0.1."""

    def __init__(self, root: Path):
        import glob
        import socket

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bindir, self.root = Path(bins[-1]).parent, root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        os.chmod(root, 0o777)

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=600)

    def start(self) -> str:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            raise SystemExit(f"a server runs on {data} already: stop it first (pg_ctl -D {data} stop)")
        if not (data / "PG_VERSION").exists():
            self.run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mlo", "--no-sync",
                     "-E", "UTF8")  # fmt: skip
        self.run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w", "start", "-o",
                 f"-p {self.port} -h 127.0.0.1 -k {self.root} -F -c synchronous_commit=off "
                 "-c shared_buffers=512MB -c work_mem=64MB -c maintenance_work_mem=512MB")  # fmt: skip
        return f"postgresql+psycopg://mlo@127.0.0.1:{self.port}/postgres"

    def stop(self, keep: bool = False) -> None:
        mode = (
            "fast" if keep else "immediate"
        )  # a kept cluster is shut down cleanly, to start again as it was
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "stop")


PG_BUILD = """
INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, "user", lifecycle)
SELECT lpad(to_hex(i), 26, '0'), :exp, 'r' || i, 'finished', :start + i::bigint * 1000000, :start + i::bigint * 1000000 + 500000,
       'bench', 'active'
FROM generate_series(1, :n) AS i;
INSERT INTO params (run_id, key, value)
SELECT lpad(to_hex(i), 26, '0'), 'p' || k,
       CASE k WHEN 0 THEN i::text
              WHEN 1 THEN round(random()::numeric, 6)::text
              WHEN 2 THEN '"' || (ARRAY['x', 'y', 'z'])[1 + floor(random() * 3)::int] || '"'
              WHEN 3 THEN (ARRAY['16', '32', '64', '128'])[1 + floor(random() * 4)::int]
              WHEN 4 THEN '"' || (ARRAY['relu', 'gelu', 'silu'])[1 + floor(random() * 3)::int] || '"'
              WHEN 5 THEN (ARRAY['0.01', '0.001', '0.0001', '1e-05'])[1 + floor(random() * 4)::int]
              WHEN 6 THEN (i % 7)::text
              WHEN 7 THEN '"adam"' WHEN 8 THEN 'true' ELSE '"resnet18"' END
FROM generate_series(1, :n) AS i, generate_series(0, 9) AS k;
INSERT INTO latest_metrics (run_id, key, value, step, timestamp, n)
SELECT lpad(to_hex(i), 26, '0'), 'm' || k, random(), 0, :start + i::bigint * 1000000, 1
FROM generate_series(1, :n) AS i, generate_series(0, 9) AS k;
INSERT INTO tags (run_id, key, value)
SELECT lpad(to_hex(i), 26, '0'), 'team', (ARRAY['core', 'ml', 'infra', 'research', 'edge'])[1 + floor(random() * 5)::int]
FROM generate_series(1, :n) AS i;
INSERT INTO tags (run_id, key, value) SELECT lpad(to_hex(i), 26, '0'), 'shard', 's' || (i % 97)
FROM generate_series(1, :n) AS i;
ANALYZE;
"""


def postgres_mode(a, tmp: Path) -> tuple[dict, dict, list[str]]:
    """Builds the workspace in ``tmp`` (or in ``--keep DIR``, where a workspace of the same size built before
    is started again instead of rebuilt), then times the pages."""
    from sqlalchemy import text

    root, home = tmp / "pg", tmp / "pgws" / ".mlo"
    built_file = tmp / "built.json"
    old = json.loads(built_file.read_text()) if built_file.exists() else None
    if old is not None and old["runs"] != a.runs:
        raise SystemExit(
            f"{tmp} holds a workspace of {old['runs']:,} runs, not {a.runs:,}: use another --keep DIR"
        )
    root.mkdir(exist_ok=True)
    os.chmod(tmp, 0o755)  # the server runs as another user when this runs as root
    pg = Postgres(root)
    url = pg.start()
    try:
        os.environ["MLO_STORE"] = url
        os.environ["MLO_HOME"] = str(home)
        if old is None:
            import mlo

            mlo.init(tmp / "pgws")
            exp_id = mlo.workspace.current().runs.experiment_id(EXPERIMENT)
            engine = mlo.workspace.current().db.engine
            t0 = time.perf_counter()
            start = int((time.time() - a.runs) * 1e6)
            with engine.begin() as conn:
                # bulk rows skip the listing-stamp triggers (a row update of runs per value): the runs start
                # unstamped, as a store brought forward to schema 7 does
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                for stmt in PG_BUILD.split(";\n"):
                    if stmt.strip() and stmt.strip() != "ANALYZE":
                        conn.execute(text(stmt), {"exp": exp_id, "n": a.runs, "start": start})
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            built = time.perf_counter() - t0
            mlo.workspace.reset_cache()
            if a.keep:
                built_file.write_text(json.dumps({"runs": a.runs, "built_s": built}))
        else:
            built = old["built_s"]
        notes = [f"{a.runs:,} runs × (10 params, 10 metrics, 2 tags) written on the server in {built:.1f} s "
                 "(INSERT … SELECT generate_series, then VACUUM ANALYZE, as autovacuum would)"]  # fmt: skip
        sides: dict[str, list[dict]] = {"after": []}
        if a.base is not None:
            sides["before"] = []
        for _ in range(a.rounds):
            if a.base is not None:
                sides["before"].append(probe(a.base / "src", home, a.runs, a.repeats, PG_CASES, url))
            sides["after"].append(probe(None, home, a.runs, a.repeats, PG_CASES, url))
    finally:
        pg.stop(keep=bool(a.keep))
    return sides, PG_CASES, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=None, help="100,000 (SQLite) or 1,000,000 (--postgres)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="turns each side takes (the best median counts)")
    ap.add_argument("--baseline", default="main")
    ap.add_argument("--postgres", action="store_true", help="this checkout on a PostgreSQL server of its own")
    ap.add_argument(
        "--keep",
        metavar="DIR",
        help="--postgres: build the cluster in DIR and keep it; a later "
        "run with the same DIR and --runs starts it again instead of rebuilding (minutes at 1M runs)",
    )
    ap.add_argument("--no-baseline", action="store_true", help="--postgres: this checkout alone")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument(
        "--anchor-python",
        default=os.environ.get("MLO_ANCHOR_PYTHON"),
        help="a Python with MLflow installed: its search_runs over 10,000 runs side by side "
        "(default: $MLO_ANCHOR_PYTHON)",
    )
    a = ap.parse_args(argv)
    a.runs = a.runs or (1_000_000 if a.postgres else 100_000)
    load_before = os.getloadavg()
    shm = "/dev/shm" if Path("/dev/shm").is_dir() and not a.postgres else None
    with tempfile.TemporaryDirectory(prefix="mlo-listing-", dir=shm) as t:
        tmp = Path(t)
        a.base = None
        if not (a.postgres and a.no_baseline):
            a.base = tmp / "baseline"
            a.base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", a.baseline, "src"], check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", str(a.base)], input=archive.stdout, check=True)
        if a.postgres:
            keep = Path(a.keep).resolve() if a.keep else tmp
            keep.mkdir(parents=True, exist_ok=True)
            sides, cases, notes = postgres_mode(a, keep)
        else:
            sides, cases, notes = sqlite_mode(a, tmp, a.base)
    load_after = os.getloadavg()
    for line in notes:
        print(line)
    best = {k: {c: min(r[c]["s"] for r in v) for c in cases} for k, v in sides.items()}
    # CPU time of this process (the database is in-process for SQLite): less sensitive to a busy machine
    cpu = {k: {c: min(r[c]["cpu"] for r in v) for c in cases} for k, v in sides.items()}
    if "before" in sides:
        for c in cases:  # the same answer on both sides (the exact count where this side capped it)
            b, f = sides["before"][0][c], sides["after"][0][c]
            b_total, f_total = b.get("exact_total", b["total"]), f.get("exact_total", f["total"])
            assert (b["rows"], b_total, b["first"]) == (f["rows"], f_total, f["first"]), (c, b, f)
    exact_best = {
        k: {c: min(r[c].get("exact_s", r[c]["s"]) for r in v) for c in cases} for k, v in sides.items()
    }
    page_limit = 0.2 if a.postgres else 0.1
    rows = []
    for c in cases:
        limit = 1.5 if c.startswith("runs()") else page_limit
        f = best["after"][c]
        got = sides["after"][0][c]
        total = got.get("exact_total", got["total"])
        row = [
            c,
            f"{f * 1000:,.1f} ms",
            f"{cpu['after'][c] * 1000:,.1f} ms",
            f"{exact_best['after'][c] * 1000:,.1f} ms" if "exact_s" in got else "",
            f"{total:,}" + ("" if got["total"] == total else f" (counted to {got['total']:,})"),
            verdict(f <= limit),
        ]
        if "before" in best:
            b = best["before"][c]
            row[1:1] = [f"{b * 1000:,.1f} ms", f"{cpu['before'][c] * 1000:,.1f} ms"]
            row[6:6] = [f"{b / f:,.1f}x"]
        rows.append(row)
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); 2 shared cores")
    # a page's figure is with its count capped at 10,000 (the REST API's default); the exact count's beside it
    header = ["query", "this checkout", "CPU", "exact count", "matched", "target"]
    if "before" in best:
        header = [
            "query",
            f"baseline ({a.baseline})",
            "CPU",
            "this checkout",
            "CPU",
            "exact count",
            "gain",
            "matched",
            "target",
        ]
    print_table(header, rows)
    if a.json:
        Path(a.json).write_text(
            json.dumps({"runs": a.runs, "sides": sides, "load": [load_before, load_after]})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
