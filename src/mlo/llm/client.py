"""The client layer: ``mlo.llm.autolog()`` traces the official ``openai`` client, and ``mlo.llm.chat(...)`` is
a thin call for notebooks with retries, backoff that honours ``Retry-After``, a timeout, a rate limit, and
failures as records (never NaN, never a hang).

Settings come from the arguments, else ``[llm]`` in ``mlo.toml``, else the environment
(``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``MLO_LLM_MODEL``)::

    [llm]
    base_url = "http://127.0.0.1:8080/v1"
    model = "SmolLM2-135M-Instruct"
    timeout = 60              # seconds per attempt
    retries = 4               # attempts after the first, on 429, 5xx, timeouts and dropped connections
    requests_per_minute = 120 # per endpoint, for every traced call
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import workspace
from ..errors import InvalidInput, MloError
from . import calls, limits, tracing
from .genai import Usage
from .record import ReplayMiss

_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


class LLMCallFailed(MloError):
    """An LLM call that failed for good: every attempt was refused, timed out or broke off."""


def _settings() -> dict[str, Any]:
    try:
        cfg = workspace.current(create=False).config.get("llm") or {}
    except MloError:
        cfg = {}
    return cfg if isinstance(cfg, dict) else {}


def autolog(*, disable: bool = False, requests_per_minute: float | None = None) -> None:
    """Trace every call of the official ``openai`` client (``OpenAI`` and ``AsyncOpenAI``, streamed or not,
    created before or after this call) to any OpenAI-compatible endpoint: a span per HTTP exchange with its
    GenAI attributes, usage, latency and outcome, the request and response bodies kept as blobs.

    Parameters
    ----------
    disable : bool
        Stop tracing (calls made through :func:`chat` are traced all the same).
    requests_per_minute : float, optional
        Pace traced calls to at most this many a minute per endpoint (also ``[llm] requests_per_minute``).
    """
    if not isinstance(disable, bool):
        raise InvalidInput(f"disable must be True or False, got {disable!r}")
    if disable:
        calls.AUTOLOG.clear()
        return
    from .transport import install

    if not install():
        raise InvalidInput("mlo.llm.autolog() needs the openai client: pip install 'mlo-workbench[llm]'")
    rpm = requests_per_minute if requests_per_minute is not None else _settings().get("requests_per_minute")
    if rpm is not None:
        limits.set_rate_limit("*", rpm)
    calls.AUTOLOG.set()


@dataclass
class Reply:
    """The answer of :func:`chat`: ``text``, ``usage``, ``cost``, and where it is recorded.

    ``ok`` is False for a failed call made with ``errors="return"``; ``error`` then says why, and ``text`` is
    None.
    """

    text: str | None
    model: str | None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    latency: float = 0.0
    attempts: int = 1
    trace_id: str | None = None
    span_id: str | None = None
    prompt: str | None = None
    replayed: bool = False
    error: str | None = None
    raw: Any = None
    started: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cost(self):
        """The price of the call (a :class:`~mlo.llm.pricing.Cost`) from the price table in force."""
        from .pricing import price_table

        return price_table().cost(self.model or "", self.usage, when=self.started)

    def to_dict(self) -> dict[str, Any]:
        c = self.cost
        return {
            "text": self.text,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "cost_usd": c.usd,
            "finish_reason": self.finish_reason,
            "latency_s": round(self.latency, 4),
            "attempts": self.attempts,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "prompt": self.prompt,
            "replayed": self.replayed,
            "error": self.error,
        }

    def __str__(self) -> str:
        return self.text if self.text is not None else f"<failed: {self.error}>"

    def _repr_html_(self) -> str:
        from .render import reply_html

        return reply_html(self)


def _client(base_url: str, api_key: str, timeout: float):
    try:
        import openai
    except ImportError:
        raise InvalidInput("mlo.llm.chat needs the openai client: pip install 'mlo-workbench[llm]'") from None
    from .transport import install

    install()
    key = (base_url, api_key, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = openai.OpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0
            )
        return client


def _messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInput(
            "messages must be a string or a non-empty list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidInput(f"messages[{i}] must be a dict with a 'role' and a 'content', got {m!r:.60}")
        out.append(dict(m))
    return out


def chat(
    messages: Any = None,
    *,
    prompt: Any = None,
    variables: dict[str, Any] | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    errors: str = "raise",
    **params: Any,
) -> Reply:
    """Ask a chat model once, traced, with retries.

    Parameters
    ----------
    messages : str or list of dict, optional
        A user message, or the whole conversation. Appended after the prompt's messages when ``prompt`` is given.
    prompt : Prompt or str, optional
        A registered prompt (``"support@production"``, ``"support/3"``) or a :class:`~mlo.llm.prompts.Prompt`,
        rendered with ``variables``; its model and params are the defaults, and its version is recorded on the
        span.
    model, base_url, api_key : str, optional
        Default: the prompt's model, ``[llm]`` in ``mlo.toml``, ``MLO_LLM_MODEL`` / ``OPENAI_BASE_URL`` /
        ``OPENAI_API_KEY``.
    timeout : float
        Seconds one attempt may take (default 60).
    retries : int
        Attempts after the first on 429, 5xx, timeouts and dropped connections (default 4).
    errors : {"raise", "return"}
        On a call that failed for good, raise :class:`LLMCallFailed` (default), or return a :class:`Reply` with
        ``ok`` False and the ``error`` — handy in a loop over many inputs.
    **params
        Passed to the endpoint: ``temperature``, ``max_tokens``, ``seed``, ``stop``, …

    Returns
    -------
    Reply
    """
    if errors not in ("raise", "return"):
        raise InvalidInput(f"errors must be 'raise' or 'return', got {errors!r}")
    cfg = _settings()
    prompt_ref = None
    body: list[dict[str, Any]] = []
    if prompt is not None:
        from .prompts import Prompt, load_prompt

        p = prompt if isinstance(prompt, Prompt) else load_prompt(prompt)
        body = p.messages(**(variables or {}))
        prompt_ref = p.ref
        model = model or p.model
        params = {**p.params, **params}
    elif variables is not None:
        raise InvalidInput("variables= fills a prompt: pass prompt= too")
    if messages is not None:
        body += _messages(messages)
    if not body:
        raise InvalidInput("chat needs messages= or prompt=")
    model = model or cfg.get("model") or os.environ.get("MLO_LLM_MODEL")
    if not model:
        raise InvalidInput("no model: pass model=, or set [llm] model in mlo.toml or MLO_LLM_MODEL")
    base_url = base_url or cfg.get("base_url") or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise InvalidInput(
            "no endpoint: pass base_url=, or set [llm] base_url in mlo.toml or OPENAI_BASE_URL"
        )
    api_key = api_key or os.environ.get(cfg.get("api_key_env") or "OPENAI_API_KEY") or "none"
    timeout = float(timeout if timeout is not None else cfg.get("timeout", 60))
    if timeout <= 0:
        raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}")
    policy = limits.Backoff(retries=retries if retries is not None else int(cfg.get("retries", 4)))
    if cfg.get("requests_per_minute") is not None and limits.limiter_for("*") is None:
        limits.set_rate_limit("*", cfg["requests_per_minute"])
    if params.get("stream"):
        raise InvalidInput(
            "chat answers whole replies; for a stream use the openai client after mlo.llm.autolog()"
        )
    from .spending import WATCH

    WATCH.refuse_if_spent(workspace.current())
    client = _client(base_url, api_key, timeout)
    headers = {calls.TRACE_HEADER: "1"}
    if prompt_ref:
        headers[calls.PROMPT_HEADER] = prompt_ref
    return _call(client, model, body, params, headers, policy, errors, prompt_ref)


def _call(client, model, body, params, headers, policy: limits.Backoff, errors: str, prompt_ref) -> Reply:
    import openai

    started_wall = time.time()
    started = time.monotonic()
    attempt = 0
    last_error = ""
    while True:
        try:
            completion = client.chat.completions.create(
                model=model, messages=body, extra_headers=dict(headers), **params
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            detail = _error_message(exc)
            if status == 404 and "replay_miss" in str(getattr(exc, "code", "") or detail):
                raise ReplayMiss(detail) from None
            last_error = f"HTTP {status}: {detail}"
            wait = limits.retry_after(exc.response.headers) if exc.response is not None else None
            retryable = status in limits.RETRY_STATUSES
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            last_error = (
                f"no answer within {client.timeout} s"
                if isinstance(exc, openai.APITimeoutError)
                else f"connection failed ({_cause(exc)})"
            )
            wait, retryable = None, True
        except (ValueError, openai.APIResponseValidationError) as exc:  # a body that is not JSON
            last_error = f"the endpoint answered something that is not a completion ({type(exc).__name__})"
            wait, retryable = None, True
        else:
            span = tracing.last_llm_span()
            return _reply(completion, model, started, started_wall, attempt + 1, span, prompt_ref)
        elapsed = time.monotonic() - started
        delay = policy.delay(attempt, wait)
        if not retryable or attempt >= policy.retries or elapsed + delay > policy.deadline:
            tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
            message = (
                f"the LLM call to {client.base_url} failed after {tries} in {elapsed:.1f} s: {last_error}"
            )
            if "429" in last_error:
                message += "; lower the request rate ([llm] requests_per_minute) or try again later"
            if errors == "raise":
                raise LLMCallFailed(message)
            span = tracing.last_llm_span()
            return Reply(
                None,
                model,
                latency=elapsed,
                attempts=attempt + 1,
                trace_id=span.trace_id if span else None,
                span_id=span.span_id if span else None,
                prompt=prompt_ref,
                error=message,
                started=started_wall,
            )
        time.sleep(delay)
        attempt += 1


def _error_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(exc, "message", exc))[:300]


def _cause(exc) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}"[:200] if cause else str(exc)[:200]


def _reply(completion, model, started, started_wall, attempts, span, prompt_ref) -> Reply:
    from .genai import usage_of

    choice = completion.choices[0] if completion.choices else None
    usage = usage_of(completion.usage.model_dump()) if getattr(completion, "usage", None) else Usage()
    return Reply(
        text=choice.message.content if choice is not None else None,
        model=getattr(completion, "model", None) or model,
        usage=usage,
        finish_reason=choice.finish_reason if choice is not None else None,
        latency=time.monotonic() - started,
        attempts=attempts,
        trace_id=span.trace_id if span else None,
        span_id=span.span_id if span else None,
        prompt=prompt_ref,
        replayed=bool(span and span.attributes.get("mlo.replayed")),
        raw=completion,
        started=started_wall,
    )
