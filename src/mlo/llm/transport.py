"""Where LLM calls are caught: the HTTP transport of ``httpx`` (openai 1.x) and ``httpx2`` (openai 3.x).

:func:`install` wraps ``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request`` of
whichever of the two is installed, once per process. Every request passes through a cheap check
(:func:`mlo.llm.calls.wanted`); a traced one becomes an :class:`~mlo.llm.calls.LLMCall` whose response body is
teed as the client reads it (a stream chunk by chunk, as it arrives), or is answered from the record when a replay
is on. Working at this level catches every call of every client — created before or after ``autolog()``, sync or
async, streamed or not, chat, completions, embeddings, responses — and lets a replay hand the client the very
bytes it once received, so whatever the client builds from them is identical.
"""

from __future__ import annotations

import importlib
import logging
import threading

from . import calls, limits, record

log = logging.getLogger("mlo")

_installed: dict[str, tuple] = {}
_lock = threading.Lock()


def install() -> list[str]:
    """Wrap the transports of the HTTP libraries present (idempotent); the names of those wrapped."""
    with _lock:
        for name in ("httpx", "httpx2"):
            if name in _installed:
                continue
            try:
                hx = importlib.import_module(name)
            except ImportError:
                continue
            _installed[name] = _wrap(hx)
        return sorted(_installed)


def uninstall() -> None:
    """Put the original transports back (tests)."""
    with _lock:
        for name, (hx, sync_orig, async_orig) in list(_installed.items()):
            hx.HTTPTransport.handle_request = sync_orig
            hx.AsyncHTTPTransport.handle_async_request = async_orig
            del _installed[name]


def _begin(request):
    try:
        return calls.LLMCall(request)
    except Exception as exc:  # a store that cannot be opened: the call goes on untraced
        log.warning("mlo: this LLM call is not traced: %s", exc)
        return None


def _replayed(hx, call, request, tee):
    """The recorded response to ``call`` when a replay is on (a 404 the client does not retry when there is
    none), else None."""
    rp = record.active()
    if rp is None:
        return None
    call.span.attributes["mlo.replayed"] = True
    call.span.request_key = None  # an answer from the record is not a record of its own
    call.span.attributes["mlo.request_key"] = call.key
    recorded = rp.answer(call.key)
    if recorded is None:
        if not rp.strict:
            call.span.attributes["mlo.replayed"] = False
            call.span.request_key = call.key
            return None
        import json

        message = rp.miss_message(call.body)
        body = json.dumps(
            {"error": {"message": message, "type": "replay_miss", "code": "replay_miss"}}
        ).encode()
        headers = {"content-type": "application/json", "x-should-retry": "false"}
        status = 404
    else:
        body, headers, status = recorded["body"], recorded["headers"], recorded["status"]
        call.span.attributes["mlo.replayed_from"] = recorded["span"]
    call.received(status, headers)
    return hx.Response(status, headers=headers, stream=tee(hx.ByteStream(body), call), request=request)


def _wrap(hx):
    sync_original = hx.HTTPTransport.handle_request
    async_original = hx.AsyncHTTPTransport.handle_async_request

    class SyncTee(hx.SyncByteStream):
        def __init__(self, inner, call):
            self.inner, self.call = inner, call

        def __iter__(self):
            try:
                for chunk in self.inner:
                    self.call.chunk(chunk)
                    yield chunk
            except BaseException as exc:
                self.call.fail(exc)
                raise
            self.call.complete()

        def close(self):
            try:
                close = getattr(self.inner, "close", None)
                if close is not None:
                    close()
            finally:
                self.call.complete(cut_short=True)

    class AsyncTee(hx.AsyncByteStream):
        def __init__(self, inner, call):
            self.inner, self.call = inner, call

        async def __aiter__(self):
            try:
                async for chunk in self.inner:
                    self.call.chunk(chunk)
                    yield chunk
            except BaseException as exc:
                self.call.fail(exc)
                raise
            self.call.complete()

        async def aclose(self):
            try:
                close = getattr(self.inner, "aclose", None)
                if close is not None:
                    await close()
            finally:
                self.call.complete(cut_short=True)

    def handle_request(self, request):
        if not calls.wanted(request):
            return sync_original(self, request)
        call = _begin(request)
        if call is None:
            return sync_original(self, request)
        try:
            answer = _replayed(hx, call, request, SyncTee)
            if answer is not None:
                return answer
            limiter = limits.limiter_for(call.endpoint)
            if limiter is not None:
                call.span.attributes["mlo.rate_limit_wait_s"] = round(limiter.acquire(), 4)
            response = sync_original(self, request)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.received(response.status_code, response.headers)
        response.stream = SyncTee(response.stream, call)
        return response

    async def handle_async_request(self, request):
        if not calls.wanted(request):
            return await async_original(self, request)
        call = _begin(request)
        if call is None:
            return await async_original(self, request)
        try:
            answer = _replayed(hx, call, request, AsyncTee)
            if answer is not None:
                return answer
            limiter = limits.limiter_for(call.endpoint)
            if limiter is not None:
                call.span.attributes["mlo.rate_limit_wait_s"] = round(await limiter.aacquire(), 4)
            response = await async_original(self, request)
        except BaseException as exc:
            call.fail(exc)
            raise
        call.received(response.status_code, response.headers)
        response.stream = AsyncTee(response.stream, call)
        return response

    hx.HTTPTransport.handle_request = handle_request
    hx.AsyncHTTPTransport.handle_async_request = handle_async_request
    return hx, sync_original, async_original
