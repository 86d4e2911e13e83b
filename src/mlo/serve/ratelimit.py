"""Error logs a client cannot flood: at most a few records per message per interval.

A server logs what goes wrong (a model that raises, a bad token, an invalid HTTP request, a socket error); a
client that repeats the same mistake a thousand times a second must not turn that into a thousand lines a second.
:class:`RateLimit` lets ``burst`` records of one message (the logger and its unformatted text) through per
``interval`` seconds, drops the rest, and says how many it dropped on the next record it lets through.
"""

from __future__ import annotations

import logging
import threading
import time

BURST = 10
INTERVAL = 10.0
GUARDED = ("mlo.serve", "uvicorn.error", "asyncio")  # the loggers a server's clients can make speak


class RateLimit(logging.Filter):
    def __init__(self, burst: int = BURST, interval: float = INTERVAL):
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._state: dict[tuple, list] = {}  # key -> [window start, records let through, records dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state[0] >= self.interval:
                dropped = state[2] if state is not None else 0
                if len(self._state) > 10_000:
                    self._state.clear()
                self._state[key] = [now, 1, 0]
                if dropped:
                    record.msg = (
                        f"{record.getMessage()} ({dropped} more like this in the last {self.interval:g} s)"
                    )
                    record.args = None
                return True
            if state[1] < self.burst:
                state[1] += 1
                return True
            state[2] += 1
            return False


_filter = RateLimit()


def install() -> RateLimit:
    """Put the rate limit on the loggers a server's clients can make speak (once per process)."""
    for name in GUARDED:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
    return _filter
