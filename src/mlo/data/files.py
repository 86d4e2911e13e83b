"""Snapshots of files and folders: every file stored once in the blob store, a folder as a manifest.

A file's digest is the SHA-256 of its bytes (the name of its blob); a folder's is the SHA-256 of its manifest
(sorted relative paths, sizes and file digests). These blobs keep SHA-256 names although new blobs are named by
BLAKE3 elsewhere: a file's digest is a pipeline's cache key and the remembered digest of an unchanged file, and
renaming them would re-run every cached stage once. A file whose size, modification time and inode are unchanged
since the last snapshot is not read again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput, NotFound
from ..store.addresses import SHA256
from ..store.blobs import hash_bytes, hash_file
from ..workspace import Workspace

SKIP_DIRS = {".mlo", ".git", "__pycache__", ".ipynb_checkpoints"}
_RECENT_NS = 2_000_000_000  # a file modified this recently may still change within the same mtime tick


@dataclass
class PathSnapshot:
    kind: str  # file | folder
    digest: str
    blob: str  # the file's blob, or the manifest's
    nbytes: int
    files: int
    source: str


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def snapshot_path(ws: Workspace, path: str | os.PathLike, *, store: bool = True) -> PathSnapshot:
    """Hash (when needed) and store the file or folder at ``path``; ``store=False`` only computes the digest."""
    root = Path(path).expanduser()
    if not root.exists():
        raise NotFound(f"no file or folder at {str(path)!r}")
    root = root.resolve()
    files = [root] if root.is_file() else _files(root)
    if root.is_file() is False and not root.is_dir():
        raise InvalidInput(f"{str(path)!r} is neither a regular file nor a folder")
    known = ws.snapshots.file_digests_under(str(root))
    now = time.time_ns()
    entries, remember = [], []
    total = 0
    for f in files:
        st = f.stat()
        key = str(f)
        cached = known.get(key)
        if cached is not None and cached[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
            digest = cached[3]
        else:
            digest = hash_file(f)
            if now - st.st_mtime_ns > _RECENT_NS:
                remember.append(
                    {
                        "path": key,
                        "size": st.st_size,
                        "mtime_ns": st.st_mtime_ns,
                        "inode": st.st_ino,
                        "digest": digest,
                    }
                )
        if store and not ws.blobs.claim(
            digest
        ):  # claim: a concurrent `mlo gc` keeps a blob about to be named
            stored = ws.blobs.put_file(f, algo=SHA256)
            if stored != digest:
                raise InvalidInput(f"{f} changed while it was being snapshotted; try again")
        total += st.st_size
        entries.append((f.relative_to(root).as_posix() if f != root else f.name, st.st_size, digest))
    ws.snapshots.remember_file_digests(remember)
    if root.is_file():
        return PathSnapshot("file", entries[0][2], entries[0][2], total, 1, str(root))
    manifest = json.dumps({"files": entries}, separators=(",", ":")).encode()
    blob = ws.blobs.put_bytes(manifest, algo=SHA256) if store else hash_bytes(manifest)
    return PathSnapshot("folder", hash_bytes(manifest), blob, total, len(entries), str(root))


def path_digest(
    path: str | os.PathLike, known: dict[str, tuple[int, int, int, str]], hash_below: int | None = None
) -> str | None:
    """The digest :func:`snapshot_path` gives the file or folder at ``path``, from ``known`` (remembered
    ``(size, mtime_ns, inode, digest)`` by resolved path) where a file is unchanged, hashing the others; None
    when a file to hash is larger than ``hash_below`` bytes (the caller would rather hash it the full way, which
    remembers it). Touches no store."""
    root = Path(path).resolve()
    files = [root] if root.is_file() else _files(root)
    entries = []
    for f in files:
        st = f.stat()
        cached = known.get(str(f))
        if cached is not None and tuple(cached[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            digest = cached[3]
        elif hash_below is not None and st.st_size > hash_below:
            return None
        else:
            digest = hash_file(f)
        entries.append((f.relative_to(root).as_posix() if f != root else f.name, st.st_size, digest))
    if root.is_file():
        return entries[0][2]
    return hash_bytes(json.dumps({"files": entries}, separators=(",", ":")).encode())


def manifest(ws: Workspace, blob: str) -> list[tuple[str, int, str]]:
    return [tuple(e) for e in json.loads(ws.blobs.get_bytes(blob))["files"]]


def restore(ws: Workspace, kind: str, blob: str, name: str, dest: Path) -> Path:
    """Write a file or folder snapshot to ``dest`` (a file path for files, a folder for folders)."""
    if kind == "file":
        return ws.blobs.copy_to(blob, dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel, _size, digest in manifest(ws, blob):
        target = (dest / rel).resolve()
        if dest.resolve() not in target.parents:
            raise InvalidInput(f"manifest entry {rel!r} points outside {dest}; the snapshot is damaged")
        ws.blobs.copy_to(digest, target)
    return dest
