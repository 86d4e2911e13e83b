"""Content-addressed blob store: every blob is named by the SHA-256 of its bytes.

Writes go to a temporary file in the store and are renamed into place, so a blob is either absent or whole;
the same content is stored once; reads verify the digest unless told otherwise.

Blobs are not flushed to the disk one by one (``MLO_FSYNC=1`` does it): after a power cut a blob that did not reach
the disk fails its digest check on read (``CorruptBlob``) instead of returning wrong bytes, which is the same
promise the metadata store makes (SQLite in WAL mode with ``synchronous=NORMAL``), at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptBlob, InvalidInput, NotFound

CHUNK = 1 << 20


def _fsync(fh) -> None:
    if os.environ.get("MLO_FSYNC") == "1":
        os.fsync(fh.fileno())


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(f"{digest!r} is not a SHA-256 hex digest")
    return digest


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class LocalBlobStore:
    """Blobs as files ``<root>/<d[:2]>/<d[2:]>`` on the local file system."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self._tmp = self.root / "tmp"

    def path(self, digest: str) -> Path:
        digest = _check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def _commit(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        if final.is_file():  # dedup: the content is already here
            tmp.unlink(missing_ok=True)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)  # atomic; a concurrent writer of the same content renames identical bytes

    @contextmanager
    def _tempfile(self) -> Iterator[tuple[BinaryIO, Path]]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, tmp
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its digest. Storing the same bytes again writes nothing."""
        digest = hash_bytes(data)
        if self.exists(digest):
            return digest
        with self._tempfile() as (fh, tmp):
            fh.write(data)
            fh.flush()
            _fsync(fh)
        self._commit(tmp, digest)
        return digest

    def put_file(self, path: str | os.PathLike) -> str:
        """Copy the file at ``path`` into the store (hashing while copying); return its digest."""
        src = Path(path)
        if not src.is_file():
            raise NotFound(f"no file at {src}")
        h = hashlib.sha256()
        with self._tempfile() as (fh, tmp), src.open("rb") as inp:
            while chunk := inp.read(CHUNK):
                h.update(chunk)
                fh.write(chunk)
            fh.flush()
            _fsync(fh)
        digest = h.hexdigest()
        self._commit(tmp, digest)
        return digest

    @contextmanager
    def writer(self, *, also=None, background: bool = False) -> Iterator[BlobWriter]:
        """A file-like object to stream a new blob into (e.g. a Parquet writer). The bytes are hashed as they are
        written and the blob is committed when the block ends; ``writer.digest`` then names it.

        ``also`` is a second hash object fed the same bytes (e.g. BLAKE3 for a record of one's own).
        ``background=True`` hashes on a second thread while the producer goes on writing; only for producers that
        never change a buffer after handing it to ``write`` (pickle's, which write the objects' own memory)."""
        with self._tempfile() as (fh, tmp):
            w = BlobWriter(fh, also=also, background=background)
            try:
                yield w
            finally:
                w._finish()
            fh.flush()
            _fsync(fh)
        w.digest = w._hash.hexdigest()
        w.closed = True
        self._commit(tmp, w.digest)

    def verify(self, digest: str) -> Path:
        """The path of a blob after checking its bytes against the digest (for readers that open the file)."""
        p = self.path(digest)
        if not p.is_file():
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}")
        if hash_file(p) != digest:
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
            fh = p.open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}") from None
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
            data = p.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}") from None
        if verify and hash_bytes(data) != digest:
            raise CorruptBlob(
                f"blob {digest[:12]} in {self.root} does not match its digest; restore it from a backup"
            )
        return data

    def copy_to(self, digest: str, dest: str | os.PathLike, verify: bool = True) -> Path:
        """Write a blob to ``dest`` (atomically), verifying the digest while copying."""
        src = self.path(digest)
        if not src.is_file():
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                while chunk := inp.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            if verify and h.hexdigest() != digest:
                raise CorruptBlob(f"blob {digest[:12]} in {self.root} does not match its digest")
            os.replace(name, dest)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return dest

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"


class BlobWriter:
    """Write-only, hashing file wrapper handed out by :meth:`LocalBlobStore.writer`."""

    _BIG = 1 << 20  # in background mode, smaller pieces are copied (the producer may reuse small buffers)

    def __init__(self, fh: BinaryIO, also=None, background: bool = False):
        self._fh = fh
        self._hash = hashlib.sha256()
        self._also = also
        self._pos = 0
        self.closed = False
        self.digest: str | None = None
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._drain, name="mlo-blob-hash", daemon=True)
            self._thread.start()

    def _update(self, data) -> None:
        self._hash.update(data)
        if self._also is not None:
            self._also.update(data)

    def _drain(self) -> None:
        while (piece := self._queue.get()) is not None:
            self._update(piece)

    def _finish(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def write(self, data) -> int:
        n = self._fh.write(data)
        view = memoryview(data).cast("B")
        self._pos += len(view)
        if self._queue is None:
            self._update(view)
        else:
            self._queue.put(view if len(view) >= self._BIG else bytes(view))
        return n

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
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


def open_blob_store(url: str) -> LocalBlobStore:
    """The blob store at ``url``: a local folder (or ``file://`` URL)."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif "://" in url:
        raise InvalidInput(
            f"MLO_ARTIFACTS={url!r}: only local folders are supported as blob stores in this version"
        )
    return LocalBlobStore(url)
