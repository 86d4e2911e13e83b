"""Schema migrations: one function per version step, applied in order under the store's write lock.

A fresh store is created directly at the newest version (``schema.metadata.create_all``); these steps only
bring an older store forward, so each must leave the database exactly as ``create_all`` would.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from ..errors import StoreError


def _add_missing_tables(conn: Connection) -> None:
    """A purely additive step: create the tables that this version introduced."""
    from . import schema

    schema.metadata.create_all(conn, checkfirst=True)


def _add_lifecycle(conn: Connection) -> None:
    """Version 3: runs and experiments get a lifecycle (active, archived, deleted); runs get a note; tags are
    indexed by key."""
    from sqlalchemy import inspect

    from . import schema

    active = "VARCHAR(16) NOT NULL DEFAULT 'active'"
    have = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in ("experiments", "runs")}
    for table, column, sql_type in (
        ("experiments", "lifecycle", active),
        ("experiments", "deleted_at", "BIGINT"),
        ("runs", "lifecycle", active),
        ("runs", "deleted_at", "BIGINT"),
        ("runs", "note", "TEXT"),
    ):
        if column not in have[table]:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    next(i for i in schema.runs.indexes if i.name == "ix_runs_lifecycle").create(conn, checkfirst=True)
    next(i for i in schema.tags.indexes if i.name == "ix_tags_key").create(conn, checkfirst=True)


def _add_feature_tables(conn: Connection) -> None:
    """Version 5: feature views, their online values and the materializations' bookkeeping (new tables
    only)."""
    from . import schema

    for table in (schema.feature_views, schema.online_features, schema.feature_materializations):
        table.create(conn, checkfirst=True)


def _add_value_indexes(conn: Connection) -> None:
    """Version 6: indexes of params, tags and latest metrics by (key, value, run), so run listings filter and
    order in the database (on PostgreSQL, params and tags are indexed by a prefix of the value); the runs'
    index by experiment and start time gains the run id."""
    from . import schema

    for index in schema.value_indexes(conn.dialect.name):
        index.create(conn, checkfirst=True)
    # the runs of an experiment by start time, now with their ids (the index it replaces is its prefix)
    next(i for i in schema.runs.indexes if i.name == "ix_runs_experiment_start_id").create(
        conn, checkfirst=True
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_runs_experiment_start")


def _add_listing_stamps(conn: Connection) -> None:
    """Version 7: runs get a listing stamp that triggers move on every change a run listing shows, so a listing
    cached on disk re-reads only the runs changed since (existing runs start unstamped: NULL, then a stamp at
    their next change), and an index of runs by (start time, id) across experiments. One transaction with the
    version's record: a killed upgrade leaves version 6 intact."""
    from sqlalchemy import inspect

    from . import schema

    if "listing_stamp" not in {c["name"] for c in inspect(conn).get_columns("runs")}:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN listing_stamp BIGINT")
    schema.create_listing_triggers(conn)
    # the runs of every experiment, newest first (pages across experiments walk it instead of sorting)
    next(i for i in schema.runs.indexes if i.name == "ix_runs_start_id").create(conn, checkfirst=True)


def _add_number_index(conn: Connection) -> None:
    """Version 8: on PostgreSQL, params indexed by (key, value as a number, run), so pages filtered or ordered
    on a numeric param read a range of it; then the table's statistics, so the planner knows the expression's
    values. Nothing on SQLite."""
    from . import schema

    for index in schema.NUMBER_INDEXES.get(conn.dialect.name, []):
        index.create(conn, checkfirst=True)
        conn.exec_driver_sql("ANALYZE params")


# version reached -> step from the version before it
STEPS: dict[int, Callable[[Connection], None]] = {
    2: _add_missing_tables,  # snapshots, lineage, reports, file_digests
    3: _add_lifecycle,  # runs and experiments: lifecycle, deleted_at; runs: note
    4: _add_missing_tables,  # llm_traces, llm_spans
    5: _add_feature_tables,  # feature_views, online_features, feature_materializations
    6: _add_value_indexes,  # params, tags, latest_metrics: (key, value)
    7: _add_listing_stamps,  # runs: listing_stamp, moved by triggers on runs, params, tags, latest_metrics
    8: _add_number_index,  # params: (key, value as a number, run) on PostgreSQL
}


def upgrade(conn: Connection, current: int, target: int) -> None:
    for version in range(current + 1, target + 1):
        step = STEPS.get(version)
        if step is None:
            raise StoreError(f"no migration to schema version {version}; upgrade mlo-workbench")
        step(conn)
