"""A fake OpenAI-compatible endpoint on loopback, for tests and benchmarks: deterministic answers, no model, and
faults on demand (429 with ``Retry-After``, 5xx, slow answers that time out, malformed JSON, streams that break
off, connections dropped without an answer).

>>> with FakeEndpoint() as ep:                       # doctest: +SKIP
...     ep.fail("429", times=2, retry_after=0.1)     # the next two requests get 429
...     client = openai.OpenAI(base_url=ep.url, api_key="x")

Answers: a chat reply is ``"echo: <the last user message>"`` cut to ``max_tokens`` words; a token is a
whitespace-separated word (``/tokenize`` counts the same way); a request whose messages start with the messages
of an earlier request reports those earlier tokens as ``cached_tokens``, like a server's prompt cache.
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import InvalidInput

FAULTS = ("429", "500", "503", "timeout", "malformed", "broken_stream", "disconnect")
MAX_BODY = 1 << 20
MAX_SLEEP = 30.0


def tokens(text: str) -> list[str]:
    """The fake tokenizer: whitespace-separated words."""
    return text.split()


def _message_tokens(message: dict) -> int:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return len(tokens(content if isinstance(content, str) else "")) + 3  # role and separators


class FakeEndpoint:
    """An OpenAI-compatible HTTP server in a thread of this process. ``url`` is its ``base_url`` (ends in
    ``/v1``). Use it as a context manager, or call :meth:`close`."""

    def __init__(self, *, latency: float = 0.0, model: str = "fake-model"):
        self.latency = latency
        self.model = model
        self.stream_usage = True  # False: a backend that ignores stream_options.include_usage
        self.requests: list[dict[str, Any]] = []  # what it received: path, body, headers
        self._faults: deque[dict[str, Any]] = deque()
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mlo-fake-llm", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(self, kind: str, *, times: int = 1, retry_after: float | None = None, delay: float = 5.0,
             after_events: int = 2) -> None:  # fmt: skip
        """Answer the next ``times`` LLM requests with a fault: ``"429"`` (with ``Retry-After`` seconds when
        given), ``"500"``, ``"503"``, ``"timeout"`` (answer after ``delay`` seconds), ``"malformed"`` (200 with a
        body that is not JSON), ``"broken_stream"`` (a stream that stops after ``after_events`` events, without
        ``[DONE]``, the connection dropped), ``"disconnect"`` (no answer at all)."""
        if kind not in FAULTS:
            raise InvalidInput(f"fault must be one of {', '.join(FAULTS)}, got {kind!r}")
        with self._lock:
            for _ in range(times):
                self._faults.append(
                    {
                        "kind": kind,
                        "retry_after": retry_after,
                        "delay": min(delay, MAX_SLEEP),
                        "after": after_events,
                    }
                )

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self._prefixes.clear()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- answers ----------------------------------------------------------------------------------------------
    def _cached(self, messages: list[dict]) -> int:
        """Tokens of the longest message prefix seen before (then remember every prefix of this one)."""
        keys = []
        h = hashlib.sha256()
        for m in messages:
            h.update(json.dumps(m, sort_keys=True).encode())
            keys.append(h.hexdigest())
        cached = 0
        with self._lock:
            for i, key in enumerate(keys):
                if key in self._prefixes:
                    cached = sum(_message_tokens(m) for m in messages[: i + 1])
            self._prefixes.update(keys)
        return cached

    def chat(self, body: dict) -> tuple[str, dict, str]:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
        if not isinstance(last, str):
            last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        words = tokens(f"echo: {last}")
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if isinstance(limit, int) and limit < len(words):
            words, finish = words[:limit], "length"
        prompt = sum(_message_tokens(m) for m in messages)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
            "prompt_tokens_details": {"cached_tokens": self._cached(messages)},
        }
        return " ".join(words), usage, finish


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that hung up: not worth a traceback
        pass


def _handler(ep: FakeEndpoint):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body in separate writes must not wait for a delayed ACK

        def log_message(self, *args):  # quiet
            pass

        def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"error": {"message": message, "type": "fake_error", "code": status}}, headers)

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": ep.model, "object": "model"}]})
            elif self.path == "/health":
                self._json(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                return self._error(413, f"request body over {MAX_BODY} bytes")
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._error(400, "the request body is not JSON")
            path = self.path.split("?")[0]
            with ep._lock:
                ep.requests.append({"path": path, "body": body, "headers": dict(self.headers)})
            if path == "/tokenize":
                content = body.get("content", "") if isinstance(body, dict) else ""
                ids = [int(hashlib.sha256(t.encode()).hexdigest()[:6], 16) for t in tokens(str(content))]
                return self._json(200, {"tokens": ids})
            if not isinstance(body, dict):
                return self._error(400, "the request body must be a JSON object")
            fault = ep._next_fault() if path.endswith(("/completions", "/embeddings", "/responses")) else None
            if ep.latency:
                time.sleep(ep.latency)
            if fault is not None and self._fault(fault, body):
                return None
            if path.endswith("/chat/completions"):
                return self._chat(body, fault)
            if path.endswith("/completions"):
                prompt = str(body.get("prompt", ""))
                text = " ".join(tokens(f"echo: {prompt}")[: body.get("max_tokens") or 16])
                n_in, n_out = len(tokens(prompt)), len(tokens(text))
                return self._json(200, {
                    "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": body.get("model", ep.model),
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
                })  # fmt: skip
            if path.endswith("/embeddings"):
                inputs = body.get("input")
                inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
                data = []
                for i, text in enumerate(inputs):
                    digest = hashlib.sha256(str(text).encode()).digest()
                    data.append(
                        {"object": "embedding", "index": i, "embedding": [b / 255 for b in digest[:8]]}
                    )
                n = sum(len(tokens(str(t))) for t in inputs)
                return self._json(200, {
                    "object": "list", "data": data, "model": body.get("model", ep.model),
                    "usage": {"prompt_tokens": n, "total_tokens": n},
                })  # fmt: skip
            return self._error(404, f"no route {path}")

        def _fault(self, fault: dict, body: dict) -> bool:
            kind = fault["kind"]
            if kind in ("429", "500", "503"):
                headers = {}
                if kind == "429" and fault["retry_after"] is not None:
                    headers["Retry-After"] = f"{fault['retry_after']:g}"
                self._error(int(kind), {"429": "rate limit reached", "500": "server error", "503": "overloaded"}[kind],
                            headers)  # fmt: skip
                return True
            if kind == "timeout":
                time.sleep(fault["delay"])
                return False  # then answers, too late for a client with a shorter timeout
            if kind == "malformed":
                data = b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "unterminated'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True
            if kind == "disconnect":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return True
            return False  # broken_stream: handled while streaming

        def _chat(self, body: dict, fault: dict | None) -> None:
            text, usage, finish = ep.chat(body)
            model = body.get("model") or ep.model
            if not body.get("stream"):
                return self._json(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": finish}],
                    "usage": usage,
                })  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
            events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
            events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (body.get("stream_options") or {}).get("include_usage") and ep.stream_usage:
                events.append({**base, "choices": [], "usage": usage})
            broken = fault is not None and fault["kind"] == "broken_stream"

            def chunk(data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            try:
                for i, event in enumerate(events):
                    if broken and i >= fault["after"]:  # half a chunk, then the connection goes
                        self.wfile.write(b"40\r\ndata: {")
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return None
                    chunk(f"data: {json.dumps(event)}\n\n".encode())
                chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            return None

    return Handler
