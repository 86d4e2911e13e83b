"""DuckDB's spill folders in the workspace's ``tmp/``, and what ``mlo gc`` removes of the features' leftovers.

A training frame gives DuckDB a folder of its own, ``tmp/duckdb-*``, with an ``owner`` file its process holds a
lock on for as long as it runs. A process that was killed leaves the folder behind, and its lock goes with it: gc
removes a folder whose ``owner`` lock it can take, or that has no ``owner`` file, once a minute old. It also
removes the feature views' cache files of an older format (``features/<digest>.parquet``, superseded by
``<digest>.s1.parquet``) and the half-written ones of a killed process (``features/.tmp-*``) past the grace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "duckdb-"
OWNER = "owner"
UNOWNED_GRACE = 60.0  # seconds a folder may stay without its owner file (between its creation and the lock)


@contextmanager
def spill_folder(home: Path) -> Iterator[Path]:
    """A fresh folder under ``home/tmp`` for DuckDB to spill to, locked by this process while in use, then gone."""
    from ..store.blobs import _try_lock

    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=tmp))
    fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _try_lock(fd)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def _owned(folder: Path, started: float) -> bool:
    """Whether a live process holds ``folder`` (or may be about to)."""
    from ..store.blobs import _try_lock

    if folder.stat().st_mtime >= started - UNOWNED_GRACE:  # just made: its owner may not hold the lock yet
        return True
    try:
        fd = os.open(folder / OWNER, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        return _try_lock(fd) is False  # a lock that cannot be taken here: kept
    finally:
        os.close(fd)  # closing lets go of a lock taken here


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def gc_step(ws, *, dry_run: bool = False, grace: float = 3600.0) -> dict:
    """For ``mlo gc``: stale spill folders and old feature cache files, removed (or, on a dry run, counted)."""
    from .rows import FORMAT

    started = time.time()
    found = removed = size = kept = 0
    leftovers: list[Path] = []
    tmp = ws.home / "tmp"
    for folder in sorted(tmp.glob(f"{PREFIX}*")) if tmp.is_dir() else []:
        if not folder.is_dir():
            continue
        found += 1
        if _owned(folder, started):
            kept += 1
        else:
            leftovers.append(folder)
    features = ws.home / "features"
    for f in sorted(features.iterdir()) if features.is_dir() else []:
        if f.name.startswith(".tmp-"):
            found += 1
            if f.stat().st_mtime >= started - grace:  # maybe a view being computed now
                kept += 1
                continue
        elif not f.name.endswith(".parquet") or f.name.endswith(f".{FORMAT}.parquet"):
            continue
        else:
            found += 1
        leftovers.append(f)
    for path in leftovers:
        try:
            size += _size(path)
            if not dry_run:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except FileNotFoundError:  # removed meanwhile
            continue
        removed += 1
    note = ", ".join(p.name for p in leftovers[:5]) + (" …" if len(leftovers) > 5 else "")
    return {"found": found, "removed": removed, "bytes": size, "kept": kept, "note": note}
