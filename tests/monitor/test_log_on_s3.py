"""The prediction log on object storage: a real S3 HTTP server (moto) on loopback, reached through s3fs.

A server and batch jobs write log files to the bucket, a report on another machine (an empty local folder) reads
them; a writer killed mid-upload leaves nothing visible and loses nothing; a read-only bucket is one line; a store
that cannot be reached keeps the records until it can."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from monitor_data import T0, Trained

import mlo
from mlo import workspace
from mlo.errors import StoreError


def _objects(bucket: str, under: str = "mlo/monitor/") -> dict[str, int]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=under)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _forget_local_log(name: str) -> None:
    """Another machine: nothing of the log on local disk."""
    shutil.rmtree(workspace.current().home / "monitor" / name)


def _pending(name: str) -> list[Path]:
    folder = workspace.current().home / "monitor" / name
    return sorted(folder.rglob(".pending/*.parquet"))


def _fresh_clients() -> None:
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()  # s3fs reads the endpoint when a file system is made
    workspace.reset_cache()


def test_serve_log_and_report_through_the_bucket(s3_ws, s3_bucket):
    trained = Trained(np.random.default_rng(0))
    trained.log_hours(3, drift_from=2, n=500)
    here = mlo.monitor.report("churn", window="1h", save=False)
    objects = _objects(s3_bucket)
    assert len([k for k in objects if "/labels/lab-" in k]) == 3 and len(objects) == 6
    assert all(k.startswith("mlo/monitor/churn/") for k in objects) and not _pending("churn")

    with mlo.serve("churn@production") as srv:
        body = json.dumps(
            {"records": [{"age": 41.0, "income": 52.0}, {"age": 38.0, "income": 49.0}]}
        ).encode()
        req = urllib.request.Request(f"{srv.url}/predict", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as response:
            ids = json.load(response)["ids"]
        srv.flush()
    assert len(_objects(s3_bucket)) == 7

    _forget_local_log("churn")
    there = mlo.monitor.report("churn", window="1h", until=T0 + pd.Timedelta(hours=3), save=False)
    pd.testing.assert_frame_equal(
        there.windows.drop(columns="rows_per_s"), here.windows.drop(columns="rows_per_s"), check_dtype=False
    )
    log = mlo.monitor.read_log("churn")
    assert len(log) == 1502 and set(ids) <= set(log["id"])
    mlo.monitor.label(ids, [1, 0])  # labels find their records through the bucket too
    _forget_local_log("churn")
    assert mlo.monitor.read_log("churn").set_index("id").loc[ids, "label"].tolist() == [1, 0]


def test_a_read_only_bucket_is_one_line_and_keeps_the_records(s3_ws, s3_bucket):
    import boto3

    trained = Trained(np.random.default_rng(1))
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{s3_bucket}/mlo/monitor/*",
            }
        ],
    }
    boto3.client("s3").put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(deny))
    X = pd.DataFrame({"age": [40.0, 41.0], "income": [50.0, 51.0]})
    with pytest.raises(StoreError, match="read-only for these credentials") as err:
        mlo.monitor.log("churn@production", X, trained.model.predict(X), timestamps=T0)
    assert "\n" not in str(err.value) and "s3:PutObject" in str(err.value)
    assert len(mlo.monitor.read_log("churn")) == 2 and len(_pending("churn")) == 1  # nothing lost
    assert _objects(s3_bucket) == {}
    boto3.client("s3").delete_bucket_policy(Bucket=s3_bucket)
    mlo.monitor.read_log("churn")  # a read sends what waits
    assert len(_objects(s3_bucket)) == 1 and not _pending("churn")


def test_an_unreachable_store_buffers_and_flushes_later(s3_ws, s3_bucket, s3_server, monkeypatch):
    Trained(np.random.default_rng(2))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _fresh_clients()
    from mlo.monitor.log import PredictionLogger

    logger = PredictionLogger()
    stream = logger.stream("churn", 1, "production", "stable", {"age": None, "income": None})
    for i in range(20):
        stream.append({"age": [40.0 + i], "income": [50.0]}, [1], n=1, latency_ms=1.0)
    logger.flush()
    assert len(_pending("churn")) == 1 and logger.records_written == 20  # kept here, not lost
    assert len(mlo.monitor.read_log("churn")) == 20  # readable while the store is away
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    _fresh_clients()
    stream.append({"age": [1.0], "income": [2.0]}, [0], n=1, latency_ms=1.0)
    logger.close()  # the next flush sends the waiting file first
    assert len(_objects(s3_bucket)) == 2 and not _pending("churn")
    _forget_local_log("churn")
    assert len(mlo.monitor.read_log("churn")) == 21


def _stalling_proxy():
    path = Path(__file__).parent.parent / "store" / "test_object_store.py"
    spec = importlib.util.spec_from_file_location("object_store_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._StallingProxy


def test_a_writer_killed_mid_upload_leaves_nothing_visible_and_loses_nothing(
    s3_ws, s3_bucket, s3_server, tmp_path
):
    import boto3

    Trained(np.random.default_rng(3))
    proxy = _stalling_proxy()(
        s3_server, budget=7 << 20
    )  # the first 5 MiB part goes through, the second hangs
    script = (
        "import numpy as np, pandas as pd, mlo\n"
        "import mlo.store.remote as r; r.MULTIPART_CHUNK = 5 << 20\n"
        "rng = np.random.default_rng(0)\n"
        "X = pd.DataFrame({'age': rng.normal(size=800_000), 'income': rng.normal(size=800_000)})\n"
        "mlo.monitor.log('churn@production', X, rng.normal(size=800_000), timestamps='2026-11-20T01:00')\n"
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    proxy.kill_when_stalled(subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env))
    assert _objects(s3_bucket) == {}  # no partial object
    assert len(boto3.client("s3").list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])) == 1
    pending = _pending("churn")
    assert len(pending) == 1 and pq.read_metadata(pending[0]).num_rows == 800_000  # whole, waiting
    log = mlo.monitor.read_log("churn", columns=["ts", "prediction"])  # the next reader sends it
    assert len(log) == 800_000 and not _pending("churn")
    (key,) = _objects(s3_bucket)
    assert key.startswith("mlo/monitor/churn/seg-")


def test_two_servers_write_the_same_log_at_once(s3_ws, s3_bucket, tmp_path):
    """Two writers (as two servers on two machines) flush at the same time: every record arrives once."""
    import threading

    from mlo.monitor.log import PredictionLogger

    Trained(np.random.default_rng(4))
    loggers = [PredictionLogger(), PredictionLogger()]
    streams = [lg.stream("churn", 1, "production", "stable", {"age": None}) for lg in loggers]

    def serve(stream, k):
        for i in range(300):
            stream.append({"age": [float(i)]}, [k], n=1, latency_ms=1.0)
            if i % 50 == 49:
                stream.logger.flush()

    threads = [threading.Thread(target=serve, args=(s, k)) for k, s in enumerate(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lg in loggers:
        lg.close()
    assert len(_objects(s3_bucket)) == sum(lg.segments_written for lg in loggers)
    _forget_local_log("churn")
    log = mlo.monitor.read_log("churn")
    assert len(log) == 600 and log["id"].is_unique
    assert log["prediction"].value_counts().to_dict() == {0: 300, 1: 300}
