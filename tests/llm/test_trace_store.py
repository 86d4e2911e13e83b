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
    assert db.schema_version() == schema.SCHEMA_VERSION == 4
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
