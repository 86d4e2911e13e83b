"""The live OTLP exporter: runs (pipeline stages among them) and LLM traces go to a collector as they finish.

On when an endpoint is set — ``[otel] endpoint = "http://localhost:4318"`` in ``mlo.toml``, else
``OTEL_EXPORTER_OTLP_ENDPOINT`` — and off with ``[otel] live = false`` or ``OTEL_SDK_DISABLED=true``::

    [otel]
    endpoint = "http://localhost:4318"   # spans go to <endpoint>/v1/traces, OTLP/HTTP protobuf
    service_name = "churn-training"      # default OTEL_SERVICE_NAME, else "mlo"

What it promises the code being traced: nothing waits for the collector. A finished run or trace is put in a
bounded in-memory queue (a lock and an append); one daemon thread per process reads what it needs from the store,
builds the spans (the same as ``mlo export otlp``) and sends them in batches of up to :data:`BATCH` spans, at most
every :data:`INTERVAL` seconds. A collector that is down or slow costs that thread retries with backoff (up to
:data:`MAX_BACKOFF` s); spans wait meanwhile, up to :data:`MAX_QUEUE`, past which the oldest are dropped and
counted. At exit the queue gets one last try of at most :data:`EXIT_WAIT` seconds, and none when the collector
was failing. Every span keeps its mlo ids, so a later ``mlo export otlp`` of the same records sends the same ids.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import Any

log = logging.getLogger("mlo.otlp")

BATCH = 512
INTERVAL = 1.0
MAX_QUEUE = 20_000
MAX_BACKOFF = 30.0
TIMEOUT = 5.0
EXIT_WAIT = 1.0

_exporters: dict[tuple, LiveExporter] = {}
_lock = threading.Lock()
_warned: set[str] = set()


def settings(ws) -> tuple[str, str | None] | None:
    """(the ``/v1/traces`` URL, the service name) when live export is on for ``ws``, else None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    try:
        cfg = ws.config.get("otel") or {}
    except Exception:
        cfg = {}
    if cfg.get("live") is False:
        return None
    endpoint = cfg.get("endpoint") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return None
    base = str(endpoint).strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        _warn_once(base, f"mlo: OTLP endpoint {base!r} is not an http(s) URL; nothing is exported live")
        return None
    url = base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    return url, cfg.get("service_name")


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def exporter_for(ws) -> LiveExporter | None:
    """The process's exporter for ``ws``'s endpoint (started on first use), or None when export is off."""
    found = settings(ws)
    if found is None:
        return None
    url, service = found
    key = (url, service, os.getpid())
    ex = _exporters.get(key)
    if ex is not None:
        return ex
    try:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
    except ImportError:
        _warn_once(
            "proto", "mlo: live OTLP export needs opentelemetry-proto: pip install 'mlo-workbench[otel]'"
        )
        return None
    with _lock:
        ex = _exporters.get(key)
        if ex is None:
            ex = _exporters[key] = LiveExporter(url, service)
    return ex


def on_run_end(ws, run) -> None:
    """A run ended: export it (a hook of :func:`mlo.end_run`)."""
    ex = exporter_for(ws)
    if ex is not None:
        ex.submit(("run", ws, run.id))


def on_trace_written(ws, name: str, rows: list[dict]) -> None:
    """A trace was written: export its spans."""
    ex = exporter_for(ws)
    if ex is not None:
        ex.submit(("trace", name, rows))


class LiveExporter:
    """A queue of finished records and the thread that sends them (see the module's text)."""

    def __init__(self, url: str, service_name: str | None = None, *, interval: float = INTERVAL):
        self.url = url
        self.service_name = service_name
        self.interval = interval
        self.items: deque = deque()
        self.spans: deque = deque()  # built, waiting to be sent (kept across a failing collector)
        self.stats = {"sent": 0, "requests": 0, "failures": 0, "dropped": 0, "queued": 0}
        self.last_error: str | None = None
        self.failing = False
        self._cond = threading.Condition()
        self._stopped = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="mlo-otlp-export", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- the caller's side: O(1), never blocks on the network ----------------------------------------------
    def submit(self, item: tuple) -> None:
        with self._cond:
            self.items.append(item)
            self.stats["queued"] += 1
            self._idle.clear()
            if len(self.items) >= BATCH:
                self._cond.notify()

    # -- the thread's side ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                if not self._stopped:
                    self._cond.wait(backoff or self.interval)
                items = list(self.items)
                self.items.clear()
                stopped = self._stopped
            self._build(items)
            ok = self._send_all()
            backoff = 0.0 if ok else min(MAX_BACKOFF, max(self.interval, backoff * 2 or self.interval))
            with self._cond:
                if not self.items and not self.spans:
                    self._idle.set()
            if stopped:
                return

    def _build(self, items: list[tuple]) -> None:
        from .otlp import trace_span

        for item in items:
            try:
                if item[0] == "trace":
                    _, name, rows = item
                    self.spans.extend(trace_span(r, name) for r in rows)
                else:
                    spans = self._run_spans(item[1], item[2])
                    if spans is None:  # the hook runs before the end is written: look again next round
                        if len(item) < 4 or item[3] < 20:
                            self.submit((*item[:3], (item[3] if len(item) > 3 else 0) + 1))
                        continue
                    self.spans.extend(spans)
            except Exception as exc:  # a record that cannot be read is skipped, never retried forever
                log.warning("mlo: could not export %s: %s", item[0], exc)
        over = len(self.spans) - MAX_QUEUE
        if over > 0:
            for _ in range(over):
                self.spans.popleft()
            self.stats["dropped"] += over

    @staticmethod
    def _run_spans(ws, run_id: str) -> list | None:
        from .otlp import run_span
        from .tracking.run import Run

        run = Run(ws, run_id)
        if run.status == "running":
            return None
        root, seen = run, {run.id}
        while root.parent_id and root.parent_id not in seen:
            seen.add(root.parent_id)
            try:
                root = Run(ws, root.parent_id)
            except Exception:  # a parent that was purged: the run is the top of what is left
                break
        return [run_span(run, run.parent_id if root is not run else None, root.id)]

    def _send_all(self) -> bool:
        from .otlp import _env_headers, _post, encode

        headers = _env_headers()
        while self.spans:
            batch = [self.spans[i] for i in range(min(BATCH, len(self.spans)))]
            try:
                _post(self.url, encode(batch, self.service_name), headers, TIMEOUT)
            except Exception as exc:
                self.stats["failures"] += 1
                self.last_error = str(exc)
                if not self.failing:
                    log.warning("mlo: live OTLP export paused: %s (spans wait, and are retried)", exc)
                self.failing = True
                return False
            for _ in batch:
                self.spans.popleft()
            self.stats["sent"] += len(batch)
            self.stats["requests"] += 1
            if self.failing:
                log.info("mlo: live OTLP export resumed")
            self.failing = False
        return True

    # -- control --------------------------------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wake the thread and wait (up to ``timeout`` s) until everything queued was sent; True if it was."""
        with self._cond:
            self._cond.notify()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(0.05) and not self.items and not self.spans:
                return True
            with self._cond:
                self._cond.notify()
        return False

    def close(self) -> None:
        """At exit: one last try, short, and none when the collector was failing."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if not self.failing:
            self._thread.join(EXIT_WAIT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            **self.stats,
            "waiting": len(self.spans) + len(self.items),
            "failing": self.failing,
            "last_error": self.last_error,
        }
