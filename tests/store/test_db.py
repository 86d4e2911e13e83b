import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select

from mlo.errors import InvalidInput, StoreError
from mlo.store import schema
from mlo.store.db import Database
from mlo.store.ids import id_time, new_id


def test_ids_sort_by_time_and_are_unique():
    ids = [new_id(now=1_700_000_000 + i) for i in range(100)]
    assert ids == sorted(ids)
    assert len(set(new_id() for _ in range(10_000))) == 10_000
    assert abs(id_time(ids[0]) - 1_700_000_000) < 0.001


def test_fresh_store_is_stamped_and_in_wal_mode(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/m.db")
    assert db.schema_version() == schema.SCHEMA_VERSION
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    db.dispose()


def test_store_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    db = Database(url)
    db.write(lambda c: c.execute(schema.meta.update().values(value="999")))
    db.dispose()
    with pytest.raises(StoreError, match="newer than this mlo"):
        Database(url)


V1_TABLES = {
    "mlo_meta",
    "experiments",
    "runs",
    "params",
    "tags",
    "latest_metrics",
    "metric_chunks",
    "artifacts",
    "cells",
}


def test_a_version_1_store_is_brought_forward_keeping_its_runs(tmp_path):
    """A store written before snapshots existed: the tables added since appear, the data stays."""
    from sqlalchemy import create_engine, inspect

    from mlo.store.runs import RunStore

    url = f"sqlite:///{tmp_path}/old.db"
    db = Database(url)
    store = RunStore(db)
    store.create_run(
        run_id=new_id(),
        experiment_id=store.experiment_id("old"),
        name="kept",
        start_time=1,
        owner=None,
        user=None,
        source=None,
        parent_id=None,
        params={},
        tags={},
    )

    def make_v1(conn):
        for table in reversed(schema.metadata.sorted_tables):
            if table.name not in V1_TABLES:
                table.drop(conn)
        conn.execute(schema.meta.update().values(value="1"))

    db.write(make_v1)
    db.dispose()
    raw = create_engine(url)
    assert set(inspect(raw).get_table_names()) == V1_TABLES
    raw.dispose()

    db = Database(url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    with db.read() as conn:
        names = set(inspect(conn).get_table_names())
        assert {t.name for t in schema.metadata.sorted_tables} <= names
        assert conn.execute(select(schema.runs.c.name)).scalars().all() == ["kept"]
    db.dispose()


def test_bad_urls_say_what_to_use():
    with pytest.raises(InvalidInput, match="database URL"):
        Database("not a url")
    with pytest.raises(InvalidInput, match="unsupported store"):
        Database("mysql://x@localhost/db")


def _race_on_fresh_store(url: str, processes: int) -> None:
    """Start ``processes`` interpreters that open the same fresh store at once; all must succeed and leave one
    schema and one experiment."""
    code = textwrap.dedent(f"""
        from mlo.store.db import Database
        from mlo.store.runs import RunStore
        RunStore(Database({url!r})).experiment_id("shared")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(processes)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    db = Database(url)
    with db.read() as conn:
        assert conn.execute(select(schema.experiments.c.name)).scalars().all() == ["shared"]
        assert db.schema_version(conn) == schema.SCHEMA_VERSION
    db.dispose()


def test_many_processes_opening_a_fresh_store_at_once(tmp_path):
    """Schema creation must be safe when several processes race to create it."""
    _race_on_fresh_store(f"sqlite:///{tmp_path}/race.db", processes=8)


@pytest.mark.postgres
def test_postgres_processes_racing_on_a_fresh_store(postgres):
    name = postgres.new_database()
    _race_on_fresh_store(postgres.url(name), processes=6)
    postgres.drop_database(name)


def _columns(url: str) -> dict[str, set[str]]:
    from sqlalchemy import create_engine, inspect

    raw = create_engine(url)
    found = {t: {c["name"] for c in inspect(raw).get_columns(t)} for t in inspect(raw).get_table_names()}
    indexes = {t: {i["name"] for i in inspect(raw).get_indexes(t)} for t in found}
    raw.dispose()
    return {**found, **{f"{t}:indexes": i for t, i in indexes.items()}}


def test_a_version_2_store_gains_lifecycles_and_notes_in_the_shape_of_a_fresh_one(tmp_path):
    """Version 3 adds lifecycle columns to runs and experiments and a note to runs; existing runs stay active."""
    from mlo.store.runs import RunStore

    fresh_url = f"sqlite:///{tmp_path}/fresh.db"
    Database(fresh_url).dispose()
    url = f"sqlite:///{tmp_path}/v2.db"
    db = Database(url)
    store = RunStore(db)
    store.create_run(
        run_id=new_id(), experiment_id=store.experiment_id("old"), name="kept", start_time=1, owner=None,
        user=None, source=None, parent_id=None, params={}, tags={},
    )  # fmt: skip

    def make_v2(conn):
        conn.exec_driver_sql("DROP INDEX ix_runs_lifecycle")
        for table, column in (("runs", "lifecycle"), ("runs", "deleted_at"), ("runs", "note"),
                              ("experiments", "lifecycle"), ("experiments", "deleted_at")):  # fmt: skip
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(schema.meta.update().values(value="2"))

    db.write(make_v2)
    db.dispose()
    assert "lifecycle" not in _columns(url)["runs"]

    db = Database(url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    assert _columns(url) == _columns(fresh_url)
    with db.read() as conn:
        rows = conn.execute(select(schema.runs.c.name, schema.runs.c.lifecycle, schema.runs.c.note)).all()
        assert [tuple(r) for r in rows] == [("kept", "active", None)]
        assert conn.execute(select(schema.experiments.c.lifecycle)).scalars().all() == ["active"]
    db.dispose()
