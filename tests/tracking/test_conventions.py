"""The habits MLflow users bring: run_name=, order_by lists, statuses in any case, short ids as prefixes that
work everywhere, and listing magics scoped to the current experiment."""

from __future__ import annotations

import pytest

import mlo
from mlo.errors import AmbiguousRef, InvalidInput
from mlo.tracking.short_ids import MIN_LENGTH, short_ids


def test_start_run_takes_mlflow_spellings(ws):
    with mlo.start_run(run_name="baseline", experiment="churn", description="first *try*") as run:
        mlo.log_metric("acc", 0.9)
    assert run.name == "baseline" and run.note == "first *try*"
    with mlo.start_run(run_name="child", parent_run_id=run.id[: MIN_LENGTH + 2]) as child:
        pass
    assert child.parent_id == run.id  # a parent named by a prefix is resolved
    with pytest.raises(InvalidInput, match="name= or run_name="):
        mlo.start_run("a", run_name="b")
    mlo.end_run("FINISHED")  # no active run: nothing happens, and the spelling is accepted
    r = mlo.start_run(run_name="upper")
    mlo.end_run(status="FAILED")
    assert r.status == "failed"


def test_order_by_as_string_or_list_in_sql_pages_and_in_pandas(ws):
    for model, acc in (("rf", 0.7), ("lr", 0.9), ("rf", 0.8), ("lr", 0.6)):
        with mlo.start_run(params={"model": model}):
            mlo.log_metric("acc", acc)
    expect = [("lr", 0.9), ("lr", 0.6), ("rf", 0.8), ("rf", 0.7)]
    for limit in (None, 10):  # the whole listing in pandas, a page in SQL
        df = mlo.runs(order_by=["params.model", "metrics.acc desc"], limit=limit)
        assert list(zip(df["params.model"], df["metrics.acc"], strict=True)) == expect
        df = mlo.runs(order_by="params.model asc, metrics.acc DESC", limit=limit)
        assert list(zip(df["params.model"], df["metrics.acc"], strict=True)) == expect
        df = mlo.runs(order_by=["status", "metrics.acc desc"], limit=limit)  # run column, then metric
        assert list(df["metrics.acc"]) == [0.9, 0.8, 0.7, 0.6]
    with pytest.raises(InvalidInput, match="no such column"):
        mlo.runs(order_by=["metrics.acc", "metrics.nope"], limit=5)
    with pytest.raises(InvalidInput, match="string or a list"):
        mlo.runs(order_by=3)
    df = mlo.runs(filter_string="metrics.acc > 0.65", order_by=["metrics.acc"], max_results=2)
    assert list(df["metrics.acc"]) == [0.7, 0.8]
    with pytest.raises(InvalidInput, match="not both"):
        mlo.runs(where="metrics.acc > 1", filter_string="metrics.acc > 1")


def test_status_compares_in_any_case(ws):
    with mlo.start_run("ok"):
        pass
    bad = mlo.start_run("bad")
    mlo.end_run("failed")
    assert list(mlo.runs(where="status = 'FINISHED'")["name"]) == ["ok"]
    assert list(mlo.runs(where="attributes.status != 'Finished'")["name"]) == ["bad"]
    assert set(mlo.runs(where="status in ('FAILED', 'finished')")["name"]) == {"ok", "bad"}
    assert list(mlo.runs(where="attributes.run_name = 'bad'")["run_id"]) == [bad.id]


def test_short_ids_are_unique_prefixes_accepted_everywhere(ws):
    # runs started in the same instant share their time prefix: their short ids grow until they differ
    ids = []
    for i in range(30):
        with mlo.start_run(f"r{i}", experiment="a" if i % 2 else "b") as r:
            mlo.log_metric("acc", i / 30)
        ids.append(r.id)
    shown = mlo.runs(experiment="a")["run_id"]
    short = short_ids(shown)
    lengths = {len(s) for s in short.values()}
    assert len(lengths) == 1 and lengths.pop() >= MIN_LENGTH
    for full, prefix in short.items():
        assert full.startswith(prefix)
        assert mlo.get_run(prefix).id == full  # unique in the whole store, not just among those shown
    # every display uses them: text table, HTML table, the compare widget's rows
    from mlo.report.runs import runs_table_html
    from mlo.report.text import runs_text

    df = mlo.runs(experiment="a")
    text = runs_text(df)
    html = runs_table_html(df)
    for prefix in short.values():
        assert f"\n{prefix} " in text and f">{prefix}</code>" in html
    widget = mlo.compare(experiment="a")
    assert {row["cells"][0] for row in widget.table.rows} <= set(short.values())
    # too short a prefix is refused with what to do
    with pytest.raises((AmbiguousRef, InvalidInput)):
        mlo.get_run(ids[0][:5])


def test_short_ids_of_runs_started_apart_are_short(ws):
    a = mlo.start_run("a", run_id=None)
    mlo.end_run()
    import time

    time.sleep(1.2)
    b = mlo.start_run("b")
    mlo.end_run()
    assert short_ids([a.id, b.id]) == {a.id: a.id[:MIN_LENGTH], b.id: b.id[:MIN_LENGTH]}


def test_runs_and_compare_magics_follow_the_current_experiment(shell):
    for exp, name in (("churn", "c1"), ("churn", "c2"), ("fraud", "f1")):
        with mlo.start_run(name, experiment=exp):
            mlo.log_metric("acc", 0.5)
    assert len(shell.run("%mlo runs").df) == 3  # no experiment chosen: every experiment
    shell.run("%mlo experiment churn")
    assert set(shell.run("%mlo runs").df["name"]) == {"c1", "c2"}
    assert set(shell.run("%mlo runs --all").df["name"]) == {"c1", "c2", "f1"}
    assert set(shell.run("%mlo runs -e fraud").df["name"]) == {"f1"}
    assert list(shell.run("%mlo runs --order-by name --order-by 'metrics.acc desc'").df["name"]) == [
        "c1",
        "c2",
    ]
    widget = shell.run("%mlo compare")
    assert set(widget.comparison.frame["name"]) == {"c1", "c2"}
    widget = shell.run("%mlo compare --all --order-by 'name desc'")
    assert list(widget.comparison.frame["name"]) == ["f1", "c2", "c1"]
    err = shell.fails("%mlo runs --all -e fraud")
    assert "not both" in str(err)
