"""What one client may cost a model server, with safe defaults: body size, JSON nesting, rows per request,
requests in progress, open connections and the time allowed to send headers and body.

Every limit is an option of ``mlo serve`` and a key of ``limits=`` in Python (``None`` turns one off):

=================  ============  ================================================================================
limit              default       when exceeded
=================  ============  ================================================================================
``max_body``       4 MiB         413, before the body is read (``Content-Length``) or as soon as it passes
``max_depth``      32            400: JSON nested deeper is refused before it is decoded
``max_rows``       10,000        413: rows in one request
``max_concurrency`` 64           503 with ``Retry-After: 1``: requests being processed at once (``/health`` apart)
``max_connections`` 4,096        the longest-idle connection is closed to make room (none idle: the new one is)
``header_timeout`` 10 s          the connection is closed: from its first byte (or its opening) to the end of the
                                 request's headers
``body_timeout``   30 s          408: from the end of the headers to the end of the body
``keep_alive``     5 s           an idle kept-alive connection is closed
=================  ============  ================================================================================
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import InvalidInput

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: Any, what: str = "size") -> int:
    """Bytes from ``4194304``, ``"4MB"``, ``"4 MiB"``, ``"512k"`` (k, M and G are powers of 1024)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} takes a number of bytes or a size like '4MB', got {value!r}")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise InvalidInput(f"{what} takes a number of bytes or a size like '4MB' or '512k', got {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Limits:
    """The limits of one server (see the module docstring); ``None`` turns a limit off."""

    max_body: int | None = 4 * 1024 * 1024
    max_depth: int | None = 32
    max_rows: int | None = 10_000
    max_concurrency: int | None = 64
    max_connections: int | None = 4096
    header_timeout: float | None = 10.0
    body_timeout: float | None = 30.0
    keep_alive: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_body" and value is not None:
                value = parse_size(value, "max_body")
                object.__setattr__(self, f.name, value)
            if value is None and f.name != "keep_alive":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidInput(
                    f"the limit {f.name} must be a number above 0 (or None: off), got {value!r}"
                )
            if f.name.startswith("max_") and value != int(value):
                raise InvalidInput(f"the limit {f.name} must be a whole number, got {value!r}")

    @classmethod
    def coerce(cls, value: Any) -> Limits:
        """From None (the defaults), a Limits, or a dict of the limits to change."""
        if value is None:
            return cls()
        if isinstance(value, Limits):
            return value
        if isinstance(value, dict):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                import difflib

                hint = difflib.get_close_matches(unknown[0], names, 1)
                raise InvalidInput(
                    f"unknown limit {unknown[0]!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" (limits: {', '.join(sorted(names))})"
                )
            return replace(cls(), **value)
        raise InvalidInput(f"limits= takes a dict like {{'max_body': '8MB'}} or a Limits, got {value!r}")

    @classmethod
    def unlimited(cls) -> Limits:
        """Every limit off (for measuring what the limits cost; never for a server others can reach)."""
        return cls(**{f.name: None for f in fields(cls) if f.name != "keep_alive"})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- JSON nesting --------------------------------------------------------------------------------------------
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether JSON text ``raw`` nests deeper than ``limit`` (brackets inside strings do not count). Cheap when
    the body holds fewer brackets than the limit, which no deep body does."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    stripped = _STRINGS.sub(b'""', raw)
    steps = _OPEN[np.frombuffer(stripped, dtype=np.uint8)]
    steps = steps[steps != 0]
    return bool(len(steps)) and int(np.cumsum(steps, dtype=np.int64).max()) > limit


# -- memory --------------------------------------------------------------------------------------------------
TRIM_AFTER = 256 * 1024  # bodies at least this large hand their freed memory back to the system afterwards
MMAP_THRESHOLD = (
    128 * 1024
)  # blocks at least this large get their own pages, returned to the system when freed
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_libc: Any = None


def _c_library() -> Any:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    return _libc


def tune_allocator() -> None:
    """Give every large block (a request's arrays, its JSON text) pages of its own, returned to the system as
    soon as it is freed. glibc otherwise raises that threshold after the first large free and serves later large
    blocks from its heaps, which then stay at their peak size. Process-wide; a no-op without glibc."""
    lib = _c_library()
    if lib and hasattr(lib, "mallopt"):
        lib.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_memory() -> None:
    """Give memory freed by a large request back to the operating system: glibc's free blocks (``malloc_trim``)
    and Arrow's pool (the prediction log's buffers). A no-op where neither applies."""
    lib = _c_library()
    if lib:
        lib.malloc_trim(0)
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # an optional nicety: never a reason for a request to fail
        pass
