"""The feature tables: a version 4 store gains them, in the shape of a fresh one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, select

from mlo.store import schema
from mlo.store.db import Database
from mlo.store.runs import RunStore

FEATURE_TABLES = ("feature_views", "online_features", "feature_materializations")


def _shape(url: str) -> dict:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {
            t: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)),
                sorted(i["name"] for i in insp.get_indexes(t)),
                sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
            )
            for t in insp.get_table_names()
        }
    finally:
        engine.dispose()


def _urls(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/fresh.db", f"sqlite:///{tmp_path}/old.db", None
    cluster = request.getfixturevalue("postgres")
    fresh, old = cluster.new_database(), cluster.new_database()
    return cluster.url(fresh), cluster.url(old), (cluster, [fresh, old])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def urls(request, tmp_path):
    fresh, old, cleanup = _urls(request, tmp_path)
    yield fresh, old
    if cleanup:
        cluster, names = cleanup
        for n in names:
            cluster.drop_database(n)


def test_a_version_4_store_gains_the_feature_tables_keeping_its_runs(urls):
    fresh_url, old_url = urls
    Database(fresh_url).dispose()
    db = Database(old_url)
    store = RunStore(db)
    store.create_run(
        run_id="01jz0000000000000000000000", experiment_id=store.experiment_id("old"), name="kept", start_time=1,
        owner=None, user=None, source=None, parent_id=None, params={}, tags={},
    )  # fmt: skip

    def make_v4(conn):
        for t in FEATURE_TABLES:
            conn.exec_driver_sql(f"DROP TABLE {t}")
        conn.execute(schema.meta.update().values(value="4"))

    db.write(make_v4)
    db.dispose()
    assert not set(FEATURE_TABLES) & set(_shape(old_url))

    db = Database(old_url)
    assert db.schema_version() == schema.SCHEMA_VERSION >= 5
    assert _shape(old_url) == _shape(fresh_url)
    with db.read() as conn:
        assert conn.execute(select(schema.runs.c.name)).scalars().all() == ["kept"]
    db.dispose()
