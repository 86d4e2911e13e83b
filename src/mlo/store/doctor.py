"""``mlo doctor``: check a workspace without changing it.

It reads the settings, opens the metadata database read-only (it never migrates it nor writes to it), runs
SQLite's integrity check, compares the blobs the records refer to with the blobs that are there (missing ones are
a fault; ones nothing refers to are what ``mlo gc`` would remove), can re-hash every blob (``verify``), lists temp
files that killed writes left behind, and checks every model version against its audited registration.

Each finding has a level: ``ok``, ``warning`` (worth a ``mlo gc``, not a fault) or ``fault``; its ``exit_code``
is 3 for a fault of the store and 2 for a settings error, which the CLI exits with.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import Engine, make_url

from ..errors import InvalidInput, MloError, StoreError
from . import addresses, faults, schema
from .blobs import LocalBlobStore
from .db import read_only_uri
from .gc import DEFAULT_GRACE, TRASH_PREFIX
from .references import references

MAX_LISTED = 10


@dataclass
class Finding:
    check: str
    level: str  # ok | warning | fault
    message: str
    details: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class DoctorReport:
    """What :func:`examine` found; ``exit_code`` is 0 when nothing is at fault."""

    home: str
    store: str
    artifacts: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, check: str, level: str, message: str, details=(), exit_code: int | None = None) -> None:
        code = exit_code if exit_code is not None else (3 if level == "fault" else 0)
        self.findings.append(Finding(check, level, message, list(details)[:MAX_LISTED], code))

    @property
    def exit_code(self) -> int:
        return max((f.exit_code for f in self.findings), default=0)

    @property
    def healthy(self) -> bool:
        return all(f.level != "fault" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "store": self.store,
            "artifacts": self.artifacts,
            "healthy": self.healthy,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "stats": self.stats,
            "findings": [asdict(f) for f in self.findings],
        }


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database).expanduser().absolute()


def _read_only_engine(url: str, path: Path | None) -> Engine:
    if path is None:
        u = make_url(url)
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        return create_engine(u, connect_args={"connect_timeout": 10})
    return create_engine(f"sqlite:///{read_only_uri(path)}&uri=true")


def _check_sqlite_file(report: DoctorReport, path: Path, blobs: LocalBlobStore, quick: bool) -> bool:
    """The file itself: present, not empty, intact. True when its records can be read."""
    if not path.exists() or path.stat().st_size == 0:
        state = "is missing" if not path.exists() else "is empty (0 bytes)"
        if blobs.has_blobs():
            report.add(
                "database",
                "fault",
                f"{path} {state} but the blob store holds blobs: the records were lost; restore the database "
                "from a backup (mlo refuses to create an empty one over existing data)",
            )
        else:
            report.add("database", "ok", f"{path} {state}: a new workspace, created on the first write")
        return False
    pragma = "quick_check" if quick else "integrity_check"
    try:
        con = sqlite3.connect(read_only_uri(path), uri=True, timeout=30)
        try:
            rows = [r[0] for r in con.execute(f"PRAGMA {pragma}").fetchall()]
        finally:
            con.close()
    except sqlite3.Error as exc:
        err = faults.database_fault(exc, f"sqlite:///{path}", "sqlite")
        report.add("database", "fault", str(err) if err else f"{path} cannot be checked ({exc})")
        return False
    if rows != ["ok"]:
        report.add(
            "database",
            "fault",
            f"{path} fails SQLite's {pragma} ({len(rows)} problem(s)): restore it from a backup; "
            "`sqlite3 mlo.db .recover` may save what is left",
            rows,
        )
        return False
    size = path.stat().st_size
    report.stats["database_bytes"] = size
    report.add("database", "ok", f"{path}: {pragma} ok ({size:,} bytes)")
    return True


def _check_schema(report: DoctorReport, engine: Engine, where: str, blobs: LocalBlobStore) -> bool:
    with engine.connect() as conn:
        if not inspect(conn).has_table(schema.meta.name):
            version = None
        else:
            row = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).first()
            version = int(row[0]) if row else None
    report.stats["schema_version"] = version
    if version is None:
        if blobs.has_blobs():
            report.add(
                "schema",
                "fault",
                f"{where} has no tables but the blob store holds blobs: the records were lost",
            )
        else:
            report.add("schema", "ok", f"{where} has no tables yet: created on the first write")
        return False
    if version > schema.SCHEMA_VERSION:
        report.add(
            "schema",
            "fault",
            f"{where} has schema version {version}, newer than this mlo knows ({schema.SCHEMA_VERSION}): "
            "upgrade mlo-workbench",
        )
        return False
    if version < schema.SCHEMA_VERSION:
        report.add(
            "schema",
            "warning",
            f"schema version {version}: brought to {schema.SCHEMA_VERSION} on the next write",
        )
    else:
        report.add("schema", "ok", f"schema version {version}")
    return True


def _check_blobs(
    report: DoctorReport, engine: Engine, blobs: LocalBlobStore, verify: bool, grace: float
) -> None:
    def read_blob(digest: str) -> bytes:
        return blobs.get_bytes(digest)

    with engine.connect() as conn:
        refs, problems = references(conn, read_blob)
    present = {}
    total = 0
    for b in blobs.iter_blobs():
        present[b.digest] = b
        total += b.size
    report.stats.update(blobs=len(present), blob_bytes=total, referenced=len(refs))
    missing = [d for d in refs if d not in present]
    for p in problems:
        report.add("blobs", "fault", p)
    if missing:
        report.add(
            "blobs",
            "fault",
            f"{len(missing)} blob(s) that records refer to are missing from {blobs.root}: restore them from a "
            "backup",
            [f"{d[:12]}: {refs[d]}" for d in missing],
        )
    report.stats["missing"] = len(missing)
    orphans = [b for d, b in present.items() if d not in refs]
    cutoff = time.time() - grace
    old = [b for b in orphans if b.mtime < cutoff]
    report.stats.update(
        orphaned=len(orphans),
        orphaned_bytes=sum(b.size for b in orphans),
        collectable=len(old),
        collectable_bytes=sum(b.size for b in old),
    )
    if orphans:
        report.add(
            "blobs",
            "warning",
            f"{len(orphans)} blob(s) ({sum(b.size for b in orphans):,} bytes) that no record refers to; `mlo gc` "
            f"removes the {len(old)} older than its grace period",
        )
    if not missing and not problems:
        report.add("blobs", "ok", f"{len(present)} blob(s), {total:,} bytes; every referenced blob is there")
    if verify:
        bad = []
        for d, b in present.items():
            try:
                actual = (
                    addresses.hash_file(b.path, addresses.algorithm(d))
                    if isinstance(blobs, LocalBlobStore)
                    else blobs.rehash(d)
                )
                if actual != d:
                    bad.append(f"{d[:12]}: {refs.get(d, 'no record refers to it')}")
            except OSError as exc:
                bad.append(f"{d[:12]}: unreadable ({exc.strerror})")
            except StoreError as exc:
                bad.append(f"{d[:12]}: unreadable ({exc})")
        if bad:
            report.add(
                "blobs",
                "fault",
                f"{len(bad)} blob(s) no longer match their digest: restore them from a backup",
                bad,
            )
        else:
            report.add("blobs", "ok", f"all {len(present)} blob(s) match their digest")
        report.stats["corrupt"] = len(bad)


def _check_temp(report: DoctorReport, blobs: LocalBlobStore) -> None:
    temps = blobs.temp_files()
    left = [t for t in temps if not t.live]
    live = len(temps) - len(left)
    tmp = (blobs.root if isinstance(blobs, LocalBlobStore) else blobs.cache.root) / "tmp"
    trash = [p for p in tmp.glob(f"{TRASH_PREFIX}*") if p.is_dir()]
    uploads = [] if isinstance(blobs, LocalBlobStore) else blobs.unfinished_uploads()
    report.stats["unfinished_uploads"] = len(uploads)
    if uploads:
        report.add(
            "temp files",
            "warning",
            f"{len(uploads)} multipart upload(s) to {blobs.root} were started and never completed (a writer was "
            "killed, or is uploading now): invisible, but the storage may bill their parts; `mlo gc` aborts the "
            "ones older than its grace period",
            [u["key"] for u in uploads],
        )
    report.stats.update(temp_files=len(left), temp_bytes=sum(t.size for t in left), live_writes=live)
    if left:
        report.add(
            "temp files",
            "warning",
            f"{len(left)} temp file(s) ({sum(t.size for t in left):,} bytes) left by writes that were cut short: "
            "removed when the workspace is next opened for writing, or by `mlo gc`",
            [t.path.name for t in left],
        )
    if trash:
        report.add(
            "temp files",
            "warning",
            f"the trash of {len(trash)} interrupted `mlo gc` run(s) is still there: the next `mlo gc` restores or "
            "removes it",
        )
    if not left and not trash and not uploads:
        report.add("temp files", "ok", "no leftovers" + (f" ({live} write(s) in progress)" if live else ""))


def _check_models(report: DoctorReport, engine: Engine) -> None:
    from .models import unmatched_versions

    with engine.connect() as conn:
        if not inspect(conn).has_table("model_versions"):
            return
        bad = unmatched_versions(conn)
    if bad:
        report.add(
            "models",
            "fault",
            f"{len(bad)} model version(s) no longer match their audited registration: they will not load",
            [f"{n}/{v}: {why}" for n, v, why in bad],
        )
    else:
        report.add("models", "ok", "every model version matches its audited registration")


def examine(
    home: Path | None = None, *, verify: bool = False, quick: bool = False, grace: float = DEFAULT_GRACE
):
    """Check the workspace at ``home`` (default: the one in force) and return a :class:`DoctorReport`."""
    from .. import config, workspace

    t0 = time.perf_counter()
    home = home or workspace.find_home()
    if home is None or not home.exists():
        from ..errors import NotFound

        raise NotFound("no mlo workspace here: run `mlo init` (or mlo.init()) or set MLO_HOME")
    try:
        settings = config.load(home, workspace.DIRNAME)
        config_error = None
    except MloError as exc:
        settings, config_error = {}, str(exc)
    store_url, artifacts = workspace.store_urls(home, settings)
    report = DoctorReport(str(home), faults.redact(store_url), artifacts)
    if config_error:
        report.add("settings", "fault", config_error, exit_code=2)
    else:
        report.add("settings", "ok", "mlo.toml files are valid")
    try:
        blobs = workspace.open_blobs(home, artifacts, settings)
    except MloError as exc:  # an object store URL whose library is not installed, or a malformed one
        report.add("blobs", "fault", str(exc), exit_code=2 if isinstance(exc, InvalidInput) else 3)
        report.seconds = time.perf_counter() - t0
        return report
    path = _sqlite_path(store_url)
    readable = True
    if path is not None:
        try:
            readable = _check_sqlite_file(report, path, blobs, quick)
        except StoreError as exc:  # the blob store cannot be listed
            report.add("blobs", "fault", str(exc))
            readable = False
    engine = None
    try:
        if readable:
            engine = _read_only_engine(store_url, path)
            where = str(path) if path is not None else faults.redact(store_url)
            if _check_schema(report, engine, where, blobs):
                _check_blobs(report, engine, blobs, verify, grace)
                _check_models(report, engine)
    except StoreError as exc:
        report.add("database", "fault", str(exc))
    except Exception as exc:  # a driver error: name the fault when it is one
        err = faults.database_fault(exc, store_url, "sqlite" if path is not None else "postgresql")
        if err is None:
            raise
        report.add("database", "fault", str(err))
    finally:
        if engine is not None:
            engine.dispose()
    try:
        _check_temp(report, blobs)
    except StoreError as exc:
        report.add("temp files", "fault", str(exc))
    report.seconds = time.perf_counter() - t0
    return report
