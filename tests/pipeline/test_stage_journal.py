"""A stage's kernel records its run in a journal that the runner stores: nothing is lost when the kernel is killed,
a line cut short is skipped, and every kind of record lands on the run as it would have from the kernel."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from array import array
from pathlib import Path

import pytest
from notebooks_on_disk import write_notebook

import mlo
from mlo.pipeline import run
from mlo.tracking import journal, session


def test_a_killed_stage_is_failed_and_keeps_the_cells_it_ran(sqlite_ws, tmp_path):
    write_notebook(
        tmp_path / "dies.ipynb",
        "step = 1",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    )
    (tmp_path / "pipeline.yaml").write_text("stages:\n  dies: {notebook: dies.ipynb}\n")
    r = run(tmp_path / "pipeline.yaml", log=None)
    assert r.exit_code == 2 and "the kernel died" in r.tasks[0].message
    stage = mlo.get_run(r.tasks[0].run_id)
    assert stage.status == "failed"
    cells = [c.source for c in stage.cells]
    assert cells[:1] == ["step = 1"]  # the cell that ran before the kill, from the journal
    assert "mlo/capture.json" in {a.path for a in stage.artifacts}
    assert not list((sqlite_ws.home / "executions").glob("*.journal"))  # stored, then removed


def test_a_journal_left_by_a_killed_runner_is_stored_on_its_run_by_the_next_run(
    sqlite_ws, tmp_path, wait_until
):
    import os
    import signal
    import subprocess
    import sys

    write_notebook(
        tmp_path / "holds.ipynb",
        "step = 1",
        "import os, time\nopen('started', 'w').close()\nwhile os.path.exists('hold'): time.sleep(0.05)",
    )
    (tmp_path / "pipeline.yaml").write_text("stages:\n  holds: {notebook: holds.ipynb}\n")
    (tmp_path / "hold").touch()
    runner = subprocess.Popen(
        [sys.executable, "-m", "mlo", "pipeline", "run", "pipeline.yaml"],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stage_cells():
        left = list((sqlite_ws.home / "executions").glob("holds.*.journal"))
        return left and [c.source for c in mlo.get_run(left[0].name.split(".")[1]).cells]

    try:
        assert wait_until(lambda: (tmp_path / "started").exists(), timeout=120)
        # the cells the stage ran show on its run while it runs (stored from the journal as it grows)
        assert wait_until(lambda: "step = 1" in (stage_cells() or []), timeout=60)
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernel, at once
        runner.wait()
    left = list((sqlite_ws.home / "executions").glob("holds.*.journal"))
    assert len(left) == 1
    killed_id = left[0].name.split(".")[1]
    assert journal.STORED in mlo.get_run(killed_id).tags  # how much of it the runner stored before it died
    (tmp_path / "hold").unlink()

    r = run(tmp_path / "pipeline.yaml", log=None)
    assert r.exit_code == 0, r.tasks
    killed = mlo.get_run(killed_id)
    assert killed.status == "killed"
    sources = [c.source for c in killed.cells]
    assert sources[:1] == ["step = 1"] and sources.count("step = 1") == 1  # the rest of the journal, once
    assert journal.STORED not in killed.tags
    assert not list((sqlite_ws.home / "executions").glob("*.journal"))


def test_a_stage_records_cells_params_metrics_and_outs_on_its_run(sqlite_ws, tmp_path):
    write_notebook(
        tmp_path / "nb.ipynb",
        "open('out.txt', 'w').write(str(n * 2))",
        "import mlo\nmlo.log_metric('twice', n * 2)",
        params="n = 1",
    )
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent("""
        stages:
          s: {notebook: nb.ipynb, params: {n: 21}, outs: [out.txt]}
        """)
    )
    r = run(tmp_path / "pipeline.yaml", log=None)
    assert r.exit_code == 0, r.tasks
    stage = mlo.get_run(r.tasks[0].run_id)
    assert stage.params["n"] == 21 and stage.metrics["twice"] == 42.0 and stage.status == "finished"
    sources = [c.source for c in stage.cells]
    assert sources[-2:] == [
        "open('out.txt', 'w').write(str(n * 2))",
        "import mlo\nmlo.log_metric('twice', n * 2)",
    ]
    assert all(c.success for c in stage.cells)
    assert {"notebook.ipynb", "mlo/capture.json"} <= {a.path for a in stage.artifacts}


@pytest.fixture
def in_kernel(sqlite_ws, tmp_path, monkeypatch):
    """A run as a stage's kernel sees it: attached through MLO_RUN_ID, a journal named, the store not opened."""
    target = mlo.start_run("stage", activate=False)
    path = tmp_path / "s.journal"
    monkeypatch.setenv(journal.ENV, str(path))
    monkeypatch.setenv("MLO_RUN_ID", target.id)
    session.wait_for_capture(target.id)  # the run's environment capture writes from a thread of its own
    ws = target._ws
    ws.__dict__.pop("db", None)
    yield target, ws, path
    session.end_run(run=target)


def test_ingest_stores_every_kind_of_record_and_skips_a_torn_line(in_kernel, monkeypatch):
    target, ws, path = in_kernel
    journal.add_cell(ws, target.id, source="a = 1", execution_count=1, success=True, error=None,
                     started_at=1, duration=0.5)  # fmt: skip
    journal.set_tags(ws, target.id, {"system.cpu_limit": "2"})
    digest = journal.put_bytes(ws, target.id, b"{}")
    journal.add_artifacts(ws, target.id, [{"path": "mlo/capture.json", "digest": digest, "size": 2,
                                           "media_type": "application/json"}])  # fmt: skip
    journal.write_metrics(
        ws, target.id, {"system.rss_mb": (array("q", [0, 1]), array("d", [10.0, 12.5]), array("q", [5, 6]))}
    )
    assert "db" not in ws.__dict__  # nothing above opened the store
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"cell","source":"cut sho')  # a kernel killed in the middle of a write
    monkeypatch.delenv(journal.ENV)
    monkeypatch.delenv("MLO_RUN_ID")
    assert journal.ingest(ws, target.id, path) == 4
    assert not path.exists()
    assert [c.source for c in target.cells] == ["a = 1"]
    assert target.tags["system.cpu_limit"] == "2"
    assert target.metrics["system.rss_mb"] == 12.5
    assert list(target.history("system.rss_mb")["value"]) == [10.0, 12.5]
    assert ws.blobs.get_bytes(digest) == b"{}"
    assert journal.ingest(ws, target.id, path) == 0  # gone: nothing twice


def test_a_follower_stores_whole_lines_as_they_come_and_nothing_twice(in_kernel):
    target, ws, path = in_kernel

    def cell(source):
        journal.add_cell(ws, target.id, source=source, execution_count=1, success=True, error=None,
                         started_at=1, duration=0.1)  # fmt: skip

    cell("a = 1")
    journal.set_tags(ws, target.id, {"phase": "one"})
    follower = journal.Follower(dataclasses.replace(ws), target.id, path)  # the runner's own store
    assert follower.step() == 2
    assert [c.source for c in target.cells] == ["a = 1"] and target.tags["phase"] == "one"
    assert target.tags[journal.STORED] == str(path.stat().st_size)
    assert follower.step() == 0  # nothing new

    cell("b = 2")
    line = json.dumps({"kind": "cell", "source": "c = 3", "execution_count": 3, "success": True, "error": None,
                       "started_at": 3, "duration": 0.1}).encode() + b"\n"  # fmt: skip
    with open(path, "ab") as fh:
        fh.write(line[:20])  # a line still being written: left for the next step
    assert follower.step() == 1
    assert [c.source for c in target.cells] == ["a = 1", "b = 2"]
    with open(path, "ab") as fh:
        fh.write(line[20:])
    journal.set_tags(ws, target.id, {"phase": "two"})
    with follower:  # the thread's steps, then the final ingest from where they stopped
        pass
    journal.ingest(ws, target.id, path)
    assert [c.source for c in target.cells] == ["a = 1", "b = 2", "c = 3"]
    assert target.tags["phase"] == "two" and journal.STORED not in target.tags
    assert not path.exists()


def test_points_the_notebook_logs_are_not_held_back(in_kernel):
    """Only the sampler's points wait in the journal; a metric the notebook logs goes to the store (live)."""
    target, ws, path = in_kernel
    journal.write_metrics(ws, target.id, {"loss": (array("q", [0]), array("d", [0.5]), array("q", [1]))})
    assert target.metrics["loss"] == 0.5 and not path.exists()


def test_a_journal_for_another_run_or_none_leaves_the_store_path_alone(sqlite_ws, monkeypatch, tmp_path):
    target = mlo.start_run("x", activate=False)
    assert journal.for_run(target._ws, target.id) is None
    monkeypatch.setenv(journal.ENV, str(tmp_path / "j"))
    monkeypatch.setenv("MLO_RUN_ID", "someone-else")
    assert journal.for_run(target._ws, target.id) is None
    session.end_run(run=target)


def test_a_stage_reading_its_deps_loads_no_store_and_warns_only_of_undeclared_reads(sqlite_ws, tmp_path):
    """The deps the runner snapshotted are known to the kernel, so reading them needs no lookup in the store (no
    SQLAlchemy, no pandas in the kernel); a file read that no snapshot keeps is still pointed out."""
    (tmp_path / "dep.txt").write_text("1")
    (tmp_path / "other.txt").write_text("2")
    write_notebook(
        tmp_path / "reads.ipynb",
        "a = open('dep.txt').read()",
        "import sys\nloaded = [m for m in ('sqlalchemy', 'pandas') if m in sys.modules]\nassert not loaded, loaded",
        "b = open('other.txt').read()",
    )
    (tmp_path / "pipeline.yaml").write_text("stages:\n  reads: {notebook: reads.ipynb, deps: [dep.txt]}\n")
    r = run(tmp_path / "pipeline.yaml", log=None)
    assert r.exit_code == 0, r.tasks[0].message
    outputs = [
        "".join(o.get("text", "")) for c in json.loads(Path(r.tasks[0].notebook).read_text())["cells"]
        for o in c.get("outputs", [])
    ]  # fmt: skip
    warned = [o for o in outputs if "no snapshot keeps" in o]
    assert len(warned) == 1 and "other.txt" in warned[0] and "dep.txt" not in warned[0], outputs
