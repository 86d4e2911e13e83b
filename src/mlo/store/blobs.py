"""Content-addressed blob store: every blob is named by a hash of its bytes.

New blobs are named by BLAKE3 (``blake3:<hex>``), blobs written before by SHA-256 (64 hex digits); both stay
valid, and each is verified with its own algorithm (see :mod:`mlo.store.addresses`).

Writes go to a temporary file in the store and are renamed into place, so a blob is either absent or whole;
the same content is stored once; reads verify the digest unless told otherwise.

Blobs are not flushed to the disk one by one (``MLO_FSYNC=1`` does it): after a power cut a blob that did not reach
the disk fails its digest check on read (``CorruptBlob``) instead of returning wrong bytes, which is the same
promise the metadata store makes (SQLite in WAL mode with ``synchronous=NORMAL``), at a fraction of the cost.

A writer holds an exclusive ``flock`` on its temporary file until the blob is renamed into place, so the temp files
of a killed writer are told apart from those of live ones: :meth:`LocalBlobStore.sweep_temp` (run when a
workspace is opened) removes only files nobody holds. A writer that stores content already present refreshes the
blob's modification time (:meth:`LocalBlobStore.claim`), which is how ``mlo gc`` knows a blob is about to be
referenced although no record names it yet (see :mod:`mlo.store.gc`).

Faults of the disk (full, read-only, failing) are one :class:`~mlo.errors.StoreError` line; a blob that a record
names and that is not there is a :class:`~mlo.errors.MissingBlob`.
"""

from __future__ import annotations

import mmap
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptBlob, MissingBlob, NotFound
from . import addresses
from .addresses import Hasher
from .faults import blob_fault

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: temp files are judged by age alone
    fcntl = None  # type: ignore[assignment]

CHUNK = 1 << 20
TEMP_PREFIX = "put-"
# Where a lock cannot be taken (no flock on the file system), a temp file this old is taken for a leftover.
STALE_TEMP_SECONDS = 24 * 3600
_HEX = frozenset("0123456789abcdef")
Staged = Callable[[Path, str], None]  # called with a complete temp file and its digest before the rename


def _fsync(fh) -> None:
    if os.environ.get("MLO_FSYNC") == "1":
        os.fsync(fh.fileno())


_check_digest = addresses.check


def hash_bytes(data: bytes) -> str:
    """The SHA-256 of ``data`` (a content digest, and the name of a blob stored with ``algo="sha256"``)."""
    return addresses.hash_bytes(data, addresses.SHA256)


def hash_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (see :func:`hash_bytes`)."""
    return addresses.hash_file(path, addresses.SHA256)


def _try_lock(fd: int) -> bool | None:
    """Take an exclusive lock on ``fd`` without waiting: True when taken, False when another open file holds it,
    None when the file system cannot lock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: no locks here
        return None


@dataclass(frozen=True)
class TempFile:
    """A temporary file in the blob store: ``live`` when a writer holds it now."""

    path: Path
    size: int
    mtime: float
    live: bool


@dataclass(frozen=True)
class BlobFile:
    digest: str
    path: str  # a str, not a Path: listing 10,000 blobs should not cost 10,000 Path objects
    size: int
    mtime: float


class LocalBlobStore:
    """Blobs as files on the local file system: ``<root>/blake3/<h[:2]>/<h[2:]>`` for ``blake3:<h>``, and
    ``<root>/<d[:2]>/<d[2:]>`` for a SHA-256 ``d``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self._tmp = self.root / "tmp"

    def path(self, digest: str) -> Path:
        return self.root.joinpath(*addresses.parts(digest))

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def claim(self, digest: str) -> bool:
        """Whether the blob is here; if it is, mark it as just used (its modification time), so that a ``mlo gc``
        running meanwhile keeps it until the record that will refer to it is committed. Writers that reuse a
        stored blob instead of putting it call this."""
        path = self.path(digest)
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            return False
        except OSError:  # another user's blob in a shared store, or a read-only one: it is here all the same
            return path.is_file()

    # -- faults -------------------------------------------------------------------------------------------------
    @contextmanager
    def _faults(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            err = blob_fault(exc, self.root, action)
            if err is None:
                raise
            raise err from None

    def _missing(self, digest: str) -> MissingBlob:
        return MissingBlob(
            f"blob {digest[:12]} is missing from {self.root}: restore it from a backup (`mlo doctor` lists what "
            "refers to missing blobs)"
        )

    # -- writing --------------------------------------------------------------------------------------------
    def _commit(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        if self.claim(digest):  # dedup: the content is already here
            tmp.unlink(missing_ok=True)
            return
        os.chmod(tmp, 0o444)
        for _ in range(100):  # `mlo gc` removes empty shard folders: one may vanish between mkdir and rename
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
            except (
                FileExistsError
            ):  # made by another writer, then removed by gc before mkdir could look at it
                continue
            try:
                os.replace(
                    tmp, final
                )  # atomic; a concurrent writer of the same content renames identical bytes
                return
            except FileNotFoundError:
                if not tmp.exists():
                    raise
        raise OSError(
            f"could not store blob {digest[:12]}: its folder keeps disappearing"
        )  # pragma: no cover

    def _new_temp(self) -> tuple[int, Path]:
        """A new temp file, created and locked. A sweep may take the file in the instant between its creation and
        its lock (it holds the lock, or has already unlinked the file); then another is made."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix=TEMP_PREFIX)
            if _try_lock(fd) is not False and os.fstat(fd).st_nlink > 0:
                return fd, Path(name)
            os.close(fd)
            Path(name).unlink(missing_ok=True)
        raise OSError(f"could not create a temp file in {self._tmp}")  # pragma: no cover

    @contextmanager
    def _tempfile(self) -> Iterator[tuple[BinaryIO, Path]]:
        """A locked temp file to write a blob into; commit it (rename) before the block ends, while it is locked."""
        with self._faults("creating a temp file"):
            fd, tmp = self._new_temp()
        fh = os.fdopen(fd, "wb")
        try:
            yield fh, tmp
        except BaseException:
            try:
                fh.close()  # with a full disk, closing fails too (its buffer cannot be written): the first error wins
            except OSError:
                pass
            tmp.unlink(missing_ok=True)
            raise
        with self._faults("storing a blob"):
            fh.close()

    def put_bytes(self, data: bytes, before_commit: Staged | None = None, algo: str | None = None) -> str:
        """Store ``data``; return its address. Storing the same bytes again writes nothing.

        ``before_commit(temp path, digest)``, when given, is called with the complete temp file before it is
        renamed into place (an object store uploads it from there), as in :meth:`put_file` and :meth:`writer`.
        ``algo`` names new blobs (BLAKE3 unless a caller needs the SHA-256 name it computed itself)."""
        digest = addresses.hash_bytes(data, algo)
        if before_commit is None and self.claim(digest):
            return digest
        with self._tempfile() as (fh, tmp):
            with self._faults("storing a blob"):
                fh.write(data)
                fh.flush()
                _fsync(fh)
            if before_commit is not None:
                before_commit(tmp, digest)
            with self._faults("storing a blob"):
                self._commit(tmp, digest)
        return digest

    def put_file(
        self, path: str | os.PathLike, before_commit: Staged | None = None, algo: str | None = None
    ) -> str:
        """Copy the file at ``path`` into the store (hashing while copying); return its address."""
        src = Path(path)
        if not src.is_file():
            raise NotFound(f"no file at {src}")
        h = Hasher(algo)
        with self._tempfile() as (fh, tmp), src.open("rb") as inp:
            while chunk := inp.read(CHUNK):
                h.update(chunk)
                with self._faults("storing a blob"):
                    fh.write(chunk)
            digest = h.address()
            with self._faults("storing a blob"):
                fh.flush()
                _fsync(fh)
            if before_commit is not None:
                before_commit(tmp, digest)
            with self._faults("storing a blob"):
                self._commit(tmp, digest)
        return digest

    @contextmanager
    def writer(
        self,
        *,
        also=None,
        background: bool = False,
        before_commit: Staged | None = None,
        algo: str | None = None,
    ) -> Iterator[BlobWriter]:
        """A file-like object to stream a new blob into (e.g. a Parquet writer). The bytes are hashed as they are
        written and the blob is committed when the block ends; ``writer.digest`` then names it.

        ``also`` is a second hash object fed the same bytes (e.g. BLAKE3 for a record of one's own).
        ``background=True`` writes the bytes to the file and hashes them on two threads of their own while the
        producer goes on encoding (the kernel's copy into the page cache costs about as much CPU as Parquet's
        encoding of plain floats); only for producers that never change a large buffer after handing it to
        ``write`` (pickle's, which write the objects' own memory, and pyarrow's, which write ``bytes``). A write
        that fails there is raised by the producer's next ``write``, or when the block ends."""
        with self._tempfile() as (fh, tmp):
            w = BlobWriter(fh, also=also, background=background, store=self, algo=algo)
            try:
                yield w
            except BaseException:
                w._finish()
                if w._fault is not None:  # the producer wrapped the disk's error in one of its own
                    raise w._fault from None
                raise
            w._finish()
            if w._fault is not None:  # the producer swallowed the write error: do not commit a partial blob
                raise w._fault
            w.digest = w._hash.address()
            w.closed = True
            with self._faults("storing a blob"):
                fh.flush()
                _fsync(fh)
            if before_commit is not None:
                before_commit(tmp, w.digest)
            with self._faults("storing a blob"):
                self._commit(tmp, w.digest)

    # -- reading --------------------------------------------------------------------------------------------
    def verify(self, digest: str) -> Path:
        """The path of a blob after checking its bytes against the digest (for readers that open the file)."""
        p = self.path(digest)
        try:
            with self._faults("reading a blob"):
                same = addresses.matches(p, digest)
        except FileNotFoundError:
            raise self._missing(digest) from None
        if not same:
            raise CorruptBlob(
                f"blob {digest[:12]} in {self.root} does not match its digest; restore it from a backup"
            )
        return p

    @contextmanager
    def mapped(self, digest: str) -> Iterator[memoryview]:
        """The blob's bytes mapped into memory, read-only and not verified (for readers that check a digest of
        their own and must not pay for a copy)."""
        p = self.path(digest)
        try:
            with self._faults("reading a blob"):
                fh = p.open("rb")
        except FileNotFoundError:
            raise self._missing(digest) from None
        with fh:
            if p.stat().st_size == 0:
                yield memoryview(b"")
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                view = memoryview(m)
                try:
                    yield view
                finally:
                    view.release()

    def get_bytes(self, digest: str, verify: bool = True) -> bytes:
        """The bytes of a blob, checked against its digest."""
        p = self.path(digest)
        try:
            with self._faults("reading a blob"):
                data = p.read_bytes()
        except FileNotFoundError:
            raise self._missing(digest) from None
        if verify and addresses.hash_bytes(data, addresses.algorithm(digest)) != digest:
            raise CorruptBlob(
                f"blob {digest[:12]} in {self.root} does not match its digest; restore it from a backup"
            )
        return data

    def copy_to(self, digest: str, dest: str | os.PathLike, verify: bool = True) -> Path:
        """Write a blob to ``dest`` (atomically), verifying the digest while copying."""
        src = self.path(digest)
        if not src.is_file():
            raise self._missing(digest)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-")
        h = Hasher(addresses.algorithm(digest))
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                while chunk := inp.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            if verify and h.address() != digest:
                raise CorruptBlob(f"blob {digest[:12]} in {self.root} does not match its digest")
            os.replace(name, dest)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return dest

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    # -- upkeep (doctor, gc, and the sweep when a workspace is opened) -------------------------------------------
    def iter_blobs(self) -> Iterator[BlobFile]:
        """Every blob file in the store (not the temp files), in no particular order."""
        try:
            tops = [e for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return
        for top in tops:
            if top.name == addresses.BLAKE3:
                try:
                    shards = [s for s in os.scandir(top.path) if s.is_dir(follow_symlinks=False)]
                except FileNotFoundError:
                    continue
                for shard in shards:
                    yield from self._shard(shard.path, top.name, shard.name)
            elif len(top.name) == 2 and _HEX.issuperset(top.name):
                yield from self._shard(top.path, top.name)

    @staticmethod
    def _shard(folder: str, top: str, shard: str | None = None) -> Iterator[BlobFile]:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # removed meanwhile (gc drops empty shards)
            return
        for e in entries:
            digest = (
                addresses.from_parts(top, e.name)
                if shard is None
                else addresses.from_parts(top, shard, e.name)
            )
            if digest is None:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile
                continue
            yield BlobFile(digest, e.path, st.st_size, st.st_mtime)

    def has_blobs(self) -> bool:
        """Whether the store holds at least one blob (stops at the first)."""
        return next(self.iter_blobs(), None) is not None

    def temp_files(self) -> list[TempFile]:
        """The temp files of writes: live ones (a writer holds them now) and leftovers of writers that died."""
        out = []
        try:
            entries = [e for e in os.scandir(self._tmp) if e.name.startswith(TEMP_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return out
        for e in entries:
            path = Path(e.path)
            try:
                st = e.stat(follow_symlinks=False)
                with open(path, "rb") as fh:
                    held = _try_lock(fh.fileno())
            except FileNotFoundError:  # committed or removed meanwhile
                continue
            except OSError:  # unreadable: say it is live, never remove what cannot be looked at
                held = False
            live = held is False or (held is None and time.time() - st.st_mtime < STALE_TEMP_SECONDS)
            out.append(TempFile(path, st.st_size, st.st_mtime, live))
        return out

    def sweep_temp(self) -> list[TempFile]:
        """Remove the temp files of writes that were cut short (a killed process: nobody holds their lock).
        Returns what was removed. Best effort: a read-only store is left as it is."""
        removed = []
        for t in self.temp_files():
            if t.live:
                continue
            try:
                with open(t.path, "rb") as fh:
                    if (
                        _try_lock(fh.fileno()) is False
                    ):  # a writer appeared under this name: not ours to remove
                        continue
                    t.path.unlink()
            except FileNotFoundError:
                continue
            except OSError:  # read-only: nothing can be removed now
                break
            removed.append(t)
        return removed

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"


class BlobWriter:
    """Write-only, hashing file wrapper handed out by :meth:`LocalBlobStore.writer`."""

    _BIG = 1 << 20  # in background mode, smaller pieces that are not bytes are copied (they may be reused)
    _BACKLOG = 16  # pieces waiting to be written or hashed before ``write`` blocks: bounds what they hold

    def __init__(
        self,
        fh: BinaryIO,
        also=None,
        background: bool = False,
        store: LocalBlobStore | None = None,
        algo: str | None = None,
    ):
        self._fh = fh
        self._store = store
        self._fault: Exception | None = None
        self._hash = Hasher(algo)
        self._also = also
        self._pos = 0
        self.closed = False
        self.digest: str | None = None
        self._queue: queue.Queue | None = None  # pieces to hash
        self._writes: queue.Queue | None = None  # pieces to write
        self._threads: list[threading.Thread] = []
        if background:
            self._queue = queue.Queue(maxsize=self._BACKLOG)
            self._writes = queue.Queue(maxsize=self._BACKLOG)
            self._threads = [
                threading.Thread(target=self._drain, name="mlo-blob-hash", daemon=True),
                threading.Thread(target=self._write_behind, name="mlo-blob-write", daemon=True),
            ]
            for t in self._threads:
                t.start()

    def _update(self, data) -> None:
        self._hash.update(data)
        if self._also is not None:
            self._also.update(data)

    def _drain(self) -> None:
        while (piece := self._queue.get()) is not None:
            self._update(piece)

    def _write_file(self, data) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            root = self._store.root if self._store is not None else "the blob store"
            self._fault = blob_fault(exc, root, "storing a blob")
            if self._fault is None:
                self._fault = exc
                raise
            raise self._fault from None

    def _write_behind(self) -> None:
        while (piece := self._writes.get()) is not None:
            if self._fault is None:  # after a failed write the rest is dropped: the blob is not committed
                try:
                    self._write_file(piece)
                except Exception:  # kept in self._fault, raised in the producer's thread
                    pass

    def _finish(self) -> None:
        if self._threads:
            self._queue.put(None)
            self._writes.put(None)
            for t in self._threads:
                t.join()
            self._threads = []

    def write(self, data) -> int:
        if self._writes is None:
            n = self._write_file(data)
            view = memoryview(data).cast("B")
            self._pos += len(view)
            self._update(view)
            return n
        if self._fault is not None:
            raise self._fault
        view = memoryview(data).cast("B")
        keep = isinstance(data, bytes) or len(view) >= self._BIG
        piece = view if keep else bytes(view)
        self._pos += len(view)
        self._writes.put(piece)
        self._queue.put(piece)
        return len(view)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        if self._writes is None:  # in background mode the store flushes once every piece is written
            self._fh.flush()

    def close(self) -> None:  # the store closes the file itself when the block ends
        pass

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def size(self) -> int:
        return self._pos

    @property
    def blake3(self) -> str | None:
        """Once the blob is committed: the whole BLAKE3 of its bytes when it is named by BLAKE3 (no second hash
        of them needed for a record of one's own), else None."""
        return self._hash.blake3() if self.digest is not None else None


def open_blob_store(url: str, cache: str | os.PathLike | None = None, cache_size=None):
    """The blob store at ``url``: a local folder (or ``file://`` URL), or an object store URL such as
    ``s3://bucket/prefix`` (see :mod:`mlo.store.remote`), cached in the folder ``cache`` within ``cache_size``
    bytes."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif "://" in url:
        from .remote import DEFAULT_CACHE_BYTES, RemoteBlobStore, parse_size

        if cache is None:
            cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlo" / "blobs"
        size = DEFAULT_CACHE_BYTES if cache_size is None else parse_size(cache_size)
        return RemoteBlobStore(url, cache, size)
    return LocalBlobStore(url)
