"""One HTTP exchange with an OpenAI-compatible endpoint, as a span: what was asked, what came back (as it came,
chunk by chunk for a stream), how long it took, and how it failed when it did.

:mod:`mlo.llm.transport` opens an :class:`LLMCall` for each request it traces and feeds it the response bytes;
the call ends its span once the body has been read to the end, or when reading it failed or stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from . import genai, rendered, tracing
from .record import request_key

log = logging.getLogger("mlo")

TRACE_HEADER = "x-mlo-trace"  # set by mlo.llm.chat: trace this request even without autolog
PROMPT_HEADER = "x-mlo-prompt"  # set by mlo.llm.chat: the prompt version the request renders
KEEP_HEADERS = ("content-type", "content-encoding")
MAX_RECORD_BYTES = 64 << 20  # a response larger than this is traced without its body

AUTOLOG = threading.Event()  # set by mlo.llm.autolog(): trace every OpenAI client's calls


def wanted(request) -> bool:
    """Whether a request is an LLM call to trace: one from the openai client (with autolog on) or from
    :func:`mlo.llm.chat`, to an endpoint mlo knows how to read."""
    headers = request.headers
    if TRACE_HEADER in headers:
        return True
    if not AUTOLOG.is_set() or request.method != "POST":
        return False
    if "x-stainless-lang" not in headers and not headers.get("user-agent", "").startswith("OpenAI/"):
        return False
    return genai.operation(request.url.path) is not None


class LLMCall:
    """A traced request and the span that records it."""

    def __init__(self, request):
        headers = request.headers
        prompt = headers.get(PROMPT_HEADER)
        for name in (TRACE_HEADER, PROMPT_HEADER):  # mlo's own headers never reach the endpoint
            if name in headers:
                del headers[name]
        self.path = request.url.path
        self.endpoint = (
            f"{request.url.host}:{request.url.port or (443 if request.url.scheme == 'https' else 80)}"
        )
        self.body = request.content if isinstance(request.content, bytes) else b""
        try:
            self.request_json: Any = json.loads(self.body) if self.body else None
        except ValueError:
            self.request_json = None
        self.key = request_key(self.path, self.body)
        op = genai.operation(self.path)
        attrs = genai.request_attributes(self.path, self.request_json, (request.url.host, request.url.port))
        model = attrs.get("gen_ai.request.model")
        self.span = tracing.open_span(
            f"{op or 'llm'} {model or ''}".strip(),
            "embedding" if op == "embeddings" else "llm",
            activate=False,
        )
        span = self.span
        span.attributes.update(attrs)
        span.model = model
        span.request_key = self.key
        retry = headers.get("x-stainless-retry-count")
        if retry and retry != "0":
            span.attributes["mlo.retry_count"] = int(retry) if retry.isdigit() else retry
        timeout = (request.extensions or {}).get("timeout")
        if isinstance(timeout, dict) and isinstance(timeout.get("read"), (int, float)):
            span.attributes["mlo.timeout_s"] = timeout["read"]
        span.prompt = prompt or rendered.prompt_of(genai.prompt_texts(self.request_json))
        tracing.note_llm_span(span)
        self.started = time.perf_counter()
        self.first_byte: float | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self._lock = threading.Lock()

    # -- feeding --------------------------------------------------------------------------------------------
    def received(self, status: int, headers) -> None:
        self.status = status
        self.headers = {k: headers[k] for k in KEEP_HEADERS if k in headers}
        self.span.attributes["http.response.status_code"] = status
        if status >= 400:
            from .limits import retry_after

            wait = retry_after(headers)
            if wait is not None:
                self.span.attributes["mlo.retry_after_s"] = round(wait, 3)

    def chunk(self, data: bytes) -> None:
        if self.first_byte is None and data:
            self.first_byte = time.perf_counter()
        self.size += len(data)
        if self.size <= MAX_RECORD_BYTES:
            self.chunks.append(bytes(data))

    # -- ending ---------------------------------------------------------------------------------------------
    def complete(self, *, cut_short: bool = False) -> None:
        """The body was read to its end (or, with ``cut_short``, the caller closed it before the end)."""
        with self._lock:
            if self.done:
                return
            self.done = True
        span = self.span
        try:
            self._finish_attributes()
            body = b"".join(self.chunks) if self.size <= MAX_RECORD_BYTES else None
            ws = span._trace.ws
            if self.body:
                span.input_blob = ws.blobs.put_bytes(self.body)
            if body is not None:
                span.output_blob = ws.blobs.put_bytes(body)
                ans = genai.read_answer(
                    self.path,
                    body,
                    content_type=self.headers.get("content-type"),
                    encoding=self.headers.get("content-encoding"),
                )
                span.attributes.update(ans.attributes)
                u = ans.usage
                span.input_tokens, span.output_tokens = u.input, u.output
                span.cached_tokens, span.reasoning_tokens = u.cached, u.reasoning
                if u.input is not None or u.output is not None:
                    from .spending import WATCH

                    WATCH.after_call(ws, span.model, u, span.start_time, span._trace.run_id)
                if ans.text is not None:
                    span.attributes["mlo.response.text"] = ans.text[:2000]
                if self.status is not None and self.status >= 400:
                    span.record_error(f"HTTP {self.status}: {ans.error or _reason(self.status)}")
                elif cut_short and (ans.error is not None or (ans.usage.output is None and ans.text is None)):
                    span.record_error(
                        f"closed by the caller after {self.size:,} bytes, before the answer ended"
                    )
                elif ans.error is not None:
                    span.record_error(ans.error)
            else:
                span.attributes["mlo.response.bytes"] = self.size
                if self.status is not None and self.status >= 400:
                    span.record_error(f"HTTP {self.status}: {_reason(self.status)}")
        except Exception as exc:  # recording never breaks the caller
            log.warning("mlo: could not record LLM call %s: %s", span.name, exc)
        span.end()

    def fail(self, exc: BaseException) -> None:
        """The exchange failed: a timeout, a refused connection, a stream cut off."""
        with self._lock:
            if self.done:
                return
            self.done = True
        span = self.span
        try:
            self._finish_attributes()
            what = type(exc).__name__
            if "Timeout" in what:
                timeout = self.span.attributes.get("mlo.timeout_s")
                message = f"{what}: no answer{f' within {timeout} s' if timeout else ''}"
            elif self.status is not None:
                message = f"{what} after {self.size:,} bytes of the answer: {str(exc)[:300] or 'the connection broke'}"
            elif isinstance(exc, KeyboardInterrupt):
                message = "interrupted"
            else:
                message = f"{what}: {str(exc)[:300]}"
            span.record_error(message)
            span.attributes["error.type"] = what
            if self.body:
                span.input_blob = span._trace.ws.blobs.put_bytes(self.body)
        except Exception as rec:
            log.warning("mlo: could not record the failed LLM call %s: %s", span.name, rec)
        span.end()

    def _finish_attributes(self) -> None:
        now = time.perf_counter()
        self.span.attributes["mlo.latency_ms"] = round((now - self.started) * 1000, 3)
        if self.first_byte is not None and self.span.attributes.get("mlo.stream"):
            self.span.attributes["mlo.time_to_first_token_ms"] = round(
                (self.first_byte - self.started) * 1000, 3
            )
        if self.headers:
            self.span.attributes["mlo.response.headers"] = self.headers


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
