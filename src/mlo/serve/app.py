"""The HTTP face of a :class:`~mlo.serve.service.Service`: a small Starlette app.

``POST /predict``  → ``{"predictions", "ids", "model", "version", "route"}``, header ``X-MLO-Route``
``POST /labels``   → ``{"labeled": n}`` for ``{"ids": [...], "labels": [...]}``
``GET /health``    → ``{"status": "ok", ...}``
``GET /metadata``  → what is served: versions, signatures, canary share

Errors are ``{"error": "<one line>"}`` with 400 (a body that is not JSON or not a table, or nested too deeply),
401/403 (no valid token, or one without the scope), 408 (a body too slow), 409 (a label sent twice), 413 (a body
or a request too large), 422 (input that does not fit the signature), 500 (the model raised), 503 (too many
requests in progress), 404/405 (no such endpoint). Client errors (4xx) are never logged as predictions.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Auth
from .guard import Guard
from .inputs import RequestError, one_line
from .limits import Limits, json_depth_exceeds
from .service import Service

if TYPE_CHECKING:
    from .connections import ConnectionStats

log = logging.getLogger("mlo.serve")

_ENDPOINTS = "POST /predict, POST /labels, GET /health, GET /metadata"


def _default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def render(doc: Any) -> bytes:
    """JSON bytes; NaN and infinities (which JSON cannot carry) become null."""
    try:
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:
        text = json.dumps(_finite(doc), separators=(",", ":"), allow_nan=False, default=_default)
    return text.encode()


_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    headers = _NOSNIFF if headers is None else {**_NOSNIFF, **headers}
    return Response(render(doc), status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


PARSE_IN_THREAD = 64 * 1024  # larger bodies are decoded in a worker thread, so /health stays quick meanwhile


def _decode(raw: bytes, max_depth: int | None) -> Any:
    if max_depth is not None and json_depth_exceeds(raw, max_depth):
        raise RequestError(400, f"the JSON nests deeper than {max_depth} levels (the server's max_depth)")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({one_line(exc)})") from None
    except RecursionError:
        raise RequestError(400, "the JSON nests too deeply to read") from None


async def _json_body(request: Request, limits: Limits) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise RequestError(400, 'empty body: send JSON, e.g. {"records": [{"age": 31}]}')
    if len(raw) > PARSE_IN_THREAD:
        return await run_in_threadpool(_decode, raw, limits.max_depth)
    return _decode(raw, limits.max_depth)


def create_app(
    service: Service,
    *,
    auth: Auth | None = None,
    limits: Limits | None = None,
    route_key: str | None = None,
    connections: ConnectionStats | None = None,
) -> Guard:
    """The ASGI app serving ``service`` behind its :class:`~mlo.serve.guard.Guard` (it does not own the service:
    whoever made it closes it).

    Parameters
    ----------
    auth : Auth, optional
        The tokens it accepts; default from ``MLO_SERVE_TOKEN`` (none: open).
    limits : Limits, optional
        Body, nesting, rows, concurrency and timeouts; default :class:`Limits()`.
    route_key : str, optional
        A request header whose value (a user or session id) picks the canary side by its hash, so one entity
        always lands on the same side. Off by default: clients never choose a route.
    """
    auth = Auth.coerce(auth)
    limits = Limits.coerce(limits)
    key_header = route_key.lower() if route_key else None

    async def predict(request: Request) -> Response:
        try:
            body = await _json_body(request, limits)
        except RequestError as exc:
            service.refused()
            return error_response(exc.status, exc.message)
        try:
            key = request.headers.get(key_header) if key_header else None
            # the model runs in a worker thread, so a slow model does not stall /health or other requests
            result = await run_in_threadpool(service.predict, body, key=key, max_rows=limits.max_rows)
        except RequestError as exc:
            if exc.status >= 500:  # the model raised: the 500 answer and the prediction log both say so
                log.warning("predict failed: %s", exc.message)
            dep = exc.deployment
            headers = (
                {"X-MLO-Route": dep.route, "X-MLO-Version": str(dep.number)} if dep is not None else None
            )
            return error_response(exc.status, exc.message, headers)
        except Exception as exc:  # a bug of ours: still one line, and the server keeps serving
            log.exception("predict failed")
            return error_response(500, f"internal error: {type(exc).__name__}: {one_line(exc)}")
        return json_response(
            result, headers={"X-MLO-Route": result["route"], "X-MLO-Version": str(result["version"])}
        )

    async def labels(request: Request) -> Response:
        try:
            body = await _json_body(request, limits)
            result = await run_in_threadpool(service.labels, body, max_rows=limits.max_rows)
        except RequestError as exc:
            return error_response(exc.status, exc.message)
        except Exception as exc:
            log.exception("labels failed")
            return error_response(500, f"internal error: {type(exc).__name__}: {one_line(exc)}")
        return json_response(result)

    async def health(request: Request) -> Response:
        if auth.enabled and request.scope.get("state", {}).get("mlo_scopes") is None:
            return json_response({"status": "ok"})  # details only to a token holder
        doc = service.health()
        doc["refused"] = dict(guard.stats)
        if connections is not None:
            doc["connections"] = connections.to_dict()
        return json_response(doc)

    async def metadata(request: Request) -> Response:
        doc = service.metadata()
        doc["auth"] = auth.enabled
        doc["route_key"] = route_key
        doc["limits"] = limits.to_dict()
        return json_response(doc)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return error_response(404, f"no endpoint {request.url.path}: use {_ENDPOINTS}")
        if status == 405:
            return error_response(
                405, f"{request.method} is not allowed on {request.url.path}: use {_ENDPOINTS}"
            )
        return error_response(status, one_line(getattr(exc, "detail", exc)))

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/labels", labels, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    guard = Guard(app, auth, limits)
    return guard
