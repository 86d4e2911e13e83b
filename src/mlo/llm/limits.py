"""Pacing calls to an endpoint: a rate limiter (requests per minute, per endpoint) and the retry policy of
:func:`mlo.llm.chat` (exponential backoff with jitter on 429 and 5xx, honouring ``Retry-After``)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from dataclasses import dataclass

from ..errors import InvalidInput

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class RateLimiter:
    """A token bucket: at most ``per_minute`` requests a minute, in bursts of at most ``burst``.

    :meth:`acquire` blocks (``await aacquire()`` in async code) until a request may go. Thread-safe.
    """

    def __init__(self, per_minute: float, burst: int | None = None):
        if isinstance(per_minute, bool) or not isinstance(per_minute, (int, float)) or per_minute <= 0:
            raise InvalidInput(f"requests_per_minute must be a positive number, got {per_minute!r}")
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(int(per_minute), 10)))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds callers spent waiting, for reports

    def _take(self) -> float:
        """Take a token if one is there (0.0), else the seconds until one will be."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> float:
        """Wait until a request may go; returns the seconds waited."""
        waited = 0.0
        while (delay := self._take()) > 0:
            time.sleep(delay)
            waited += delay
        self.waited += waited
        return waited

    async def aacquire(self) -> float:
        waited = 0.0
        while (delay := self._take()) > 0:
            await asyncio.sleep(delay)
            waited += delay
        self.waited += waited
        return waited


_limiters: dict[str, RateLimiter] = {}
_limits_lock = threading.Lock()


def set_rate_limit(endpoint: str, per_minute: float | None, burst: int | None = None) -> None:
    """Limit the requests to ``endpoint`` (``host:port``, or ``*`` for every endpoint); None removes the limit."""
    with _limits_lock:
        if per_minute is None:
            _limiters.pop(endpoint, None)
        else:
            _limiters[endpoint] = RateLimiter(per_minute, burst)


def limiter_for(endpoint: str) -> RateLimiter | None:
    return _limiters.get(endpoint) or _limiters.get("*")


def clear_rate_limits() -> None:
    with _limits_lock:
        _limiters.clear()


@dataclass(frozen=True)
class Backoff:
    """How :func:`mlo.llm.chat` retries: up to ``retries`` more attempts after the first, waiting
    ``base * 2**attempt`` seconds (with ±50% jitter, at most ``max_wait``) or what ``Retry-After`` asks, if more;
    never past ``deadline`` seconds in all."""

    retries: int = 4
    base: float = 0.5
    max_wait: float = 30.0
    deadline: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidInput(f"retries must be a whole number >= 0, got {self.retries!r}")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        wait = min(self.max_wait, self.base * (2**attempt)) * (0.5 + random.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_wait))
        return wait


def retry_after(headers) -> float | None:
    """Seconds a ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` header asks to wait, or None."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
