"""The metadata database: engine set-up, transactions with retry, and schema creation/migration.

SQLite (the default) runs in WAL mode with a busy timeout; write transactions start with ``BEGIN IMMEDIATE``
so that two writers queue on the lock instead of failing on a lock upgrade. PostgreSQL takes the same code.

Faults of the database (a corrupt or truncated file, a full or read-only disk, a server that is down) leave every
transaction as one :class:`~mlo.errors.StoreError` line (see :mod:`mlo.store.faults`). A SQLite file that this
user cannot write is opened read-only: reading works, a write says why it cannot.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ..errors import InvalidInput, StoreError
from . import faults, migrations, schema

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
RETRY_SECONDS = 120.0
CONNECT_TIMEOUT_S = 10  # PostgreSQL: how long to wait for an unreachable server before saying so
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


def read_only_uri(path: Path) -> str:
    """A SQLite URI that opens ``path`` read-only. Without a write-ahead log to read, the file is all there is:
    ``immutable`` then lets SQLite read it without the shared-memory file it could not create in a read-only
    folder."""
    wal = path.with_name(path.name + "-wal")
    immutable = not os.access(path.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size > 0)
    return f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")


def _is_driver_error(exc: BaseException) -> bool:
    return isinstance(exc, (DBAPIError, sqlite3.Error)) or type(exc).__module__.startswith("psycopg")


class Database:
    """A metadata store at a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    ``on_empty(db)``, when given, is called before the schema is created in a database that has none (a new
    file, a zero-length one, an empty PostgreSQL database): it may refuse by raising (see
    :meth:`mlo.workspace.Workspace.db`, which refuses when blobs already exist beside it).
    """

    def __init__(self, url: str, *, on_empty: Callable[[Database], None] | None = None):
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
        self.path: Path | None = None  # the SQLite file
        self.read_only = False
        self._on_empty = on_empty
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.engine = self._create_engine(parsed)
        _engines.add(self.engine)
        self._ensure_schema()

    # -- engine ---------------------------------------------------------------------------------------------
    def _create_engine(self, url) -> Engine:
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
                self.path = Path(url.database).expanduser().absolute()
                if self._on_empty is not None and (not self.path.exists() or self.path.stat().st_size == 0):
                    self._on_empty(self)  # before SQLite writes a header into it
                url = self._open_sqlite_file(url)
            engine = create_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            )
            read_only = self.read_only

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                if not read_only:
                    _retry(lambda: cur.execute("PRAGMA journal_mode=WAL"))
                    cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn):
                immediate = conn.get_execution_options().get("mlo_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        if self.dialect == "postgresql":
            args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
            try:
                engine = create_engine(url, pool_pre_ping=True, connect_args=args)
            except ModuleNotFoundError:
                raise StoreError(
                    "PostgreSQL needs the psycopg driver: pip install 'mlo-workbench[postgres]'"
                ) from None

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                # psycopg prepares a statement run five times on a connection, and the server then may plan it
                # once for any values (a generic plan), blind to how rare a value is or which expression an
                # index holds: `lifecycle = 'archived'` became a scan of a million runs (370 ms), pages of runs
                # 30 ms -> 300-700 ms. Planned for their values each time, statements keep their plans.
                if dbapi_conn.info.server_version >= 120000:  # (the setting came with PostgreSQL 12)
                    autocommit = dbapi_conn.autocommit
                    dbapi_conn.autocommit = True  # a SET inside a transaction rolled back would not hold
                    try:
                        dbapi_conn.execute("SET plan_cache_mode = force_custom_plan")
                    finally:
                        dbapi_conn.autocommit = autocommit

            return engine
        raise InvalidInput(f"unsupported store {self.dialect!r}: use sqlite:/// or postgresql:// URLs")

    def _open_sqlite_file(self, url):
        """The URL to open the SQLite file with: read-only (``mode=ro``) when this user cannot write the file or
        its folder, so that a read-only workspace can still be read."""
        path = self.path
        assert path is not None
        folder = path.parent
        if not folder.exists():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise faults.blob_fault(exc, folder, "creating the workspace folder") or exc from None
        writable_folder = os.access(folder, os.W_OK)
        if path.exists() and writable_folder and os.access(path, os.W_OK):
            return url
        if not path.exists():
            if writable_folder:
                return url
            raise faults.fault(
                faults.READ_ONLY,
                f"cannot create the metadata database {path}: its folder is read-only for this user; get write "
                "access to it or set MLO_HOME to a writable workspace",
            )
        self.read_only = True
        return make_url(f"sqlite:///{read_only_uri(path)}&uri=true")

    def dispose(self) -> None:
        self.engine.dispose()

    def _fault(self, exc: BaseException) -> StoreError | None:
        return faults.database_fault(exc, self.url, self.dialect)

    def _refuse_write(self) -> None:
        raise faults.fault(
            faults.READ_ONLY,
            f"the metadata database {self.path} is read-only for this user: this workspace can be read but not "
            "written; get write access to it or set MLO_HOME to a writable workspace",
        )

    # -- transactions -----------------------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot under WAL)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except Exception as exc:
            err = self._fault(exc) if _is_driver_error(exc) else None
            if err is None:
                raise
            raise err from None

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction in which every statement sees the same data. A SQLite read transaction in WAL
        mode is one already; PostgreSQL's default (READ COMMITTED) takes a new snapshot per statement."""
        if self.dialect != "postgresql":
            with self.read() as conn:
                yield conn
            return
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except Exception as exc:
            err = self._fault(exc) if _is_driver_error(exc) else None
            if err is None:
                raise
            raise err from None

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying it whole when the database is busy."""
        if self.read_only:
            self._refuse_write()

        def attempt() -> T:
            with self.engine.connect() as conn:
                conn = conn.execution_options(mlo_write=True)
                with conn.begin():
                    return fn(conn)

        try:
            if self._write_lock is not None:
                # threads of one process queue here, cheaper than on SQLite's file lock
                with self._write_lock:
                    return _retry(attempt)
            return _retry(attempt)
        except Exception as exc:
            err = self._fault(exc) if _is_driver_error(exc) else None
            if err is None and _is_driver_error(exc) and _is_transient(exc):
                err = faults.busy_fault(exc, self.url, RETRY_SECONDS)  # retried until the deadline, in vain
            if err is None:
                raise
            raise err from None

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
            err = self._fault(exc)
            if err is not None:
                raise err from None
            raise StoreError(f"cannot open the store at {faults.redact(self.url)}: {exc.orig}") from None
        if version == schema.SCHEMA_VERSION:
            return
        where = self.path or faults.redact(self.url)
        if version is not None and version > schema.SCHEMA_VERSION:
            raise faults.fault(
                faults.SCHEMA,
                f"the metadata database {where} has schema version {version}, newer than this mlo knows "
                f"({schema.SCHEMA_VERSION}): a newer mlo wrote it; upgrade mlo-workbench "
                "(pip install -U mlo-workbench) to use it",
            )
        if self.read_only:
            state = (
                "has no schema yet" if version is None else f"needs an upgrade from schema version {version}"
            )
            raise faults.fault(
                faults.READ_ONLY,
                f"the metadata database {where} {state}, and it is read-only for this user: open it once with "
                "write access",
            )
        if version is None and self._on_empty is not None:
            self._on_empty(self)
        self.write(self._migrate)

    def _migrate(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        version = self.schema_version(conn)  # again, under the lock: another process may have done it
        if version == schema.SCHEMA_VERSION:
            return
        if version is None:
            schema.metadata.create_all(conn)
            schema.create_listing_triggers(conn)
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
