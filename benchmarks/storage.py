"""Blob storage: snapshot and model round trips on the local disk vs an S3 endpoint, and what the cache saves.

An S3 server (moto's, ``moto_server`` from the test extra) runs as its own process on 127.0.0.1, so its work is
not counted against the client's interpreter; each store gets a fresh workspace. For each store it measures:

1. ``mlo.snapshot(df)`` of a float frame, then ``mlo.load_snapshot`` cold (an empty cache: the blob comes from the
   store) and warm (the cache holds it);
2. ``mlo.register_model`` of a random forest, then ``mlo.load_model`` cold and warm;
3. ``blobs.put_bytes`` / ``get_bytes`` of one blob of random bytes, against s3fs's own ``pipe``/``cat`` of the
   same bytes as the floor (what the network and the server cost without mlo); and a put of a 64 KB blob against
   ``pipe`` of 64 KB, where a put's fixed costs (requests, staging) show.

And ``--part import``: an MLflow SQLite store of 1,000 runs × 1,000 metric points (written with MLflow's
``log_batch``), imported with ``mlo import mlflow``, side by side with MLflow's own client reading the same runs and
histories (the floor of any import: MLflow ships no export tool of its own), then every history read back in mlo
and in MLflow.

Figures are throughput over the stored blob's size and the time of each call (the median of ``--repeats``).
The loopback S3 server is much faster than a real bucket over a network: read the S3 columns as mlo's overhead
over the storage, not as what a cloud bucket gives.

    .venv/bin/python benchmarks/storage.py            # 1.6M × 10 frame (128 MB), 64 MB blob, ~1 minute
    .venv/bin/python benchmarks/storage.py --quick    # ~10x smaller
    .venv/bin/python benchmarks/storage.py --part import [--quick]   # 1,000 runs × 1,000 points (100 with --quick)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text_table import print_table

now = time.perf_counter
SMALL_BLOB = 64 << 10
SMALL_REPEATS = 15
SIZES = {
    "full": {"rows": 1_600_000, "blob_mb": 64, "trees": 60},
    "quick": {"rows": 160_000, "blob_mb": 8, "trees": 10},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start (pip install -e '.[dev]')")


def median_time(fn, repeats: int, before=None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = now()
        fn()
        times.append(now() - t0)
    return statistics.median(times)


def measure(label: str, artifacts: str | None, sizes: dict, repeats: int, tmp: Path) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    import mlo
    from mlo import workspace

    home = tmp / label
    os.environ["MLO_HOME"] = str(home / ".mlo")
    if artifacts:
        os.environ["MLO_ARTIFACTS"] = artifacts
    else:
        os.environ.pop("MLO_ARTIFACTS", None)
    workspace.reset_cache()
    ws = mlo.init(home)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((sizes["rows"], 10)), columns=[f"x{i}" for i in range(10)])
    y = (df.x0 + df.x1 > 1).astype(int)
    model = RandomForestClassifier(n_estimators=sizes["trees"], random_state=0).fit(
        df.head(20_000), y.head(20_000)
    )

    def forget_cache():
        workspace.reset_cache()
        cache = home / ".mlo" / "cache" / "blobs"
        if cache.exists():
            shutil.rmtree(cache)

    def fresh():  # a new process's view: the workspace opened anew, the cache kept
        workspace.reset_cache()

    mlo.snapshot(df.head(100), "warm-up")  # imports and first connections are not what is measured
    mlo.register_model(RandomForestClassifier(n_estimators=2).fit(df.head(100), y.head(100)), "warm-up")
    out = {}
    t0 = now()
    snap = mlo.snapshot(df, "train")
    out["snapshot write"] = (now() - t0, ws.blobs.size(snap.blob))
    size = out["snapshot write"][1]
    out["snapshot read, cold"] = (
        median_time(lambda: mlo.load_snapshot("train"), repeats, forget_cache),
        size,
    )
    out["snapshot read, warm"] = (median_time(lambda: mlo.load_snapshot("train"), repeats, fresh), size)

    t0 = now()
    mv = mlo.register_model(model, "forest")
    mv_size = mv.size
    out["model register"] = (now() - t0, mv_size)
    out["model load, cold"] = (
        median_time(lambda: mlo.load_model("forest/1"), repeats, forget_cache),
        mv_size,
    )
    out["model load, warm"] = (median_time(lambda: mlo.load_model("forest/1"), repeats, fresh), mv_size)

    payloads = iter([os.urandom(sizes["blob_mb"] << 20) for _ in range(repeats)])
    blobs = workspace.current().blobs
    digests = []
    out["blob put"] = (median_time(lambda: digests.append(blobs.put_bytes(next(payloads))), repeats), None)
    data = blobs.get_bytes(digests[-1])
    digest = digests[-1]
    out["blob put"] = (out["blob put"][0], len(data))
    out["blob get, cold"] = (
        median_time(lambda: workspace.current().blobs.get_bytes(digest), repeats, forget_cache),
        len(data),
    )
    out["blob get, warm"] = (
        median_time(lambda: workspace.current().blobs.get_bytes(digest), repeats, fresh),
        len(data),
    )
    if artifacts:
        import fsspec

        fs = fsspec.filesystem("s3")
        key = artifacts.removeprefix("s3://") + "/floor"
        out["s3fs pipe (floor)"] = (median_time(lambda: fs.pipe_file(key, data), repeats), len(data))
        out["s3fs cat (floor)"] = (median_time(lambda: fs.cat_file(key), repeats), len(data))
        # fixed costs: a small blob, where requests and staging weigh more than the bytes
        small = iter([os.urandom(SMALL_BLOB) for _ in range(SMALL_REPEATS)])
        out["small blob put (64 KB)"] = (
            median_time(lambda: blobs.put_bytes(next(small)), SMALL_REPEATS),
            SMALL_BLOB,
        )
        tiny = os.urandom(SMALL_BLOB)
        out["s3fs pipe 64 KB (floor)"] = (
            median_time(lambda: fs.pipe_file(key, tiny), SMALL_REPEATS),
            SMALL_BLOB,
        )
    return out


def measure_import(runs: int, points: int, tmp: Path) -> list[list[str]]:
    import warnings

    warnings.filterwarnings("ignore")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    import mlo
    from mlo import workspace
    from mlo.interop.mlflow_import import import_mlflow

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench")
    t0 = now()
    for r in range(runs):
        run = client.create_run(exp, run_name=f"run-{r}")
        stamp = 1_700_000_000_000 + r * 10_000
        metrics = [Metric("loss", 1.0 / (i + 1), stamp + i, i) for i in range(points)]
        for i in range(0, points, 1000):  # log_batch takes 1,000 metrics a call
            client.log_batch(
                run.info.run_id, metrics=metrics[i : i + 1000], params=[Param("r", str(r))] if not i else []
            )
        client.set_terminated(run.info.run_id, "FINISHED")
    write = now() - t0

    def mlflow_read():
        n = 0
        token = None
        while True:
            page = client.search_runs([exp], max_results=1000, page_token=token)
            for run in page:
                for key in run.data.metrics:
                    n += len(client.get_metric_history(run.info.run_id, key))
            token = page.token
            if not token:
                return n

    t0 = now()
    read_points = mlflow_read()
    floor = now() - t0
    os.environ["MLO_HOME"] = str(tmp / "ws" / ".mlo")
    os.environ.pop("MLO_ARTIFACTS", None)
    workspace.reset_cache()
    mlo.init(tmp / "ws")
    t0 = now()
    summary = import_mlflow(uri, models=False)
    imported = now() - t0
    assert summary.metric_points == read_points == runs * points, (summary.metric_points, read_points)
    t0 = now()
    again = import_mlflow(uri, models=False)
    second = now() - t0
    assert again.skipped == runs and again.runs == 0
    t0 = now()
    ids = mlo.runs(experiment="bench")["run_id"].tolist()
    got = sum(len(mlo.get_run(i).history("loss")) for i in ids)
    mlo_read = now() - t0
    assert got == runs * points
    total = runs * points
    return [
        ["MLflow writes the store (log_batch)", f"{write:,.1f} s", f"{total / write:,.0f} points/s", ""],
        [
            "MLflow client reads every run and history",
            f"{floor:,.1f} s",
            f"{total / floor:,.0f} points/s",
            "1.00x",
        ],
        [
            "mlo import mlflow (reads + records)",
            f"{imported:,.1f} s",
            f"{total / imported:,.0f} points/s",
            f"{imported / floor:,.2f}x",
        ],
        ["mlo import mlflow again (all skipped)", f"{second:,.1f} s", "", f"{second / floor:,.2f}x"],
        [
            "mlo reads every history back",
            f"{mlo_read:,.1f} s",
            f"{total / mlo_read:,.0f} points/s",
            f"{mlo_read / floor:,.2f}x",
        ],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--part", choices=["blobs", "import"], default="blobs")
    args = ap.parse_args()
    sizes = SIZES["quick" if args.quick else "full"]
    os.environ.setdefault("MLO_SYSTEM_METRICS", "0")
    if args.part == "import":
        runs = 100 if args.quick else 1000
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure_import(runs, 1000, Path(tmp))
        print(f"\nMLflow import: {runs:,} runs × 1,000 points (load average {os.getloadavg()[0]:.2f})")
        print_table(["step", "time", "rate", "vs MLflow's read"], rows)
        return
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    server, endpoint = start_s3()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket="mlo-bench")
        with tempfile.TemporaryDirectory() as tmp:
            local = measure("local", None, sizes, args.repeats, Path(tmp))
            remote = measure("s3", "s3://mlo-bench/mlo", sizes, args.repeats, Path(tmp))
    finally:
        server.terminate()
        server.wait(10)

    rows = []
    for step in remote:
        r_t, size = remote[step]
        l_t = local.get(step, (None, None))[0]

        def mbps(t, n=size):
            return f"{n / t / 1e6:,.0f} MB/s" if n and t else "—"

        rows.append(
            [
                step,
                f"{(size or 0) / 1e6:,.1f} MB" if size else "—",
                f"{l_t * 1000:,.1f} ms" if l_t is not None else "—",
                mbps(l_t) if l_t is not None else "—",
                f"{r_t * 1000:,.1f} ms",
                mbps(r_t),
                f"{r_t / l_t:,.2f}x" if l_t else "—",
            ]
        )
    load = os.getloadavg()[0]
    print(f"\nblob storage round trips ({'quick' if args.quick else 'full'} sizes; load average {load:.2f})")
    print_table(["step", "size", "local", "local MB/s", "S3 (loopback)", "S3 MB/s", "S3/local"], rows)
    for put, floor in (
        ("blob put", "s3fs pipe (floor)"),
        ("small blob put (64 KB)", "s3fs pipe 64 KB (floor)"),
    ):
        if put in remote and floor in remote:
            print(f"{put} / {floor}: {remote[put][0] / remote[floor][0]:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"local": local, "s3": remote, "load": load}, indent=1))


if __name__ == "__main__":
    main()
