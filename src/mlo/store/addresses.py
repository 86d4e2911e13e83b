"""Blob addresses: the name of a blob says which hash of its bytes made it.

Two forms are valid, and every part of the store (reads, verification, ``mlo gc``, ``mlo doctor``, object
storage) takes both:

- ``blake3:<56 hex>`` — new blobs: the first 224 bits of the BLAKE3 hash of the bytes (BLAKE3 is an extendable
  output function, so a shorter output is as strong as its length: 112-bit collision resistance, the level of
  SHA-224). The scheme prefix follows OCI's ``algorithm:encoded`` digests; 224 bits keep the whole address within
  63 characters, so it fits the metadata database's 64-character columns without a schema change. BLAKE3 runs at
  several times SHA-256's speed (on all cores for large blobs), which is what lets a snapshot be written at disk
  speed.
- ``<64 hex>`` — blobs written before: the SHA-256 of the bytes. They stay valid forever; nothing renames them.

On disk and in object storage a SHA-256 blob lives at ``<d[:2]>/<d[2:]>`` and a BLAKE3 blob at
``blake3/<h[:2]>/<h[2:]>``: a folder named ``blake3`` cannot be mistaken for a two-character shard.
"""

from __future__ import annotations

import hashlib
import os

from ..errors import InvalidInput

SHA256 = "sha256"
BLAKE3 = "blake3"
DEFAULT = BLAKE3  # the algorithm of new blobs (where a caller names none)
BLAKE3_BYTES = 28  # 224 bits: "blake3:" + 56 hex = 63 characters
BLAKE3_HEX = 2 * BLAKE3_BYTES
_PREFIX = BLAKE3 + ":"
_HEX = frozenset("0123456789abcdef")
_THREADED_FROM = 8 << 20  # below this, one thread hashes faster than starting several
_CHUNK = 1 << 20


def check(address: str) -> str:
    """``address`` when it is a valid blob address, else :class:`~mlo.errors.InvalidInput`."""
    if isinstance(address, str):
        if len(address) == 64 and _HEX.issuperset(address):
            return address
        if (
            len(address) == len(_PREFIX) + BLAKE3_HEX
            and address.startswith(_PREFIX)
            and _HEX.issuperset(address[len(_PREFIX) :])
        ):
            return address
    raise InvalidInput(
        f"{address!r} is not a blob address (blake3:<{BLAKE3_HEX} hex digits>, or a SHA-256 of 64 hex digits)"
    )


def short(digest: str | None, length: int = 12) -> str:
    """The first ``length`` hex digits of a digest or blob address, without its scheme, for display: a BLAKE3
    address shows as many digits as a SHA-256 one (``blake3:`` is not part of what a reader compares)."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:length]


def algorithm(address: str) -> str:
    return BLAKE3 if address.startswith(_PREFIX) else SHA256


def parts(address: str) -> tuple[str, ...]:
    """The path of a blob below the store's root, as folder names and file name."""
    address = check(address)
    if address.startswith(_PREFIX):
        h = address[len(_PREFIX) :]
        return (BLAKE3, h[:2], h[2:])
    return (address[:2], address[2:])


def from_parts(top: str, shard: str, name: str | None = None) -> str | None:
    """The address stored at ``top/shard`` (SHA-256) or ``top/shard/name`` (BLAKE3), or None for anything else
    (temp files, claim markers, a stray file)."""
    if name is None:
        if len(top) == 2 and len(shard) == 62 and _HEX.issuperset(top) and _HEX.issuperset(shard):
            return top + shard
        return None
    if (
        top == BLAKE3
        and len(shard) == 2
        and len(name) == BLAKE3_HEX - 2
        and _HEX.issuperset(shard)
        and _HEX.issuperset(name)
    ):
        return _PREFIX + shard + name
    return None


def flat(address: str) -> str:
    """The address as one file name (no ``:``, which some file systems refuse): for trash and claim markers."""
    return check(address).replace(":", "-")


def from_flat(name: str) -> str | None:
    try:
        return check(name.replace("-", ":", 1) if name.startswith(BLAKE3 + "-") else name)
    except InvalidInput:
        return None


class Hasher:
    """Hashes bytes fed in pieces and names them: ``Hasher(algo).update(...)``, then ``.address()``."""

    __slots__ = ("algo", "_h")

    def __init__(self, algo: str | None = None, threads: bool = False):
        algo = algo or DEFAULT
        if algo == BLAKE3:
            import blake3

            self._h = blake3.blake3(max_threads=blake3.blake3.AUTO) if threads else blake3.blake3()
        elif algo == SHA256:
            self._h = hashlib.sha256()
        else:
            raise InvalidInput(f"unknown blob hash {algo!r}: use {BLAKE3!r} or {SHA256!r}")
        self.algo = algo

    def update(self, data) -> None:
        self._h.update(data)

    def blake3(self) -> str | None:
        """The whole 256-bit BLAKE3 of the bytes (the address holds its first 224 bits); None for SHA-256."""
        return self._h.hexdigest() if self.algo == BLAKE3 else None

    def address(self) -> str:
        if self.algo == BLAKE3:
            return _PREFIX + self._h.hexdigest(length=BLAKE3_BYTES)
        return self._h.hexdigest()


def hash_bytes(data, algo: str | None = None) -> str:
    """The address ``data`` gets with ``algo``."""
    h = Hasher(algo, threads=len(memoryview(data)) >= _THREADED_FROM)
    h.update(data)
    return h.address()


def hash_file(path: str | os.PathLike, algo: str | None = None) -> str:
    """The address of the file's bytes with ``algo`` (BLAKE3 of a large file: mapped and hashed on all cores)."""
    algo = algo or DEFAULT
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if algo == BLAKE3 and size >= _THREADED_FROM:
            import mmap

            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return hash_bytes(m, algo)
        h = Hasher(algo)
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
        return h.address()


def matches(path: str | os.PathLike, address: str) -> bool:
    """Whether the file's bytes still have ``address``, hashed with the address's own algorithm."""
    return hash_file(path, algorithm(address)) == address
