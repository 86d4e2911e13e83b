"""The metric buffer: ``log_metric`` appends to in-memory lists (about a microsecond); a flush packs every
series into arrays and writes one chunk per key in one transaction.

Flushes happen when the buffer holds ``max_points``, when ``max_seconds`` have passed since the last flush
(checked on each call and by the heartbeat thread), at the end of each notebook cell, at run end and at exit.
"""

from __future__ import annotations

import numbers
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInput
from ..names import control_character

MAX_KEY_LENGTH = 255
# Flushes of up to this many points are packed without numpy (a short run, a cached pipeline, a stage's last
# cell pay no numpy import); bigger ones with it. Both store the same bytes.
SMALL_FLUSH = 1000


def check_key(key: object, what: str = "metric") -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"{what} name must be a non-empty string, got {key!r}")
    bad = control_character(key)
    if bad is not None:
        raise InvalidInput(
            f"{what} name {key[:40]!r} holds the control character {bad!r}: use printable characters"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"{what} name {key[:40]!r}… is longer than {MAX_KEY_LENGTH} characters")
    return key


class MetricBuffer:
    """Buffered metric points of one run. Thread-safe; ``sink(series)`` receives ``{key: (steps, values, ts)}``."""

    def __init__(self, sink: Callable[[dict], None], max_points: int = 200_000, max_seconds: float = 5.0):
        self._sink = sink
        self.max_points = max_points
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        # typed arrays, not lists: appends cost the same, and a flush reads them without conversion
        self._series: dict[str, tuple[array, array, array]] = {}
        self._next_step: dict[str, int] = {}
        self._pending = 0
        self._last_flush = time.time()

    def add(self, key: str, value: object, step: object = None, timestamp: float | None = None) -> None:
        if value.__class__ is not float:
            if is_series(value):
                self.add_series({key: value}, step, timestamp)
                return
            value = _as_float(key, value)
        if step is not None and step.__class__ is not int:
            step = _as_step(step)
        t = time.time() if timestamp is None else _as_timestamp(timestamp)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                check_key(key)
                series = self._series[key] = (array("q"), array("d"), array("d"))
            if step is None:
                step = self._next_step.get(key, 0)
            self._next_step[key] = step + 1
            series[0].append(step)
            series[1].append(value)
            series[2].append(t)
            self._pending += 1
            due = self._pending >= self.max_points or t - self._last_flush >= self.max_seconds
        if due:
            self.flush()

    def add_many(self, values: dict, step: object = None, timestamp: float | None = None) -> None:
        if not isinstance(values, dict):
            raise InvalidInput(f"metrics must be a dict of name: number, got {type(values).__name__}")
        if any(is_series(v) for v in values.values()):
            self.add_series(values, step, timestamp)
            return
        t = time.time() if timestamp is None else _as_timestamp(timestamp)
        # validate everything first: a bad value must not leave half the dict logged
        clean = {check_key(k): _as_float(k, v) for k, v in values.items()}
        for key, value in clean.items():
            self.add(key, value, step, t)

    def add_series(self, values: dict, step: object = None, timestamp: float | None = None) -> None:
        """Many points per key at once: ``values`` maps keys to 1-D arrays of one length ``n``; ``step`` is an
        array of ``n`` integers, the first step (then one per point) or None (each key goes on from its last
        step). Every point gets ``timestamp`` (default: now). All or nothing: everything is checked first."""
        t = time.time() if timestamp is None else _as_timestamp(timestamp)
        arrays = check_series(values, step)
        n = len(next(iter(arrays.values()))[1]) if arrays else 0
        if not n:
            return
        import numpy as np

        stamps = np.full(n, t, dtype=np.float64).tobytes()
        with self._lock:
            for key, (steps, vals) in arrays.items():
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = (array("q"), array("d"), array("d"))
                if steps is None:
                    first = self._next_step.get(key, 0)
                    steps = np.arange(first, first + n, dtype=np.int64)
                series[0].frombytes(steps.tobytes())
                series[1].frombytes(vals.tobytes())
                series[2].frombytes(stamps)
                self._next_step[key] = int(steps[-1]) + 1
                self._pending += n
            due = self._pending >= self.max_points or t - self._last_flush >= self.max_seconds
        if due:
            self.flush()

    @property
    def pending(self) -> int:
        return self._pending

    def stale(self) -> bool:
        return self._pending > 0 and time.time() - self._last_flush >= self.max_seconds

    def flush(self, sink: Callable[[dict], None] | None = None) -> int:
        """Write everything buffered (through ``sink`` if given); return the number of points written."""
        with self._lock:
            if not self._pending:
                self._last_flush = time.time()
                return 0
            series, self._series = self._series, {}
            n, self._pending = self._pending, 0
            self._last_flush = time.time()
        packed = _pack_small(series) if n <= SMALL_FLUSH else None
        if packed is None:
            import numpy as np  # here, not at import: loading mlo in a notebook stays light

            packed = {
                key: (
                    np.frombuffer(steps, dtype=np.int64),
                    np.frombuffer(vals, dtype=np.float64),
                    (np.frombuffer(ts, dtype=np.float64) * 1e6).astype(np.int64),
                )
                for key, (steps, vals, ts) in series.items()
            }
        try:
            (sink or self._sink)(packed)
        except BaseException:
            # keep the points for the next flush rather than lose them
            with self._lock:
                for key, (st, va, ts) in series.items():
                    cur = self._series.setdefault(key, (array("q"), array("d"), array("d")))
                    cur[0][:0], cur[1][:0], cur[2][:0] = st, va, ts
                self._pending += n
            raise
        return n

    def discard(self) -> None:
        with self._lock:
            self._series, self._pending = {}, 0


def _pack_small(series: dict) -> dict | None:
    """A few points as typed arrays, in the layout the numpy path gives (int64 steps, float64 values, int64
    microseconds); None when a timestamp does not fit (the numpy path decides then)."""
    try:
        return {
            key: (steps, vals, array("q", [int(t * 1e6) for t in ts]))
            for key, (steps, vals, ts) in series.items()
        }
    except (ValueError, OverflowError):
        return None


def is_series(value: object) -> bool:
    """Whether a metric value is many points (a list, tuple or 1-D array) rather than one number."""
    return isinstance(value, (list, tuple)) or (getattr(value, "ndim", 0) or 0) >= 1


def check_series(values: dict, step: object) -> dict[str, tuple[Any, Any]]:
    """``{key: (steps or None, values)}`` as contiguous int64 and float64 arrays, or a one-line error."""
    import numpy as np

    out: dict[str, tuple[Any, Any]] = {}
    length = None
    for key, value in values.items():
        check_key(key)
        if not is_series(value):
            raise InvalidInput(
                f"metric {key!r}: give every metric as an array of points, or every metric as one number"
            )
        try:
            given = np.asarray(value)
        except (TypeError, ValueError):
            given = None
        if given is None or given.dtype.kind not in "biuf":  # as for one point: no text, None or objects
            raise InvalidInput(f"metric {key!r} must hold numbers only, got {value!r:.60}")
        vals = np.ascontiguousarray(given, dtype=np.float64)
        if vals.ndim != 1:
            raise InvalidInput(f"metric {key!r} must be a 1-D array of points, got shape {vals.shape}")
        if length is not None and len(vals) != length:
            raise InvalidInput(
                f"metrics logged together must have one length: {key!r} has {len(vals)}, not {length}"
            )
        length = len(vals)
        out[key] = (None, vals)
    if step is None or length is None:
        return out
    if is_series(step):
        steps = np.asarray(step)
        if (
            steps.ndim != 1
            or steps.dtype.kind not in "iu"
            or (steps.dtype.kind == "u" and steps.size and steps.max() > 2**63 - 1)
        ):
            raise InvalidInput(f"metric steps must be a 1-D array of integers, got {step!r:.60}")
        if len(steps) != length:
            raise InvalidInput(f"metric steps must be one per point: {len(steps)} steps for {length} points")
    else:
        first = _as_step(step)
        steps = np.arange(first, first + length)
    steps = np.ascontiguousarray(steps, dtype=np.int64)
    return {key: (steps, vals) for key, (_, vals) in out.items()}


def _as_timestamp(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy registers its scalars
        raise InvalidInput(f"timestamp must be seconds since the epoch (a number), got {value!r:.40}")
    return float(value)


def _as_float(key: str, value: object) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise InvalidInput(f"metric {key!r} must be a number, got {value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"metric {key!r} must be a number, got {value!r}") from None
    return out  # nan and inf are kept: a diverged loss is a reading worth seeing


def _as_step(step: object) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidInput(f"metric step must be an integer, got {step!r}")
    return int(step.__index__())  # type: ignore[union-attr]
