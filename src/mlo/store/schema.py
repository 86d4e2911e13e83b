"""The metadata schema (SQLAlchemy Core). Times are integer microseconds since the epoch, UTC.

A fresh store is created from these tables and stamped with :data:`SCHEMA_VERSION`; an older store is brought
forward by the migrations in :mod:`mlo.store.migrations`, which must leave it in the same shape.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

SCHEMA_VERSION = 8

# Lifecycle of runs and experiments (schema version 3): "active", "archived" (kept, out of default listings) or
# "deleted" (out of default listings, restorable until purged after a grace period).
LIFECYCLES = ("active", "archived", "deleted")

metadata = MetaData()

ID = String(32)

meta = Table(
    "mlo_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    # version 3: lifecycle (see LIFECYCLES) and when it was deleted or archived
    Column("lifecycle", String(16), nullable=False, server_default=text("'active'")),
    Column("deleted_at", BigInteger),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_id", ID),
    # who owns a running run: "host:pid:process-start-time"; heartbeat refreshed while the owner lives
    Column("owner", String(255)),
    Column("heartbeat", BigInteger),
    Column("user", String(255)),
    Column("source", Text),  # notebook or script path when known
    Column("git_commit", String(64)),
    Column("git_branch", String(255)),
    Column("git_dirty", Boolean),
    Column("git_diff_digest", String(64)),  # blob holding `git diff HEAD` when dirty
    Column("env_digest", String(64)),  # blob holding the environment JSON (python, platform, packages)
    # version 3: lifecycle (see LIFECYCLES), when it was deleted or archived, and a Markdown note
    Column("lifecycle", String(16), nullable=False, server_default=text("'active'")),
    Column("deleted_at", BigInteger),
    Column("note", Text),
    # version 7: changes whenever anything a run listing shows of the run does (its row, params, tags, latest
    # metrics), set by the triggers of listing_triggers(); a cached listing re-reads the runs whose stamp moved
    Column("listing_stamp", BigInteger),
    # version 6: with the id, so a page of newest runs (and a count) is read from the index alone
    Index("ix_runs_experiment_start_id", "experiment_id", "start_time", "id"),
    # version 7: the same order across experiments, so a page of every experiment's runs, filtered or not, walks
    # the newest first without sorting them all
    Index("ix_runs_start_id", "start_time", "id"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_lifecycle", "lifecycle"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),  # JSON text, so types round-trip
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key", "key", "run_id"),  # runs by tag (the replays of mlo reproduce, hidden from listings)
)

# The latest value of each metric: what run tables and `where` filters read.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Float),  # NULL stands for NaN (SQLite cannot store NaN)
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
)

# -- schema version 6: indexes by key and value, so run listings filter and order in the database ---------------
# A run table filtered on ``params.model = 'rf'`` or ordered by ``metrics.acc`` walks one key's entries in value
# order instead of reading every run (the run id is in the index, so the table itself is not read). PostgreSQL caps a B-tree entry near 2.7 kB, and params and tags are free
# text, so there the index holds the first VALUE_PREFIX characters of the value (queries name the same
# expression, see :func:`indexed_value`); SQLite indexes the whole value.
VALUE_PREFIX = 200
INDEXED_BY_VALUE = {"params": "ix_params_key_value", "tags": "ix_tags_key_value"}


def indexed_value(table: Table, dialect: str):
    """The expression the (key, value) index of ``params`` or ``tags`` holds on this database."""
    if dialect != "postgresql":
        return table.c.value
    return func.substr(table.c.value, 1, VALUE_PREFIX).collate("C")  # code point order, as SQLite's


_VALUE_INDEXES = {
    "sqlite": [
        Index(
            "ix_latest_metrics_key_value",
            latest_metrics.c.key,
            latest_metrics.c.value,
            latest_metrics.c.run_id,
        )
    ],
    "postgresql": [],
}
_VALUE_INDEXES["postgresql"] += _VALUE_INDEXES["sqlite"]  # the same index of floats on both
for _table in (params, tags):
    _VALUE_INDEXES["sqlite"].append(
        Index(INDEXED_BY_VALUE[_table.name], _table.c.key, _table.c.value, _table.c.run_id).ddl_if(
            dialect="sqlite"
        )
    )
    _VALUE_INDEXES["postgresql"].append(
        Index(
            INDEXED_BY_VALUE[_table.name] + "_prefix",
            _table.c.key,
            indexed_value(_table, "postgresql"),
            _table.c.run_id,
        ).ddl_if(dialect="postgresql")
    )


def value_indexes(dialect: str) -> list[Index]:
    """The (key, value) indexes of schema version 6 that a database of this dialect holds."""
    return _VALUE_INDEXES.get(dialect, _VALUE_INDEXES["sqlite"])


# -- schema version 8: params indexed by their value as a number, on PostgreSQL ----------------------------------
# A page filtered on ``params.lr > 0.01`` or ordered by ``params.lr`` reads a range of this index instead of
# casting every value of the key (text order is not number order: "10" < "9"). The expression is NULL for any
# value that is not a plain JSON number whose cast cannot fail (no exponent and shorter than 300 characters, or
# a mantissa below 10 with an exponent of at most two digits, as Python writes floats): an index expression that
# raised would refuse the insert of the param. A key with a value outside that (its expression NULL) is
# filtered on the cast of each value, as before (see mlo.store.run_filter). SQLite casts a key's values fast
# enough (and has no such function to index safely): nothing there.
NUMBER_INDEX = "ix_params_key_number"
_PLAIN_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$|^-?[0-9](\.[0-9]+)?[eE][-+]?[0-9]{1,2}$"


def param_number(column):
    """The value as a double on PostgreSQL, as the index of version 8 holds it (constants written out, so that
    a query names the indexed expression exactly)."""
    from sqlalchemy import and_, case, cast, literal_column
    from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

    plain = and_(
        func.length(column) < literal_column("300"),
        column.op("~")(literal_column("'" + _PLAIN_NUMBER + "'")),
    )
    from sqlalchemy.sql.elements import Grouping

    return Grouping(case((plain, cast(column, DOUBLE_PRECISION))))  # in parentheses, as an index expression


NUMBER_INDEXES = {
    "postgresql": [
        Index(NUMBER_INDEX, params.c.key, param_number(params.c.value), params.c.run_id).ddl_if(
            dialect="postgresql"
        )
    ]
}


# Version 7: what a run listing shows of a run (LISTED_RUN_COLUMNS of its row, its params, tags and latest
# metrics) moves the run's listing_stamp to a new random value, in the same transaction as the write, whichever
# code path writes. Triggers rather than code: every writer (the tracking core, lifecycle, imports, another mlo
# version's process) keeps the stamp honest.
LISTED_RUN_COLUMNS = ("experiment_id", "name", "status", "start_time", "end_time", "git_commit", "parent_id",
                      "user", "source", "lifecycle")  # fmt: skip
_LISTED_TABLES = ("params", "tags", "latest_metrics")


def listing_triggers(dialect: str) -> list[str]:
    """The statements that create the listing-stamp triggers of schema version 7 (idempotent)."""
    if dialect == "postgresql":
        stamp = "(floor(random() * 9.2e18) - 4.6e18)::bigint"
        listed = ", ".join(f'"{c}"' for c in LISTED_RUN_COLUMNS)
        out = [
            "CREATE OR REPLACE FUNCTION mlo_touch_listed_run() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP = 'DELETE' THEN UPDATE runs SET listing_stamp = {stamp} WHERE id = OLD.run_id; "
            f"ELSE UPDATE runs SET listing_stamp = {stamp} WHERE id = NEW.run_id; END IF; "
            "RETURN NULL; END $$",
            "CREATE OR REPLACE FUNCTION mlo_stamp_listed_run() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"NEW.listing_stamp := {stamp}; RETURN NEW; END $$",
            "DROP TRIGGER IF EXISTS mlo_runs_listing ON runs",
            f"CREATE TRIGGER mlo_runs_listing BEFORE INSERT OR UPDATE OF {listed} ON runs "
            "FOR EACH ROW EXECUTE FUNCTION mlo_stamp_listed_run()",
        ]
        for table in _LISTED_TABLES:
            out += [
                f"DROP TRIGGER IF EXISTS mlo_{table}_listing ON {table}",
                f"CREATE TRIGGER mlo_{table}_listing AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION mlo_touch_listed_run()",
            ]
        return out
    listed = ", ".join(f'"{c}"' for c in LISTED_RUN_COLUMNS)
    out = [
        "CREATE TRIGGER IF NOT EXISTS mlo_runs_listing_insert AFTER INSERT ON runs BEGIN "
        "UPDATE runs SET listing_stamp = random() WHERE id = NEW.id; END",
        f"CREATE TRIGGER IF NOT EXISTS mlo_runs_listing_update AFTER UPDATE OF {listed} ON runs BEGIN "
        "UPDATE runs SET listing_stamp = random() WHERE id = NEW.id; END",
    ]
    for table in _LISTED_TABLES:
        for event, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD")):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS mlo_{table}_listing_{event} AFTER {event.upper()} ON {table} "
                f"BEGIN UPDATE runs SET listing_stamp = random() WHERE id = {row}.run_id; END"
            )
    return out


def create_listing_triggers(conn) -> None:
    for statement in listing_triggers(conn.dialect.name):
        conn.exec_driver_sql(statement)


# Full metric histories, stored as chunks of packed little-endian arrays: one row per flush and key.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),  # int64
    Column("vals", LargeBinary, nullable=False),  # float64
    Column("timestamps", LargeBinary, nullable=False),  # int64 microseconds
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(255)),
    Column("created_at", BigInteger, nullable=False),
)

cells = Table(
    "cells",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("execution_count", Integer),
    Column("source", Text, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("error", Text),
    Column("started_at", BigInteger, nullable=False),
    Column("duration", Float, nullable=False),
)


# -- schema version 2: data snapshots, lineage, reports --------------------------------------------------------------
# Every table below was added in version 2; the migration to 2 creates whichever of them are missing.

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # content digest of the logical data (see mlo.data.digest)
    Column("kind", String(16), nullable=False),  # frame | table | array | file | folder
    Column("format", String(16), nullable=False),  # how the blob holds it: parquet | npy | file | manifest
    Column("blob", String(64), nullable=False),  # SHA-256 of the stored object in the blob store
    Column("rows", BigInteger),
    Column("n_columns", Integer),
    Column("nbytes", BigInteger, nullable=False),  # bytes of the data as held in memory / on disk
    Column("size", BigInteger, nullable=False),  # bytes stored
    Column("schema", Text, nullable=False),  # JSON
    Column("profile", Text),  # JSON: one profile per column (see mlo.data.profile)
    Column("source", Text),  # the path a file or folder snapshot was taken from
    Column("run_id", ID),  # the run active when it was taken
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255)),
    UniqueConstraint("name", "version", name="uq_snapshots_name_version"),
    Index("ix_snapshots_digest", "digest"),
)

# Edges of the lineage graph between nodes named "<kind>:<id>" (run:<id>, snapshot:<id>, model:<name>/<version>,
# report:<id>). Append-only.
lineage = Table(
    "lineage",
    metadata,
    Column("src", String(320), primary_key=True),
    Column("dst", String(320), primary_key=True),
    Column("relation", String(32), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_lineage_dst", "dst"),
)

# Stored reports (drift, validation, …): a JSON summary for listings and gates, the full payload as a blob.
reports = Table(
    "reports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(320)),  # what it is about, e.g. "model:churn/3" or "snapshot:<id>"
    Column("run_id", ID),
    Column("passed", Boolean),
    Column("summary", Text, nullable=False),  # JSON
    Column("payload", String(64)),  # blob digest of the full report (JSON)
    Column("created_at", BigInteger, nullable=False),
    Index("ix_reports_kind_subject", "kind", "subject"),
)

# Stat cache for file snapshots: an unchanged file (same size, mtime and inode) is not hashed again.
file_digests = Table(
    "file_digests",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
)


# -- model registry (schema version 2): models, versions, aliases, policies and the audit log ------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("last_version", Integer, nullable=False),  # bumped under the row lock to allocate a version
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255)),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", ID),
    Column("flavor", String(32), nullable=False),  # skops | joblib | cloudpickle
    Column("blob", String(64), nullable=False),  # SHA-256 of the serialized model in the blob store
    Column("size", BigInteger, nullable=False),
    Column("model_class", String(512), nullable=False),
    Column("signature", Text),  # JSON (see mlo.registry.signature)
    Column("input_example", Text),  # JSON: a few rows, for cards and smoke tests
    Column("env", Text, nullable=False),  # JSON: python and package versions at registration
    Column("details", Text, nullable=False),  # JSON: trusted types, why a fallback format was used, …
    Column("tags", Text, nullable=False),  # JSON object of strings
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255)),
    UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    Index("ix_model_versions_run", "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(255), ForeignKey("registered_models.name"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(255)),
)

# What an alias requires before a version may hold it; scope is a model name or "*" for every model.
model_policies = Table(
    "model_policies",
    metadata,
    Column("scope", String(255), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("rules", Text, nullable=False),  # JSON
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(255)),
)

# Append-only: every registration, alias change and policy change, with who, when, why and the evidence.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),  # the model, or "*" for a workspace-wide policy change
    Column("seq", Integer, nullable=False),  # 1, 2, … per name: the order of events, whatever the clocks say
    Column("action", String(32), nullable=False),
    Column("alias", String(64)),
    Column("version", Integer),  # the version the event is about
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("user", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("reason", Text),
    Column("forced", Boolean, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON list of report ids
    Column("missing", Text, nullable=False),  # JSON list of unmet requirements (overridden when forced)
    Column("details", Text, nullable=False),  # JSON
    UniqueConstraint("name", "seq", name="uq_audit_events_name_seq"),
    Index("ix_audit_events_time", "created_at"),
)

# -- pipelines (schema version 2): the run cache of notebook stages ------------------------------------------------
# A stage execution whose inputs hash to ``key`` produced these outs in this run; an unchanged stage is restored
# from here instead of starting a kernel.
stage_cache = Table(
    "stage_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("stage", String(255), nullable=False),
    Column("task", String(512), nullable=False),
    Column("run_id", ID, nullable=False),
    Column("outs", Text, nullable=False),  # JSON: [{"path", "kind", "digest", "blob", "snapshot_id"}]
    Column("notebook", String(64)),  # blob of the executed notebook
    Column("created_at", BigInteger, nullable=False),
)


# -- LLM traces (schema version 4): span trees of LLM calls, tools, retrieval and custom steps ----------------------
# Every table below was added in version 4; the migration to 4 creates them. Prompts and responses are blobs
# (content-addressed: the same text is stored once); spans keep their digests.

llm_traces = Table(
    "llm_traces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("run_id", ID),  # the run active when the trace started
    Column("notebook", Text),  # the notebook and the cell (execution count) that made it, when known
    Column("cell", Integer),
    Column("status", String(16), nullable=False),  # running | ok | error | unfinished (process ended)
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("spans", Integer, nullable=False),
    Column("llm_calls", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("models", Text),  # the models its LLM calls named, comma-separated
    Column("prompts", Text),  # the prompt versions its spans used ("support/3"), comma-separated
    Column("replayed", Boolean, nullable=False),  # answered from a record, not by the endpoint
    Column("error", Text),
    Index("ix_llm_traces_start", "start_time"),
    Index("ix_llm_traces_run", "run_id", "start_time"),
)

llm_spans = Table(
    "llm_spans",
    metadata,
    Column("trace_id", ID, primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_id", String(16)),
    Column("seq", Integer, nullable=False),  # order of start within the trace
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # llm | embedding | tool | retrieval | chain | custom
    Column("status", String(16), nullable=False),  # ok | error | unfinished
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("run_id", ID),
    Column("model", String(255)),  # gen_ai.request.model
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cached_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("prompt", String(320)),  # the prompt version it used: "support/3"
    Column("request_key", String(64)),  # digest of the request as the endpoint saw it (record / replay)
    Column("input_blob", String(64)),  # request body (LLM calls) or inputs (other spans, when large)
    Column("output_blob", String(64)),  # response body, as received
    Column("attributes", Text, nullable=False),  # JSON: OpenTelemetry GenAI attributes and the rest
    Column("error", Text),
    Index("ix_llm_spans_run", "run_id"),
    Index("ix_llm_spans_request", "request_key"),
    Index("ix_llm_spans_prompt", "prompt"),
)


# -- feature views (schema version 5): versioned transforms and the online values ----------------------------------
# Every table below was added in version 5; the migration to 5 creates them.

# One version per distinct definition: the digest covers the transform's source code, the entity and timestamp
# columns and the source snapshot it reads. Versions are numbered per name.
feature_views = Table(
    "feature_views",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # of the definition (see mlo.features.views)
    Column("code_digest", String(64), nullable=False),  # of the transform's source code alone
    Column("snapshot_id", ID, nullable=False),  # the source snapshot version it reads
    Column("entity", String(255), nullable=False),
    Column("timestamp", String(255), nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: [{"name", "dtype"}] the transform reads
    Column("outputs", Text, nullable=False),  # JSON: [{"name", "dtype"}] the features it makes
    Column("code", Text, nullable=False),  # the transform's source code
    Column(
        "blob", String(64), nullable=False
    ),  # the transform itself (cloudpickle), to run where it was not defined
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255)),
    UniqueConstraint("name", "version", name="uq_feature_views_name_version"),
    Index("ix_feature_views_digest", "name", "digest"),
)

# The latest value of each feature view per entity, as written by the last materialization: what serving reads.
# A materialization replaces a view's rows in one transaction, so a reader sees the old set or the new one.
online_features = Table(
    "online_features",
    metadata,
    Column("view", String(255), primary_key=True),
    Column("entity", String(255), primary_key=True),  # the entity id as text
    Column("version", Integer, nullable=False),  # the feature view version that computed it
    Column("event_time", BigInteger, nullable=False),  # microseconds: the source row's timestamp
    Column("features", Text, nullable=False),  # JSON object: feature -> value
)

# When each view was last materialized, from which version and source, and how many entities it wrote.
feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("view", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("snapshot_id", ID, nullable=False),
    Column("as_of", BigInteger),  # the cut-off time (microseconds), None: every row
    Column("entities", BigInteger, nullable=False),
    Column("materialized_at", BigInteger, nullable=False),
)
