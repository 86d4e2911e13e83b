"""Blobs on object storage: a real S3 HTTP server (moto) on loopback, reached through s3fs as a user's S3 would be.

Covers the blob store's promises on S3 (content addressing, dedup, digests checked on read, multipart uploads,
the read-through cache and its cap), a workspace whose snapshots, models, artifacts and executed notebooks live
there, and the failing bucket: read-only, unreachable, a writer killed mid-upload, an object that rots."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

import mlo
from mlo.errors import CorruptBlob, InvalidInput, MissingBlob, StoreError
from mlo.store import doctor, gc
from mlo.store.addresses import hash_bytes, parts
from mlo.store.blobs import open_blob_store
from mlo.store.remote import RemoteBlobStore, parse_size


def _key(digest: str) -> str:
    """The object key of a blob below the store's prefix."""
    return "/".join(parts(digest))


def _objects(bucket: str) -> dict[str, int]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _store(bucket, tmp_path, cache_size=None) -> RemoteBlobStore:
    return open_blob_store(f"s3://{bucket}/mlo", tmp_path / "cache", cache_size)


def test_blobs_are_content_addressed_objects_verified_on_read(s3_bucket, tmp_path):
    blobs = _store(s3_bucket, tmp_path)
    digest = blobs.put_bytes(b"hello")
    assert digest == hash_bytes(b"hello")
    assert _objects(s3_bucket) == {f"mlo/{_key(digest)}": 5}
    (tmp_path / "f.bin").write_bytes(b"hello")
    assert blobs.put_file(tmp_path / "f.bin") == digest  # the same content is one object
    assert len([k for k in _objects(s3_bucket) if not k.startswith("mlo/claims/")]) == 1

    other = _store(s3_bucket, tmp_path / "elsewhere")  # another machine: an empty cache
    assert other.get_bytes(digest) == b"hello"
    assert other.cache.path(digest).read_bytes() == b"hello"  # read through the cache
    assert other.copy_to(digest, tmp_path / "out" / "h.txt").read_bytes() == b"hello"
    assert other.exists(digest) and other.size(digest) == 5

    import boto3

    boto3.client("s3").put_object(Bucket=s3_bucket, Key=f"mlo/{_key(digest)}", Body=b"jello")
    third = _store(s3_bucket, tmp_path / "third")
    with pytest.raises(CorruptBlob, match="does not match its digest"):
        third.get_bytes(digest)
    assert not third.cache.path(digest).exists()  # the rotten bytes are not cached
    with pytest.raises(MissingBlob, match=f"missing from s3://{s3_bucket}/mlo"):
        third.get_bytes("0" * 64)
    with pytest.raises(InvalidInput):
        third.get_bytes("../../etc/passwd")


def test_large_blobs_go_up_in_parts_and_concurrent_writers_agree(s3_bucket, tmp_path):
    blobs = _store(s3_bucket, tmp_path)
    blobs._put_options = {"chunksize": 5 << 20}  # S3's smallest part, to keep the test small
    payload = os.urandom(11 << 20)
    results, errors = [], []

    def write():
        try:
            results.append(_store(s3_bucket, tmp_path / f"w{threading.get_ident()}").put_bytes(payload))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    digest = hash_bytes(payload)
    with blobs.writer() as w:  # streamed, as snapshots and models are
        for i in range(0, len(payload), 1 << 20):
            w.write(payload[i : i + (1 << 20)])
    assert w.digest == digest
    import boto3

    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key=f"mlo/{_key(digest)}")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [digest] * 3
    assert _store(s3_bucket, tmp_path / "reader").get_bytes(digest) == payload


def test_the_cache_keeps_to_its_cap(s3_bucket, tmp_path):
    blobs = _store(s3_bucket, tmp_path, cache_size="300 KiB")
    digests = [blobs.put_bytes(os.urandom(100 << 10)) for _ in range(5)]
    assert len(list(blobs.cache.iter_blobs())) == 5  # all used in the last minute: none evicted yet
    old = time.time() - 3600
    for i, d in enumerate(digests[:4]):  # last used an hour ago, in order
        os.utime(blobs.cache.path(d), (old + i, old + i))
    assert blobs.trim_cache() == 200 << 10  # the least recently used go first, down to the cap
    assert {b.digest for b in blobs.cache.iter_blobs()} == {digests[2], digests[3], digests[4]}
    assert blobs.get_bytes(digests[0])  # evicted from the cache, still in the store
    assert parse_size("5 GB") == 5 * 10**9 and parse_size("512MiB") == 512 << 20 and parse_size(10) == 10
    with pytest.raises(InvalidInput, match="cache_size"):
        parse_size("lots")


def test_a_workspace_on_s3_keeps_snapshots_models_artifacts_and_notebooks(s3_ws, s3_bucket, tmp_path):
    from sklearn.linear_model import LogisticRegression

    assert isinstance(s3_ws.blobs, RemoteBlobStore)
    df = pd.DataFrame({"x": range(200), "y": [i % 2 for i in range(200)]})
    snap = mlo.snapshot(df, "train")
    model = LogisticRegression().fit(df[["x"]], df.y)
    mlo.register_model(model, "churn", input_example=df[["x"]].head(), alias="production")
    (tmp_path / "roc.txt").write_text("auc 0.9")
    with mlo.start_run("baseline") as run:
        mlo.log_artifact(tmp_path / "roc.txt")

    stored = {k.split("/", 1)[1] for k in _objects(s3_bucket) if "/claims/" not in k}
    assert snap.digest and {_key(a.digest) for a in mlo.get_run(run.id).artifacts} <= stored
    # a second machine: the same database, an empty cache, the blobs from S3 only (once this process's background
    # captures, which store blobs too, have finished)
    import shutil

    from mlo_state import reset

    reset()
    shutil.rmtree(s3_ws.blobs.cache.root)
    pd.testing.assert_frame_equal(mlo.load_snapshot("train"), df)
    assert (mlo.load_model("churn@production").predict(df[["x"]]) == model.predict(df[["x"]])).all()
    assert mlo.get_run(run.id).artifact("roc.txt").read_bytes() == b"auc 0.9"


@pytest.mark.kernel
def test_an_executed_notebook_is_stored_on_s3(s3_ws, s3_bucket, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = 6 * 7\nprint(answer)")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    out = subprocess.run(
        [sys.executable, "-m", "mlo", "run", "nb.ipynb", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    from mlo import workspace

    workspace.reset_cache()
    run = mlo.get_run(json.loads(out.stdout)["run_id"])
    notebook = next(a for a in run.artifacts if a.path.endswith(".ipynb"))
    assert f"mlo/{_key(notebook.digest)}" in _objects(s3_bucket)
    assert "42" in notebook.read_bytes().decode()


def test_a_read_only_bucket_reads_and_refuses_writes_in_one_line(s3_bucket, tmp_path):
    import boto3

    blobs = _store(s3_bucket, tmp_path)
    digest = blobs.put_bytes(b"recorded before")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{s3_bucket}/*",
            }
        ],
    }
    boto3.client("s3").put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(deny))
    reader = _store(s3_bucket, tmp_path / "reader")
    assert reader.get_bytes(digest) == b"recorded before"
    assert reader.put_bytes(b"recorded before") == digest  # already there: nothing to write
    with pytest.raises(StoreError, match="read-only for these credentials") as err:
        reader.put_bytes(b"new bytes")
    assert err.value.kind == "read-only" and "\n" not in str(err.value)
    assert "s3:PutObject" in str(err.value)


def test_an_unreachable_or_missing_bucket_is_one_line(s3_bucket, tmp_path, monkeypatch):
    with pytest.raises(StoreError, match="does not exist") as err:
        _store("no-such-bucket-here", tmp_path).put_bytes(b"x")
    assert "\n" not in str(err.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()  # s3fs reads the endpoint when a file system is made
    try:
        with pytest.raises(StoreError, match="cannot reach the blob store") as err:
            _store(s3_bucket, tmp_path / "other").put_bytes(b"y")
        assert err.value.kind == "unreachable"
    finally:
        fsspec.filesystem("s3").clear_instance_cache()


def test_urls_with_credentials_or_without_their_library_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="never stores credentials"):
        open_blob_store("s3://AKIA:secret@bucket/mlo", tmp_path)
    with pytest.raises(InvalidInput, match="names no bucket"):
        open_blob_store("s3://", tmp_path)
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInput, match="pip install gcsfs"):
            open_blob_store("gs://bucket/mlo", tmp_path)


class _StallingProxy:
    """A TCP proxy to the S3 server that forwards ``budget`` bytes from the client, then stops reading: an
    upload that hangs mid-way, as on a dying network."""

    def __init__(self, upstream: str, budget: int):
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.budget = budget
        self.sent = 0
        self.stalled = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src, dst, counted):
        try:
            while data := src.recv(65536):
                if counted:
                    if self.sent + len(data) > self.budget:
                        self.stalled.set()
                        return  # hold the connection open, forward nothing more
                    self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        self.sock.close()

    def kill_when_stalled(self, writer: subprocess.Popen) -> None:
        """SIGKILL ``writer`` once its upload hangs here, then stop forwarding."""
        try:
            assert self.stalled.wait(120), "the writer never reached the second part"
            writer.send_signal(signal.SIGKILL)
            writer.wait(30)
        finally:
            if writer.poll() is None:
                writer.kill()
            self.close()


def test_a_writer_killed_mid_upload_leaves_nothing_visible(
    s3_ws, s3_bucket, s3_server, tmp_path, monkeypatch
):
    import boto3

    payload = os.urandom(12 << 20)
    (tmp_path / "model.bin").write_bytes(payload)
    proxy = _StallingProxy(s3_server, budget=7 << 20)  # the first 5 MiB part goes through, the second hangs
    script = (
        "import mlo.store.remote as r; r.MULTIPART_CHUNK = 5 << 20\n"
        "from mlo import workspace\n"
        "workspace.current().blobs.put_file('model.bin')\n"
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env)
    proxy.kill_when_stalled(writer)
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert len(uploads) == 1
    digest = hash_bytes(payload)
    assert f"mlo/{_key(digest)}" not in _objects(s3_bucket)  # no partial object
    with pytest.raises(MissingBlob):
        s3_ws.blobs.get_bytes(digest)
    report = doctor.examine()  # the upload, and the staged file in the local cache, are leftovers
    assert report.stats["unfinished_uploads"] == 1 and report.stats["temp_files"] == 1 and report.healthy
    # (gc keeps uploads started within its grace period, as a writer may be uploading now; moto dates every
    # upload to 2010, so only the removal can be seen here)
    result = gc.collect(s3_ws, grace=0)
    assert result.step("unfinished uploads").removed == 1 and result.step("temp files").removed == 1
    assert boto3.client("s3").list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert s3_ws.blobs.put_file(tmp_path / "model.bin") == digest  # writing again works
    assert s3_ws.blobs.get_bytes(digest) == payload


def test_gc_and_doctor_on_s3(s3_ws, s3_bucket, tmp_path):
    import boto3

    df = pd.DataFrame({"a": [1, 2, 3]})
    mlo.snapshot(df, "small")
    kept = mlo.load_snapshot("small")
    orphan = s3_ws.blobs.put_bytes(b"nobody refers to me")
    claimed = s3_ws.blobs.put_bytes(b"about to be referred to")
    report = doctor.examine(verify=True)
    assert report.healthy and report.stats["orphaned"] == 2 and report.stats["corrupt"] == 0

    time.sleep(1.1)  # S3 times have one-second resolution
    s3_ws.blobs.claim(claimed)  # a writer reusing it now: gc must keep it
    result = gc.collect(s3_ws, grace=1)
    assert result.step("unreferenced blobs").removed == 1
    assert not s3_ws.blobs.exists(orphan) and s3_ws.blobs.exists(claimed)
    assert not s3_ws.blobs.cache.path(orphan).exists()
    pd.testing.assert_frame_equal(mlo.load_snapshot("small"), kept)

    blob = next(b for b in s3_ws.blobs.iter_blobs() if b.digest != claimed)
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=blob.path.split("/", 1)[1], Body=b"rot")
    report = doctor.examine(verify=True)
    assert not report.healthy and report.exit_code == 3
    assert any("no longer match their digest" in f.message for f in report.findings)
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key=blob.path.split("/", 1)[1])
    report = doctor.examine()
    assert report.stats["missing"] == 1 and report.exit_code == 3


def test_a_put_costs_one_lookup_and_one_upload(s3_bucket, tmp_path):
    """A new blob: one HEAD (is it there?) and one PUT, as s3fs's own pipe plus the lookup; a stored one: the HEAD
    and the claim marker."""
    blobs = _store(s3_bucket, tmp_path)
    calls: list[str] = []
    real = blobs.fs._call_s3

    async def counted(method, *args, **kwargs):
        calls.append(method)
        return await real(method, *args, **kwargs)

    real_sync = blobs.fs.call_s3  # HEADs go through the blocking wrapper

    def counted_sync(method, *args, **kwargs):
        calls.append(method)
        return real_sync(method, *args, **kwargs)

    blobs.fs._call_s3, blobs.fs.call_s3 = counted, counted_sync
    try:
        payload = os.urandom(1 << 20)
        digest = blobs.put_bytes(payload)
        assert calls == ["head_object", "put_object"]
        assert blobs.cache.path(digest).read_bytes() == payload  # cached for the next read
        calls.clear()
        assert blobs.put_bytes(payload) == digest
        assert calls == ["head_object", "put_object"]  # found: only the claim marker is written
        assert _objects(s3_bucket)[f"mlo/{_key(digest)}"] == 1 << 20
    finally:
        del blobs.fs._call_s3, blobs.fs.call_s3
