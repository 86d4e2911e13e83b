"""A fully cached pipeline, known with the standard library: every task's cache key is in the run cache, its outs
are still in the blob store and unchanged on disk, so nothing executes, nothing is restored, and the store is not
opened through SQLAlchemy at all.

This is the common case in CI and after ``git pull``: ``mlo pipeline run`` then answers at the speed of reading a
few rows with :mod:`sqlite3` (read-only) and stating files, instead of importing SQLAlchemy, connecting and
checking the schema. It applies to the embedded SQLite store with local blobs; anything else — PostgreSQL, an
object store, a schema this mlo does not know, a row it cannot read, a dep not hashed before that is large, an
out to restore, a task not in the cache — answers None, and the full path decides (never a wrong hit: a key
here is computed exactly as there, from the same digests).

A fully cached run records no pipeline run: it ran nothing, as ``dvc repro`` records nothing when every stage
is unchanged. Its tasks name the runs that made their outs, as on the full path.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from ..data import files
from ..store.blobs import LocalBlobStore, hash_file
from ..store.ids import common_prefix
from . import plan
from .execute import _HASH_BELOW, TaskResult

# the metadata schema the queries below were written for (mlo.store.schema.SCHEMA_VERSION; a test ties them)
KNOWN_SCHEMA = 8
SHORT_ID = 8  # mlo.tracking.short_ids.MIN_LENGTH


def _connect(store_url: str) -> sqlite3.Connection | None:
    if not store_url.startswith("sqlite:///") or "?" in store_url:
        return None
    path = Path(store_url[len("sqlite:///") :])
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT value FROM mlo_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if row is None or str(row[0]) != str(KNOWN_SCHEMA):
        conn.close()
        return None
    return conn


def _known(conn: sqlite3.Connection, root: Path) -> dict[str, tuple[int, int, int, str]]:
    prefix = str(root)
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT path, size, mtime_ns, inode, digest FROM file_digests "
        "WHERE path = ? OR path LIKE ? ESCAPE '\\'",
        (prefix, escaped.rstrip("/") + "/%"),
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _digest(conn: sqlite3.Connection, path: Path) -> str | None:
    if not path.exists():
        return "missing"
    return files.path_digest(path, _known(conn, path.resolve()), hash_below=_HASH_BELOW)


def _unchanged(conn: sqlite3.Connection, root: Path, out: dict) -> bool:
    target = root / out["path"]
    if out["kind"] == "file":
        if not target.is_file():
            return False
        if target.stat().st_size <= _HASH_BELOW:
            return hash_file(target) == out["digest"]
    elif not target.is_dir():
        return False
    return _digest(conn, target) == out["digest"]


def _short(conn: sqlite3.Connection, run_id: str) -> str:
    """The run's short id, as :func:`mlo.tracking.short_ids.short_id` gives it."""
    length = SHORT_ID
    for q in (
        "SELECT max(id) FROM runs WHERE id < ?",
        "SELECT min(id) FROM runs WHERE id > ?",
    ):
        other = conn.execute(q, (run_id,)).fetchone()[0]
        if other:
            length = max(length, common_prefix(run_id, other) + 1)
    return run_id[:length]


def all_cached(ws, root: Path, tasks: list[plan.Task]) -> list[TaskResult] | None:
    """Every task as ``cached`` when all of them hit and need nothing restored; else None (use the full path)."""
    try:
        blobs = ws.open_blobs()
        if not isinstance(blobs, LocalBlobStore):
            return None
        conn = _connect(ws.store_url)
    except (OSError, sqlite3.Error, ValueError):
        return None
    if conn is None:
        return None
    try:
        keys: dict[str, str] = {}
        out: list[TaskResult] = []
        for task in tasks:
            deps = {}
            for dep in task.deps:
                digest = _digest(conn, root / dep)
                if digest is None:
                    return None
                deps[dep] = digest
            key = plan.cache_key(task, deps, [keys[u] for u in task.upstream])
            keys[task.name] = key
            row = conn.execute("SELECT run_id, outs FROM stage_cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            run_id, outs = row[0], json.loads(row[1])
            if not all(blobs.exists(o["blob"]) and _unchanged(conn, root, o) for o in outs):
                return None
            out.append(
                TaskResult(
                    task.name, task.stage.name, "cached", 0.0, run_id, f"cached (run {_short(conn, run_id)})",
                    key=key,
                )
            )  # fmt: skip
        return out
    except (OSError, sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    finally:
        conn.close()


def enabled() -> bool:
    """``MLO_FAST_CACHE=0`` turns the fast path off (to compare, or to always record a pipeline run)."""
    return os.environ.get("MLO_FAST_CACHE", "1") != "0"
