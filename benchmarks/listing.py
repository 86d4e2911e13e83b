"""Run listings of a big workspace: the pages the REST API and the compare widget ask for, and ``runs()`` of
everything, this checkout side by side with a baseline revision of mlo.

One SQLite workspace of N runs (100,000 by default) in one experiment, each with 10 params and 10 metrics (the
shape of ``benchmarks/ui.py``: p0 unique, p2 one of x/y/z, …). The rows are written straight into the store's
tables in bulk (with ids and times as mlo makes them), since creating 100,000 runs through the API would take
minutes; a handful of runs made through the API first check that the bulk rows read like real ones.

Each side runs in a fresh interpreter (``PYTHONPATH`` = the baseline's ``src/``, unpacked with ``git archive``,
or this checkout) over the same file, taking turns, and times each query as the median of the repeats:

- a page of 100 newest first (what ``GET /mlo/api/runs?limit=100`` and the widget's first page read);
- the same page filtered on a param (``params.p2 = 'x'``), on a metric (``metrics.m1 > 0.5``), ordered by a
  metric, and at offset N/2;
- ``runs()`` of everything.

Target (issue "at scale"): any page ≤ 100 ms, everything ≤ 1.5 s at 100,000 runs.

    .venv/bin/python benchmarks/listing.py                    # 100,000 runs, about 3 minutes on 2 cores
    .venv/bin/python benchmarks/listing.py --runs 10000 --repeats 3
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
    "page filtered on a metric": 'dict(limit=100, where="metrics.m1 > 0.5")',
    "page ordered by a metric": 'dict(limit=100, order_by="metrics.m3 desc")',
    "page at offset N/2": "dict(limit=100, offset=N // 2)",
    "runs() of everything": "dict()",
}

PROBE = """
import json, sys, time, statistics
import mlo
N, repeats, out = int(sys.argv[1]), int(sys.argv[2]), {}
cases = json.loads(sys.argv[3])
mlo.runs(limit=1)  # imports and the first connection
for name, args in cases.items():
    kw = eval(args)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        df = mlo.runs(experiment="sweep", **kw)
        times.append(time.perf_counter() - t)
    out[name] = {"s": statistics.median(times), "rows": len(df), "total": df.attrs.get("total"),
                 "first": df["run_id"].head(3).tolist()}
print(json.dumps(out))
"""


def build(home: Path, n: int) -> float:
    """The workspace: a few runs through the API, then ``n`` in bulk (same experiment, same shapes)."""
    os.environ["MLO_HOME"] = str(home)
    import mlo
    from mlo.store import schema as s
    from mlo.store.ids import new_id

    mlo.init(home.parent)
    with mlo.start_run("api", experiment=EXPERIMENT, params={"p0": -1}):
        mlo.log_metrics({"m0": 0.5})
    ws = mlo.workspace.current()
    exp_id = ws.runs.experiment_id(EXPERIMENT)
    rng = random.Random(7)
    t0 = time.perf_counter()
    start = time.time() - n  # one run a second, ending now
    runs, params, metrics = [], [], []
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
    with ws.db.engine.begin() as conn:
        conn.execute(s.runs.insert(), runs)
        conn.execute(s.params.insert(), params)
        conn.execute(s.latest_metrics.insert(), metrics)
    with ws.db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def probe(src: Path | None, home: Path, n: int, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env.update({"MLO_HOME": str(home), "MLO_SYSTEM_METRICS": "0"})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run(
        [PY, "-c", PROBE, str(n), str(repeats), json.dumps(CASES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="turns each side takes (the best median counts)")
    ap.add_argument("--baseline", default="main")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(
        prefix="mlo-listing-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    ) as t:
        tmp = Path(t)
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", a.baseline, "src"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        home = tmp / "ws" / ".mlo"
        home.parent.mkdir()
        built = build(home, a.runs)
        print(
            f"{a.runs:,} runs written in {built:.1f} s; sides take turns, {a.rounds} rounds × {a.repeats} repeats"
        )
        sides: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(a.rounds):
            sides["before"].append(probe(base / "src", home, a.runs, a.repeats))
            sides["after"].append(probe(None, home, a.runs, a.repeats))
    load_after = os.getloadavg()
    best = {k: {c: min(r[c]["s"] for r in v) for c in CASES} for k, v in sides.items()}
    for c in CASES:  # the same answer on both sides
        b, f = sides["before"][0][c], sides["after"][0][c]
        assert (b["rows"], b["total"], b["first"]) == (f["rows"], f["total"], f["first"]), (c, b, f)
    rows = []
    for c in CASES:
        limit = 1.5 if c.startswith("runs()") else 0.1
        b, f = best["before"][c], best["after"][c]
        rows.append([c, f"{b * 1000:,.1f} ms", f"{f * 1000:,.1f} ms", f"{b / f:,.1f}x", verdict(f <= limit)])
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); 2 shared cores")
    print_table(["query", f"baseline ({a.baseline})", "this checkout", "gain", "target"], rows)
    if a.json:
        Path(a.json).write_text(
            json.dumps({"runs": a.runs, "sides": sides, "load": [load_before, load_after]})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
