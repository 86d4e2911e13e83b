"""Restoring a cached stage's outs: a large out unchanged since it was hashed is known by its stat cache, and
any change to it (even one that keeps its size) brings the cached bytes back."""

from __future__ import annotations

import os

from mlo.data import files
from mlo.pipeline import execute
from mlo.store import blobs


def test_a_large_out_is_checked_by_its_stat_cache_and_restored_when_changed(sqlite_ws, tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    out = root / "models" / "big.bin"
    data = os.urandom(5 << 20)  # over the size below which outs are hashed
    out.write_bytes(data)
    os.utime(out, ns=(10**18, 10**18))  # written well before now: its digest is remembered
    snap = files.snapshot_path(sqlite_ws, out)
    outs = [{"path": "models/big.bin", "kind": "file", "digest": snap.digest, "blob": snap.blob}]

    hashed = []

    def counting(path):
        hashed.append(path)
        return blobs.hash_file(path)

    monkeypatch.setattr(execute, "hash_file", counting)
    monkeypatch.setattr(files, "hash_file", counting)
    assert execute.restore(sqlite_ws, root, outs) == 0
    assert hashed == []  # unchanged since hashed: not read again

    with open(out, "r+b") as fh:  # same size, other bytes, a new mtime
        fh.write(b"\0" * 16)
    assert execute.restore(sqlite_ws, root, outs) == 1 and out.read_bytes() == data
    assert hashed  # changed: hashed, found different, restored

    out.unlink()
    assert execute.restore(sqlite_ws, root, outs) == 1 and out.read_bytes() == data
