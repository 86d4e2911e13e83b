"""Schema version 6: params, tags and latest metrics indexed by (key, value, run), runs by (experiment, start,
id). A version 5 store gains them in the shape of a fresh one, on SQLite and PostgreSQL, keeping its runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import create_engine, inspect, select

from mlo.store import schema
from mlo.store.db import Database
from mlo.store.runs import RunStore

V6_INDEXES = {
    "sqlite": {"params": "ix_params_key_value", "tags": "ix_tags_key_value"},
    "postgresql": {"params": "ix_params_key_value_prefix", "tags": "ix_tags_key_value_prefix"},
}


def _indexes(url: str) -> dict:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {
            t: sorted((i["name"], tuple(str(c) for c in i["column_names"])) for i in insp.get_indexes(t))
            for t in insp.get_table_names()
        }
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def urls(request, tmp_path):
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path}/fresh.db", f"sqlite:///{tmp_path}/old.db"
        return
    cluster = request.getfixturevalue("postgres")
    names = [cluster.new_database(), cluster.new_database()]
    yield "postgresql", cluster.url(names[0]), cluster.url(names[1])
    for n in names:
        cluster.drop_database(n)


def killed_while_upgrading(url: str, cwd, patch: str) -> None:
    """Open the store at ``url`` in a process that ``patch`` (code run first, with ``os``, ``signal`` and ``sys``
    imported) makes kill itself in the middle of an upgrade step."""
    code = (
        "import os, signal, sys\n"
        + textwrap.dedent(patch)
        + "\nfrom mlo.store.db import Database\nDatabase(sys.argv[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, url], cwd=cwd, timeout=120)
    assert out.returncode == -signal.SIGKILL


def stored_version(url: str) -> str:
    """The schema version a store records, read without opening (and so upgrading) it."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).scalar()
    finally:
        engine.dispose()


def _make_run(store: RunStore, params: dict) -> str:
    run_id = "01jz0000000000000000000000"
    store.create_run(
        run_id=run_id, experiment_id=store.experiment_id("old"), name="kept", start_time=1, owner=None,
        user=None, source=None, parent_id=None, params=params, tags={"t": "v"},
    )  # fmt: skip
    return run_id


def test_a_version_5_store_gains_the_value_indexes_keeping_its_runs(urls):
    dialect, fresh_url, old_url = urls
    Database(fresh_url).dispose()
    db = Database(old_url)
    store = RunStore(db)
    _make_run(store, {"C": "0.5"})

    def make_v5(conn):
        for index in schema.value_indexes(dialect):
            conn.exec_driver_sql(f"DROP INDEX {index.name}")
        conn.exec_driver_sql("DROP INDEX ix_runs_experiment_start_id")
        conn.exec_driver_sql("CREATE INDEX ix_runs_experiment_start ON runs (experiment_id, start_time)")
        conn.execute(schema.meta.update().values(value="5"))

    db.write(make_v5)
    db.dispose()
    before = _indexes(old_url)
    assert V6_INDEXES[dialect]["params"] not in {name for name, _ in before["params"]}

    db = Database(old_url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    after = _indexes(old_url)
    assert after == _indexes(fresh_url)
    assert {name for name, _ in after["params"]} >= {V6_INDEXES[dialect]["params"]}
    assert {name for name, _ in after["tags"]} >= {V6_INDEXES[dialect]["tags"], "ix_tags_key"}
    assert "ix_latest_metrics_key_value" in {name for name, _ in after["latest_metrics"]}
    assert [name for name, _ in after["runs"] if name.startswith("ix_runs_experiment")] == [
        "ix_runs_experiment_start_id"
    ]
    with db.read() as conn:
        assert conn.execute(select(schema.runs.c.name)).scalars().all() == ["kept"]
        assert conn.execute(select(schema.params.c.value)).scalars().all() == ["0.5"]
    db.dispose()


def test_values_longer_than_an_index_entry_are_stored(urls):
    """PostgreSQL refuses B-tree entries over ~2.7 kB: params and tags are indexed by a prefix, so a long
    config or note still logs."""
    import json

    _, fresh_url, _ = urls
    Database(fresh_url).dispose()
    db = Database(fresh_url)
    store = RunStore(db)
    long = "é" * 5000 + "x"
    run_id = _make_run(store, {"cfg": json.dumps(long)})
    store.set_tags(run_id, {"note": long})
    with db.read() as conn:
        assert conn.execute(select(schema.params.c.value)).scalar_one() == json.dumps(long)
    db.dispose()
