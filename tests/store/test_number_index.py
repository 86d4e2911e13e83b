"""Schema version 8: on PostgreSQL, params indexed by (key, value as a number, run). A version 7 store gains the
index in the shape of a fresh one (SQLite: the version alone), keeping its runs; an upgrade killed halfway leaves
version 7 whole (pages on numeric params, in and out of the index: tests/tracking/test_query_sql.py)."""

from __future__ import annotations

import pytest
import test_value_indexes
from sqlalchemy import select

from mlo.store import schema
from mlo.store.db import Database
from mlo.store.runs import RunStore

urls = test_value_indexes.urls  # the fixture: a fresh and an old store's URLs, on SQLite and PostgreSQL
_indexes = test_value_indexes._indexes


def _make_v7(url: str) -> None:
    db = Database(url)
    test_value_indexes._make_run(RunStore(db), {"C": "0.5", "n": "3"})

    def make_v7(conn):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {schema.NUMBER_INDEX}")
        conn.execute(schema.meta.update().values(value="7"))

    db.write(make_v7)
    db.dispose()
    assert schema.NUMBER_INDEX not in {name for name, _ in _indexes(url)["params"]}


def test_a_version_7_store_gains_the_number_index_keeping_its_runs(urls):
    dialect, fresh_url, old_url = urls
    Database(fresh_url).dispose()
    _make_v7(old_url)
    db = Database(old_url)
    assert db.schema_version() == schema.SCHEMA_VERSION == 8
    assert _indexes(old_url) == _indexes(fresh_url)
    indexed = schema.NUMBER_INDEX in {name for name, _ in _indexes(old_url)["params"]}
    assert indexed == (dialect == "postgresql")
    with db.read() as conn:
        assert conn.execute(select(schema.runs.c.name)).scalars().all() == ["kept"]
        assert conn.execute(select(schema.params.c.value).order_by(schema.params.c.key)).scalars().all() == [
            "0.5",
            "3",
        ]
    db.dispose()


def test_an_upgrade_killed_halfway_leaves_version_7(urls, tmp_path):
    _, _, old_url = urls
    Database(old_url).dispose()
    _make_v7(old_url)
    test_value_indexes.killed_while_upgrading(
        old_url,
        tmp_path,
        """
        from mlo.store import migrations

        def killed(conn):  # the process dies in the step, before its version is recorded
            conn.exec_driver_sql("SELECT 1")
            os.kill(os.getpid(), signal.SIGKILL)

        migrations.STEPS[8] = killed
        """,
    )
    assert test_value_indexes.stored_version(old_url) == "7"
    assert schema.NUMBER_INDEX not in {name for name, _ in _indexes(old_url)["params"]}
    db = Database(old_url)  # the next open completes it
    assert db.schema_version() == 8
    db.dispose()


@pytest.mark.postgres
def test_postgresql_plans_each_statement_for_its_values(postgres):
    """The driver prepares a statement run five times; the server must still plan it for its values (a plan
    for any value turned a probe of a rare lifecycle into a scan of every run)."""
    name = postgres.new_database()
    db = Database(postgres.url(name))
    for _ in range(3):  # every pooled connection, also after the first
        with db.read() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
    db.dispose()
    postgres.drop_database(name)
