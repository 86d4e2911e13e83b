"""Sortable, time-ordered ids (ULID layout: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(now: float | None = None) -> str:
    """A 26-character id that sorts by creation time (lowercase Crockford base32)."""
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def now_us() -> int:
    """The time now, in microseconds since the epoch (how the store keeps times)."""
    return int(time.time() * 1_000_000)


def id_time(id_: str) -> float:
    """The creation time (epoch seconds) encoded in an id from :func:`new_id`."""
    value = 0
    for ch in id_[:10]:
        value = (value << 5) | _ALPHABET.index(ch)
    return value / 1000.0


def common_prefix(a: str, b: str) -> int:
    """How many leading characters two ids share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
