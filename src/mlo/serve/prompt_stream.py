"""Streaming a prompt's answer (``"stream": true``) through ``mlo serve prompt:NAME@ALIAS``, guardrails included.

The order of things, and what a client sees:

1. The request is parsed, the prompt rendered and the **input guardrail** applied before the first byte: a
   missing variable is a plain 400, a backend that refuses the connection or answers an error is a plain 502, and
   a blocked input is a short stream (the policy's message, ``finish_reason: "content_filter"``).
2. The backend is asked for a stream (with ``stream_options.include_usage``), through the traced ``openai``
   client: the call is a span with its time to first token, and is priced from the usage of the backend's last
   chunk (or, when a backend sends none, from tokens counted here, marked ``mlo.usage.counted``).
3. The **output guardrail holds text back and releases it a sentence at a time**: each sentence (ending in
   ``.``, ``!``, ``?`` or a newline) is checked before it is sent, so redaction happens before a byte leaves and
   nothing that a rule blocks is ever sent. When a sentence is blocked, the stream stops reading the backend and
   ends with one chunk whose content is the policy's message and whose ``finish_reason`` is
   ``"content_filter"`` — the sentences released before it stay with the client. A policy with an output
   ``json_schema`` holds the whole answer back (a schema is only true of the whole text).
4. The last chunk carries ``mlo_guardrail`` (the input and output actions) and, when asked for, ``usage``; then
   ``data: [DONE]``. A stream cut by the backend ends with an ``error`` event (``{"error": {...}}``) and no
   ``[DONE]``, as OpenAI does.

Like a whole reply, each streamed request is one ``serve <name>`` trace with every guardrail decision.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ..errors import InvalidInput, MloError
from .inputs import RequestError

_SENTENCE_END = re.compile(r"[.!?;](?=\s)|\n")


def _event(doc: Any) -> bytes:
    return b"data: " + json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


class Release:
    """Holds streamed text back and releases it a sentence at a time, each sentence checked by the output
    guardrail first (see the module's text)."""

    def __init__(self, guard):
        self.guard = guard
        self.whole = guard is not None and "json_schema" in guard.config["output"]
        self.pending = ""
        self.sent: list[str] = []
        self.decisions: list[Any] = []
        self.blocked = False

    def _check(self, text: str) -> str | None:
        """The text to send for one segment, or None when it is blocked."""
        if self.guard is None or not text:
            return text
        d = self.guard.check(text, "output", record=False)
        self.decisions.append(d)
        if d.blocked:
            self.blocked = True
            return None
        return d.text

    def feed(self, piece: str) -> str | None:
        """Take one piece of the answer; return what may be sent now ("" for nothing yet, None once blocked)."""
        self.pending += piece
        if self.guard is None:
            out, self.pending = self.pending, ""
            self.sent.append(out)
            return out
        if self.whole:
            return ""
        cut = 0
        for m in _SENTENCE_END.finditer(self.pending):
            cut = m.end()
        if not cut:
            return ""
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        out = self._check(ready)
        if out is not None:
            self.sent.append(out)
        return out

    def flush(self) -> str | None:
        """The rest, at the end of the answer."""
        ready, self.pending = self.pending, ""
        out = self._check(ready) if self.guard is not None else ready
        if out is not None:
            self.sent.append(out)
        return out

    def decision(self):
        """One decision for the whole answer: the most severe action, every finding, the time spent."""
        from ..llm.guardrails import Decision

        d = Decision("output", text="".join(self.sent), policy=self.guard.name)
        for one in self.decisions:
            d.findings.extend(one.findings)
            d.model.extend(one.model)
            d.seconds += one.seconds
            d._raise_to(one.action)
        return d


def _open(service, prompt, messages, variables, model, params):
    """The backend's stream, opened through the traced openai client."""
    import openai

    from .. import workspace
    from ..llm import calls
    from ..llm.client import _client
    from ..llm.spending import WATCH

    body = prompt.messages(**variables) + messages
    sent = {**prompt.params, **params}
    sent.pop("stream", None)
    WATCH.refuse_if_spent(workspace.current())
    import os

    key = service.api_key or os.environ.get("OPENAI_API_KEY") or "none"
    client = _client(service.backend, key, float(service.timeout or 60))
    headers = {calls.TRACE_HEADER: "1", calls.PROMPT_HEADER: prompt.ref}
    try:
        return client.chat.completions.create(
            model=model,
            messages=body,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
            **sent,
        )
    except openai.APIStatusError as exc:
        raise RequestError(502, f"the backend failed: HTTP {exc.status_code}: {str(exc)[:200]}") from None
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise RequestError(502, f"the backend failed: {type(exc).__name__}: {str(exc)[:200]}") from None


def _count_usage(span, prompt_messages: list[dict], text: str) -> None:
    """Tokens counted here for a backend that sent no usage, so the call is priced all the same."""
    if span is None or span.output_tokens is not None:
        return
    from ..llm.tokens import count_tokens

    try:
        span.input_tokens = count_tokens(prompt_messages)
        span.output_tokens = count_tokens(text) if text else 0
        span.attributes["mlo.usage.counted"] = True
    except MloError:
        pass


def relay(service, slot, body: dict, messages: list[dict], variables: dict, params: dict, emit) -> None:
    """Serve one streamed request (see the module's text); ``emit`` as in :meth:`PromptService.stream`."""
    from ..llm import tracing
    from ..llm.safety import find_refusal
    from ..store.ids import new_id
    from .prompt_service import worst

    prompt = slot.current
    headers = {"X-MLO-Route": slot.route, "X-MLO-Prompt": prompt.ref, "Cache-Control": "no-cache"}
    want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    cid = f"chatcmpl-{new_id()}"
    created = int(time.time())
    guard = service.guard

    with tracing.trace(f"serve {slot.name}", kind="chain") as span:
        span.set_attributes({"mlo.serve.route": slot.route, "mlo.serve.stream": True})
        variables, model, blocked = service._inputs(span, body, prompt, messages, variables, params, headers)

        def chunk(
            content: str | None = None, finish: str | None = None, role: bool = False, **extra
        ) -> bytes:
            delta = {} if content is None else {"content": content}
            if role:
                delta = {"role": "assistant", **delta}
            doc = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "prompt": prompt.ref,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return _event(doc)

        if blocked:
            emit(headers)
            emit(chunk(guard.message, "content_filter", mlo_guardrail={"input": "block"}))
            emit(DONE)
            return
        try:
            upstream = _open(service, prompt, messages, variables, model, params)
        except InvalidInput as exc:
            service._count("rejected")
            raise RequestError(400, str(exc)) from None
        except RequestError as exc:
            service._count("errors")
            span.record_error(exc.message)
            raise
        except MloError as exc:  # a spent budget
            service._count("rejected")
            raise RequestError(429, str(exc)) from None
        llm_span = tracing.last_llm_span()
        if emit(headers) is False:
            upstream.close()
            return
        gate = Release(guard)
        finish, usage, raw = "stop", None, []
        gone = False
        first = True
        try:
            for ev in upstream:
                if getattr(ev, "usage", None) is not None:
                    usage = ev.usage
                if not ev.choices:
                    continue
                c = ev.choices[0]
                if c.finish_reason:
                    finish = c.finish_reason
                piece = getattr(c.delta, "content", None) or ""
                if not piece:
                    continue
                raw.append(piece)
                out = gate.feed(piece)
                if out is None:
                    break
                if out:
                    if emit(chunk(out, role=first)) is False:
                        gone = True
                        break
                    first = False
        except Exception as exc:  # the backend cut the stream: an error event, no [DONE]
            service._count("errors")
            message = f"the backend's stream broke: {type(exc).__name__}: {str(exc)[:200]}"
            span.record_error(message)
            emit(_event({"error": {"message": message, "type": "backend_error", "code": 502}}))
            return
        finally:
            upstream.close()  # stops reading the backend when the answer was blocked or the client left
        if gone:
            span.set_attribute("mlo.serve.status", 499)  # the client went away
            return
        if not gate.blocked:
            rest = gate.flush()
            if rest:
                emit(chunk(rest, role=first))
        text = "".join(gate.sent)
        _count_usage(llm_span, prompt.messages(**variables) + messages, "".join(raw))
        actions = {"input": headers.get("X-MLO-Guardrail", "pass")} if guard is not None else {}
        if guard is not None:
            d = gate.decision()
            guard.record(d)
            actions["output"] = d.action
            headers["X-MLO-Guardrail"] = worst(headers.get("X-MLO-Guardrail", "pass"), d.action)
        extra: dict[str, Any] = {"mlo_guardrail": actions} if actions else {}
        if gate.blocked:
            service._count("blocked")
            emit(chunk(guard.message, "content_filter", **extra))
            text += guard.message
        else:
            emit(chunk(None, finish, **extra))
        if want_usage:
            u = usage.model_dump() if usage is not None else {}
            if not u and llm_span is not None and llm_span.output_tokens is not None:
                u = {"prompt_tokens": llm_span.input_tokens or 0, "completion_tokens": llm_span.output_tokens}
                u["total_tokens"] = u["prompt_tokens"] + u["completion_tokens"]
            emit(_event({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [], "usage": u}))  # fmt: skip
        emit(DONE)
        span.set_attributes(
            {"mlo.serve.refusal": bool(find_refusal(text)), "mlo.serve.output_chars": len(text)}
        )
        span.set_outputs({"text": text})
