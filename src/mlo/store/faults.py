"""Store faults as one line: what happened to the metadata database or the blob store, and what to do.

The drivers speak in their own terms (``sqlite3.DatabaseError: file is not a database``, ``psycopg``'s
``connection refused``, ``OSError: [Errno 28]``); :func:`database_fault` and :func:`blob_fault` turn the ones that
are faults of the store — a corrupt or truncated file, a full or read-only disk, a server that is down — into a
:class:`~mlo.errors.StoreError` whose ``kind`` names the fault. Errors that are not faults (a unique-key
collision that the caller retries, a bug in a query) are left alone: those functions return None for them.
"""

from __future__ import annotations

import errno
import os
import shutil

from ..errors import StoreError

# kinds of store faults (StoreError.kind)
CORRUPT = "corrupt"
FULL = "full"
READ_ONLY = "read-only"
UNREACHABLE = "unreachable"
IO = "io"
CANNOT_OPEN = "cannot-open"
LOGIN = "login"
SCHEMA = "schema"
EMPTY = "empty"
MISSING = "missing"
BUSY = "busy"
NO_DATABASE = "no-database"

LOW_SPACE_BYTES = 1 << 16  # less free space than this on the database's disk: an I/O error is a full disk
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def fault(kind: str, message: str) -> StoreError:
    err = StoreError(message)
    err.kind = kind
    return err


def redact(url: str) -> str:
    """A database URL without its password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("(Background on this error"):
            return line[:200]
    return type(exc).__name__


def _sqlite_kind(orig: BaseException) -> str | None:
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig).lower()
    if (
        name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        or "malformed" in text
        or "not a database" in text
    ):
        return CORRUPT
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return FULL
    if name.startswith("SQLITE_READONLY") or "readonly database" in text or "read-only" in text:
        return READ_ONLY
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return IO
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or "unable to open" in text:
        return CANNOT_OPEN
    return None


def _missing_schema(orig: BaseException) -> bool:
    """A table or column the schema has is missing (SQLite's "no such table", PostgreSQL's 42P01 and 42703)."""
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    text = str(orig).lower()
    return code in ("42P01", "42703") or "no such table" in text or "no such column" in text


def _postgres_kind(orig: BaseException) -> str | None:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    text = str(orig).lower()
    if code == "3D000" or ("database" in text and "does not exist" in text):
        return NO_DATABASE
    if (
        "password authentication failed" in text
        or "no password supplied" in text
        or ("role" in text and "does not exist" in text)
    ):
        return LOGIN
    if code.startswith("08") or code.startswith("57P"):
        return UNREACHABLE
    if code.startswith("28"):
        return LOGIN
    if code == "53100":
        return FULL
    if code in ("XX001", "XX002"):
        return CORRUPT
    if code == "25006":
        return READ_ONLY
    if not code and (
        "connection" in text or "server closed" in text or "could not connect" in text or "timeout" in text
    ):
        return UNREACHABLE
    return None


def _no_space_left(path: str) -> bool:
    try:
        return shutil.disk_usage(os.path.dirname(path) or ".").free < LOW_SPACE_BYTES
    except OSError:
        return False


def database_fault(exc: BaseException, url: str, dialect: str) -> StoreError | None:
    """The StoreError for a driver error that is a fault of the metadata store, else None."""
    if isinstance(exc, StoreError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    if _missing_schema(
        orig
    ):  # a table or column of the migrated schema is gone: the file was changed by hand
        kind = SCHEMA
        where = (url.split("///", 1)[-1] if "///" in url else url) if dialect == "sqlite" else redact(url)
        return fault(kind, _DB_MESSAGES[kind].format(where=where, detail=_first_line(orig)))
    if type(orig).__name__ in ("IntegrityError", "ProgrammingError", "DataError"):
        return None
    if dialect == "sqlite":
        kind = _sqlite_kind(orig)
        where = url.split("///", 1)[-1] if "///" in url else url
        if kind in (IO, CANNOT_OPEN) and _no_space_left(where):
            kind = FULL  # SQLite says "disk I/O error" when it cannot even create its shared-memory file
    else:
        kind = _postgres_kind(orig)
        if kind is None and getattr(exc, "connection_invalidated", False):
            kind = UNREACHABLE
        where = redact(url)
    if kind is None:
        return None
    detail = _first_line(orig)
    return fault(kind, _DB_MESSAGES[kind].format(where=where, detail=detail))


_DB_MESSAGES = {
    CORRUPT: (
        "the metadata database {where} is damaged ({detail}): restore it from a backup "
        "(`mlo doctor` checks the workspace)"
    ),
    FULL: (
        "no space left to write the metadata database {where} ({detail}): free disk space "
        "(`mlo gc` removes blobs nothing refers to) and retry; what was recorded before is kept"
    ),
    READ_ONLY: (
        "the metadata database {where} is read-only ({detail}): this workspace can be read but not written; "
        "get write access to it or set MLO_HOME to a writable workspace"
    ),
    UNREACHABLE: (
        "cannot reach the metadata database at {where} ({detail}): start the database server or fix "
        "MLO_STORE / [store] url, then retry"
    ),
    IO: (
        "the disk failed while reading or writing the metadata database {where} ({detail}): check the disk, "
        "then run `mlo doctor`"
    ),
    CANNOT_OPEN: (
        "cannot open the metadata database {where} ({detail}): check that the file and its folder exist and "
        "are readable by this user"
    ),
    SCHEMA: (
        "the metadata database {where} lacks part of mlo's schema ({detail}): it was changed outside mlo or is "
        "damaged; restore it from a backup (`mlo doctor` checks the workspace)"
    ),
    LOGIN: "the metadata database at {where} refused the login ({detail}): fix the user or password in MLO_STORE",
    NO_DATABASE: (
        "the database named in {where} does not exist on its server ({detail}): create it (createdb) or fix "
        "MLO_STORE / [store] url"
    ),
}


def busy_fault(exc: BaseException, url: str, seconds: float) -> StoreError:
    """A database that stayed locked by another writer past the retry deadline."""
    return fault(
        BUSY,
        f"the metadata database {redact(url)} stayed locked by another process for {seconds:.0f} s "
        f"({_first_line(getattr(exc, 'orig', None) or exc)}): a process holds a write transaction open (a stuck "
        "notebook or job); end it, then retry",
    )


def blob_fault(exc: OSError, root: os.PathLike | str, action: str) -> StoreError | None:
    """The StoreError for an OSError of the blob store at ``root`` that is a fault (full, read-only, I/O), else
    None. ``action`` says what was being done, e.g. "storing a blob"."""
    return os_fault(exc, root, action, what="the blob store")


def os_fault(exc: OSError, where: os.PathLike | str, action: str, what: str = "") -> StoreError | None:
    """The StoreError for an OSError at ``where`` (a file or folder of the store) that is a fault of the disk:
    full, read-only or failing; None for any other error. ``action`` says what was being done."""
    code = exc.errno
    detail = exc.strerror or _first_line(exc)
    place = f"{what} {where}" if what else str(where)
    if code in _FULL_ERRNOS:
        limit = "the file size limit was reached" if code == errno.EFBIG else "no space left on the device"
        return fault(
            FULL,
            f"{limit} while {action} in {place} ({detail}): free disk space (`mlo gc` removes blobs nothing "
            "refers to) and retry; what was recorded before is kept",
        )
    if code in _READ_ONLY_ERRNOS and action.startswith("reading"):
        return fault(
            CANNOT_OPEN,
            f"cannot read {place} ({detail}) while {action}: check that this user may read it",
        )
    if code in _READ_ONLY_ERRNOS:
        return fault(
            READ_ONLY,
            f"{place} is read-only for this user ({detail}) while {action}: this workspace can be read but not "
            "written; get write access to it or set MLO_HOME to a writable workspace",
        )
    if code == errno.EIO:
        return fault(
            IO,
            f"the disk failed while {action} in {place} ({detail}): check the disk, then run `mlo doctor`",
        )
    return None
