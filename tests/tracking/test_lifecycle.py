"""Run lifecycle: archive, delete (soft) and restore runs and experiments; notes; the experiments listing; and
purge, which never removes a run a registered model version, a snapshot or lineage needs, with writers at work."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput, NotFound
from mlo.store import schema
from mlo.tracking import lifecycle
from mlo.tracking.short_ids import short_ids


def _runs(names_and_experiments):
    out = {}
    for name, exp in names_and_experiments:
        with mlo.start_run(name, experiment=exp) as r:
            mlo.log_metric("acc", 0.5)
        out[name] = r.id
    return out


def test_delete_archive_restore_runs_and_their_descendants(ws):
    ids = _runs([("a", "e"), ("b", "e"), ("c", "e")])
    with mlo.start_run("parent", experiment="e") as parent:
        with mlo.start_run("child", nested=True) as child:
            pass
    prefix = short_ids([parent.id])[parent.id]
    assert set(mlo.delete_run(prefix)) == {parent.id, child.id}  # a short id, with its descendants
    mlo.archive_run(mlo.get_run(ids["b"]))
    assert list(mlo.runs()["name"]) == ["c", "a"]
    assert mlo.get_run(parent.id).lifecycle == "deleted" and mlo.get_run(child.id).lifecycle == "deleted"
    df = mlo.runs(include="all")
    assert dict(zip(df["name"], df["lifecycle"], strict=True)) == {
        "child": "deleted", "parent": "deleted", "c": "active", "b": "archived", "a": "active",
    }  # fmt: skip
    assert set(mlo.runs(include="archived")["name"]) == {"a", "b", "c"}
    assert set(mlo.runs(include=["deleted"], where="lifecycle = 'DELETED'")["name"]) == {"parent", "child"}
    # pages (SQL), filters on metrics (SQL) and tables all leave them out the same way
    assert mlo.runs(limit=10).attrs["total"] == 2
    assert mlo.runs(limit=10, where="metrics.acc > 0").attrs["total"] == 2
    assert mlo.runs(limit=10, include="all").attrs["total"] == 5
    assert set(mlo.runs(columns=["metrics.*"], include="all")["run_id"]) >= {ids["b"], parent.id}

    assert set(mlo.restore_run([parent.id, ids["b"]])) == {parent.id, child.id, ids["b"]}
    assert len(mlo.runs()) == 5
    assert mlo.restore_run(parent.id) == []  # already active


def test_a_running_run_cannot_be_deleted(ws):
    run = mlo.start_run("live")
    with pytest.raises(InvalidInput, match="still running"):
        mlo.delete_run(run.id)
    mlo.end_run()
    assert mlo.delete_run(run.id) == [run.id]
    with pytest.raises(InvalidInput, match="include="):
        mlo.runs(include="gone")


def test_experiments_lifecycle_listing_and_runs(ws):
    _runs([("a", "churn"), ("b", "churn"), ("c", "fraud")])
    df = mlo.experiments()
    assert list(df["name"]) == ["churn", "fraud"] and list(df["runs"]) == [2, 1]
    assert mlo.delete_experiment("fraud") is True
    assert list(mlo.experiments()["name"]) == ["churn"]
    assert set(mlo.runs()["name"]) == {"a", "b"}
    every = mlo.experiments(include="all")
    assert dict(zip(every["name"], every["lifecycle"], strict=True)) == {
        "churn": "active",
        "fraud": "deleted",
    }
    with pytest.raises(InvalidInput, match="restore it first"):
        mlo.start_run("d", experiment="fraud")
    mlo.archive_experiment("churn")
    assert mlo.runs().empty
    assert set(mlo.runs(include="archived")["name"]) == {"a", "b"}
    with pytest.raises(InvalidInput, match="is archived"):
        mlo.start_run("d", experiment="churn")
    mlo.restore_experiment("churn")
    mlo.restore_experiment("fraud")
    assert len(mlo.runs()) == 3
    with pytest.raises(NotFound):
        mlo.delete_experiment("nope")


def test_notes_are_markdown_on_the_run_and_its_page(ws):
    with mlo.start_run("noted") as run:
        mlo.set_note("## Why\nTried **balanced** class weights.\n<script>alert(1)</script>")
    assert run.note.startswith("## Why")
    html = run._repr_html_()
    assert "<strong>balanced</strong>" in html and "<script>" not in html
    run.set_note("")
    assert run.note is None
    with pytest.raises(InvalidInput, match="no active run"):
        mlo.set_note("x")
    mlo.set_note("again", run=short_ids([run.id])[run.id])
    assert mlo.get_run(run.id).to_dict()["note"] == "again"


def _deleted_long_ago(ws, run_ids, seconds=3600):
    from sqlalchemy import update

    past = int((time.time() - seconds) * 1e6)
    ws.db.write(
        lambda c: c.execute(update(schema.runs).where(schema.runs.c.id.in_(run_ids)).values(deleted_at=past))
    )


def test_purge_removes_old_deleted_runs_but_keeps_what_models_snapshots_and_lineage_need(ws, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": np.arange(20.0)})
    y = (X.x > 9).astype(int)
    with mlo.start_run("prep", experiment="e") as prep:
        mlo.snapshot(X.assign(y=y), "train", role="output")
    with mlo.start_run("train", experiment="e") as train:
        mv = mlo.register_model(LogisticRegression().fit(X, y), "m", input_example=X.head(3))
    with mlo.start_run("junk", experiment="e") as junk:
        mlo.log_text("hello", "notes.txt")
        mlo.set_tags({"k": "v"})
    with mlo.start_run("pipeline", experiment="e") as pipe:
        with mlo.start_run("stage", nested=True) as stage:
            mlo.register_model(LogisticRegression().fit(X, y), "m2", input_example=X.head(3))
    recent = _runs([("recent", "e")])["recent"]
    mlo.delete_run([prep.id, train.id, junk.id, pipe.id, recent])
    _deleted_long_ago(ws, [prep.id, train.id, junk.id, pipe.id, stage.id])

    dry = lifecycle.purge("30min", dry_run=True)
    assert dry.runs == [junk.id] and mlo.get_run(junk.id).lifecycle == "deleted"
    result = lifecycle.purge(older_than=1800)
    assert result.runs == [junk.id]
    assert set(result.kept) == {prep.id, train.id, pipe.id, stage.id}
    assert "snapshot train@1" in result.kept[prep.id] and "model m/1" in result.kept[train.id]
    assert "parent of" in result.kept[pipe.id]
    with pytest.raises(NotFound):
        mlo.get_run(junk.id)
    assert mlo.get_run(recent).lifecycle == "deleted"  # within the grace period
    assert mlo.load_model("m/1") is not None and mv.run_id == train.id
    assert len(mlo.load_snapshot("train@1")) == 20
    with ws.db.read() as conn:
        for table in (schema.params, schema.tags, schema.latest_metrics, schema.artifacts, schema.cells):
            assert conn.execute(table.select().where(table.c.run_id == junk.id)).first() is None
    # an experiment deleted long ago goes once its runs can
    _runs([("x", "old")])
    mlo.delete_experiment("old")
    from sqlalchemy import update

    ws.db.write(
        lambda c: c.execute(
            update(schema.experiments).where(schema.experiments.c.name == "old").values(deleted_at=1)
        )
    )
    assert lifecycle.purge("1d", dry_run=True).experiments == ["old"]
    assert lifecycle.purge("1d").experiments == ["old"]
    assert "old" not in set(mlo.experiments(include="all")["name"])
    with pytest.raises(InvalidInput, match="older_than"):
        lifecycle.purge("soon")


def _writer(home: str, store: str | None, seconds: float, worker: int) -> None:
    """Another process at work: runs, metrics, snapshots and model versions, some from runs it then deletes."""
    os.environ["MLO_HOME"] = home
    if store:
        os.environ["MLO_STORE"] = store
    import mlo as m
    from mlo.tracking import lifecycle as lc

    frame = pd.DataFrame({"x": np.arange(10.0) + worker})
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline and i < 200:
        with m.start_run(f"w{worker}-{i}", experiment=f"w{worker}") as r:
            m.log_metric("acc", i)
            if i % 3 == 0:
                m.snapshot(frame.assign(i=i), f"snap{worker}", role="output")
            if i % 4 == 0:
                m.register_model(lambda rows: rows, f"model{worker}")
        lc.delete_run(r.id)
        lc.purge(0)
        i += 1


@pytest.mark.timeout(180)
def test_purge_under_concurrent_writers_never_removes_what_a_version_or_snapshot_needs(ws):
    store = os.environ.get("MLO_STORE")
    home = os.environ["MLO_HOME"]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(home, store, 6.0, w)) for w in range(2)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 6
    purges = 0
    while time.monotonic() < deadline and purges < 200:
        lifecycle.purge(0)
        purges += 1
        time.sleep(0.05)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lifecycle.purge(0)
    with ws.db.read() as conn:
        run_ids = set(conn.execute(schema.runs.select().with_only_columns(schema.runs.c.id)).scalars())
        needed = set(
            conn.execute(
                schema.model_versions.select().with_only_columns(schema.model_versions.c.run_id)
            ).scalars()
        ) | set(
            conn.execute(schema.snapshots.select().with_only_columns(schema.snapshots.c.run_id)).scalars()
        )
    needed.discard(None)
    assert needed and needed <= run_ids  # every version and snapshot still has its run
    left = mlo.runs(include="all")
    assert set(left["lifecycle"]) == {"deleted"} and set(left["run_id"]) == needed  # the rest went
    for name in ("model0", "model1"):
        assert mlo.load_model(f"{name}/1", trust=True)([1]) == [1]  # a function: a pickle, our own
