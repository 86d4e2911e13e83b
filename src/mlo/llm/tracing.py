"""Span trees: ``mlo.trace`` (a decorator and a context manager) and the spans the LLM client layer opens.

A trace is the tree of spans under one root. It is written synchronously, in the process that made it: a
``running`` row when its root starts, then, when its last span ends, its totals and every span in one
transaction — no background thread, so nothing waits in memory for a flush that an exiting process never does.
Traces still open when the interpreter exits are written as ``unfinished``.

The current span follows :mod:`contextvars`, so nesting works across ``await`` and in asyncio tasks; a thread
started inside a span begins a trace of its own unless it runs in a copy of the context.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import logging
import os
import sys
import threading
import time
from contextvars import ContextVar
from typing import Any

from ..errors import InvalidInput
from ..names import check_label

log = logging.getLogger("mlo")

KINDS = ("llm", "embedding", "tool", "retrieval", "chain", "agent", "custom")
INLINE_BYTES = 2048  # inputs/outputs of custom spans up to this size stay in the span's attributes

_current: ContextVar[Span | None] = ContextVar("mlo_llm_span", default=None)
_open_traces: dict[str, _Trace] = {}
_lock = threading.Lock()
_last_llm = threading.local()


def _now_us() -> int:
    return time.time_ns() // 1000


def _span_id() -> str:
    return os.urandom(8).hex()


class _Trace:
    """A trace being made: its spans, how many are still open, where it is written."""

    __slots__ = ("id", "name", "ws", "run_id", "notebook", "cell", "start_time", "spans", "open", "started")

    def __init__(self, name: str):
        from ..store.ids import new_id

        self.id = new_id()
        self.name = name
        self.ws = _workspace()
        self.run_id, self.notebook, self.cell = _context()
        self.start_time = _now_us()
        self.spans: list[Span] = []
        self.open = 0
        self.started = False

    def begin(self) -> None:
        try:
            self.ws.traces.start(
                {
                    "id": self.id,
                    "name": self.name,
                    "run_id": self.run_id,
                    "notebook": self.notebook,
                    "cell": self.cell,
                    "start_time": self.start_time,
                }
            )
            self.started = True
        except Exception as exc:  # a store fault never breaks the user's code; the end tries again
            log.warning("mlo: could not record the start of trace %r: %s", self.name, exc)

    def write(self, status_override: str | None = None) -> None:
        spans = sorted(self.spans, key=lambda s: s.seq)
        rows = [s.row() for s in spans]
        root = spans[0] if spans else None
        totals = {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0}
        models: list[str] = []
        prompts: list[str] = []
        calls = 0
        replayed = False
        for s in spans:
            if s.kind in ("llm", "embedding"):
                calls += 1
                for key in totals:
                    totals[key] += getattr(s, key) or 0
                if s.model and s.model not in models:
                    models.append(s.model)
                replayed = replayed or bool(s.attributes.get("mlo.replayed"))
            if s.prompt and s.prompt not in prompts:
                prompts.append(s.prompt)
        errors = [s for s in spans if s.status == "error"]
        status = status_override or (root.status if root is not None else "ok")
        if status == "ok" and any(s.status == "unfinished" for s in spans):
            status = "unfinished"
        trace = {
            "id": self.id,
            "name": self.name,
            "run_id": self.run_id,
            "notebook": self.notebook,
            "cell": self.cell,
            "status": status,
            "start_time": self.start_time,
            "end_time": max((s.end_time or s.start_time for s in spans), default=self.start_time),
            "spans": len(spans),
            "llm_calls": calls,
            **totals,
            "models": ", ".join(models) or None,
            "prompts": ", ".join(prompts) or None,
            "replayed": replayed,
            "error": (root.error if root is not None and root.error else None)
            or (f"{errors[0].name}: {errors[0].error}" if errors else None),
        }
        try:
            self.ws.traces.finish(trace, rows, started=self.started)
        except Exception as exc:
            log.warning("mlo: could not record trace %r (%d spans): %s", self.name, len(rows), exc)
        try:
            from ..otlp_live import on_trace_written

            on_trace_written(self.ws, self.name, rows)
        except Exception as exc:  # exporting never breaks the traced code
            log.debug("mlo: live OTLP export of trace %r failed: %s", self.name, exc)


_ws_memo: list = [None, None]  # (key, workspace): the workspace of the last trace, while it is still open


def _workspace():
    """The workspace in force (``mlo.workspace.current()``), remembered while the environment and the folder stay
    the same and nothing reset the open workspaces: a trace starts in microseconds, not a config read."""
    from .. import workspace

    key = (
        os.environ.get("MLO_HOME"),
        os.environ.get("MLO_STORE"),
        os.environ.get("MLO_ARTIFACTS"),
        os.getcwd(),
    )
    memo_key, ws = _ws_memo
    if memo_key == key and ws is not None and any(w is ws for w in workspace._cache.values()):
        return ws
    ws = workspace.current()
    _ws_memo[:] = [key, ws]
    return ws


def _context() -> tuple[str | None, str | None, int | None]:
    """The active run, the notebook and the cell (its execution count) a trace is made in."""
    run_id = None
    try:
        from ..tracking import session

        run = session.active_run()
        run_id = run.id if run is not None else None
    except Exception:  # no run is as good as none
        pass
    notebook = os.environ.get("MLO_NOTEBOOK") or None
    cell = None
    ipython = sys.modules.get("IPython")  # only when IPython is already running this code
    if ipython is not None:
        shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
        count = getattr(shell, "execution_count", None)
        if isinstance(count, int):
            cell = count
    return run_id, notebook, cell


class Span:
    """One step of a trace: an LLM call, a tool call, a retrieval or any block of code.

    Attributes
    ----------
    name, kind : str
    trace_id, span_id, parent_id : str
    status : str
        ``ok``, ``error`` or ``unfinished``.
    attributes : dict
        OpenTelemetry attributes (``gen_ai.*`` for LLM calls) and mlo's own (``mlo.*``).
    """

    __slots__ = (
        "_trace",
        "span_id",
        "parent_id",
        "seq",
        "name",
        "kind",
        "status",
        "start_time",
        "end_time",
        "attributes",
        "error",
        "model",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "prompt",
        "request_key",
        "input_blob",
        "output_blob",
        "_token",
        "_ended",
    )

    def __init__(self, trace: _Trace, parent: Span | None, name: str, kind: str):
        self._trace = trace
        self.span_id = _span_id()
        self.parent_id = parent.span_id if parent is not None else None
        self.seq = len(trace.spans)
        self.name = name
        self.kind = kind
        self.status = "ok"
        self.start_time = _now_us()
        self.end_time: int | None = None
        self.attributes: dict[str, Any] = {}
        self.error: str | None = None
        self.model: str | None = None
        self.input_tokens = self.output_tokens = self.cached_tokens = self.reasoning_tokens = None
        self.prompt: str | None = None
        self.request_key: str | None = None
        self.input_blob: str | None = None
        self.output_blob: str | None = None
        self._token = None
        self._ended = False
        trace.spans.append(self)
        trace.open += 1

    @property
    def trace_id(self) -> str:
        return self._trace.id

    # -- what user code may set -----------------------------------------------------------------------------
    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (a JSON value; others are kept as text)."""
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"an attribute name must be a non-empty string, got {key!r}")
        self.attributes[key] = _jsonable(value)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        if not isinstance(attributes, dict):
            raise InvalidInput(f"attributes must be a dict, got {type(attributes).__name__}")
        for k, v in attributes.items():
            self.set_attribute(k, v)

    def set_inputs(self, value: Any) -> None:
        """What the step took (stored inline when small, else as a blob)."""
        self._store("inputs", value)

    def set_outputs(self, value: Any) -> None:
        """What the step gave."""
        self._store("outputs", value)

    def set_prompt(self, ref: str) -> None:
        """The prompt version (``"support/3"``) this step used."""
        self.prompt = ref

    def record_error(self, exc: BaseException | str) -> None:
        """Mark the span failed with this error."""
        self.status = "error"
        self.error = exc if isinstance(exc, str) else _describe(exc)
        if not isinstance(exc, str):
            self.attributes["error.type"] = type(exc).__qualname__

    def _store(self, what: str, value: Any) -> None:
        plain = _jsonable(value)
        text = json.dumps(plain, ensure_ascii=False, default=str)
        data = text.encode("utf-8")
        if len(data) <= INLINE_BYTES:
            self.attributes[f"mlo.{what}"] = plain
            return
        try:
            digest = self._trace.ws.blobs.put_bytes(data)
        except Exception as exc:
            log.warning("mlo: could not store the %s of span %r: %s", what, self.name, exc)
            return
        if what == "inputs":
            self.input_blob = digest
        else:
            self.output_blob = digest
        self.attributes[f"mlo.{what}.bytes"] = len(data)

    # -- ending -----------------------------------------------------------------------------------------------
    def end(self, status: str | None = None) -> None:
        """End the span (once; later calls do nothing). The trace is written when its last span ends."""
        if self._ended:
            return
        self._ended = True
        if status is not None:
            self.status = status
        self.end_time = _now_us()
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # ended in another context (a generator finished elsewhere)
                _current.set(None)
            self._token = None
        trace = self._trace
        with _lock:
            trace.open -= 1
            done = trace.open == 0
            if done:
                _open_traces.pop(trace.id, None)
        if done:
            trace.write()

    def row(self) -> dict[str, Any]:
        return {
            "trace_id": self._trace.id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "seq": self.seq,
            "name": self.name[:255],
            "kind": self.kind,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "run_id": self._trace.run_id,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "prompt": self.prompt,
            "request_key": self.request_key,
            "input_blob": self.input_blob,
            "output_blob": self.output_blob,
            "attributes": json.dumps(self.attributes, ensure_ascii=False, default=str),
            "error": self.error,
        }

    def __repr__(self) -> str:
        return f"<Span {self.name!r} {self.kind} {self.status} trace={self._trace.id[:10]} id={self.span_id}>"


def open_span(name: str, kind: str = "custom", *, activate: bool = True) -> Span:
    """Start a span under the current one (or a new trace). ``activate`` makes it the current span until it ends;
    LLM calls are leaves and are not activated (a streamed answer ends after the code that asked for it)."""
    parent = _current.get()
    if parent is not None and parent._ended:
        parent = None
    if parent is None:
        trace = _Trace(name)
        with _lock:
            _open_traces[trace.id] = trace
        span = Span(trace, None, name, kind)
        if activate:  # an LLM call alone is written once, when it ends
            trace.begin()
    else:
        span = Span(parent._trace, parent, name, kind)
    if activate:
        span._token = _current.set(span)
    return span


def current_span() -> Span | None:
    """The span code runs in now, or None."""
    span = _current.get()
    return None if span is None or span._ended else span


def note_llm_span(span: Span) -> None:
    _last_llm.span = span


def last_llm_span() -> Span | None:
    """The last LLM span this thread opened (what :func:`mlo.llm.chat` reports on)."""
    return getattr(_last_llm, "span", None)


# -- mlo.trace --------------------------------------------------------------------------------------------------
class trace:  # noqa: N801 - used as a decorator and a context manager, spelled like a function
    """Trace a block or a function as a span; spans opened inside become its children.

    As a decorator, ``@mlo.trace`` or ``@mlo.trace(name="retrieve", kind="retrieval")``: every call is a span
    recording the arguments and the return value (sync and async functions and generators). As a context manager,
    ``with mlo.trace("answer") as span:`` yields the :class:`Span` (``span.set_attribute``,
    ``span.set_outputs``). An exception marks the span failed and goes on.

    Parameters
    ----------
    name : str, optional
        The span's name; a decorated function's qualified name by default.
    kind : {"custom", "chain", "agent", "tool", "retrieval", "llm", "embedding"}
    attributes : dict, optional
        Attributes set when it starts.
    capture : bool
        Record a decorated function's arguments and result (default True).
    """

    def __new__(cls, name: Any = None, *, kind: str = "custom", attributes=None, capture: bool = True):
        if callable(name) and not isinstance(name, str):  # bare @mlo.trace
            return cls(kind=kind, attributes=attributes, capture=capture)(name)
        return super().__new__(cls)

    def __init__(
        self,
        name: str | None = None,
        *,
        kind: str = "custom",
        attributes: dict[str, Any] | None = None,
        capture: bool = True,
    ):
        if name is not None:
            name = check_label(name, "span name")
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if attributes is not None and not isinstance(attributes, dict):
            raise InvalidInput(f"attributes must be a dict, got {type(attributes).__name__}")
        if not isinstance(capture, bool):
            raise InvalidInput(f"capture must be True or False, got {capture!r}")
        self.name = name
        self.kind = kind
        self.attributes = attributes or {}
        self.capture = capture
        self._spans: list[Span] = []

    # context manager --------------------------------------------------------------------------------------------
    def __enter__(self) -> Span:
        span = open_span(self.name or "trace", self.kind)
        if self.attributes:
            span.set_attributes(self.attributes)
        self._spans.append(span)
        return span

    def __exit__(self, exc_type, exc, tb) -> bool:
        span = self._spans.pop()
        if exc is not None:
            span.record_error(exc)
        span.end()
        return False

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        return self.__exit__(exc_type, exc, tb)

    # decorator --------------------------------------------------------------------------------------------------
    def __call__(self, fn):
        if not callable(fn):
            raise InvalidInput(f"mlo.trace decorates a function, got {type(fn).__name__}")
        name = self.name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "call")
        kind, attributes, capture = self.kind, self.attributes, self.capture
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None

        def start(args, kwargs) -> Span:
            span = open_span(name, kind)
            if attributes:
                span.set_attributes(attributes)
            if capture:
                span.set_inputs(_arguments(signature, args, kwargs))
            return span

        def finish(span: Span, result: Any = None, exc: BaseException | None = None) -> None:
            if exc is not None:
                span.record_error(exc)
            elif capture:
                span.set_outputs(result)
            span.end()

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                span = start(args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    finish(span, exc=exc)
                    raise
                finish(span, result)
                return result

            return async_wrapper

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                span = start(args, kwargs)
                items = []
                try:
                    for item in fn(*args, **kwargs):
                        items.append(item)
                        yield item
                except BaseException as exc:
                    finish(span, exc=exc)
                    raise
                finish(span, items)

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            span = start(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                finish(span, exc=exc)
                raise
            finish(span, result)
            return result

        return wrapper


def _arguments(signature, args, kwargs) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` (objects become their repr, long sequences are cut)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 6:
        return repr(value)[:200]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in list(value)[:1000]]
    if hasattr(value, "model_dump"):  # pydantic (openai's objects)
        try:
            return _jsonable(value.model_dump(), depth + 1)
        except Exception:
            pass
    if hasattr(value, "to_dict") and callable(value.to_dict):
        try:
            return _jsonable(value.to_dict(), depth + 1)
        except Exception:
            pass
    return repr(value)[:2000]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:500]}" if text else type(exc).__name__


@atexit.register
def _write_open_traces() -> None:
    """Write what is still open as ``unfinished``: a trace is never lost because its process exited."""
    with _lock:
        traces = list(_open_traces.values())
        _open_traces.clear()
    for t in traces:
        for s in t.spans:
            if not s._ended:
                s._ended = True
                s.status = "unfinished"
                s.end_time = _now_us()
        t.write("unfinished")


def reset() -> None:
    """Forget open traces without writing them (tests)."""
    with _lock:
        _open_traces.clear()
    _current.set(None)
    _last_llm.span = None
