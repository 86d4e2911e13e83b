"""The trace tables in the store: schema 4 from a version 3 store, the blobs gc keeps, purges, %mlo traces."""

from __future__ import annotations

import mlo
from mlo.store import schema
from mlo.store.db import Database


def _shape(url: str) -> dict:
    from sqlalchemy import create_engine, inspect

    raw = create_engine(url)
    insp = inspect(raw)
    found = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names()}
    found.update(
        {f"{t}:indexes": sorted(i["name"] for i in insp.get_indexes(t)) for t in insp.get_table_names()}
    )
    raw.dispose()
    return found


def test_a_version_3_store_gains_the_trace_tables_in_the_shape_of_a_fresh_one(tmp_path):
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    Database(fresh).dispose()
    url = f"sqlite:///{tmp_path}/v3.db"
    db = Database(url)

    def make_v3(conn):
        schema.llm_spans.drop(conn)
        schema.llm_traces.drop(conn)
        conn.execute(schema.meta.update().values(value="3"))

    db.write(make_v3)
    db.dispose()
    assert "llm_traces" not in _shape(url)
    db = Database(url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    db.dispose()
    assert _shape(url) == _shape(fresh)


def test_gc_keeps_the_bodies_traces_refer_to_and_a_purge_removes_the_traces(sqlite_ws, endpoint):
    from mlo.store.gc import collect
    from mlo.store.lifecycle import LifecycleStore

    with mlo.start_run("with calls") as run:
        r = mlo.llm.chat("keep me", model="m", base_url=endpoint.url)
    span = mlo.llm.get_trace(r.trace_id).spans[0]
    report = collect(sqlite_ws, grace=0)
    assert sqlite_ws.blobs.exists(span.input_blob) and sqlite_ws.blobs.exists(span.output_blob)
    assert report.dry_run is False
    mlo.delete_run(run.id)
    LifecycleStore(sqlite_ws.db).purge(cutoff_us=10**18)
    assert mlo.traces().empty
    collect(sqlite_ws, grace=0)
    assert not sqlite_ws.blobs.exists(span.output_blob)


def test_the_traces_magic_lists_and_shows_a_tree(shell, endpoint):
    shell.run(f"import mlo\nr = mlo.llm.chat('from a cell', model='m', base_url={endpoint.url!r})")
    view = shell.run("%mlo traces")
    assert "chat m" in view._repr_html_() and len(view.df) == 1
    assert view.df.cell.iloc[0] is not None
    trace_id = view.df.trace_id.iloc[0]
    tree = shell.run(f"%mlo traces {trace_id[:10]}")
    html = tree._repr_html_()
    assert "<details" in html and "from a cell" in html
    err = shell.fails("%mlo traces --where 'nonsense >'")
    assert "filter" in str(err)
    assert "budget" in str(shell.run("%mlo budget")) or shell.run("%mlo budget").lines == []


def test_traces_record_query_page_price_and_replay_on_sqlite_and_postgresql(ws, endpoint):
    """The same trace code on both stores: nested spans, a traced openai call, paging, filters, a prefix, cost,
    concurrent writers and replay."""
    import threading

    import openai

    mlo.llm.autolog()
    client = openai.OpenAI(base_url=endpoint.url, api_key="x", max_retries=0)
    with mlo.start_run("rag") as run:
        with mlo.trace("answer", kind="chain") as root:
            root.set_inputs({"q": "tea?"})
            with mlo.trace("retrieve", kind="retrieval") as r:
                r.set_outputs(["doc"])
            first = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "tea?"}])
    errors: list[BaseException] = []

    def many(k: int) -> None:
        try:
            for i in range(25):
                with mlo.trace(f"w{k}-{i:02d}") as s:
                    s.set_outputs(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=many, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    every = mlo.traces(limit=None)
    assert len(every) == 101 and every.attrs["total"] == 101 and set(every.status) == {"ok"}
    page = mlo.traces(limit=10, offset=95)
    assert (
        len(page) == 6
        and page.attrs["total"] == 101
        and page.trace_id.tolist() == every.trace_id[95:].tolist()
    )
    mine = mlo.traces(run=run)
    assert mine.name.tolist() == ["answer"] and mine.spans[0] == 3 and mine.llm_calls[0] == 1
    assert mlo.traces("name like 'w3-%'", limit=5).attrs["total"] == 25
    t = mlo.llm.get_trace(mine.trace_id[0][:16])
    assert [s.kind for s in t.spans] == ["chain", "retrieval", "llm"] and t.usage.input > 0
    view = t.to_view()
    assert view["spans"][0]["children"][1]["output"] == first.choices[0].message.content
    assert mlo.llm.costs("run").calls.sum() == 1
    endpoint.close()
    with mlo.llm.replay(run):
        again = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "tea?"}])
    assert again.choices[0].message.content == first.choices[0].message.content
    assert mlo.traces("replayed = true").llm_calls.tolist() == [1]
