"""The prediction log on object storage: when the workspace's artifacts are on an fsspec store
(``MLO_ARTIFACTS=s3://bucket/prefix``), every log file also goes to ``<prefix>/monitor/<model>/…`` under its own
name, and readers fetch the files they lack before they read.

The local folder (``<home>/monitor/<model>/``) stays what readers read: it holds the files this machine wrote and
the ones it fetched, so a report reads at local disk speed and a file is downloaded once. A file is written there
first (temporary name, fsync, rename), then hard-linked into ``.pending/`` and uploaded; the link goes when the
upload succeeded. An object store makes an object visible only when its upload completes (one PUT, or the end of a
multipart upload), so nobody sees part of a file; a writer killed mid-upload leaves its file pending (and at
worst an unfinished multipart upload, invisible, that ``mlo gc`` aborts). When the store cannot be reached, the
files wait in ``.pending/`` and go up at the next flush or read: no prediction is lost. Every writer names its
files with a random suffix, so concurrent servers never write the same key.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..errors import MloError
from ..store import faults

log_ = logging.getLogger("mlo.monitor")

PENDING = ".pending"
AREA = "monitor"
_PERMANENT = {faults.READ_ONLY, faults.CANNOT_OPEN}  # the user must fix these: say so, now


def remote_of(home: str | os.PathLike):
    """The workspace's object store (a :class:`~mlo.store.remote.RemoteBlobStore`), or None when its blobs are
    a local folder."""
    from .. import workspace

    ws = workspace._resolve(Path(home))
    url = ws.artifacts_url
    if "://" not in url or url.startswith("file://"):
        return None
    return ws.blobs


def _key(home: Path, path: Path) -> str:
    return path.relative_to(Path(home)).as_posix()  # monitor/<model>/[labels/]<file>


def publish(home: str | os.PathLike, path: Path | None, *, strict: bool) -> bool:
    """Send the log file ``path`` (just written under ``home``) to the object store, if the workspace has one.
    A store that cannot be reached keeps it pending (a warning); with ``strict``, a store that refuses writes
    (read-only, missing bucket) raises its one-line error — the file stays pending all the same. Returns
    whether nothing is left waiting."""
    if path is None:
        return True
    remote = remote_of(home)
    if remote is None:
        return True
    pending = path.parent / PENDING / path.name
    pending.parent.mkdir(exist_ok=True)
    try:
        os.link(path, pending)
    except FileExistsError:
        pass
    except OSError:  # no hard links here: a copy (the file is immutable)
        shutil.copyfile(path, pending)
    return _upload(Path(home), remote, pending, path, strict=strict)


def _upload(home: Path, remote, pending: Path, path: Path, *, strict: bool) -> bool:
    try:
        remote.put_file_at(pending, _key(home, path))
    except MloError as exc:
        if strict and getattr(exc, "kind", None) in _PERMANENT:
            raise
        log_.warning("prediction log: %s; the file waits in %s and goes up later", exc, pending.parent)
        return False
    pending.unlink(missing_ok=True)
    return True


def upload_pending(home: str | os.PathLike, folders: list[Path] | None = None) -> int:
    """Upload the files waiting in ``.pending/`` (of ``folders``, default every model's); returns how many still
    wait (it stops at the first failure: the store is still away)."""
    remote = remote_of(home)
    if remote is None:
        return 0
    home = Path(home)
    if folders is None:
        root = home / AREA
        folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        folders += [p / "labels" for p in folders]
    queue = [p for f in folders if (f / PENDING).is_dir() for p in sorted((f / PENDING).glob("*.parquet"))]
    for i, pending in enumerate(queue):
        if not _upload(home, remote, pending, pending.parent.parent / pending.name, strict=False):
            return len(queue) - i
    return 0


def sync(home: str | os.PathLike, name: str | None = None) -> int:
    """Before a read: upload what is pending, then fetch the log files of model ``name`` (default every model)
    that the object store has and this machine lacks. Returns how many were fetched."""
    remote = remote_of(home)
    if remote is None:
        return 0
    from .log import _NAME_RE, _footer

    home = Path(home)
    area = f"{AREA}/{name}" if name else AREA
    folders = [home / area, home / area / "labels"] if name else None
    upload_pending(home, folders)
    fetched = 0
    known: dict[Path, frozenset] = {}
    for key in sorted(remote.list_files(area)):
        path = home / key
        if not _NAME_RE.match(path.name) or path.exists():
            continue
        folder = path.parent
        if folder not in known:  # files a local compaction merged: do not fetch them again
            replaced: set = set()
            for f in folder.glob("*.parquet") if folder.is_dir() else []:
                if _NAME_RE.match(f.name):
                    try:
                        replaced |= _footer(f).replaces
                    except (OSError, ValueError):
                        continue
            known[folder] = frozenset(replaced)
        if path.name in known[folder]:
            continue
        remote.get_file_at(key, path)
        fetched += 1
    return fetched
