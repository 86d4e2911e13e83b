"""Blob addresses name their hash: new blobs ``blake3:<hex>``, blobs written before by SHA-256 (64 hex digits).

A workspace written with SHA-256 names (by the old layout, built here) keeps working without a migration: its
blobs load, verify, dedupe, are checked by ``mlo doctor`` and collected by ``mlo gc`` beside new BLAKE3 ones, and
both kinds go to and come back from object storage."""

from __future__ import annotations

import hashlib
import os
import time

import blake3
import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.errors import CorruptBlob, InvalidInput
from mlo.store import addresses
from mlo.store.blobs import LocalBlobStore, open_blob_store
from mlo.store.doctor import examine
from mlo.store.gc import collect

DAY = 86400


def old_put(store: LocalBlobStore, data: bytes) -> str:
    """Store ``data`` exactly as the store did before BLAKE3 names: ``<root>/<d[:2]>/<d[2:]>``, read-only."""
    d = hashlib.sha256(data).hexdigest()
    path = store.root / d[:2] / d[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    return d


def age(store, digest: str) -> None:
    t = time.time() - 2 * DAY
    os.utime(store.path(digest), (t, t))


def rot(store, digest: str, data: bytes = b"rotten") -> None:
    p = store.path(digest)
    os.chmod(p, 0o644)
    p.write_bytes(data)


def test_an_address_says_which_hash_made_it_and_fits_the_metadata_columns(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    new = store.put_bytes(b"hello")
    old = store.put_bytes(b"hello", algo="sha256")
    assert new == "blake3:" + blake3.blake3(b"hello").hexdigest()[:56]
    assert old == hashlib.sha256(b"hello").hexdigest()
    assert len(new) <= 64 and len(old) == 64  # the metadata columns are VARCHAR(64)
    assert (addresses.algorithm(new), addresses.algorithm(old)) == ("blake3", "sha256")
    assert store.path(new) == store.root / "blake3" / new[7:9] / new[9:]
    assert store.path(old) == store.root / old[:2] / old[2:]
    assert {b.digest for b in store.iter_blobs()} == {new, old}
    for bad in [
        "blake3:" + "0" * 64,
        "sha256:" + "0" * 64,
        "BLAKE3:" + "0" * 56,
        "0" * 63,
        "../" + "0" * 61,
        7,
    ]:
        with pytest.raises(InvalidInput, match="is not a blob address"):
            store.path(bad)


def test_a_short_digest_shows_the_same_digits_for_either_hash(sqlite_ws):
    new = "blake3:" + blake3.blake3(b"m").hexdigest()[:56]
    old = hashlib.sha256(b"m").hexdigest()
    assert addresses.short(new) == new[7:19] and addresses.short(old) == old[:12]
    assert addresses.short(None) == "" and addresses.short(new, 8) == new[7:15]
    from sklearn.linear_model import LinearRegression

    mv = mlo.register_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "short-digest")
    assert mv.digest.startswith("blake3:")
    assert f" {addresses.short(mv.digest)}" in repr(mv) and "blake3:" not in repr(mv)


def test_a_workspace_written_with_sha256_names_reads_verifies_dedupes_and_collects(sqlite_ws, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    old_df = pd.DataFrame({"x": np.arange(1000.0), "s": [f"v{i % 7}" for i in range(1000)]})
    X = np.random.default_rng(0).random((40, 2))
    with monkeypatch.context() as m:  # the store as it was: every new blob named by SHA-256
        m.setattr(addresses, "DEFAULT", addresses.SHA256)
        with mlo.start_run("before", experiment="upgrade") as run:
            mlo.log_text("written before", "notes.txt")
            old_snap = mlo.snapshot(old_df, "train")
            old_mv = mlo.register_model(LogisticRegression().fit(X, X[:, 0] > 0.5), "lr")
    old_orphan = old_put(sqlite_ws.blobs, b"an orphan of the old store")
    old_names = [old_snap.blob, old_mv.digest, *(a.digest for a in mlo.get_run(run.id).artifacts)]
    assert all(addresses.algorithm(d) == "sha256" and len(d) == 64 for d in old_names)

    # the same store after the upgrade, without any migration
    new_df = old_df.assign(x=old_df.x * 2)
    new_snap = mlo.snapshot(new_df, "train")
    new_orphan = sqlite_ws.blobs.put_bytes(b"an orphan of the new store")
    assert new_snap.blob.startswith("blake3:") and new_snap.version == 2
    pd.testing.assert_frame_equal(mlo.load_snapshot("train@1"), old_df)
    pd.testing.assert_frame_equal(mlo.load_snapshot("train@2"), new_df)
    assert mlo.load_model("lr/1") is not None  # its SHA-256 checked before unpickling
    assert sqlite_ws.blobs.get_bytes(old_mv.digest)
    assert mlo.get_run(run.id).artifacts[0].read_bytes() == b"written before"
    # dedupe: the data stored under a SHA-256 name is found by its digest and not stored again
    stored = len(list(sqlite_ws.blobs.iter_blobs()))
    again = mlo.snapshot(old_df.copy(), "train")
    assert (again.version, again.digest, again.blob) == (3, old_snap.digest, old_snap.blob)
    assert mlo.snapshot(old_df.copy(), "copy").blob == old_snap.blob
    assert len(list(sqlite_ws.blobs.iter_blobs())) == stored

    report = examine(verify=True)
    assert report.exit_code == 0, report.findings
    assert report.stats["corrupt"] == 0 and report.stats["orphaned"] == 2

    for d in (old_orphan, new_orphan):
        age(sqlite_ws.blobs, d)
    blobs = collect(sqlite_ws).step("unreferenced blobs")
    assert (blobs.removed, blobs.kept) == (2, 0)
    assert not sqlite_ws.blobs.exists(old_orphan) and not sqlite_ws.blobs.exists(new_orphan)
    assert all(sqlite_ws.blobs.exists(d) for d in [*old_names, new_snap.blob])

    # a rotten blob of either kind is caught on read and by doctor, with its own algorithm
    rot(sqlite_ws.blobs, old_snap.blob)
    rot(sqlite_ws.blobs, new_snap.blob)
    for d in (old_snap.blob, new_snap.blob):
        with pytest.raises(CorruptBlob, match="does not match its digest"):
            sqlite_ws.blobs.get_bytes(d)
        with pytest.raises(CorruptBlob):
            sqlite_ws.blobs.verify(d)
    report = examine(verify=True)
    assert report.stats["corrupt"] == 2 and report.exit_code == 3
    bad = next(f for f in report.findings if "no longer match" in f.message)
    assert {line[:12] for line in bad.details} == {old_snap.blob[:12], new_snap.blob[:12]}


@pytest.mark.parametrize("algo", ["blake3", "sha256"])
def test_a_truncated_or_interrupted_write_leaves_no_addressable_blob(tmp_path, algo):
    store = LocalBlobStore(tmp_path / "blobs")
    payload = os.urandom(3 << 20)
    with pytest.raises(RuntimeError, match="producer died"):
        with store.writer(background=True, algo=algo) as w:
            w.write(payload[: 1 << 20])
            raise RuntimeError("producer died")
    assert not list(store.iter_blobs()) and not list((store.root / "tmp").iterdir())
    # a blob cut short after it was stored (a power cut before the page cache reached the disk) fails its check
    d = store.put_bytes(payload, algo=algo)
    assert addresses.algorithm(d) == algo
    p = store.path(d)
    os.chmod(p, 0o644)
    with open(p, "r+b") as fh:
        fh.truncate(len(payload) // 2)
    with pytest.raises(CorruptBlob):
        store.get_bytes(d)
    with pytest.raises(CorruptBlob):
        store.copy_to(d, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_identical_content_is_stored_once_per_algorithm(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    payload = os.urandom(9 << 20)  # large enough for BLAKE3 on every core when in memory
    f = _write(tmp_path / "f.bin", payload)
    with store.writer(background=True) as w:
        w.write(payload)
    names = {store.put_bytes(payload), store.put_file(f), w.digest}
    assert len(names) == 1 and names.pop() == addresses.hash_file(f)
    assert len(list(store.iter_blobs())) == 1


def test_object_storage_holds_both_kinds_of_name(s3_bucket, tmp_path):
    """An old local store (SHA-256 names) and new blobs pushed to S3 side by side, pulled on another machine."""
    local = LocalBlobStore(tmp_path / "local")
    old = old_put(local, b"written by the old store" * 1000)
    new = local.put_bytes(b"written by the new store" * 1000)
    remote = open_blob_store(f"s3://{s3_bucket}/mlo", tmp_path / "cache")
    for b in local.iter_blobs():  # a push keeps every blob's name, whichever hash made it
        assert remote.put_file(b.path, algo=addresses.algorithm(b.digest)) == b.digest
    streamed = b"streamed straight to the bucket" * 100
    with remote.writer() as w:
        w.write(streamed)
    assert {b.digest for b in remote.iter_blobs()} == {old, new, w.digest}
    assert remote.claim(old) and remote.claim(new)
    assert set(remote.claims()) == {old, new}

    # another machine: an empty cache, every blob fetched and verified with its own hash
    other = open_blob_store(f"s3://{s3_bucket}/mlo", tmp_path / "other-cache")
    assert other.get_bytes(old) == local.get_bytes(old)
    assert other.get_bytes(new) == local.get_bytes(new)
    assert other.get_bytes(w.digest) == streamed
    assert other.rehash(old) == old and other.rehash(new) == new

    import boto3

    s3 = boto3.client("s3")
    for d in (old, new):
        s3.put_object(Bucket=s3_bucket, Key="mlo/" + "/".join(addresses.parts(d)), Body=b"rotten")
    third = open_blob_store(f"s3://{s3_bucket}/mlo", tmp_path / "third-cache")
    for d in (old, new):
        with pytest.raises(CorruptBlob, match="does not match its digest"):
            third.get_bytes(d)
        assert third.rehash(d) != d
        third.remove(d)
    assert {b.digest for b in third.iter_blobs()} == {w.digest} and third.claims() == {}
