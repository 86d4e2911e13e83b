"""Schema version 7: runs carry a listing stamp that triggers move on every change a run listing shows. A
version 6 store gains the column and the triggers in the shape of a fresh one, on SQLite and PostgreSQL, keeping
its runs; an upgrade killed halfway leaves version 6 whole, and the next open completes it."""

from __future__ import annotations

import test_value_indexes
from sqlalchemy import create_engine, inspect, select

from mlo.store import schema
from mlo.store.db import Database
from mlo.store.runs import RunStore

RUN_ID = "01jz0000000000000000000000"
urls = test_value_indexes.urls  # the fixture: a fresh and an old store's URLs, on SQLite and PostgreSQL


def _shape(url: str) -> dict:
    """Columns of runs, and the triggers, of the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            columns = sorted(c["name"] for c in inspect(conn).get_columns("runs"))
            if engine.dialect.name == "postgresql":
                q = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                q = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            triggers = sorted(r[0] for r in conn.exec_driver_sql(q))
            indexes = sorted(i["name"] for i in inspect(conn).get_indexes("runs"))
        return {"columns": columns, "triggers": triggers, "indexes": indexes}
    finally:
        engine.dispose()


def _stamp(db: Database):
    with db.read() as conn:
        return conn.execute(select(schema.runs.c.listing_stamp)).scalar_one()


def _make_v6(url: str) -> None:
    db = Database(url)
    store = RunStore(db)
    store.create_run(
        run_id=RUN_ID, experiment_id=store.experiment_id("old"), name="kept", start_time=1, owner=None,
        user=None, source=None, parent_id=None, params={"C": "0.5"}, tags={"t": "v"},
    )  # fmt: skip

    def make_v6(conn):
        pg = conn.dialect.name == "postgresql"
        for name in _shape(url)["triggers"]:
            table = name.split("_")[1] if pg else None
            table = {"latest": "latest_metrics"}.get(table, table)
            conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}" if pg else f"DROP TRIGGER {name}")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN listing_stamp")
        conn.exec_driver_sql("DROP INDEX ix_runs_start_id")
        conn.execute(schema.meta.update().values(value="6"))

    db.write(make_v6)
    db.dispose()
    assert _shape(url)["triggers"] == [] and "listing_stamp" not in _shape(url)["columns"]
    assert "ix_runs_start_id" not in _shape(url)["indexes"]


def test_a_version_6_store_gains_listing_stamps_keeping_its_runs(urls):
    dialect, fresh_url, old_url = urls
    Database(fresh_url).dispose()
    _make_v6(old_url)
    db = Database(old_url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    assert _shape(old_url) == _shape(fresh_url)
    assert "listing_stamp" in _shape(old_url)["columns"] and len(_shape(old_url)["triggers"]) >= 4
    assert "ix_runs_start_id" in _shape(old_url)["indexes"]
    store = RunStore(db)
    with db.read() as conn:
        assert conn.execute(select(schema.runs.c.name)).scalars().all() == ["kept"]
    assert _stamp(db) is None  # unstamped until its next change
    seen = set()
    for change in (
        lambda: store.set_params(RUN_ID, {"D": "1"}),
        lambda: store.set_tags(RUN_ID, {"t": "w"}),
        lambda: store.delete_tag(RUN_ID, "t"),
        lambda: store.update_run(RUN_ID, status="failed"),
    ):
        change()
        stamp = _stamp(db)
        assert stamp is not None and stamp not in seen
        seen.add(stamp)
    store.heartbeat([RUN_ID])  # not shown in a listing: the stamp stays
    assert _stamp(db) in seen
    db.dispose()


def test_an_upgrade_killed_halfway_leaves_version_6_and_completes_later(urls, tmp_path):
    _, _, old_url = urls
    Database(old_url).dispose()
    _make_v6(old_url)
    test_value_indexes.killed_while_upgrading(
        old_url,
        tmp_path,
        """
        from mlo.store import schema

        real = schema.listing_triggers

        def create(conn):  # the process is killed after the column and a few of the triggers
            for statement in real(conn.dialect.name)[:3]:
                conn.exec_driver_sql(statement)
            os.kill(os.getpid(), signal.SIGKILL)

        schema.create_listing_triggers = create
        """,
    )
    assert _shape(old_url)["triggers"] == [] and "listing_stamp" not in _shape(old_url)["columns"]
    db = Database(old_url)
    assert db.schema_version() == schema.SCHEMA_VERSION
    RunStore(db).set_tags(RUN_ID, {"t": "after"})
    assert _stamp(db) is not None
    db.dispose()
