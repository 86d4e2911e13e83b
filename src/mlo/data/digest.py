"""Content digests of data: BLAKE3 over a canonical byte stream of every value, type, label and index.

The stream is independent of how the data happens to sit in memory (chunking, slicing, the bytes hidden under a
null, the payload bits of a NaN), so equal data has an equal digest in every process and on every machine, while
any change to a value, a dtype, a label, the column order or the index changes it. Large buffers are hashed in
place, without copies, on all cores.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import blake3
import numpy as np
import pyarrow as pa

from ..errors import InvalidInput
from .codec import Encoded

DOMAIN = b"mlo-data-digest-1\0"
_CHUNK = 1 << 24  # bytes per update: large enough for BLAKE3's threads, small enough to stay in cache-ish


def _hasher():
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def _feed_bytes(h, view: np.ndarray) -> None:
    flat = view.reshape(-1).view(np.uint8)
    for i in range(0, flat.size, _CHUNK):
        h.update(flat[i : i + _CHUNK])


_CANONICAL_NAN = {
    np.dtype(t): np.array([np.nan], dtype=t).view(f"u{np.dtype(t).itemsize}")[0]
    for t in (np.float16, np.float32, np.float64)
}


def _check(part: np.ndarray) -> tuple[bool, float]:
    """(a NaN is inside, the stretch's sum). float64 is summed (numpy's pairwise sum, as fast as a min): a finite
    sum means no NaN and no infinity, and the profile takes the column's mean from it (:func:`float_sum`); only
    a stretch whose sum is not finite is searched for a NaN (a NaN propagates through min). Narrower floats,
    whose sums overflow easily, take the min at once."""
    if part.dtype == np.float64:
        total = float(np.add.reduce(part))
        if math.isfinite(total):
            return False, total
    else:
        total = math.nan
    return bool(np.isnan(part.min())), total


def _stretches(values: np.ndarray) -> range:
    return range(0, values.size, max(1, _CHUNK // values.itemsize))


def float_sum(values: np.ndarray) -> float:
    """The sum of a float64 column as the digest computes it while checking for NaN: numpy's sum of each 16 MB
    stretch, added in order (so a profile without a digest has the very same mean)."""
    step, total = max(1, _CHUNK // values.itemsize), 0.0
    for i in _stretches(values):  # added one by one as in _feed_floats (sum() of floats compensates)
        total += float(np.add.reduce(values[i : i + step]))
    return total


def _feed_floats(h, values: np.ndarray) -> float:
    """Floats with every NaN written as the one canonical NaN (payload and sign bits vary between producers).
    A chunk is copied only when one of its NaNs is not already the canonical one. The NaN check of the next
    chunk runs on a second thread while BLAKE3 hashes this one (both release the GIL), not in series with it.
    Returns the sum of the values (:func:`float_sum`) for float64 (not finite when a NaN or an infinity is in)."""
    step = max(1, _CHUNK // values.itemsize)
    bits_type = f"u{values.itemsize}"
    canonical = _CANONICAL_NAN[values.dtype.newbyteorder("=")]
    starts = _stretches(values)
    if len(starts) <= 1:
        checks = iter([_check(values)] if values.size else [])
        pool = None
    else:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlo-digest")
        checks = pool.map(_check, (values[i : i + step] for i in starts))  # runs ahead of the hashing
    total = 0.0
    try:
        for i, (nan_inside, part_sum) in zip(starts, checks, strict=True):
            total += part_sum
            part = values[i : i + step]
            if nan_inside:
                nan = np.isnan(part)
                if (part.view(bits_type)[nan] != canonical).any():
                    part = part.copy()
                    part[nan] = np.nan
            h.update(part.view(np.uint8))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return total


def _fixed_view(arr: pa.Array, width: int) -> np.ndarray:
    buf = arr.buffers()[1]
    return np.frombuffer(buf, dtype=np.uint8, count=len(arr) * width, offset=arr.offset * width)


def feed_array(h, arr: pa.Array) -> float | None:
    """Feed one Arrow array to ``h`` canonically. Returns, for a float64 array without nulls, the sum of its
    values (:func:`float_sum`; not finite when a NaN or an infinity is in), else None."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    h.update(f"|{t}|{len(arr)}|{arr.null_count}|".encode())
    if pa.types.is_dictionary(t):
        feed_array(h, arr.indices)
        feed_array(h, arr.dictionary)
        return None
    if pa.types.is_null(t):
        return None
    nulls = arr.null_count
    if nulls:
        mask = arr.is_null().to_numpy(zero_copy_only=False)
        h.update(np.packbits(mask).tobytes())
        arr = _fill_nulls(arr)
    if pa.types.is_boolean(t):
        h.update(arr.to_numpy(zero_copy_only=False).view(np.uint8).tobytes())
    elif (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        offsets = np.frombuffer(
            arr.buffers()[1],
            dtype=np.int64 if large else np.int32,
            count=len(arr) + 1,
            offset=arr.offset * (8 if large else 4),
        )
        start, stop = int(offsets[0]), int(offsets[-1])
        if large and start == 0:
            _feed_bytes(h, offsets)  # already the canonical form: hash in place
        else:
            step = _CHUNK // 8
            for i in range(0, offsets.size, step):
                h.update((offsets[i : i + step] - start).astype(np.int64).view(np.uint8))
        data = arr.buffers()[2]
        if data is not None and stop > start:
            _feed_bytes(h, np.frombuffer(data, dtype=np.uint8, count=stop - start, offset=start))
    elif pa.types.is_floating(t):
        width = t.bit_width // 8
        dtype = {2: np.float16, 4: np.float32, 8: np.float64}[width]
        total = _feed_floats(h, _fixed_view(arr, width).view(dtype))
        return total if width == 8 and not nulls else None
    elif t.bit_width and t.bit_width % 8 == 0 and not pa.types.is_nested(t):
        _feed_bytes(h, _fixed_view(arr, t.bit_width // 8))
    else:
        raise InvalidInput(
            f"data of Arrow type {t} cannot be snapshotted yet; convert the column to a simpler type"
        )
    return None


def _fill_nulls(arr: pa.Array) -> pa.Array:
    """The same array with a fixed value under every null, so hidden bytes do not reach the digest."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        fill = pa.scalar("", type=t)
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        fill = pa.scalar(b"", type=t)
    elif pa.types.is_boolean(t):
        fill = pa.scalar(False)
    elif pa.types.is_decimal(t):
        import decimal

        fill = pa.scalar(decimal.Decimal(0), type=t)
    else:
        fill = pa.array([0]).cast(t)[0]
    return arr.fill_null(fill)


def digest(enc: Encoded, sums: dict[str, float] | None = None) -> str:
    """The hex BLAKE3 digest of encoded data. ``sums``, when given, receives the sum of every float64 column
    without nulls by its field name (a by-product of the NaN check, which the profile takes its mean from)."""
    h = _hasher()
    h.update(DOMAIN)
    header = {"meta": enc.meta, "names": enc.names, "rows": enc.rows}
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    if enc.kind == "array":
        a = enc.array
        if a.dtype.kind == "f":
            _feed_floats(h, a.reshape(-1))
        elif a.dtype.kind == "c":
            _feed_floats(h, a.reshape(-1).view(a.real.dtype))
        else:
            _feed_bytes(h, a)
        return h.hexdigest()
    for name, arr in zip(enc.names, enc.arrays, strict=True):
        h.update(b"\0col\0" + name.encode())
        total = feed_array(h, arr)
        if sums is not None and total is not None:
            sums[name] = total
    return h.hexdigest()
