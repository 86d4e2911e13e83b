"""The HTTP face of a :class:`~mlo.serve.prompt_service.PromptService`: an OpenAI-compatible chat endpoint.

``POST /v1/chat/completions`` → a ``chat.completion`` (headers ``X-MLO-Route``, ``X-MLO-Prompt``,
``X-MLO-Guardrail``); a blocked request is answered 200 with the policy's message and ``finish_reason``
``"content_filter"``, as OpenAI does
``"stream": true``              → server-sent ``chat.completion.chunk`` events, the output guardrail releasing the
                                 answer a sentence at a time (:mod:`.prompt_stream` says what a client sees)
``GET /v1/models``             → the prompt served, as a model list
``GET /health``, ``GET /metadata``

Errors are OpenAI's shape, ``{"error": {"message": "<one line>", "type": …}}``: 400 (a body that is not a chat
request, a missing variable), 401/403 (token), 413 (too large), 429 (a spent budget), 502 (the backend failed).
The door (tokens, body limits, concurrency) is the model server's :class:`~mlo.serve.guard.Guard`.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .app import _json_body, json_response
from .auth import Auth
from .guard import Guard
from .inputs import RequestError, one_line
from .limits import Limits
from .prompt_service import PromptService

log = logging.getLogger("mlo.serve")

_ENDPOINTS = "POST /v1/chat/completions, GET /v1/models, GET /health, GET /metadata"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = "invalid_request_error" if status < 500 else "backend_error"
    return json_response({"error": {"message": message, "type": kind, "code": status}}, status, headers)


def create_prompt_app(
    service: PromptService,
    *,
    auth: Auth | None = None,
    limits: Limits | None = None,
    route_key: str | None = None,
) -> Guard:
    auth = Auth.coerce(auth)
    limits = Limits.coerce(limits)
    key_header = route_key.lower() if route_key else None

    async def completions(request: Request) -> Response:
        try:
            body = await _json_body(request, limits)
        except RequestError as exc:
            service.refused()
            return _error(exc.status, exc.message)
        key = request.headers.get(key_header) if key_header else None
        if isinstance(body, dict) and body.get("stream"):
            return await _streamed(body, key)
        try:
            doc, headers = await run_in_threadpool(service.chat, body, key=key)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except Exception as exc:  # a bug of ours: one line, and the server keeps serving
            log.exception("chat failed")
            return _error(500, f"internal error: {type(exc).__name__}: {one_line(exc)}")
        return json_response(doc, headers=headers)

    async def _streamed(body: dict, key: str | None) -> Response:
        """The stream runs in a thread of its own (its trace opens and closes there); events reach the client
        through a queue, and a client that leaves makes the next ``emit`` return False."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        left = threading.Event()

        def emit(item) -> bool:
            if left.is_set():
                return False
            loop.call_soon_threadsafe(queue.put_nowait, item)
            return True

        def work() -> None:
            try:
                service.stream(body, emit, key=key)
            except RequestError as exc:
                emit(exc)
            except Exception as exc:  # a bug of ours: one line, and the server keeps serving
                log.exception("stream failed")
                emit(RequestError(500, f"internal error: {type(exc).__name__}: {one_line(exc)}"))
            finally:
                emit(None)

        threading.Thread(target=work, name="mlo-serve-stream", daemon=True).start()
        first = await queue.get()
        if first is None or isinstance(first, RequestError):
            if first is None:
                first = RequestError(500, "internal error: the stream ended before it began")
            return _error(first.status, first.message)

        async def events():
            try:
                while True:
                    item = await queue.get()
                    if item is None or isinstance(item, RequestError):
                        break
                    yield item
            finally:
                left.set()

        return StreamingResponse(events(), media_type="text/event-stream", headers=first)

    async def models(request: Request) -> Response:
        served = [s.current.ref for s in service.slots]
        return json_response({"object": "list", "data": [{"id": r, "object": "model"} for r in served]})

    async def health(request: Request) -> Response:
        if auth.enabled and request.scope.get("state", {}).get("mlo_scopes") is None:
            return json_response({"status": "ok"})
        return json_response(service.health())

    async def metadata(request: Request) -> Response:
        return json_response({**service.metadata(), "auth": auth.enabled, "limits": limits.to_dict()})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return _error(404, f"no endpoint {request.url.path}: use {_ENDPOINTS}")
        if status == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}: use {_ENDPOINTS}")
        return _error(status, one_line(getattr(exc, "detail", exc)))

    routes = [
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return Guard(app, auth, limits)
