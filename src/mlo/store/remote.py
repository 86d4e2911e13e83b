"""Blobs on object storage (``s3://``, ``gs://``, ``az://``, any fsspec URL), with a local read-through cache.

The keys are the same as on disk: ``<prefix>/blake3/<h[:2]>/<h[2:]>`` for a new blob ``blake3:<h>`` and
``<prefix>/<d[:2]>/<d[2:]>`` for a SHA-256 ``d`` written before (see :mod:`mlo.store.addresses`). A streamed
write or a file is staged in the local cache first (a temp file renamed into place, hashed while written:
:class:`LocalBlobStore`), so the digest is known before anything leaves the machine; then the file is uploaded to
its final key. Bytes already in memory (``put_bytes``) are hashed, looked up with one HEAD and sent from memory,
then cached: the fixed cost of a put is one HEAD more than s3fs's own ``pipe``. An object
store makes an object visible only when its upload completes (one PUT, or the completion of a multipart upload
for objects of :data:`MULTIPART_CHUNK` bytes and more), so nobody ever sees part of a blob; a writer killed
mid-upload leaves an unfinished multipart upload, invisible, that ``mlo gc`` aborts. Two writers of the same
content upload the same bytes to the same key: whichever lands last, the object is the same. S3 verifies the
checksum botocore sends with every PUT and part (elsewhere the stored size is checked after an upload), and every
read checks the bytes against the digest.

Reads download a blob into the cache once (verified before it is renamed into place) and serve it from there;
the cache keeps the most recently used blobs within its size cap (``[store] cache_size``), so a model loaded
twice is fetched once.

Credentials come from the storage library's usual chain (for S3: ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``…,
``~/.aws``, an instance or pod role; ``AWS_ENDPOINT_URL`` for an S3-compatible server); mlo never stores them and
refuses a URL that carries them.

``mlo gc`` cannot rename an object into a trash folder to take it out of reach atomically, as it does on disk.
A writer that reuses a stored blob leaves a claim marker (``<prefix>/claims/<digest>``) that the collector
honours for its grace period, and the collector reads the references again just before it deletes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import CorruptBlob, InvalidInput, MissingBlob, MloError
from . import addresses, faults
from .addresses import Hasher
from .blobs import CHUNK, BlobFile, LocalBlobStore, TempFile

MULTIPART_CHUNK = 16 << 20  # parts of a multipart upload (S3 allows 5 MiB to 5 GiB); smaller objects: one PUT
PIPE_MAX = 128 << 20  # bytes already in memory go up in one PUT below this size (as s3fs's pipe does)
DEFAULT_CACHE_BYTES = 5 << 30
CACHE_KEEP_SECONDS = (
    60.0  # a cached blob used this recently is not evicted (a reader may be about to open it)
)
CLAIMS = "claims"
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})


def parse_size(value, where: str = "cache_size") -> int:
    """Bytes from a number or a string such as ``"5 GB"`` or ``"512MiB"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        num = text.rstrip("kmgtib")
        unit = text[len(num) :]
        try:
            n = float(num)
        except ValueError:
            n = -1
        if n >= 0 and unit in _UNITS:
            return int(n * _UNITS[unit])
    raise InvalidInput(f'{where} must be a size in bytes or a string such as "5 GB", got {value!r}')


def _timestamp(info: dict) -> float:
    for key in ("LastModified", "mtime", "updated", "last_modified", "created"):
        v = info.get(key)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _detail(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else "") or type(exc).__name__


def remote_fault(exc: BaseException, url: str, action: str) -> MloError | None:
    """The StoreError for an error of the object store at ``url``, else None (a bug stays a bug)."""
    if isinstance(exc, MloError):
        return exc
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    detail = _detail(exc)
    if name == "NoCredentialsError" or "credentials" in detail.lower() and "no " in detail.lower():
        return faults.fault(
            faults.LOGIN,
            f"no credentials for the blob store {url} ({detail}) while {action}: set them the usual way for "
            "this storage (for S3: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, an instance "
            "role)",
        )
    if isinstance(exc, PermissionError):
        if action.startswith(("reading", "listing")):
            return faults.fault(
                faults.CANNOT_OPEN,
                f"the blob store {url} refused to be read ({detail}) while {action}: give these credentials "
                "read access (for S3: s3:GetObject and s3:ListBucket)",
            )
        return faults.fault(
            faults.READ_ONLY,
            f"the blob store {url} is read-only for these credentials ({detail}) while {action}: get write "
            "access (for S3: s3:PutObject) or point MLO_ARTIFACTS at a writable bucket",
        )
    if isinstance(exc, FileNotFoundError) and ("bucket" in detail.lower() or "container" in detail.lower()):
        return faults.fault(
            faults.CANNOT_OPEN,
            f"the blob store {url} does not exist ({detail}): create the bucket or fix MLO_ARTIFACTS / "
            "[store] artifacts",
        )
    if (
        module.startswith(("botocore", "aiohttp", "google", "azure", "requests", "urllib3"))
        or isinstance(exc, (ConnectionError, TimeoutError))
        or "connect" in detail.lower()
    ):
        return faults.fault(
            faults.UNREACHABLE,
            f"cannot reach the blob store {url} ({detail}) while {action}: check the network and the endpoint "
            "(AWS_ENDPOINT_URL for an S3-compatible server), then retry",
        )
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return faults.fault(
            faults.IO, f"the blob store {url} failed while {action} ({detail}): retry, then run `mlo doctor`"
        )
    return None


class RemoteBlobStore:
    """Blobs as objects of an fsspec file system (keys as on disk below ``<url>``), cached in a local folder."""

    def __init__(self, url: str, cache: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES):
        protocol, sep, rest = url.partition("://")
        if not sep or not rest.strip("/"):
            raise InvalidInput(f"MLO_ARTIFACTS={url!r} names no bucket, e.g. s3://my-bucket/mlo")
        if "@" in rest.split("/", 1)[0] and protocol not in ("az", "abfs"):
            raise InvalidInput(
                f"MLO_ARTIFACTS names credentials in its URL: remove them (mlo never stores credentials) and "
                f"provide them the usual way for {protocol}:// (for S3: AWS_PROFILE or AWS_ACCESS_KEY_ID/…)"
            )
        try:
            import fsspec

            self.fs = fsspec.filesystem(protocol, use_listings_cache=False)
        except ImportError as exc:
            package = _PACKAGES.get(protocol, "the fsspec implementation for it")
            raise InvalidInput(
                f"MLO_ARTIFACTS={url!r} needs {package}: pip install {package} ({_detail(exc)})"
            ) from None
        except ValueError as exc:
            raise InvalidInput(
                f"MLO_ARTIFACTS={url!r}: {protocol}:// is not a known storage ({exc})"
            ) from None
        self.url = f"{protocol}://{rest.strip('/')}"
        self.root = self.url  # what messages name
        self.prefix = self.fs._strip_protocol(self.url).rstrip("/")
        self.cache = LocalBlobStore(cache)
        self.cache_bytes = int(cache_bytes)
        self._cached_bytes: int | None = None
        self._s3 = protocol in ("s3", "s3a")
        self._put_options = {"chunksize": MULTIPART_CHUNK} if self._s3 else {}
        self._pipe_options = {"chunksize": PIPE_MAX // 2} if self._s3 else {}

    def key(self, digest: str) -> str:
        return "/".join((self.prefix, *addresses.parts(digest)))

    def _claim_key(self, digest: str) -> str:
        return f"{self.prefix}/{CLAIMS}/{addresses.flat(digest)}"

    @contextmanager
    def _faults(self, action: str) -> Iterator[None]:
        try:
            yield
        except MloError:
            raise
        except Exception as exc:
            err = remote_fault(exc, self.url, action)
            if err is None:
                raise
            raise err from None

    def _missing(self, digest: str) -> MissingBlob:
        return MissingBlob(
            f"blob {digest[:12]} is missing from {self.url}: restore it from a backup (`mlo doctor` lists what "
            "refers to missing blobs)"
        )

    # -- presence ---------------------------------------------------------------------------------------------
    def _info(self, digest: str) -> dict | None:
        """The stored object's size (``size``), or None when it is not there: one HEAD request on S3 (fsspec's
        ``info`` would list the "folder" too when the object is missing)."""
        key = self.key(digest)
        with self._faults("reading a blob"):
            try:
                if self._s3:
                    bucket, _, path = key.partition("/")
                    head = self.fs.call_s3("head_object", Bucket=bucket, Key=path)
                    return {"size": head["ContentLength"]}
                return self.fs.info(key)
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
                return None

    def exists(self, digest: str) -> bool:
        return self._info(digest) is not None

    def claim(self, digest: str) -> bool:
        """Whether the blob is stored; if it is, leave a claim marker so that a ``mlo gc`` running meanwhile keeps
        it until the record that will refer to it is committed."""
        if not self.exists(digest):
            return False
        try:
            with self._faults("claiming a blob"):
                self.fs.pipe_file(self._claim_key(digest), b"")
        except MloError as exc:  # a read-only store: it is here all the same, and nothing can collect it
            if getattr(exc, "kind", None) != faults.READ_ONLY:
                raise
        return True

    def size(self, digest: str) -> int:
        info = self._info(digest)
        if info is None:
            raise self._missing(digest)
        return int(info["size"])

    # -- writing ---------------------------------------------------------------------------------------------
    def _upload(self, local: Path, digest: str) -> None:
        """Upload the complete file ``local`` (a staged temp file, or a cached blob) to the key of ``digest``
        unless the store has it; check the stored size. A cached blob is thereby always in the store too."""
        if self.claim(digest):
            return
        size = local.stat().st_size
        with self._faults("storing a blob"):
            self.fs.put_file(str(local), self.key(digest), **self._put_options)
        self._check_stored(digest, size)
        self._added(size)

    def _check_stored(self, digest: str, size: int) -> None:
        """After an upload: the stored object has the size sent. S3 needs no extra request for it: botocore sends
        a checksum with every PUT and part, which S3 verifies before it makes the object visible."""
        if self._s3:
            return
        info = self._info(digest)
        stored = -1 if info is None else int(info["size"])
        if stored != size:
            raise CorruptBlob(
                f"blob {digest[:12]} reached {self.url} with {stored} bytes instead of {size}: retry the write"
            )

    def put_bytes(self, data: bytes, algo: str | None = None) -> str:
        """Store ``data``; return its address. Storing the same bytes again uploads nothing.

        One HEAD (is it there?), then the bytes go up from memory — one PUT below :data:`PIPE_MAX` bytes — and
        into the cache."""
        digest = addresses.hash_bytes(data, algo)
        if self.claim(digest):
            return digest
        with self._faults("storing a blob"):
            self.fs.pipe_file(self.key(digest), data, **self._pipe_options)
        self._check_stored(digest, len(data))
        if not self.cache.claim(digest):  # cached already when the store had lost it: it went up again above
            with self.cache._tempfile() as (out, tmp):  # the cache: no fsync, as for a download
                with self._faults("storing a blob"):
                    out.write(data)
                    out.flush()
                self.cache._commit(tmp, digest)
        self._added(len(data))
        return digest

    def put_file(self, path: str | os.PathLike, algo: str | None = None) -> str:
        """Copy the file at ``path`` into the store (staged in the cache, hashed as it is copied); return its
        address."""
        return self.cache.put_file(path, before_commit=self._upload, algo=algo)

    @contextmanager
    def writer(self, *, also=None, background: bool = False, algo: str | None = None):
        """A file-like object to stream a new blob into; uploaded when the block ends, before it enters the
        cache (see :meth:`LocalBlobStore.writer`)."""
        with self.cache.writer(also=also, background=background, before_commit=self._upload, algo=algo) as w:
            yield w

    # -- reading ----------------------------------------------------------------------------------------------
    def _fetch(self, digest: str) -> tuple[Path, bool]:
        """The cached file of a blob, downloaded (and verified) when it is not cached; and whether it was just
        verified."""
        if self.cache.claim(digest):
            return self.cache.path(digest), False
        key = self.key(digest)
        h = Hasher(addresses.algorithm(digest))
        with self.cache._tempfile() as (out, tmp):
            try:
                with (
                    self._faults("reading a blob"),
                    self.fs.open(key, "rb", block_size=MULTIPART_CHUNK) as inp,
                ):
                    while chunk := inp.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
            except FileNotFoundError:
                raise self._missing(digest) from None
            if h.address() != digest:
                raise CorruptBlob(
                    f"blob {digest[:12]} in {self.url} does not match its digest; restore it from a backup"
                )
            out.flush()
            self.cache._commit(tmp, digest)
        self._added(self.cache.path(digest).stat().st_size)
        return self.cache.path(digest), True

    def verify(self, digest: str) -> Path:
        """The local (cached) path of a blob after checking its bytes against the digest."""
        path, checked = self._fetch(digest)
        return path if checked else self.cache.verify(digest)

    @contextmanager
    def mapped(self, digest: str) -> Iterator[memoryview]:
        """The blob's bytes mapped into memory from the cache, read-only and not verified."""
        self._fetch(digest)
        with self.cache.mapped(digest) as view:
            yield view

    def get_bytes(self, digest: str, verify: bool = True) -> bytes:
        """The bytes of a blob, checked against its digest."""
        _, checked = self._fetch(digest)
        return self.cache.get_bytes(digest, verify=verify and not checked)

    def copy_to(self, digest: str, dest: str | os.PathLike, verify: bool = True) -> Path:
        """Write a blob to ``dest`` (atomically), verifying the digest while copying."""
        self._fetch(digest)
        return self.cache.copy_to(digest, dest, verify=verify)

    def rehash(self, digest: str) -> str:
        """The address of the stored object's bytes by the algorithm ``digest`` names, read from the store (not
        the cache): ``mlo doctor --verify``."""
        h = Hasher(addresses.algorithm(digest))
        with (
            self._faults("reading a blob"),
            self.fs.open(self.key(digest), "rb", block_size=MULTIPART_CHUNK) as f,
        ):
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.address()

    # -- files beside the blobs (the prediction log) -----------------------------------------------------------
    def put_file_at(self, local: str | os.PathLike, key: str) -> None:
        """Upload the complete file ``local`` to ``<prefix>/<key>``: one PUT, or a multipart upload completed at
        the end, so the object appears whole or not at all."""
        with self._faults("storing a file"):
            self.fs.put_file(str(local), f"{self.prefix}/{key}", **self._put_options)

    def list_files(self, key: str) -> dict[str, int]:
        """``{key relative to the prefix: size}`` of the objects under ``<prefix>/<key>/``."""
        root = f"{self.prefix}/{key.strip('/')}"
        with self._faults("listing the blob store"):
            try:
                found = self.fs.find(root, detail=True)
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
                return {}
        cut = len(self.prefix) + 1
        return {k[cut:]: int(info.get("size") or 0) for k, info in found.items()}

    def get_file_at(self, key: str, dest: str | os.PathLike) -> None:
        """Download ``<prefix>/<key>`` to ``dest``: a temporary name beside it, renamed when complete."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
        try:
            with self._faults("reading a file"):
                self.fs.get_file(f"{self.prefix}/{key}", str(tmp))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    # -- the cache's size cap ---------------------------------------------------------------------------------
    def _added(self, size: int) -> None:
        if self._cached_bytes is None:
            self._cached_bytes = sum(b.size for b in self.cache.iter_blobs())
        else:
            self._cached_bytes += size
        if self._cached_bytes > self.cache_bytes:
            self.trim_cache()

    def trim_cache(self) -> int:
        """Remove the least recently used cached blobs until the cache fits its cap (blobs used in the last
        minute stay); returns the bytes removed. Everything in the cache is also in the store."""
        files = sorted(self.cache.iter_blobs(), key=lambda b: b.mtime)
        total = sum(b.size for b in files)
        removed = 0
        recent = time.time() - CACHE_KEEP_SECONDS
        for b in files:
            if total <= self.cache_bytes:
                break
            if b.mtime >= recent:
                continue
            try:
                os.unlink(b.path)
            except OSError:
                continue
            total -= b.size
            removed += b.size
        self._cached_bytes = total
        return removed

    # -- upkeep (doctor, gc) ----------------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[BlobFile]:
        """Every blob object in the store, in no particular order (``path`` is its key)."""
        with self._faults("listing the blob store"):
            try:
                found = self.fs.find(self.prefix, detail=True)
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
                return
        cut = len(self.prefix) + 1
        for key, info in found.items():
            digest = addresses.from_parts(*key[cut:].split("/", 2)) if key.count("/", cut) in (1, 2) else None
            if digest is not None:
                yield BlobFile(digest, key, int(info.get("size") or 0), _timestamp(info))

    def has_blobs(self) -> bool:
        return next(self.iter_blobs(), None) is not None

    def claims(self) -> dict[str, float]:
        """``{digest: time}`` of the claim markers writers left."""
        with self._faults("listing the blob store"):
            try:
                found = self.fs.find(f"{self.prefix}/{CLAIMS}", detail=True)
            except FileNotFoundError:
                return {}
        out = {}
        for k, info in found.items():
            digest = addresses.from_flat(k.rsplit("/", 1)[-1])
            if digest is not None:
                out[digest] = _timestamp(info)
        return out

    def remove(self, digest: str) -> None:
        """Delete a blob and its claim marker from the store and the cache (``mlo gc``)."""
        with self._faults("collecting garbage"):
            self.fs.rm_file(self.key(digest))
            try:
                self.fs.rm_file(self._claim_key(digest))
            except FileNotFoundError:
                pass
        self.cache.path(digest).unlink(missing_ok=True)

    def remove_claim(self, digest: str) -> None:
        with self._faults("collecting garbage"):
            try:
                self.fs.rm_file(self._claim_key(digest))
            except FileNotFoundError:
                pass

    def unfinished_uploads(self) -> list[dict]:
        """Multipart uploads under this store's prefix that were started and never completed nor aborted (a
        writer killed mid-upload): ``[{"key", "upload_id", "started"}]``. Only S3 lists them."""
        if not hasattr(self.fs, "list_multipart_uploads"):
            return []
        bucket, _, prefix = self.prefix.partition("/")
        with self._faults("listing the blob store"):
            uploads = self.fs.list_multipart_uploads(bucket)
        out = []
        for u in uploads or []:
            key = u.get("Key", "")
            if not prefix or key.startswith(prefix + "/"):
                started = _timestamp({"LastModified": u.get("Initiated")})
                out.append({"key": key, "upload_id": u["UploadId"], "started": started})
        return out

    def abort_upload(self, upload: dict) -> None:
        bucket = self.prefix.partition("/")[0]
        with self._faults("collecting garbage"):
            self.fs.call_s3(
                "abort_multipart_upload", Bucket=bucket, Key=upload["key"], UploadId=upload["upload_id"]
            )

    def temp_files(self) -> list[TempFile]:
        """The temp files of writes staged in the local cache (see :meth:`LocalBlobStore.temp_files`)."""
        return self.cache.temp_files()

    def sweep_temp(self) -> list[TempFile]:
        return self.cache.sweep_temp()

    def __repr__(self) -> str:
        return f"RemoteBlobStore({self.url!r}, cache={str(self.cache.root)!r})"
