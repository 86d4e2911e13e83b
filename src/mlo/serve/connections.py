"""Connections no client can hoard: a header timeout, a cap on open connections that closes the longest-idle one
to make room, and enough file descriptors for the cap.

uvicorn (h11) closes a kept-alive connection idle for ``timeout_keep_alive``, but a connection that never sends a
request — or sends its headers a byte at a time — stays open for ever, and enough of them exhaust the process's
file descriptors: the server stops accepting anyone. :class:`GuardedH11Protocol` adds what is missing:

- **header timeout**: a request's line and headers must arrive within ``header_timeout`` of its first byte (or of
  the connection's opening); otherwise the connection is closed.
- **body timeout**: once its headers are in, a request's body must arrive within ``body_timeout``; otherwise the
  answer is a 408 and the connection is closed. The clock runs only while a body is incomplete, so a request
  whose body comes with its headers costs nothing (a timer per request in the app cost 10–25 µs).
- **connection cap**: when ``max_connections`` are open, a new connection closes the one idle the longest (no
  request in progress); when none is idle, the new one is closed. Idle floods therefore cannot lock out new
  clients, and requests in progress are never cut.
- **header size**: h11 caps a request's head only while it is incomplete, so one that arrives whole in a single
  read (up to 256 KiB) passed; a head larger than ``HEADER_LIMIT`` is now a 431 whichever way it arrives.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import Limits

log = logging.getLogger("mlo.serve")

FD_MARGIN = 256  # descriptors kept for everything but client connections (files, the store, the log)
HEADER_LIMIT = 16 * 1024  # a request's line and headers, as h11 allows while they arrive


def _raw_response(status: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


_431 = _raw_response(
    "431 Request Header Fields Too Large", f"the request's headers are larger than {HEADER_LIMIT:,} bytes"
)


@dataclass
class ConnectionStats:
    """What the guard did (``/health`` shows it to a token holder; tests and benchmarks read it)."""

    header_timeouts: int = 0
    body_timeouts: int = 0
    evicted: int = 0
    refused: int = 0
    headers_too_large: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
            "evicted": self.evicted,
            "refused": self.refused,
            "headers_too_large": self.headers_too_large,
        }


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body timeouts, a header size limit and a connection cap (set by
    :func:`protocol_class`)."""

    limits: Limits = Limits()
    stats: ConnectionStats = ConnectionStats()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: Any = None
        self._body_timer: Any = None
        self._idle_since = 0.0
        self._head = 0  # bytes of the request head received so far

    # -- state -------------------------------------------------------------------------------------------------
    def _idle(self) -> bool:
        """No request in progress (a request whose headers are still arriving counts as idle)."""
        return (self.cycle is None or self.cycle.response_complete) and self.conn.their_state is h11.IDLE

    def _arm(self) -> None:
        timeout = self.limits.header_timeout
        if timeout is not None and self._header_timer is None:
            self._header_timer = self.loop.call_later(timeout, self._header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._idle() and not self.transport.is_closing():
            type(self).stats.header_timeouts += 1
            self.transport.close()

    def _body_timeout(self) -> None:
        self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            type(self).stats.body_timeouts += 1
            if self.cycle is not None and not self.cycle.response_started:
                timeout = self.limits.body_timeout
                self.transport.write(
                    _raw_response(
                        "408 Request Timeout",
                        f"the body did not arrive within {timeout:g} s (the server's body_timeout)",
                    )
                )
            self.transport.close()  # the app's receive() then says the client is gone

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        cap = self.limits.max_connections
        if cap is not None and len(self.connections) > cap:
            victim = None
            for other in self.connections:
                if (
                    other is not self
                    and isinstance(other, GuardedH11Protocol)
                    and not other.transport.is_closing()
                    and other._idle()
                    and (victim is None or other._idle_since < victim._idle_since)
                ):
                    victim = other
            if victim is None:
                type(self).stats.refused += 1
                transport.close()
                return
            type(self).stats.evicted += 1
            victim._disarm()
            victim.transport.close()
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._idle():
            if self._head + len(data) > HEADER_LIMIT:
                end = data.find(b"\r\n\r\n")
                if end == -1 or self._head + end > HEADER_LIMIT:
                    type(self).stats.headers_too_large += 1
                    self._disarm()
                    self.transport.write(_431)
                    self.transport.close()
                    return
            self._head += len(data)
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._head:  # part of a head: its clock runs (a head that comes whole never starts one)
                self._arm()
        elif state is h11.SEND_BODY:  # headers in, body still arriving: its clock runs
            self._disarm()
            self._head = 0
            if self._body_timer is None and self.limits.body_timeout is not None:
                self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timeout)
        elif state is not h11.IDLE:  # the whole request is in
            self._disarm()
            self._head = 0
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)


def protocol_class(limits: Limits) -> type[GuardedH11Protocol]:
    """A protocol class for one server: its limits and its own counters."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "stats": ConnectionStats()})


def descriptors_for(limits: Limits) -> Limits:
    """Raise the process's open-file limit (up to the hard limit) so ``max_connections`` fit; when they cannot,
    lower the cap to what fits and say so."""
    cap = limits.max_connections
    try:
        import resource
    except ImportError:  # not POSIX: the operating system's own limits apply
        return limits
    if cap is None:
        return limits
    need = cap + FD_MARGIN
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            target = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    except (ValueError, OSError):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < need:
        fits = max(16, soft - FD_MARGIN)
        log.warning(
            "max_connections %d does not fit the open-file limit %d (ulimit -n); using %d", cap, soft, fits
        )
        return replace(limits, max_connections=fits)
    return limits
