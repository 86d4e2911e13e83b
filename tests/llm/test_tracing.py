"""mlo.trace: span trees written synchronously, linked to the run and the cell, never lost at exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import mlo
from mlo.llm import get_trace


def test_nested_spans_make_one_tree_written_when_the_block_ends(sqlite_ws):
    @mlo.trace(kind="retrieval")
    def retrieve(query, k=2):
        return [f"doc {i} about {query}" for i in range(k)]

    @mlo.trace
    def answer(question):
        docs = retrieve(question)
        with mlo.trace("rank", kind="tool") as span:
            span.set_attribute("candidates", len(docs))
        return docs[0]

    with mlo.trace("pipeline", kind="chain", attributes={"version": 2}) as root:
        assert mlo.llm.current_span() is root
        assert answer("tea") == "doc 0 about tea"
    df = mlo.traces()  # written by the time the block ended: no flush, no wait
    assert df.name.tolist() == ["pipeline"] and df.status.tolist() == ["ok"] and df.spans.tolist() == [4]
    t = get_trace(df.trace_id[0][:8])
    names = [(s.name, s.kind, s.parent_id is None) for s in t.spans]
    assert names[0] == ("pipeline", "chain", True)
    assert {n for n, _, _ in names} >= {
        "test_nested_spans_make_one_tree_written_when_the_block_ends.<locals>.answer",
        "rank",
    }
    (root_rec,) = t.roots
    (answer_rec,) = root_rec.children
    assert [c.name.rsplit(".", 1)[-1] for c in answer_rec.children] == ["retrieve", "rank"]
    retrieve_rec = answer_rec.children[0]
    assert retrieve_rec.request() == {"query": "tea"} and retrieve_rec.response() == [
        "doc 0 about tea",
        "doc 1 about tea",
    ]
    assert answer_rec.children[1].attributes["candidates"] == 2
    assert root_rec.attributes["version"] == 2
    assert "<details" in t._repr_html_() and "pipeline" in t._repr_html_()


def test_an_exception_marks_the_span_failed_and_goes_on(sqlite_ws):
    @mlo.trace
    def broken():
        raise KeyError("missing")

    with pytest.raises(KeyError):
        with mlo.trace("outer"):
            broken()
    df = mlo.traces()
    assert df.status.tolist() == ["error"]
    t = get_trace(df.trace_id[0])
    assert t.spans[1].status == "error" and "KeyError" in t.spans[1].error
    assert t.spans[1].attributes["error.type"] == "KeyError"
    assert mlo.traces("status = 'error'").shape[0] == 1 and mlo.traces("status = 'ok'").empty


def test_large_inputs_go_to_the_blob_store_small_ones_stay_inline(sqlite_ws):
    @mlo.trace
    def echo(text):
        return text

    echo("x" * 10_000)
    echo("short")
    big, small = reversed(mlo.traces().trace_id.tolist())
    span = get_trace(big).spans[0]
    assert span.input_blob and span.output_blob and "mlo.inputs" not in span.attributes
    assert span.request() == {"text": "x" * 10_000}
    assert get_trace(small).spans[0].attributes["mlo.inputs"] == {"text": "short"}


def test_async_functions_and_generators_are_spans_and_tasks_keep_their_parent(sqlite_ws):
    @mlo.trace
    async def step(i):
        await asyncio.sleep(0.01)
        return i * 2

    @mlo.trace
    def numbers(n):
        yield from range(n)

    async def main():
        with mlo.trace("fanout"):
            return await asyncio.gather(*(step(i) for i in range(3)))

    assert asyncio.run(main()) == [0, 2, 4]
    assert list(numbers(3)) == [0, 1, 2]
    df = mlo.traces()
    assert sorted(df.name.str.rsplit(".", n=1).str[-1].tolist()) == ["fanout", "numbers"]
    fan = get_trace(df[df.name == "fanout"].trace_id.iloc[0])
    assert len(fan.roots) == 1 and len(fan.roots[0].children) == 3
    gen = get_trace(df[df.name.str.endswith("numbers")].trace_id.iloc[0])
    assert gen.spans[0].response() == [0, 1, 2]


def test_a_trace_is_linked_to_the_active_run(sqlite_ws):
    with mlo.start_run("r") as run:
        with mlo.trace("in a run"):
            pass
    with mlo.trace("outside"):
        pass
    df = mlo.traces()
    runs = df.set_index("name").run_id
    assert runs["in a run"] == run.id and runs.isna()["outside"]
    assert mlo.traces(run=run.id).name.tolist() == ["in a run"]


def test_bad_arguments_are_one_line_errors(sqlite_ws):
    with pytest.raises(mlo.InvalidInput, match="kind must be one of"):
        mlo.trace("x", kind="magic")
    with pytest.raises(mlo.InvalidInput, match="control character"):
        mlo.trace("bad\nname")
    with pytest.raises(mlo.InvalidInput, match="unknown field 'costs'.*cost_usd"):
        mlo.traces("costs > 1")
    with pytest.raises(mlo.NotFound, match="no trace"):
        get_trace("zzzz")


def _child(code: str, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "MLO_HOME": str(tmp_path / ".mlo")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_a_trace_open_at_exit_is_written_unfinished_and_a_killed_one_stays_visible(sqlite_ws, tmp_path):
    done = _child(
        """
        import mlo
        span = mlo.trace("left open").__enter__()
        with mlo.trace("child"):
            pass
        print("exiting", flush=True)
        """,
        tmp_path,
    )
    assert done.communicate(timeout=60)[0].strip() == "exiting" and done.returncode == 0
    killed = _child(
        """
        import time, mlo
        with mlo.trace("killed mid-way"):
            print("inside", flush=True)
            time.sleep(60)
        """,
        tmp_path,
    )
    assert killed.stdout.readline().strip() == "inside"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    df = mlo.traces().set_index("name")
    assert df.loc["left open", "status"] == "unfinished" and df.loc["left open", "spans"] == 2
    assert df.loc["killed mid-way", "status"] == "running"  # in progress as far as anyone can tell


def test_many_small_traces_each_leave_their_row(sqlite_ws):

    @mlo.trace
    def f(i):
        return i

    for i in range(200):
        f(i)
    assert len(mlo.traces(limit=None)) == 200
    rows = sqlite_ws.traces.spans(mlo.traces(limit=5).trace_id.tolist())
    assert all(
        json.loads(r["attributes"])["mlo.outputs"] == json.loads(r["attributes"])["mlo.inputs"]["i"]
        for r in rows
    )
