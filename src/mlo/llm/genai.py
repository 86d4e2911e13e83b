"""What an OpenAI-compatible request and its answer say, as OpenTelemetry GenAI semantic-convention attributes.

Reads the JSON bodies of ``/chat/completions``, ``/completions``, ``/embeddings`` and ``/responses`` as sent and
received (a streamed answer is the server-sent events it was made of) and gives the span attributes
(``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, …), the usage with cached and reasoning tokens kept
apart, and the text of the answer. Nothing here talks to a network or a store.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

# path suffix -> gen_ai.operation.name
OPERATIONS = {
    "/chat/completions": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
    "/responses": "chat",
}

_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


def operation(path: str) -> str | None:
    """The GenAI operation of an endpoint path (``/v1/chat/completions`` → ``chat``), or None."""
    for suffix, op in OPERATIONS.items():
        if path.endswith(suffix):
            return op
    return None


@dataclass
class Usage:
    """Tokens of one call. ``input`` counts every prompt token, ``cached`` those of them read from the server's
    prompt cache (priced apart); ``output`` counts every generated token, ``reasoning`` those of them spent
    thinking (billed as output)."""

    input: int | None = None
    output: int | None = None
    cached: int | None = None
    reasoning: int | None = None

    @property
    def total(self) -> int | None:
        if self.input is None and self.output is None:
            return None
        return (self.input or 0) + (self.output or 0)

    def to_dict(self) -> dict[str, int | None]:
        return {
            "input": self.input,
            "output": self.output,
            "cached": self.cached,
            "reasoning": self.reasoning,
        }


@dataclass
class Answer:
    """What a response body held: text, usage, attributes, and an error when it could not be read."""

    text: str | None = None
    usage: Usage = field(default_factory=Usage)
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the body is not what an OpenAI-compatible endpoint answers


def request_attributes(path: str, body: Any, server: tuple[str, int | None] | None = None) -> dict[str, Any]:
    """The ``gen_ai.request.*`` attributes of a request body (a decoded JSON object)."""
    op = operation(path) or "chat"
    attrs: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.provider.name": "openai"}
    if server is not None:
        attrs["server.address"] = server[0]
        if server[1] is not None:
            attrs["server.port"] = server[1]
    if not isinstance(body, dict):
        return attrs
    if isinstance(body.get("model"), str):
        attrs["gen_ai.request.model"] = body["model"]
    for key, name in _REQUEST_PARAMS.items():
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[name] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list):
        attrs["gen_ai.request.stop_sequences"] = [s for s in stop if isinstance(s, str)]
    if body.get("stream") is True:
        attrs["mlo.stream"] = True
    if isinstance(body.get("tools"), list):
        attrs["mlo.request.tools"] = len(body["tools"])
    return attrs


def prompt_texts(body: Any) -> list[str]:
    """The texts a request sends (message contents, a completion prompt, embedding inputs), in order."""
    if not isinstance(body, dict):
        return []
    out: list[str] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            out.extend(_content_texts(message.get("content")))
    for key in ("prompt", "input", "instructions"):
        value = body.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    out.append(item)
                elif isinstance(item, dict):
                    out.extend(_content_texts(item.get("content")))
    return out


def _content_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def decode_body(raw: bytes, encoding: str | None) -> bytes:
    """The body as the server meant it, undoing a ``Content-Encoding`` (gzip, deflate; br when brotli is there)."""
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return raw
    if enc in ("gzip", "x-gzip"):
        return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    if enc == "deflate":
        try:
            return zlib.decompress(raw)
        except zlib.error:
            return zlib.decompress(raw, -zlib.MAX_WBITS)
    if enc == "br":
        import brotli  # type: ignore[import-not-found]

        return brotli.decompress(raw)
    raise ValueError(f"unknown content encoding {encoding!r}")


def sse_events(text: str) -> list[Any]:
    """The JSON payloads of a server-sent event stream, in order (``[DONE]`` ends it). Raises ValueError on a
    ``data:`` line that is not JSON."""
    return _sse(text)[0]


def _sse(text: str) -> tuple[list[Any], bool]:
    """The payloads and whether the stream said ``[DONE]``."""
    events: list[Any] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        if data.strip() == "[DONE]":
            return events, True
        events.append(json.loads(data))
    return events, False


def read_answer(path: str, raw: bytes, *, content_type: str | None, encoding: str | None = None) -> Answer:
    """Read a response body (JSON, or an event stream) into an :class:`Answer`."""
    ans = Answer()
    try:
        text = decode_body(raw, encoding).decode("utf-8")
    except Exception as exc:
        ans.error = f"the response body cannot be decoded ({type(exc).__name__}: {exc})"
        return ans
    streamed = "event-stream" in (content_type or "")
    done = True
    try:
        docs, done = _sse(text) if streamed else ([json.loads(text)], True)
    except ValueError as exc:
        head = text[:80].replace("\n", " ")
        ans.error = (
            f"the endpoint answered malformed JSON ({exc.__class__.__name__}: {exc}; body starts {head!r})"
        )
        return ans
    if streamed:
        ans.attributes["mlo.stream.events"] = len(docs)
    op = operation(path)
    pieces: list[str] = []
    finish: list[str] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("error"), (dict, str)):
            err = doc["error"]
            ans.error = err.get("message", str(err)) if isinstance(err, dict) else err
            continue
        if op == "chat" and doc.get("object", "").startswith("response"):  # the Responses API
            _responses_api(doc, ans, pieces)
            continue
        if isinstance(doc.get("id"), str):
            ans.attributes["gen_ai.response.id"] = doc["id"]
        if isinstance(doc.get("model"), str):
            ans.attributes["gen_ai.response.model"] = doc["model"]
        for choice in doc.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if choice.get("index", 0) == 0:
                piece = _choice_text(choice)
                if piece:
                    pieces.append(piece)
            if choice.get("finish_reason"):
                finish.append(str(choice["finish_reason"]))
        if isinstance(doc.get("usage"), dict):
            ans.usage = usage_of(doc["usage"])
        if op == "embeddings" and isinstance(doc.get("data"), list):
            ans.attributes["mlo.embeddings"] = len(doc["data"])
    if pieces:
        ans.text = "".join(pieces)
    if streamed and not done and not finish and ans.error is None:
        ans.error = (
            f"the stream ended after {len(docs)} events, before its last one (no finish reason, no [DONE])"
        )
    if finish:
        ans.attributes["gen_ai.response.finish_reasons"] = finish
    u = ans.usage
    for name, value in (
        ("gen_ai.usage.input_tokens", u.input),
        ("gen_ai.usage.output_tokens", u.output),
        ("gen_ai.usage.cache_read.input_tokens", u.cached),
        ("gen_ai.usage.reasoning.output_tokens", u.reasoning),
    ):
        if value is not None:
            ans.attributes[name] = value
    return ans


def _choice_text(choice: dict) -> str | None:
    for key in ("message", "delta"):
        part = choice.get(key)
        if isinstance(part, dict) and isinstance(part.get("content"), str):
            return part["content"]
    if isinstance(choice.get("text"), str):
        return choice["text"]
    return None


def _responses_api(doc: dict, ans: Answer, pieces: list[str]) -> None:
    response = doc.get("response") if isinstance(doc.get("response"), dict) else doc
    if doc.get("type") == "response.output_text.delta" and isinstance(doc.get("delta"), str):
        pieces.append(doc["delta"])
        return
    if isinstance(response.get("id"), str):
        ans.attributes["gen_ai.response.id"] = response["id"]
    if isinstance(response.get("model"), str):
        ans.attributes["gen_ai.response.model"] = response["model"]
    if isinstance(response.get("usage"), dict):
        ans.usage = usage_of(response["usage"])
    if not pieces and isinstance(response.get("output"), list):
        for item in response["output"]:
            for part in (item.get("content") or []) if isinstance(item, dict) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    pieces.append(part["text"])


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_of(usage: dict) -> Usage:
    """A :class:`Usage` from an OpenAI ``usage`` object (chat/completions or Responses API spelling)."""
    details_in = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    inp = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    out = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    if out is None and inp is not None and "total_tokens" in usage:  # embeddings: no completion
        out = 0
    cached = _int(details_in.get("cached_tokens")) if isinstance(details_in, dict) else None
    reasoning = _int(details_out.get("reasoning_tokens")) if isinstance(details_out, dict) else None
    return Usage(inp, out, cached, reasoning)
