"""Labels a server accepts: only for prediction ids it issued, once each, with values of the model's output type.

**Issued ids.** A server's prediction ids keep the log's layout (a UUIDv7 as 32 hex digits: 48-bit milliseconds,
then random bits) but end in 8 hex digits of a keyed hash (BLAKE2b) of the first 24, under a key kept in the
workspace (``.mlo/serve.key``, created on first use, readable by its owner only; ``MLO_SERVE_ID_KEY`` gives it in
hex, for replicas on machines that do not share a workspace folder). So a server tells an id it issued — before
or after a restart — from one made up or logged by a batch job, without a lookup; 42 bits stay random, so ids
stay unique.

**Once each.** The ids labeled so far (through any path: the server, ``mlo.monitor.label``) are read from the
label files when the first labels arrive, then kept in memory as 8-byte keys (sorted arrays plus a small set).
A second label for an id is refused (409); a corrected label goes through ``mlo.monitor.label`` in Python, whose
latest label wins.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidInput
from ..monitor.log import LABELS, _read, model_folder, new_ids
from .inputs import RequestError

log = logging.getLogger("mlo.serve")

KEY_FILE = "serve.key"
KEY_ENV = "MLO_SERVE_ID_KEY"
_HEXDIGITS = frozenset("0123456789abcdef")
_INT64 = (-(2**63), 2**63 - 1)


# -- issued ids ----------------------------------------------------------------------------------------------
def load_key(home: Path) -> bytes:
    """The key that signs a workspace's prediction ids: ``MLO_SERVE_ID_KEY`` (hex), else ``<home>/serve.key``
    (made on first use). When neither can be had (a read-only workspace), a key for this process only, with a
    warning: ids issued before a restart can then not be labeled after it."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            key = bytes.fromhex(env.strip())
        except ValueError:
            key = b""
        if len(key) < 16:
            raise InvalidInput(
                f"{KEY_ENV} must be at least 32 hex digits; make one with "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return key
    path = Path(home) / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key[:32]
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot read %s (%s); prediction ids are signed for this process only", path, exc)
        return os.urandom(32)
    key = os.urandom(32)
    tmp = path.with_name(f".{KEY_FILE}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic create-if-absent: two servers starting at once agree on one key
        except FileExistsError:
            key = path.read_bytes()[:32]
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot write %s (%s); prediction ids are signed for this process only", path, exc)
    return key


class IdSigner:
    """Makes prediction ids that carry a keyed hash, and tells them apart from any other string."""

    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, head: str) -> str:
        return hashlib.blake2b(head.encode(), key=self._key, digest_size=4, person=b"mlo-ids").hexdigest()

    def new(self, n: int, ts_us: int | None = None) -> list[str]:
        """``n`` fresh ids (UUIDv7 layout, 32 hex digits) for a request made at ``ts_us``."""
        mac = self._mac
        return [i[:24] + mac(i[:24]) for i in new_ids(n, ts_us)]

    def issued(self, value: Any) -> bool:
        """Whether ``value`` is an id this key signed."""
        if type(value) is not str or len(value) != 32 or not _HEXDIGITS.issuperset(value):
            return False
        return hmac.compare_digest(self._mac(value[:24]), value[24:])


# -- once each -----------------------------------------------------------------------------------------------
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def _key64(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The last 64 bits of each id (random and hash bits: as unique as the ids) as unsigned integers, computed
    on Arrow's buffers: a log of millions of labels costs 8 bytes an id, not a Python string each. Values that
    are not 32 lowercase hex digits are skipped."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks else pa.array([], pa.string())
    ids = ids.cast(pa.string())
    ids = ids.filter(pc.fill_null(pc.equal(pc.utf8_length(ids), 32), False))
    if len(ids) == 0:
        return np.empty(0, dtype=np.uint64)
    offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset : ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 32)[:, 16:]
    nibbles = _NIBBLE[data]
    ok = (nibbles != 255).all(axis=1)
    nibbles = nibbles[ok]
    keys = np.zeros(len(nibbles), dtype=np.uint64)
    for k in range(16):  # column by column: no 16-wide temporary of 8-byte integers
        keys = (keys << np.uint64(4)) | nibbles[:, k].astype(np.uint64)
    return keys


class LabelLedger:
    """The ids that have a label already, for the models a server serves; seeded from the label files."""

    MERGE_EVERY = 65_536

    def __init__(self, home: Path, models: Sequence[str]):
        self.home = Path(home)
        self.models = list(dict.fromkeys(models))
        self._sorted = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> None:
        found = []
        for name in self.models:
            table, _ = _read(model_folder(name, self.home) / LABELS, "lab", None, None, ["id"])
            if table is not None:
                found.append(_key64(table.column("id")))
        if found:
            self._sorted = np.unique(np.concatenate(found))
        self._loaded = True

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def _has(self, key: int) -> bool:
        if key in self._recent:
            return True
        i = int(np.searchsorted(self._sorted, np.uint64(key)))
        return i < len(self._sorted) and int(self._sorted[i]) == key

    def claim(self, ids: Sequence[str]) -> list[str]:
        """Mark ``ids`` as labeled and return [] — or, when some already are, mark none and return those."""
        keys = [int(i[16:], 16) for i in ids]
        with self._lock:
            if not self._loaded:
                self._load()
            taken = [i for i, k in zip(ids, keys, strict=True) if self._has(k)]
            if taken:
                return taken
            self._recent.update(keys)
            if len(self._recent) >= self.MERGE_EVERY:
                merged = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
                self._sorted = np.union1d(self._sorted, merged)
                self._recent = set()
        return []

    def release(self, ids: Sequence[str]) -> None:
        """Undo a :meth:`claim` whose labels could not be written."""
        with self._lock:
            for i in ids:
                self._recent.discard(int(i[16:], 16))


# -- label values --------------------------------------------------------------------------------------------
def family(value: Any) -> str | None:
    """``number``, ``text`` or ``boolean`` for a plain value (what a prediction says labels should be)."""
    kind = _family(value)
    return None if kind == "other" else kind


def _family(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "text" if isinstance(value, str) else "other"


def check_labels(labels: list, outputs: dict | None, predicted: str | None = None) -> None:
    """Refuse (422) labels that are not plain values, or not of the kind the model outputs: numbers for numeric
    classes or a regression, text for text classes — from the signature's outputs, else from what the model
    predicted (``predicted``, a :func:`family`). So the label column keeps one type."""
    for y in labels:
        if y is None:
            raise RequestError(422, "a label cannot be null: send the observed outcome for each id")
        if isinstance(y, (list, dict)):
            raise RequestError(422, f"a label is one value (a class or a number), got {type(y).__name__}")
        if isinstance(y, float) and not math.isfinite(y):
            raise RequestError(422, "a label cannot be NaN or infinite: send the observed outcome")
        if type(y) is int and not _INT64[0] <= y <= _INT64[1]:
            raise RequestError(422, f"the label {y} is outside the range of int64")
    outputs = outputs or {}
    want = None
    if outputs.get("kind") == "label" and outputs.get("classes"):
        families = {_family(c) for c in outputs["classes"]}
        want = families.pop() if len(families) == 1 else None
    elif outputs.get("kind") == "number":
        want = "number"
    want = want or predicted
    if want is None:
        families = {_family(y) for y in labels}
        if len(families) > 1:
            raise RequestError(422, "the labels mix types (numbers and text): send one type for every label")
        return
    for y in labels:
        if _family(y) != want:
            classes = outputs.get("classes")
            like = f" like the model's classes ({', '.join(map(str, classes[:4]))})" if classes else ""
            raise RequestError(422, f"labels must be {want}{like}, got {y!r}")
