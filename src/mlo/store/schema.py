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
)

SCHEMA_VERSION = 1

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
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_status", "status"),
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
