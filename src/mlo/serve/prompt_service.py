"""Serving a prompt version as an OpenAI-compatible chat endpoint: ``mlo serve prompt:support@production --backend
URL``. The core, free of any web framework (:mod:`.prompt_app` puts HTTP in front of it).

A request (``POST /v1/chat/completions``) is answered by the prompt version its alias points at now (followed
like a model's alias, with the same canary split): the prompt is rendered with the request's ``variables`` (an
``extra_body`` field) — or, for a prompt with one variable, with the last user message — the guardrail policy
checks the input (block, redact, flag), the backend is called through :func:`mlo.llm.chat` (so the call is
traced, priced and attributed to the prompt version), and the policy checks the output. Each request is one
trace (``serve <name>``) holding the route, the prompt version, every guardrail decision with its evidence, and
whether the answer was a refusal: what ``mlo.llm.monitor`` reads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .. import workspace
from ..errors import InvalidInput, MloError
from .following import AliasFollower
from .inputs import RequestError
from .routing import CanarySpec, Router

log = logging.getLogger("mlo.serve")

PASSED_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)
MAX_MESSAGES = 256


def worst(a: str, b: str) -> str:
    """The more severe of two guardrail actions."""
    order = ("pass", "flag", "redact", "block")
    return a if order.index(a) >= order.index(b) else b


def _split(ref: str) -> tuple[str, str | None]:
    """``support@production`` → (support, production); ``support/3`` → (support, None)."""
    ref = ref.strip().removeprefix("prompt:").removeprefix("prompts:/")
    if "@" in ref:
        name, _, sel = ref.partition("@")
        return name, (None if sel.startswith("v") and sel[1:].isdigit() else sel)
    return ref.partition("/")[0], None


class PromptSlot:
    """A prompt reference served on one route, following its alias."""

    def __init__(self, ws, route: str, ref: str):
        from ..llm.prompts import load_prompt

        self.ws = ws
        self.route = route
        self.name, self.selector = _split(ref)
        self.current = load_prompt(ref.strip().removeprefix("prompt:"))
        self.swaps: list[dict[str, Any]] = []

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.selector}" if self.selector else self.current.ref

    def refresh(self) -> bool:
        if self.selector is None:
            return False
        if self.selector == "latest":
            target = self.ws.models.latest_version(self.name).version
        else:
            target = self.ws.models.alias_version(self.name, self.selector)
        if target is None or target == self.current.version:
            return False
        from ..llm.prompts import load_prompt

        old = self.current
        self.current = load_prompt(f"{self.name}/{target}")  # one attribute: a request reads it once
        self.swaps.append({"at": time.time(), "from": old.version, "to": target, "route": self.route})
        log.info("%s: prompt %s@%s v%s -> v%s", self.route, self.name, self.selector, old.version, target)
        return True

    def describe(self) -> dict[str, Any]:
        return {"route": self.route, "ref": self.ref, "prompt": self.current.ref, "swaps": list(self.swaps)}


class PromptService:
    """Everything a prompt server does except HTTP.

    Parameters
    ----------
    ref : str
        ``"support@production"`` follows the alias; ``"support/3"`` pins a version.
    backend : str
        The OpenAI-compatible endpoint that answers (``http://127.0.0.1:8080/v1``).
    canary : str, optional
        ``"support@candidate:10"``: that share of requests (percent) goes to this prompt reference.
    guardrails : str, dict or Guardrails, optional
        The guardrail policy (a name in ``mlo.toml``'s ``[guardrails]``).
    model, api_key : str, optional
        The backend's model when the prompt names none; its key (default ``OPENAI_API_KEY``).
    poll : float
        Seconds between reads of the aliases (0: never).
    seed : int, optional
        Seed of the canary's draws.
    """

    def __init__(
        self,
        ref: str,
        *,
        backend: str,
        canary: Any = None,
        guardrails: Any = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        poll: float = 1.0,
        seed: int | None = None,
    ):
        from ..llm.guardrails import policy

        if not isinstance(backend, str) or not backend.startswith(("http://", "https://")):
            raise InvalidInput(
                f"--backend must be an http(s) URL of an OpenAI-compatible endpoint, got {backend!r}"
            )
        self.ws = workspace.current(create=False)
        self.backend = backend.rstrip("/")
        self.guard = policy(guardrails)
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.spec = CanarySpec.parse(canary.removeprefix("prompt:")) if canary is not None else None
        self.stable = PromptSlot(self.ws, "stable", ref)
        self.canary = PromptSlot(self.ws, "canary", self.spec.ref) if self.spec else None
        self.router = Router(self.spec.percent if self.spec else 0.0, seed)
        self.poll = float(poll or 0)
        self.started = time.time()
        self.stats = {"requests": 0, "errors": 0, "rejected": 0, "blocked": 0}
        self._lock = threading.Lock()
        self.logger = None  # the request log is the traces
        self._follower = AliasFollower(lambda: self.slots, self.poll, "mlo-serve-prompt-watch")
        self._follower.start(any(s.selector for s in self.slots))

    @property
    def slots(self) -> list[PromptSlot]:
        return [self.stable] + ([self.canary] if self.canary is not None else [])

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def refused(self) -> None:
        self._count("requests")
        self._count("rejected")

    # -- a request -------------------------------------------------------------------------------------------
    def _parse(self, body: Any) -> tuple[list[dict], dict[str, Any], dict[str, Any]]:
        if not isinstance(body, dict):
            raise RequestError(
                400, 'the body must be a JSON object like {"messages": [{"role": "user", ...}]}'
            )
        stream_options = body.get("stream_options")
        if stream_options is not None and not isinstance(stream_options, dict):
            raise RequestError(400, 'stream_options must be an object like {"include_usage": true}')
        messages = body.get("messages", [])
        if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
            raise RequestError(400, f"messages must be a list of at most {MAX_MESSAGES} messages")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise RequestError(
                    400, f"messages[{i}] must be {{'role': 'system'|'user'|'assistant', 'content': …}}"
                )
            if not isinstance(m.get("content"), str):
                raise RequestError(400, f"messages[{i}].content must be text")
        variables = body.get("variables", {})
        if not isinstance(variables, dict) or not all(
            isinstance(v, (str, int, float)) for v in variables.values()
        ):
            raise RequestError(400, "variables must be an object of text values")
        params = {k: body[k] for k in PASSED_PARAMS if body.get(k) is not None}
        return [dict(m) for m in messages], {str(k): str(v) for k, v in variables.items()}, params

    def _route(self, key: str | None, route: str | None) -> PromptSlot:
        if route:
            return self.canary if route == "canary" else self.stable
        if self.canary is not None and self.router.choose(key) == "canary":
            return self.canary
        return self.stable

    def _inputs(self, span, body, prompt, messages, variables, params, headers):
        """The request's variables resolved and the input guardrail applied (before anything is sent): returns
        (variables, model, blocked). Raises :class:`RequestError` for a missing variable."""
        span.set_attributes({"mlo.serve.prompt": prompt.ref})
        if not variables and len(prompt.variables) == 1 and messages and messages[-1]["role"] == "user":
            variables = {prompt.variables[0]: messages.pop()["content"]}
        missing = [v for v in prompt.variables if v not in variables]
        if missing:
            self._count("rejected")
            span.set_attribute("mlo.serve.status", 400)
            raise RequestError(
                400,
                f'prompt {prompt.ref} needs {", ".join(missing)}: send them as "variables" '
                "(extra_body={'variables': {...}})",
            )
        model = prompt.model or body.get("model") or self.model
        if self.guard is not None:
            texts = list(variables.values()) + [m["content"] for m in messages if m["role"] == "user"]
            d = self.guard.check_request(texts, model=model, max_tokens=params.get("max_tokens"))
            headers["X-MLO-Guardrail"] = d.action
            if d.blocked:
                self._count("blocked")
                return variables, model, True
            it = iter(d.texts)
            variables = {k: next(it) for k in variables}
            for m in messages:
                if m["role"] == "user":
                    m["content"] = next(it)
            capped = self.guard.cap_tokens(params.get("max_tokens"))
            if capped is not None:
                params["max_tokens"] = capped
        span.set_inputs(variables)  # as sent: after redaction
        return variables, model, False

    def chat(
        self, body: Any, *, key: str | None = None, route: str | None = None
    ) -> tuple[dict, dict[str, str]]:
        """Answer one chat request; returns (the completion document, response headers) or raises
        :class:`RequestError`."""
        from ..llm import tracing
        from ..llm.client import chat
        from ..llm.safety import find_refusal

        self._count("requests")
        try:
            messages, variables, params = self._parse(body)
            if body.get("stream"):
                raise RequestError(400, "stream=true is answered by stream(), not chat()")
        except RequestError:
            self._count("rejected")
            raise
        slot = self._route(key, route)
        prompt = slot.current
        headers = {"X-MLO-Route": slot.route, "X-MLO-Prompt": prompt.ref}
        with tracing.trace(f"serve {slot.name}", kind="chain") as span:
            span.set_attributes({"mlo.serve.route": slot.route})
            variables, model, blocked = self._inputs(span, body, prompt, messages, variables, params, headers)
            if blocked:
                return self._completion(self.guard.message, model, prompt, "content_filter", None), headers
            try:
                reply = chat(
                    messages or None,
                    prompt=prompt,
                    variables=variables,
                    model=model,
                    base_url=self.backend,
                    api_key=self.api_key,
                    timeout=self.timeout,
                    errors="return",
                    **params,
                )
            except MloError as exc:  # a budget spent, a prompt that cannot render: the client's 4xx
                self._count("rejected")
                raise RequestError(400 if isinstance(exc, InvalidInput) else 429, str(exc)) from None
            if not reply.ok:
                self._count("errors")
                span.record_error(reply.error or "the backend failed")
                raise RequestError(502, f"the backend failed: {reply.error}")
            text, finish = reply.text or "", reply.finish_reason or "stop"
            if self.guard is not None:
                out = self.guard.check(text, "output")
                headers["X-MLO-Guardrail"] = worst(headers.get("X-MLO-Guardrail", "pass"), out.action)
                if out.blocked:
                    self._count("blocked")
                    finish = "content_filter"
                text = out.text
            span.set_attributes(
                {"mlo.serve.refusal": bool(find_refusal(text)), "mlo.serve.output_chars": len(text)}
            )
            span.set_outputs({"text": text})
            return self._completion(text, reply.model or model, prompt, finish, reply.usage), headers

    def stream(self, body: Any, emit, *, key: str | None = None, route: str | None = None) -> None:
        """Answer one ``stream: true`` request as server-sent events (see :mod:`.prompt_stream`).

        ``emit(item)`` is called first with the response headers (a dict) once the input guardrail passed and
        the backend answered, then with each event's bytes; it returns False when the client went away, which
        ends the stream. A failure before the headers raises :class:`RequestError` (a plain JSON error).
        """
        from .prompt_stream import relay

        self._count("requests")
        try:
            messages, variables, params = self._parse(body)
        except RequestError:
            self._count("rejected")
            raise
        slot = self._route(key, route)
        relay(self, slot, body, messages, variables, params, emit)

    @staticmethod
    def _completion(text: str, model: str | None, prompt, finish: str, usage) -> dict[str, Any]:
        from ..store.ids import new_id

        u = usage.to_dict() if usage is not None else {}
        return {
            "id": f"chatcmpl-{new_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "prompt": prompt.ref,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": u.get("input") or 0,
                "completion_tokens": u.get("output") or 0,
                "total_tokens": (u.get("input") or 0) + (u.get("output") or 0),
            },
        }

    # -- state -----------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out = {
            "status": "ok",
            "prompt": self.stable.current.ref,
            "uptime_s": round(time.time() - self.started, 3),
            **self.stats,
        }
        if self.canary is not None:
            out["canary"] = self.canary.current.ref
        return out

    def metadata(self) -> dict[str, Any]:
        return {
            "prompt": self.stable.describe(),
            "canary": None
            if self.canary is None
            else {**self.canary.describe(), "percent": self.spec.percent},
            "backend": self.backend,
            "guardrails": self.guard.to_dict() if self.guard is not None else None,
            "poll_s": self.poll,
        }

    def refresh(self) -> bool:
        """Check every followed alias now; True when a version was swapped."""
        return self._follower.refresh()

    def close(self) -> None:
        self._follower.stop()

    def describe(self) -> str:
        text = f"prompt {self.stable.ref} ({self.stable.current.ref}) via {self.backend}"
        if self.canary is not None and self.spec is not None:
            text += f" + canary {self.canary.ref} ({self.canary.current.ref}) {self.spec.percent:g}%"
        return text
