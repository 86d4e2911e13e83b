"""The door of a model server, an ASGI middleware in front of the app: the token and its scope, the number of
requests in progress and the body's size — all checked before the app runs. (The time a body may take is
kept by the connection, :mod:`.connections`.)

The body is read here, whole and capped, and handed to the app; a body announced (``Content-Length``) larger
than the cap is refused before a byte of it is read. After a large body the freed memory goes back to the
operating system, so a server returns to its size after a large request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .auth import Auth
from .limits import TRIM_AFTER, Limits, release_memory

log = logging.getLogger("mlo.serve")

# the scope each endpoint needs ("any": any valid token); endpoints not listed need a valid token too
SCOPE_OF = {"/predict": "predict", "/labels": "labels", "/metadata": "any", "/v1/chat/completions": "predict"}
OPEN = "/health"  # answers anyone (a load balancer's check); details only to a token holder


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


async def _respond(send: Any, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}" if client else "?"


class Guard:
    """ASGI middleware: ``Guard(app, auth, limits)``. ``stats`` counts what it refused."""

    def __init__(self, app: Any, auth: Auth, limits: Limits):
        self.app = app
        self.auth = auth
        self.limits = limits
        self.in_progress = 0
        self.stats = {"unauthorized": 0, "forbidden": 0, "busy": 0, "too_large": 0}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        state = scope.setdefault("state", {})
        if self.auth.enabled:
            granted = self.auth.check(_header(scope, b"authorization"))
            state["mlo_scopes"] = granted
            if path != OPEN:
                need = SCOPE_OF.get(path, "any")
                if granted is None:
                    self.stats["unauthorized"] += 1
                    log.warning("refused a request without a valid token from %s", _client(scope))
                    await _respond(
                        send,
                        401,
                        "this server needs a token: send the header 'Authorization: Bearer <token>'",
                        {"WWW-Authenticate": 'Bearer realm="mlo"'},
                    )
                    return
                if need != "any" and need not in granted:
                    self.stats["forbidden"] += 1
                    await _respond(
                        send,
                        403,
                        f"this token may not use {path}: it needs the {need!r} scope "
                        f"(the token has {', '.join(sorted(granted)) or 'none'})",
                    )
                    return
        if path == OPEN:
            await self.app(scope, receive, send)
            return
        cap = self.limits.max_concurrency
        if cap is not None and self.in_progress >= cap:
            self.stats["busy"] += 1
            log.warning("busy: %d requests in progress, answered 503", self.in_progress)
            await _respond(
                send,
                503,
                f"the server is busy ({cap} requests in progress); retry shortly",
                {"Retry-After": "1"},
            )
            return
        self.in_progress += 1
        size = 0
        try:
            if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
                await self.app(scope, receive, send)
                return
            try:
                body = await self._body(scope, receive)
            except _TooLarge:
                self.stats["too_large"] += 1
                await _respond(
                    send,
                    413,
                    f"the body is larger than {self.limits.max_body:,} bytes (the server's max_body); "
                    "send fewer rows per request",
                    {"Connection": "close"},
                )
                return
            except _Gone:
                return
            size = len(body)
            pending = [body]  # handed over once, then not held here: the app's copy is the only one
            del body

            async def replay() -> dict:
                if pending:
                    return {"type": "http.request", "body": pending.pop(), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.in_progress -= 1
            if size >= TRIM_AFTER:
                release_memory()

    async def _body(self, scope: dict, receive: Any) -> bytes:
        cap = self.limits.max_body
        declared = _header(scope, b"content-length")
        if cap is not None and declared is not None:
            try:
                if int(declared) > cap:
                    raise _TooLarge
            except ValueError:
                pass  # h11 refuses a malformed Content-Length before the app runs
        return await self._read(receive, cap)

    @staticmethod
    async def _read(receive: Any, cap: int | None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if cap is not None and size > cap:
                    raise _TooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
