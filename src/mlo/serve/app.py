"""The HTTP face of a :class:`~mlo.serve.service.Service`: a small Starlette app.

``POST /predict``  → ``{"predictions", "ids", "model", "version", "route"}``, header ``X-MLO-Route``
``POST /labels``   → ``{"labeled": n}`` for ``{"ids": [...], "labels": [...]}``
``GET /health``    → ``{"status": "ok", ...}``
``GET /metadata``  → what is served: versions, signatures, canary share

Errors are ``{"error": "<one line>"}`` with 400 (a body that is not JSON or not a table), 422 (input that does
not match the signature), 500 (the model raised), 404/405 (no such endpoint).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .service import RequestError, Service, one_line

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


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(render(doc), status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise RequestError(400, 'empty body: send JSON, e.g. {"records": [{"age": 31}]}')
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON ({one_line(exc)})") from None


def create_app(service: Service) -> Starlette:
    """The ASGI app serving ``service`` (it does not own it: whoever made the service closes it)."""

    async def predict(request: Request) -> Response:
        try:
            body = await _json_body(request)
            route = request.headers.get("x-mlo-route")
            key = request.headers.get("x-mlo-route-key")
            # the model runs in a worker thread, so a slow model does not stall /health or other requests
            result = await run_in_threadpool(service.predict, body, route=route, key=key)
        except RequestError as exc:
            if exc.status >= 500:  # the model raised: the 500 answer and the prediction log both say so
                log.info("predict failed: %s", exc.message)
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
            body = await _json_body(request)
            result = await run_in_threadpool(service.labels, body)
        except RequestError as exc:
            return error_response(exc.status, exc.message)
        return json_response(result)

    async def health(request: Request) -> Response:
        return json_response(service.health())

    async def metadata(request: Request) -> Response:
        return json_response(service.metadata())

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
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
