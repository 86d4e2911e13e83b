"""The metadata database: engine set-up, transactions with retry, and schema creation/migration.

SQLite (the default) runs in WAL mode with a busy timeout; write transactions start with ``BEGIN IMMEDIATE``
so that two writers queue on the lock instead of failing on a lock upgrade. PostgreSQL takes the same code.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ..errors import InvalidInput, StoreError
from . import migrations, schema

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
RETRY_SECONDS = 120.0
_MIGRATION_LOCK_KEY = 0x6D6C6F  # "mlo": PostgreSQL advisory lock id for schema changes

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked child must not share the parent's pooled connections.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
        return "locked" in text or "busy" in text or "deadlock" in text or "could not serialize" in text
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in {"40001", "40P01"}  # serialization failure, deadlock detected
    return False


class Database:
    """A metadata store at a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``)."""

    def __init__(self, url: str):
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidInput(
                f"MLO_STORE={url!r} is not a database URL; use sqlite:///path/mlo.db or postgresql://user@host/db"
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.engine = self._create_engine(parsed)
        _engines.add(self.engine)
        self._ensure_schema()

    # -- engine ---------------------------------------------------------------------------------------------
    def _create_engine(self, url) -> Engine:
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                _retry(lambda: cur.execute("PRAGMA journal_mode=WAL"))
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn):
                immediate = conn.get_execution_options().get("mlo_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        if self.dialect == "postgresql":
            try:
                return create_engine(url, pool_pre_ping=True)
            except ModuleNotFoundError:
                raise StoreError(
                    "PostgreSQL needs the psycopg driver: pip install 'mlo-workbench[postgres]'"
                ) from None
        raise InvalidInput(f"unsupported store {self.dialect!r}: use sqlite:/// or postgresql:// URLs")

    def dispose(self) -> None:
        self.engine.dispose()

    # -- transactions -----------------------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot under WAL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying it whole when the database is busy."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                conn = conn.execution_options(mlo_write=True)
                with conn.begin():
                    return fn(conn)

        if self._write_lock is not None:
            # threads of one process queue here, cheaper than on SQLite's file lock
            with self._write_lock:
                return _retry(attempt)
        return _retry(attempt)

    def insert(self, table):
        """A dialect insert that supports ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    # -- schema -----------------------------------------------------------------------------------------------
    def schema_version(self, conn: Connection | None = None) -> int | None:
        def read(c: Connection) -> int | None:
            if not self.engine.dialect.has_table(c, schema.meta.name):
                return None
            row = c.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
            return int(row[0]) if row else None

        if conn is not None:
            return read(conn)
        with self.read() as c:
            return read(c)

    def _ensure_schema(self) -> None:
        try:
            version = _retry(self.schema_version)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.url}: {exc.orig}") from None
        if version == schema.SCHEMA_VERSION:
            return
        if version is not None and version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"this store has schema version {version}, newer than this mlo knows "
                f"({schema.SCHEMA_VERSION}): upgrade mlo-workbench"
            )
        self.write(self._migrate)

    def _migrate(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        version = self.schema_version(conn)  # again, under the lock: another process may have done it
        if version == schema.SCHEMA_VERSION:
            return
        if version is None:
            schema.metadata.create_all(conn)
        else:
            migrations.upgrade(conn, version, schema.SCHEMA_VERSION)
        conn.execute(
            self.insert(schema.meta)
            .values(key="schema_version", value=str(schema.SCHEMA_VERSION))
            .on_conflict_do_update(index_elements=["key"], set_={"value": str(schema.SCHEMA_VERSION)})
        )


def _retry(fn: Callable[[], T]) -> T:
    """Call ``fn`` until it stops failing with a transient lock/serialization error (bounded in time)."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            return fn()
        except (OperationalError, DBAPIError) as exc:
            if not _is_transient(exc) or time.monotonic() > deadline:
                raise
        except Exception as exc:  # sqlite3.OperationalError raised from a raw cursor (PRAGMA at connect)
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)
