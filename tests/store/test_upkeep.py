"""Keeping a workspace tidy: temp files of killed writes are swept on the next open (never a live writer's),
``mlo doctor`` reports what is wrong without changing anything, ``mlo gc`` removes only what no record needs —
also while other processes write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo import workspace
from mlo.store import addresses
from mlo.store import gc as gc_module
from mlo.store.doctor import examine
from mlo.store.gc import collect

DAY = 86400


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlo", *args], capture_output=True, text=True, timeout=120)


def age(ws, digest: str, seconds: float = 2 * DAY) -> None:
    """Make a blob look written ``seconds`` ago."""
    p = ws.blobs.path(digest)
    t = time.time() - seconds
    os.utime(p, (t, t))


def settle() -> None:
    from mlo.tracking.session import wait_for_capture

    wait_for_capture()


# -- temp files of killed writes ------------------------------------------------------------------------------
# The child pauses at a chosen point of a real write (mid-stream, or written but not yet renamed into place),
# says so, and waits to be killed.
KILLED_WRITE = textwrap.dedent(
    """
    import sys, time, mlo, numpy as np, pandas as pd
    from mlo.store import blobs

    def pause():
        print("paused", flush=True)
        time.sleep(600)

    if sys.argv[1] == "snapshot":
        write = blobs.BlobWriter.write
        def slow_write(self, data):
            n = write(self, data)
            if self.tell() > (1 << 20):
                pause()
            return n
        blobs.BlobWriter.write = slow_write
        mlo.snapshot(pd.DataFrame({"x": np.random.rand(1_000_000)}), "big")
    else:
        def commit(self, tmp, digest):
            pause()
        blobs.LocalBlobStore._commit = commit
        from sklearn.linear_model import LogisticRegression
        X = np.random.rand(50, 3)
        mlo.register_model(LogisticRegression().fit(X, X[:, 0] > 0.5), "killed")
    """
)


def start_write(what: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITE, what], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = child.stdout.readline().strip()
    assert line == "paused", child.stderr.read()
    return child


@pytest.mark.parametrize("what", ["snapshot", "registration"])
def test_temp_files_of_a_killed_write_are_removed_on_the_next_open(sqlite_ws, what):
    child = start_write(what)
    temps = sqlite_ws.blobs.temp_files()
    assert len(temps) == 1 and temps[0].live and temps[0].size > 0
    # another process opening the workspace meanwhile leaves a live writer's file alone
    workspace.reset_cache()
    assert len(workspace.current().blobs.temp_files()) == 1
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    left = sqlite_ws.blobs.temp_files()
    assert len(left) == 1 and not left[0].live

    report = examine()
    temp = [f for f in report.findings if f.check == "temp files"][0]
    assert temp.level == "warning" and "1 temp file(s)" in temp.message and report.exit_code == 0
    assert left[0].path.exists()  # doctor changed nothing

    workspace.reset_cache()
    with mlo.start_run("next"):  # the next open for writing sweeps
        pass
    assert not left[0].path.exists()
    assert not list((sqlite_ws.blobs.root / "tmp").glob("put-*"))
    assert mlo.snapshots().empty if what == "snapshot" else mlo.models().empty  # nothing half-recorded
    assert [f.level for f in examine().findings if f.check == "temp files"] == ["ok"]


# -- doctor ------------------------------------------------------------------------------------------------------
@pytest.fixture
def recorded(sqlite_ws, tmp_path):
    """Records of every kind that refers to blobs."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.bin").write_bytes(os.urandom(100) + bytes([i]))
    with mlo.start_run("train", experiment="upkeep") as run:
        mlo.log_text("precious", "notes.txt")
        frame = mlo.snapshot(pd.DataFrame({"a": np.arange(10)}), "frame")
        images = mlo.snapshot(folder, "images")
        X = np.random.default_rng(0).random((40, 2))
        mv = mlo.register_model(LogisticRegression().fit(X, X[:, 0] > 0.5), "lr")
    report = sqlite_ws.reports.save("drift", {"passed": True}, {"columns": [1, 2, 3]}, passed=True)
    cached = sqlite_ws.blobs.put_bytes(b"executed notebook")
    sqlite_ws.stage_cache.put("k" * 64, "train", "train", run.id, [], cached)
    settle()
    return {"run": run, "frame": frame, "images": images, "mv": mv, "report": report, "cached": cached}


def test_doctor_on_a_healthy_workspace(recorded):
    out = cli("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "integrity_check ok" in out.stdout and "every referenced blob is there" in out.stdout
    assert out.stdout.strip().splitlines()[-1].startswith("healthy")
    data = json.loads(cli("doctor", "--format", "json", "--verify").stdout)
    assert data["healthy"] and data["exit_code"] == 0
    assert data["stats"]["missing"] == 0 and data["stats"]["corrupt"] == 0
    assert data["stats"]["referenced"] == data["stats"]["blobs"]  # env, notes, frame, 3 files + manifest, …


def test_doctor_names_missing_and_corrupt_blobs_and_what_refers_to_them(recorded, sqlite_ws):
    notes = recorded["run"].artifacts[0].digest
    path = sqlite_ws.blobs.path(notes)
    os.chmod(path, 0o644)
    path.unlink()
    frame = sqlite_ws.blobs.path(recorded["frame"].blob)
    os.chmod(frame, 0o644)
    frame.write_bytes(b"not parquet any more")
    orphan = sqlite_ws.blobs.put_bytes(b"nobody refers to me")
    out = cli("doctor", "--verify")
    assert out.returncode == 3
    text = out.stdout
    assert f"{notes[:12]}: artifact notes.txt of run {recorded['run'].id}" in text
    assert "1 blob(s) that records refer to are missing" in text
    assert "no longer match their digest" in text and "snapshot frame@1" in text
    assert "1 blob(s) (19 bytes) that no record refers to" in text
    assert sqlite_ws.blobs.exists(orphan)  # doctor removes nothing


def test_doctor_reports_a_corrupt_database_and_bad_settings(recorded, sqlite_ws):
    db = sqlite_ws.home / "mlo.db"
    workspace.reset_cache()
    db.write_bytes(b"\0" * 8192)
    (sqlite_ws.home / "mlo.toml").write_text("[registy]\n")
    out = cli("doctor")
    assert out.returncode == 3
    assert "unknown section [registy] — did you mean 'registry'?" in out.stdout
    assert "FAULT    database" in out.stdout


# -- gc ----------------------------------------------------------------------------------------------------------
def test_gc_removes_only_old_blobs_that_nothing_refers_to(recorded, sqlite_ws):
    old = [sqlite_ws.blobs.put_bytes(f"old orphan {i}".encode()) for i in range(5)]
    recent = sqlite_ws.blobs.put_bytes(b"a record may be on its way")
    for d in old:
        age(sqlite_ws, d)
    for b in sqlite_ws.blobs.iter_blobs():  # the referenced ones are old too: age protects nothing
        age(sqlite_ws, b.digest) if b.digest != recent else None
    before = {b.digest for b in sqlite_ws.blobs.iter_blobs()}

    dry = collect(sqlite_ws, dry_run=True)
    assert dry.step("unreferenced blobs").removed == 5 and dry.step("unreferenced blobs").kept == 1
    assert {b.digest for b in sqlite_ws.blobs.iter_blobs()} == before

    report = collect(sqlite_ws)
    blobs = report.step("unreferenced blobs")
    assert (blobs.found, blobs.removed, blobs.kept) == (6, 5, 1)
    assert blobs.bytes == sum(len(f"old orphan {i}") for i in range(5))
    assert {b.digest for b in sqlite_ws.blobs.iter_blobs()} == before - set(old)
    # everything the records need is there and loads
    assert examine(verify=True).exit_code == 0
    assert recorded["run"].artifacts[0].read_bytes() == b"precious"
    assert mlo.load_snapshot("frame").a.tolist() == list(range(10))
    assert sorted(p.name for p in mlo.get_snapshot("images").load().iterdir()) == [
        "0.bin",
        "1.bin",
        "2.bin",
    ]
    assert mlo.load_model("lr/1").predict(np.zeros((1, 2))).shape == (1,)
    assert sqlite_ws.reports.load(recorded["report"], "drift")[1]["columns"] == [1, 2, 3]
    assert sqlite_ws.blobs.exists(recorded["cached"])
    # with no grace, the recent one goes too
    assert collect(sqlite_ws, grace=0).step("unreferenced blobs").removed == 1


def test_gc_on_the_command_line(recorded, sqlite_ws):
    orphan = sqlite_ws.blobs.put_bytes(b"orphan")
    age(sqlite_ws, orphan)
    out = cli("gc", "--dry-run", "--format", "json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    step = [s for s in data["steps"] if s["name"] == "unreferenced blobs"][0]
    assert data["dry_run"] and step["removed"] == 1 and sqlite_ws.blobs.exists(orphan)
    out = cli("gc", "--grace", "1h")
    assert out.returncode == 0 and "removed 1 (6 B)" in out.stdout, out.stdout
    assert not sqlite_ws.blobs.exists(orphan)
    out = cli("gc", "--grace", "soon")
    assert out.returncode == 2 and "is not a duration" in out.stderr


def test_a_blob_claimed_between_listing_and_removal_is_kept(sqlite_ws, monkeypatch):
    """A writer stores content that is already there (an old orphan) while gc is deciding: it must survive."""
    claimed = sqlite_ws.blobs.put_bytes(b"reused by a writer")
    committed = sqlite_ws.blobs.put_bytes(b"named by a record committed meanwhile")
    garbage = sqlite_ws.blobs.put_bytes(b"really garbage")
    for d in (claimed, committed, garbage):
        age(sqlite_ws, d)

    rename = os.rename

    def rename_after_a_claim(src, dst):
        if os.path.basename(dst) == addresses.flat(claimed):
            sqlite_ws.blobs.claim(claimed)  # the writer's put_bytes, just before gc moves the file
        return rename(src, dst)

    references = gc_module._references
    calls = []

    def references_after_a_commit(ws):
        calls.append(1)
        if len(calls) == 2:  # gc reads the references again after moving the candidates aside
            with mlo.start_run("writer") as run:
                sqlite_ws.runs.add_artifacts(
                    run.id, [{"path": "late.txt", "digest": committed, "size": 37, "media_type": None}]
                )
        return references(ws)

    monkeypatch.setattr(gc_module.os, "rename", rename_after_a_claim)
    monkeypatch.setattr(gc_module, "_references", references_after_a_commit)
    report = collect(sqlite_ws)
    blobs = report.step("unreferenced blobs")
    assert (blobs.found, blobs.removed, blobs.kept) == (3, 1, 2)
    assert sqlite_ws.blobs.exists(claimed) and sqlite_ws.blobs.exists(committed)
    assert not sqlite_ws.blobs.exists(garbage)


def test_the_trash_of_a_killed_gc_is_restored_or_emptied(recorded, sqlite_ws):
    needed = recorded["run"].artifacts[0].digest
    garbage = sqlite_ws.blobs.put_bytes(b"garbage")
    age(sqlite_ws, needed)
    age(sqlite_ws, garbage)
    trash = sqlite_ws.blobs.root / "tmp" / "gc-99999-1"
    trash.mkdir(parents=True)
    for d in (needed, garbage):
        os.rename(sqlite_ws.blobs.path(d), trash / addresses.flat(d))  # as gc moves them
    assert examine().exit_code == 3  # a record's blob is in the trash: missing until restored
    step = collect(sqlite_ws).step("trash of an interrupted gc")
    assert (step.found, step.kept, step.removed) == (2, 1, 1)
    assert sqlite_ws.blobs.exists(needed) and not sqlite_ws.blobs.exists(garbage) and not trash.exists()
    assert examine().exit_code == 0


def test_one_gc_at_a_time(sqlite_ws):
    import fcntl

    lock = sqlite_ws.blobs.root / "tmp" / "gc.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(mlo.InvalidInput, match="another mlo gc is running"):
            collect(sqlite_ws)
    collect(sqlite_ws)


WRITER = textwrap.dedent(
    """
    import sys, mlo
    n = int(sys.argv[1])
    with mlo.start_run("writer") as run:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(n):
            mlo.log_text(f"shared content {i % 40}", f"reused/{i}.txt")   # mostly blobs that exist as orphans
            mlo.log_text(f"fresh content {i}", f"fresh/{i}.txt")
    print(run.id)
    """
)


def test_gc_never_removes_a_blob_that_a_concurrent_writer_needs(sqlite_ws):
    """Writers in two processes log artifacts whose content gc sees as old garbage, while gc runs in a loop."""
    orphans = [sqlite_ws.blobs.put_bytes(f"shared content {i}".encode()) for i in range(40)]
    others = [sqlite_ws.blobs.put_bytes(f"garbage {i}".encode()) for i in range(40)]
    for d in orphans + others:
        age(sqlite_ws, d)
    settle()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "150"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for w in writers:
        assert w.stdout.readline().strip() == "ready"
    for w in writers:  # go: the writers reuse the old orphans while gc removes them
        w.stdin.write("go\n")
        w.stdin.flush()
    runs = 0
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        collect(sqlite_ws, grace=60)
        runs += 1
    ids = [w.communicate(timeout=60)[0].strip() for w in writers]
    assert all(w.returncode == 0 for w in writers) and runs >= 2
    collect(sqlite_ws, grace=60)
    assert not any(sqlite_ws.blobs.exists(d) for d in others)  # the garbage went
    report = examine(verify=True)
    assert report.stats["missing"] == 0, report.findings
    for run_id in ids:
        arts = mlo.get_run(run_id).artifacts
        assert len(arts) == 300
        for a in arts:
            a.read_bytes()


def test_gc_runs_the_purge_steps_first(sqlite_ws, monkeypatch):
    """A step that frees records (e.g. purging deleted runs) runs before the sweep, so its blobs go in the same
    collection."""
    orphan = sqlite_ws.blobs.put_bytes(b"freed by the purge")
    age(sqlite_ws, orphan)
    seen = []

    def purge(ws, dry_run):
        seen.append(dry_run)
        return {"found": 1, "removed": 0 if dry_run else 1}

    module = type(sys)("purge_for_test")
    module.purge = purge
    monkeypatch.setitem(sys.modules, "purge_for_test", module)
    monkeypatch.setattr(gc_module, "PURGE_STEPS", [("deleted things", "purge_for_test:purge")])
    report = collect(sqlite_ws)
    assert report.steps[0].name == "deleted things" and report.steps[0].removed == 1 and seen == [False]
    assert report.step("unreferenced blobs").removed == 1


def test_a_live_writer_keeps_its_temp_file_while_gc_runs(sqlite_ws):
    child = start_write("snapshot")
    try:
        step = collect(sqlite_ws).step("temp files")
        assert (step.found, step.removed, step.kept) == (1, 0, 1)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert collect(sqlite_ws).step("temp files").removed == 1


def test_threads_sweeping_while_one_writes(sqlite_ws):
    """Sweeps from other threads never take a temp file that a writer of this process holds."""
    stop = threading.Event()

    def sweep():
        while not stop.is_set():
            sqlite_ws.blobs.sweep_temp()

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for t in sweepers:
        t.start()
    try:
        digests = [sqlite_ws.blobs.put_bytes(os.urandom(20_000)) for _ in range(200)]
    finally:
        stop.set()
        for t in sweepers:
            t.join()
    assert all(sqlite_ws.blobs.exists(d) for d in digests)


def test_gc_purges_runs_deleted_over_30_days_ago_and_frees_their_blobs(sqlite_ws, tmp_path):
    """The run lifecycle's purge is gc's first step: a run deleted long ago goes, with the blob only it used;
    a run deleted yesterday and a run a model version refers to stay."""
    from sqlalchemy import update

    from mlo.store import schema as s

    (tmp_path / "old.txt").write_text("only the old run logged this")
    with mlo.start_run("old") as old:
        mlo.log_artifact(tmp_path / "old.txt")
    with mlo.start_run("recent") as recent:
        mlo.log_metric("m", 1.0)
    with mlo.start_run("trained") as trained:
        mlo.register_model(lambda rows: rows, "identity", run=trained)
    for r in (old, recent, trained):
        mlo.delete_run(r.id)
    month_ago = (time.time() - 31 * 86400) * 1e6
    sqlite_ws.db.write(
        lambda c: c.execute(
            update(s.runs).where(s.runs.c.id.in_([old.id, trained.id])).values(deleted_at=int(month_ago))
        )
    )
    blob = mlo.get_run(old.id).artifacts[0].digest
    age(sqlite_ws, blob)
    report = collect(sqlite_ws)
    step = report.step("deleted runs")
    assert (step.removed, step.kept) == (1, 1)
    left = set(mlo.runs(include="deleted").run_id)
    assert old.id not in left and {recent.id, trained.id} <= left
    assert not sqlite_ws.blobs.exists(blob)
