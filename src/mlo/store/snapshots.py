"""SQL for data snapshots: versions per name, lookup by reference, and the stat cache of file digests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import AmbiguousRef, InvalidInput, NotFound
from . import schema as s
from .db import Database
from .ids import new_id
from .lineage import Edge, LineageStore
from .runs import now_us

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}\Z")
_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}\Z")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"snapshot name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (no '/', '@', ':' or spaces)"
        )
    return name


@dataclass(frozen=True)
class SnapshotRow:
    id: str
    name: str
    version: int
    digest: str
    kind: str
    format: str
    blob: str
    rows: int | None
    n_columns: int | None
    nbytes: int
    size: int
    schema: list
    profile: list | None
    source: str | None
    run_id: str | None
    created_at: int
    created_by: str | None

    @classmethod
    def from_row(cls, row) -> SnapshotRow:
        m = dict(row._mapping)
        m["schema"] = json.loads(m["schema"])
        m["profile"] = json.loads(m["profile"]) if m["profile"] else None
        return cls(**m)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"train"``, ``"train@3"``, ``"train@latest"``, ``"train@<digest prefix>"``, optionally ``"snapshot:…"``
    → (name, selector)."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(
            "a snapshot reference is a name like 'train', 'train@3' or 'train@<digest prefix>'"
        )
    text = ref.strip()
    if text.startswith("snapshot:"):
        text = text[len("snapshot:") :]
    name, _, selector = text.partition("@")
    return name, (selector or None)


class SnapshotStore:
    def __init__(self, db: Database, lineage: LineageStore):
        self.db = db
        self.lineage = lineage

    # -- reading ----------------------------------------------------------------------------------------------------
    def get(self, snapshot_id: str, conn: Connection | None = None) -> SnapshotRow:
        def read(c: Connection) -> SnapshotRow:
            row = c.execute(select(s.snapshots).where(s.snapshots.c.id == snapshot_id)).first()
            if row is None:
                raise NotFound(f"no snapshot with id {snapshot_id}")
            return SnapshotRow.from_row(row)

        if conn is not None:
            return read(conn)
        with self.db.read() as c:
            return read(c)

    def with_digest(self, name: str, digest: str) -> SnapshotRow | None:
        """The newest version of ``name`` holding exactly this content."""
        t = s.snapshots
        q = select(t).where(t.c.name == name, t.c.digest == digest).order_by(t.c.version.desc()).limit(1)
        with self.db.read() as c:
            row = c.execute(q).first()
        return SnapshotRow.from_row(row) if row else None

    def by_digest(self, digest: str) -> SnapshotRow | None:
        """The newest snapshot holding exactly this content, under any name."""
        q = (
            select(s.snapshots)
            .where(s.snapshots.c.digest == digest)
            .order_by(s.snapshots.c.created_at.desc())
            .limit(1)
        )
        with self.db.read() as c:
            row = c.execute(q).first()
        return SnapshotRow.from_row(row) if row else None

    def resolve(self, ref: str) -> SnapshotRow:
        """The snapshot a reference names (see :func:`parse_ref`; a snapshot id works too)."""
        name, selector = parse_ref(ref)
        t = s.snapshots
        with self.db.read() as c:
            if selector is None and _ID_RE.match(name):
                row = c.execute(select(t).where(t.c.id == name)).first()
                if row is not None:
                    return SnapshotRow.from_row(row)
            check_name(name)
            q = select(t).where(t.c.name == name)
            if selector is None or selector == "latest":
                row = c.execute(q.order_by(t.c.version.desc()).limit(1)).first()
                if row is None:
                    raise NotFound(self._missing(c, name))
                return SnapshotRow.from_row(row)
            if selector.isdigit() and len(selector) <= 6:
                row = c.execute(q.where(t.c.version == int(selector))).first()
                if row is None:
                    latest = c.execute(select(func.max(t.c.version)).where(t.c.name == name)).scalar()
                    if latest is None:
                        raise NotFound(self._missing(c, name))
                    raise NotFound(f"snapshot {name!r} has no version {selector} (versions 1 to {latest})")
                return SnapshotRow.from_row(row)
            prefix = selector.lower()
            if len(prefix) < 4 or any(ch not in "0123456789abcdef" for ch in prefix):
                raise InvalidInput(
                    f"{ref!r}: after '@' give a version number, 'latest' or at least 4 hex digits of a digest"
                )
            rows = c.execute(q.where(t.c.digest.like(f"{prefix}%")).order_by(t.c.version.desc())).all()
            if not rows:
                raise NotFound(f"snapshot {name!r} has no version whose digest starts with {prefix}")
            if len({r._mapping["digest"] for r in rows}) > 1:
                raise AmbiguousRef(
                    f"digest prefix {prefix} matches several versions of {name!r}; give more digits"
                )
            return SnapshotRow.from_row(rows[0])

    @staticmethod
    def _missing(c: Connection, name: str) -> str:
        names = [r[0] for r in c.execute(select(s.snapshots.c.name).distinct().limit(200))]
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = (
            f" — did you mean {close[0]!r}?"
            if close
            else (" (there are no snapshots yet)" if not names else "")
        )
        return f"no snapshot named {name!r}{hint}"

    def list(self, name: str | None = None) -> list[SnapshotRow]:
        t = s.snapshots
        q = select(t).order_by(t.c.name, t.c.version)
        if name is not None:
            q = q.where(t.c.name == name)
        with self.db.read() as c:
            return [SnapshotRow.from_row(r) for r in c.execute(q)]

    # -- writing ----------------------------------------------------------------------------------------------------
    def add(
        self,
        *,
        name: str,
        fields: dict,
        edges: Callable[[str], list[Edge]],
    ) -> tuple[SnapshotRow, bool]:
        """Record ``fields`` as the next version of ``name`` unless the latest version already holds the same
        digest; record the lineage ``edges(snapshot_id)`` in the same transaction. Returns (row, created)."""
        t = s.snapshots

        def write(c: Connection) -> tuple[SnapshotRow, bool]:
            latest = c.execute(
                select(t).where(t.c.name == name).order_by(t.c.version.desc()).limit(1)
            ).first()
            if latest is not None and latest._mapping["digest"] == fields["digest"]:
                row = SnapshotRow.from_row(latest)
                self.lineage.link(edges(row.id), conn=c)
                return row, False
            version = 1 if latest is None else latest._mapping["version"] + 1
            values = {
                **fields,
                "id": new_id(),
                "name": name,
                "version": version,
                "created_at": now_us(),
                "schema": json.dumps(fields["schema"]),
                "profile": json.dumps(fields["profile"]) if fields.get("profile") is not None else None,
            }
            c.execute(t.insert().values(**values))
            self.lineage.link(edges(values["id"]), conn=c)
            return SnapshotRow.from_row(c.execute(select(t).where(t.c.id == values["id"])).one()), True

        for attempt in range(20):
            try:
                return self.db.write(write)
            except IntegrityError:  # PostgreSQL: a concurrent writer took this version number; read again
                if attempt == 19:
                    raise
        raise AssertionError("unreachable")

    # -- file digests (stat cache) ------------------------------------------------------------------------------------
    def file_digests_under(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        """Remembered (size, mtime_ns, inode, digest) of every file at or below the path ``prefix``."""
        t = s.file_digests
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = select(t).where((t.c.path == prefix) | t.c.path.like(escaped.rstrip("/") + "/%", escape="\\"))
        with self.db.read() as c:
            return {r.path: (r.size, r.mtime_ns, r.inode, r.digest) for r in c.execute(q)}

    def remember_file_digests(self, rows: list[dict]) -> None:
        if not rows:
            return
        stmt = self.db.insert(s.file_digests)
        stmt = stmt.on_conflict_do_update(
            index_elements=["path"],
            set_={k: stmt.excluded[k] for k in ("size", "mtime_ns", "inode", "digest")},
        )
        self.db.write(lambda c: c.execute(stmt, rows))
