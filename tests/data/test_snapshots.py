"""Snapshots as a user sees them: versions, references, dedup, files and folders, bad input, concurrency."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import mlo
from mlo.store import schema


def frame(n: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["a", "b"], n)})


def blob_files(ws) -> list:
    return [p for p in ws.blobs.root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def test_versions_dedup_and_references(ws):
    df = frame()
    s1 = mlo.snapshot(df, "train")
    assert (s1.name, s1.version, s1.rows, s1.n_columns, s1.kind, s1.format) == (
        "train",
        1,
        100,
        2,
        "frame",
        "parquet",
    )
    assert s1.schema == [{"name": "x", "dtype": "float64"}, {"name": "plan", "dtype": str(df["plan"].dtype)}]
    assert len(s1.digest) == 64 and s1.ref == "snapshot:train@1"
    files_before = blob_files(ws)

    again = mlo.snapshot(df.copy(), "train")  # unchanged: the same version, nothing written
    assert again.id == s1.id and blob_files(ws) == files_before

    alias = mlo.snapshot(df, "train-copy")  # same content, another name: a new record sharing the blob
    assert alias.version == 1 and alias.blob == s1.blob and blob_files(ws) == files_before

    changed = df.copy()
    changed.loc[99, "x"] = 0.0
    s2 = mlo.snapshot(changed, "train")
    assert s2.version == 2 and s2.digest != s1.digest

    back = mlo.snapshot(df, "train")  # data went back to v1's content: v3, same blob as v1
    assert back.version == 3 and back.blob == s1.blob

    pd.testing.assert_frame_equal(mlo.load_snapshot("train@1"), df)
    pd.testing.assert_frame_equal(mlo.load_snapshot("train@2"), changed)
    pd.testing.assert_frame_equal(mlo.load_snapshot("train"), df)
    pd.testing.assert_frame_equal(mlo.load_snapshot("snapshot:train@latest"), df)
    assert mlo.get_snapshot(f"train@{s2.digest[:8]}").version == 2
    assert mlo.get_snapshot(s2.id).version == 2

    listing = mlo.snapshots()
    assert list(listing.columns[:4]) == ["name", "version", "digest", "kind"]
    assert list(zip(listing.name, listing.version, strict=True)) == [
        ("train", 1),
        ("train", 2),
        ("train", 3),
        ("train-copy", 1),
    ]
    assert len(mlo.snapshots("train")) == 3


def test_digest_prefix_shared_by_versions_with_the_same_content_is_not_ambiguous(sqlite_ws):
    df = frame()
    s1 = mlo.snapshot(df, "d")
    mlo.snapshot(frame(seed=1), "d")
    mlo.snapshot(df, "d")  # v3 == v1's content
    assert mlo.get_snapshot(f"d@{s1.digest[:6]}").version == 3  # the newest version holding it


def test_missing_and_malformed_references_say_what_to_do(sqlite_ws):
    mlo.snapshot(frame(), "train")
    with pytest.raises(mlo.NotFound, match="did you mean 'train'"):
        mlo.load_snapshot("trian")
    with pytest.raises(mlo.NotFound, match="no version 7 .versions 1 to 1"):
        mlo.load_snapshot("train@7")
    with pytest.raises(mlo.NotFound, match="digest starts with"):
        mlo.load_snapshot("train@ffffffff")
    with pytest.raises(mlo.InvalidInput, match="at least 4 hex digits"):
        mlo.load_snapshot("train@zz")
    with pytest.raises(mlo.InvalidInput):
        mlo.load_snapshot("")


@pytest.mark.parametrize("bad", ["a/b", "../x", "x y", "a@1", "snap:1", "", ".hidden", None, 3])
def test_bad_names_are_refused_before_anything_is_written(sqlite_ws, bad):
    with pytest.raises(mlo.InvalidInput, match="snapshot name"):
        mlo.snapshot(frame(), bad)
    assert blob_files(sqlite_ws) == [] and mlo.snapshots().empty


def test_unsupported_objects_and_columns_are_refused_cleanly(sqlite_ws):
    with pytest.raises(mlo.InvalidInput, match="cannot snapshot a builtins.dict"):
        mlo.snapshot({"a": 1}, "d")
    mixed = pd.DataFrame({"id": [1, "two", 3.0]}, dtype=object)
    with pytest.raises(mlo.InvalidInput, match=r"column 'id' holds values of several .*astype\(str\)"):
        mlo.snapshot(mixed, "mixed")
    nested = pd.DataFrame({"tags": [["a"], ["b", "c"]]})
    with pytest.raises(mlo.InvalidInput, match="column 'tags'"):
        mlo.snapshot(nested, "nested")
    with pytest.raises(mlo.InvalidInput, match="object arrays"):
        mlo.snapshot(np.array([1, "a"], dtype=object), "objarr")
    with pytest.raises(mlo.InvalidInput, match="role"):
        mlo.snapshot(frame(), "x", role="both")
    with pytest.raises(mlo.NotFound, match="no file or folder"):
        mlo.snapshot("does/not/exist.csv", "x")
    assert blob_files(sqlite_ws) == [] and mlo.snapshots().empty


def test_profile_is_stored_with_the_snapshot(sqlite_ws):
    df = frame(1000)
    df.loc[::10, "x"] = np.nan
    snap = mlo.snapshot(df, "p")
    x = snap.column("x")
    assert x["kind"] == "numeric" and x["nulls"] == 100 and x["count"] == 1000
    assert x["min"] == pytest.approx(df.x.min()) and x["std"] == pytest.approx(df.x.std())
    assert sum(x["histogram"]["counts"]) == 900 and len(x["quantiles"]["values"]) == 101
    small = mlo.snapshot(pd.DataFrame({"k": [1, 2, 2, 3] * 5}), "ints").column("k")
    assert small["top"] == [[2, 10], [1, 5], [3, 5]] and small["distinct"] == 3  # ints stay ints
    plan = snap.column("plan")
    assert plan["kind"] == "categorical" and sorted(v for v, _ in plan["top"]) == ["a", "b"]
    assert sum(c for _, c in plan["top"]) == 1000
    assert mlo.get_snapshot("p").profile == snap.profile  # read back from the store
    html = snap._repr_html_()
    assert "Snapshot p@1" in html and "<svg" in html and len(html) < 20_000
    assert json.loads(json.dumps(snap.to_dict()))["profile"][0]["name"] == "x"


def test_files_and_folders(sqlite_ws, tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels.csv").write_text("id,y\n1,0\n2,1\n")
    (data / "images" / "a.bin").write_bytes(os.urandom(1000))
    (data / "images" / "b.bin").write_bytes(b"same")
    (data / "images" / "c.bin").write_bytes(b"same")

    f = mlo.snapshot(data / "labels.csv", "labels")
    assert f.kind == "file" and f.nbytes == 13
    restored = mlo.load_snapshot("labels")
    assert restored.read_text() == "id,y\n1,0\n2,1\n"

    folder = mlo.snapshot(data, "dataset")
    assert folder.kind == "folder" and folder.nbytes == 1000 + 13 + 8
    out = mlo.load_snapshot("dataset", to=tmp_path / "copy")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "images/a.bin",
        "images/b.bin",
        "images/c.bin",
        "labels.csv",
    ]
    assert (out / "images" / "a.bin").read_bytes() == (data / "images" / "a.bin").read_bytes()

    assert mlo.snapshot(data, "dataset").version == 1  # unchanged folder
    (data / "images" / "c.bin").write_bytes(b"changed")
    assert mlo.snapshot(data, "dataset").version == 2


def test_unchanged_files_are_not_read_again(sqlite_ws, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    old = 1_600_000_000_000_000_000
    os.utime(big, ns=(old, old))  # not "recently modified", so the stat cache may trust it
    first = mlo.snapshot(big, "big")
    with sqlite_ws.db.read() as c:
        assert c.execute(select(func.count()).select_from(schema.file_digests)).scalar() == 1
    # same size and mtime but different bytes: the cache trusts the stat, like every stat cache (git, DVC)
    assert mlo.snapshot(big, "big").id == first.id
    big.write_bytes(os.urandom(1 << 20))  # new mtime: hashed again
    assert mlo.snapshot(big, "big").version == 2


def test_a_damaged_blob_is_refused_on_load(sqlite_ws):
    snap = mlo.snapshot(frame(), "t")
    path = sqlite_ws.blobs.path(snap.blob)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(mlo.CorruptBlob, match="does not match its digest"):
        mlo.load_snapshot("t")


def test_concurrent_snapshots_of_the_same_data_give_one_blob_and_one_version(ws):
    home = str(ws.home)
    code = textwrap.dedent(f"""
        import os
        os.environ["MLO_HOME"] = {home!r}
        import numpy as np, pandas as pd, mlo
        df = pd.DataFrame({{"x": np.arange(200_000) * 0.5, "s": [f"v{{i % 97}}" for i in range(200_000)]}})
        snap = mlo.snapshot(df, "shared")
        mlo.snapshot(df.assign(w=int(os.environ["WORKER"])), "mine")
        print(snap.id, snap.blob)
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "WORKER": str(i)},
        )
        for i in range(6)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [e.decode() for _, e in outs]
    lines = {o.decode().strip() for o, _ in outs}
    assert len(lines) == 1  # every process got the same snapshot record and blob
    listing = mlo.snapshots()
    assert len(listing[listing.name == "shared"]) == 1
    assert sorted(listing[listing.name == "mine"].version) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]  # distinct data: distinct versions
    shared_blob = lines.pop().split()[1]
    assert sum(1 for p in blob_files(ws) if p.name == ws.blobs.path(shared_blob).name) == 1
    assert not list((ws.blobs.root / "tmp").glob("*"))  # no leftovers


def large_frame() -> pd.DataFrame:
    """Over a million rows (sampled profile, parallel paths, several hashing chunks) with NaNs of two payloads."""
    rng = np.random.default_rng(23)
    n = 1_200_000
    f = rng.standard_normal(n)
    f[::97] = np.nan
    bits = f.view("u8").copy()
    bits[::194] |= 1  # NaNs with another payload: the digest must not see the difference
    return pd.DataFrame(
        {
            "f": bits.view("f8"),
            "g": rng.standard_normal(n).astype("f4"),
            "i": rng.integers(0, 1000, n),
            "s": pd.array([f"c{i % 300}" for i in range(n)], dtype="str"),
        }
    )


def test_a_large_snapshot_keeps_its_digest_stored_table_and_profile(sqlite_ws):
    from mlo.data.profile import profile_column, sample_rows

    df = large_frame()
    snap = mlo.snapshot(df, "big")
    # the digest this data has had since digests began: the faster NaN check hashes the same bytes
    assert snap.digest == "d8c920d013c0bfc713e026dd2c3f8a595e0d2a2f219f0686f4b5cf6fc6760d11"
    clean = df.copy()
    clean.loc[clean.f.isna(), "f"] = np.nan
    assert mlo.snapshot(clean, "big").version == 1  # the canonical NaN gives the same digest
    sqlite_ws.blobs.verify(snap.blob)  # the SHA-256 hashed beside the writer names the bytes on disk
    pd.testing.assert_frame_equal(snap.load(), df)
    # columns profiled in parallel give what one column at a time gives
    seed = int(snap.digest[:8], 16)
    rows = sample_rows(len(df), seed)
    one_by_one = [profile_column(df[c].rename(c), seed=seed, rows=rows) for c in df.columns]
    assert json.loads(json.dumps(one_by_one)) == snap.profile
