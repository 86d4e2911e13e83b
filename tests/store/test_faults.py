"""The store fault contract: every fault of the store — a corrupt or truncated database, a zero-length one next to
blobs, a full disk, a read-only workspace, a database server that stops, a schema newer than the code — is one
StoreError line that says what happened and what to do, exit code 3 in the CLI, and loses nothing recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from failing_disks import file_size_limit, read_only, small_disk

import mlo
from mlo import workspace
from mlo.errors import StoreError

STORE_FAULT = 3


def cli(*args: str, env: dict | None = None, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlo: ") and "Traceback" not in err
    return lines[0]


def record_something(ws) -> str:
    with mlo.start_run("kept", experiment="faults") as run:
        mlo.log_metric("acc", 0.9)
        mlo.log_text("precious", "notes.txt")
    mlo.snapshot(__import__("pandas").DataFrame({"a": [1, 2, 3]}), "data")
    settle()
    return run.id


def settle() -> None:
    """Let the background capture finish and close every connection (SQLite folds its log into the file)."""
    from mlo.tracking.session import wait_for_capture

    wait_for_capture()
    workspace.reset_cache()


# -- a damaged database ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_or_truncated_database_is_one_line_and_exit_3(sqlite_ws, damage):
    with mlo.start_run("big", experiment="faults"):
        mlo.log_params({f"p{i}": "x" * 200 for i in range(300)})  # enough pages for a truncation to hurt
    settle()
    db = sqlite_ws.home / "mlo.db"
    data = db.read_bytes()
    db.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)

    out = cli("runs")
    assert out.returncode == STORE_FAULT
    line = one_line(out.stderr)
    assert f"the metadata database {db} is damaged" in line and "restore it from a backup" in line
    assert ("not a database" if damage == "garbage" else "malformed") in line
    with pytest.raises(StoreError, match="is damaged") as info:
        mlo.runs()
    assert info.value.kind == "corrupt" and info.value.exit_code == STORE_FAULT


def test_a_schema_newer_than_the_code_is_one_line_and_exit_3(sqlite_ws):
    from mlo.store import schema

    sqlite_ws.db.write(lambda c: c.execute(schema.meta.update().values(value="999")))
    workspace.reset_cache()
    out = cli("runs")
    assert out.returncode == STORE_FAULT
    line = one_line(out.stderr)
    assert "has schema version 999, newer than this mlo knows" in line and "upgrade mlo-workbench" in line


def test_a_table_dropped_by_hand_is_one_line_and_exit_3(sqlite_ws):
    run_id = record_something(sqlite_ws)
    sqlite_ws.db.write(lambda c: c.exec_driver_sql("DROP TABLE params"))
    workspace.reset_cache()
    out = cli("runs")
    assert out.returncode == STORE_FAULT
    line = one_line(out.stderr)
    assert "lacks part of mlo's schema (" in line and "no such table: params" in line and "backup" in line
    with pytest.raises(StoreError, match="lacks part of mlo's schema") as info:
        mlo.runs()
    assert info.value.kind == "schema"
    assert cli("runs", "--help").returncode == 0 and run_id  # the CLI still answers; nothing else was touched


# -- an emptied database next to blobs ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["zero-length", "deleted"])
def test_an_emptied_database_next_to_blobs_is_refused_not_recreated(sqlite_ws, how):
    record_something(sqlite_ws)
    db = sqlite_ws.home / "mlo.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    if how == "zero-length":
        db.write_bytes(b"")
    else:
        db.unlink()

    for args in (["runs"], ["init", str(sqlite_ws.home.parent)]):
        out = cli(*args)
        assert out.returncode == STORE_FAULT, out
        line = one_line(out.stderr)
        state = "is empty (0 bytes)" if how == "zero-length" else "is missing"
        assert f"{db} {state}, but the blob store" in line and "records of this workspace were lost" in line
        assert "Restore the database from a backup" in line
    with pytest.raises(StoreError, match="will not create an empty one over existing data"):
        mlo.start_run("new")
    # nothing was created over the evidence, and the blobs are all there to restore the records to
    assert (db.stat().st_size == 0) if how == "zero-length" else not db.exists()
    assert len(list(sqlite_ws.blobs.iter_blobs())) >= 2


def test_a_zero_length_database_without_blobs_is_a_new_workspace(tmp_path, monkeypatch):
    home = tmp_path / ".mlo"
    home.mkdir()
    (home / "mlo.db").write_bytes(b"")
    monkeypatch.setenv("MLO_HOME", str(home))
    workspace.reset_cache()
    with mlo.start_run("first"):
        mlo.log_metric("x", 1.0)
    assert mlo.runs().name.tolist() == ["first"]


# -- a full disk -------------------------------------------------------------------------------------------------
FULL_DISK_SESSION = textwrap.dedent(
    """
    import sys, mlo, numpy as np, pandas as pd
    run = mlo.start_run("before", experiment="faults")
    mlo.log_metric("acc", 0.9)
    mlo.log_text("precious", "notes.txt")
    mlo.flush()
    from mlo.tracking.session import wait_for_capture
    wait_for_capture()
    print("ready", flush=True)
    sys.stdin.readline()  # the disk fills up now

    def attempt(label, fn):
        try:
            fn()
            print(label, "ok", flush=True)
        except mlo.MloError as exc:
            print(label, type(exc).__name__, exc.kind, exc.exit_code, "|", exc, flush=True)
        except BaseException as exc:
            print(label, "RAW", type(exc).__name__, exc, flush=True)

    attempt("snapshot", lambda: mlo.snapshot(pd.DataFrame({"a": np.random.rand(400_000)}), "df"))
    attempt("register", lambda: mlo.register_model(np.random.rand(400_000), "weights"))
    attempt("artifact", lambda: mlo.log_text("x" * 4_000_000, "big.txt"))
    attempt("metrics", lambda: (mlo.log_metrics({f"m{i}": float(i) for i in range(3000)}), mlo.flush()))
    """
)


def test_a_full_disk_is_one_line_per_write_and_loses_nothing(tmp_path, monkeypatch):
    root = tmp_path / "disk"
    with small_disk(root, size_mb=16) as fill:
        home = root / ".mlo"
        env = {"MLO_HOME": str(home)}
        preexec = None if fill is not None else file_size_limit(3 << 20)  # no tmpfs: a file size limit
        child = subprocess.Popen(
            [sys.executable, "-c", FULL_DISK_SESSION],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            if fill is not None:
                fill()
            out, err = child.communicate("go\n", timeout=120)
        finally:
            child.kill()
        results = dict(line.split(" ", 1) for line in out.strip().splitlines())
        assert set(results) == {"snapshot", "register", "artifact", "metrics"}, out + err
        full = "file size limit was reached" if fill is None else "no space left"
        for label in ("snapshot", "register", "artifact"):
            assert results[label].startswith("StoreError full 3 | "), results[label]
            assert full in results[label] and "free disk space" in results[label]
        if fill is not None:  # SQLite's own writes hit the full disk too (a size limit spares the small WAL)
            assert results["metrics"].startswith(
                "StoreError full 3 | no space left to write the metadata database"
            )
        # no half-written blob or temp file is left behind
        assert not list((home / "blobs" / "tmp").glob("put-*"))
        # the CLI says the same in one line with exit code 3
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(4 << 20))
        out = cli("snapshot", str(big), env=env, preexec=preexec)
        assert out.returncode == STORE_FAULT and "free disk space" in one_line(out.stderr)
        if fill is not None:
            (root / "filler").unlink()  # space again: everything recorded before is there
        monkeypatch.setenv("MLO_HOME", str(home))
        workspace.reset_cache()
        runs = mlo.runs()
        assert runs.name.tolist() == ["before"] and runs["metrics.acc"].tolist() == [0.9]
        assert mlo.get_run(runs.run_id[0]).artifacts[0].read_bytes() == b"precious"
        workspace.reset_cache()


# -- a read-only workspace --------------------------------------------------------------------------------------
def test_a_read_only_workspace_reads_and_refuses_writes_in_one_line(sqlite_ws):
    run_id = record_something(sqlite_ws)
    with read_only(sqlite_ws.home):
        out = cli("runs")
        assert out.returncode == 0 and run_id[:8] in out.stdout, out.stderr  # its short id
        assert cli("snapshots").returncode == 0
        assert cli("doctor").returncode == 0
        out = cli("show", run_id)
        assert out.returncode == 0 and "notes.txt" in out.stdout
        workspace.reset_cache()
        assert mlo.get_run(run_id).artifacts[0].read_bytes() == b"precious"
        assert mlo.load_snapshot("data").a.tolist() == [1, 2, 3]
        with pytest.raises(StoreError, match="read-only") as info:
            mlo.start_run("more")
        assert info.value.kind == "read-only"
        out = cli("snapshot", __file__)
        assert out.returncode == STORE_FAULT
        line = one_line(out.stderr)
        assert (
            "read-only" in line and "get write access to it or set MLO_HOME to a writable workspace" in line
        )
        out = cli("gc")
        assert out.returncode == STORE_FAULT and "read-only" in one_line(out.stderr)
        workspace.reset_cache()
    assert mlo.runs().run_id.tolist() == [run_id]


# -- a database server that stops mid-session ----------------------------------------------------------------
@pytest.mark.postgres
def test_postgresql_stopped_mid_session_is_one_line_and_exit_3(tmp_path, monkeypatch, own_postgres):
    cluster = own_postgres  # its own server: this one is stopped under the session's feet
    try:
        url = cluster.url(cluster.new_database())
        monkeypatch.setenv("MLO_HOME", str(tmp_path / ".mlo"))
        monkeypatch.setenv("MLO_STORE", url)
        workspace.reset_cache()
        mlo.init(tmp_path)
        with mlo.start_run("before", experiment="faults"):
            mlo.log_metric("acc", 0.9)
        run = mlo.start_run("during")
        cluster._run(str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), "-m", "fast", "stop")

        with pytest.raises(StoreError) as info:
            mlo.log_metric("loss", 0.1)
            mlo.flush()
        assert info.value.kind == "unreachable"
        message = str(info.value)
        assert "\n" not in message and "cannot reach the metadata database at postgresql" in message
        assert "start the database server or fix MLO_STORE" in message
        with pytest.raises(StoreError, match="cannot reach the metadata database"):
            mlo.runs()
        out = cli("runs")
        assert out.returncode == STORE_FAULT
        assert "cannot reach the metadata database" in one_line(out.stderr)

        cluster.resume()
        mlo.end_run()  # the session goes on where it stopped
        df = mlo.runs()
        assert set(df.name) == {"before", "during"} and run.id in set(df.run_id)
    finally:
        workspace.reset_cache()


# -- in a notebook -------------------------------------------------------------------------------------------------
def test_the_magics_show_a_store_fault_as_one_line(shell, sqlite_ws):
    from IPython.core.error import UsageError

    record_something(sqlite_ws)
    db = sqlite_ws.home / "mlo.db"
    db.write_bytes(b"\0" * 4096)
    err = shell.fails("%mlo runs")
    assert isinstance(err, UsageError)
    assert "\n" not in str(err) and f"the metadata database {db} is damaged" in str(err)
    err = shell.fails("import mlo\nmlo.runs()")  # the API in a cell: the exception shows as its one line
    assert isinstance(err, StoreError)
    assert len(err._render_traceback_()) == 1


def test_a_cell_whose_record_fails_says_so_in_one_line(shell, sqlite_ws, capfd):
    """The cell ran; writing its record hit a read-only disk: one line on stderr, not a callback traceback."""
    shell.run("%mlo start capture")
    shell.run("x = 1")
    settle_capture = "from mlo.tracking.session import wait_for_capture; wait_for_capture()"
    shell.run(settle_capture)
    capfd.readouterr()
    with read_only(sqlite_ws.home) as how:
        if how != "mount":
            pytest.skip("needs a read-only mount (root) to fail a workspace that is already open")
        workspace.current().db.dispose()  # open files keep the old mount: connect again through the read-only one
        shell.run("y = 2")
        err = capfd.readouterr().err
        assert "mlo: this cell was not recorded: " in err and "read-only" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert shell.run("y") == 2
    workspace.current().db.dispose()  # writable again
    shell.run("%mlo end")
    workspace.reset_cache()
    cells = mlo.get_run(mlo.runs().run_id[0]).cells
    assert [c.source for c in cells][-1] != "y = 2" and "x = 1" in [c.source for c in cells]


def test_a_database_locked_past_the_retry_deadline_is_one_line(tmp_path, monkeypatch):
    import sqlite3

    from mlo.store import db as db_module

    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(db_module, "RETRY_SECONDS", 0.5)
    monkeypatch.setenv("MLO_HOME", str(tmp_path / ".mlo"))
    workspace.reset_cache()
    mlo.init(tmp_path)
    holder = sqlite3.connect(tmp_path / ".mlo" / "mlo.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a stuck writer
    try:
        with pytest.raises(StoreError, match="stayed locked by another process") as info:
            mlo.start_run("blocked")
        assert info.value.kind == "busy" and "\n" not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with mlo.start_run("free"):
        pass


@pytest.mark.postgres
def test_postgresql_without_the_database_or_the_server_is_one_line(tmp_path, postgres):
    import socket

    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    env = {"MLO_HOME": str(tmp_path / ".mlo")}
    (tmp_path / ".mlo").mkdir()
    for url, says in (
        (postgres.url("no_such_db"), "does not exist on its server"),
        (
            f"postgresql://mlo@127.0.0.1:{_free_port()}/mlo",
            "cannot reach the metadata database at postgresql",
        ),
        (f"postgresql://mlo:secret@127.0.0.1:{_free_port()}/mlo", "postgresql://mlo:***@127.0.0.1"),
    ):
        out = cli("runs", env={**env, "MLO_STORE": url})
        assert out.returncode == STORE_FAULT, out.stderr
        line = one_line(out.stderr)
        assert says in line and "secret" not in line
