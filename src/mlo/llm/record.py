"""Record and replay: every traced call keeps the request it sent (by a digest of its body) and the bytes it got
back; in replay, a call is answered from that record, byte for byte, without contacting the endpoint.

``mlo.llm.replay(run)`` replays from one run (and the runs under it); ``MLO_LLM_REPLAY=1`` replays in a whole
process (from the run being reproduced when ``MLO_REPRODUCTION`` names one, else from the whole workspace);
``MLO_LLM_REPLAY=<run id>`` from that run. ``mlo reproduce`` sets it for the notebook it replays.

A request sent several times gets its recorded answers in the order they were recorded (the last one again
when it is sent more often than it was). A request with no record is refused — an HTTP 404 that the client
does not retry, whose message says which part of the request differs from the closest recorded one — unless
the replay is not ``strict``, and then it goes to the endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from ..errors import InvalidInput, NotFound

_lock = threading.Lock()
_explicit: Replay | None = None
_from_env: tuple[str, Replay | None] | None = None


class ReplayMiss(NotFound):
    """A call that replay cannot answer: nothing like it was recorded."""


def request_key(path: str, body: bytes) -> str:
    """The digest a request is recorded under: its operation and its body (JSON keys in sorted order), not the
    host it went to nor its headers, so a notebook replays against any ``base_url``."""
    from .genai import OPERATIONS

    op = next((suffix for suffix in OPERATIONS if path.endswith(suffix)), path)
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(op.encode() + b"\n" + canonical).hexdigest()


class Replay:
    """Calls answered from a record (see :func:`replay`). Use it as a context manager, or :meth:`stop` it."""

    def __init__(self, ws, run_ids: list[str] | None, label: str, strict: bool = True):
        self.ws = ws
        self.run_ids = run_ids
        self.label = label
        self.strict = strict
        self.answered = 0
        self.missed = 0
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()

    def answer(self, key: str) -> dict[str, Any] | None:
        """The recorded answer to the request with digest ``key``: ``{"status", "headers", "body", "span"}``."""
        rows = [r for r in self.ws.traces.recorded(key, self.run_ids) if r["status"] == "ok"]
        if not rows:
            with self._lock:
                self.missed += 1
            return None
        with self._lock:
            n = self._served.get(key, 0)
            self._served[key] = n + 1
            self.answered += 1
        row = rows[min(n, len(rows) - 1)]
        attrs = json.loads(row["attributes"] or "{}")
        return {
            "status": int(attrs.get("http.response.status_code", 200)),
            "headers": attrs.get("mlo.response.headers") or {"content-type": "application/json"},
            "body": self.ws.blobs.get_bytes(row["output_blob"]),
            "span": f"{row['trace_id']}/{row['span_id']}",
        }

    def miss_message(self, body: bytes) -> str:
        """Why a request has no record, naming the closest recorded request's first difference."""
        where = self.label
        candidates = self.ws.traces.recorded_requests(self.run_ids)
        if not candidates:
            return f"mlo replay: no LLM call was recorded {where}; run the notebook once without replay to record"
        try:
            sent = json.loads(body)
        except ValueError:
            return f"mlo replay: no recorded answer {where} for this request (its body is not JSON)"
        best: tuple[int, str] | None = None
        for cand in candidates[:200]:
            if not cand["input_blob"]:
                continue
            try:
                recorded = json.loads(self.ws.blobs.get_bytes(cand["input_blob"]))
            except Exception:
                continue
            diffs = _differences(recorded, sent, "")
            if diffs and (best is None or len(diffs) < best[0]):
                best = (len(diffs), diffs[0])
        detail = f"; the closest recorded request differs in {best[1]}" if best else ""
        return (
            f"mlo replay: no recorded answer {where} for this request ({len(candidates)} recorded)"
            f"{detail}. The prompt or the parameters changed since the record: run without replay to record "
            "anew"
        )

    def stop(self) -> None:
        """Stop replaying (calls go to the endpoint again)."""
        global _explicit
        with _lock:
            if _explicit is self:
                _explicit = None

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Replay {self.label}: {self.answered} answered, {self.missed} missed>"


def _differences(a: Any, b: Any, path: str, limit: int = 20) -> list[str]:
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            where = f"{path}.{k}" if path else k
            if k not in a:
                out.append(f"{where} (not in the record)")
            elif k not in b:
                out.append(f"{where} (missing now)")
            else:
                out.extend(_differences(a[k], b[k], where, limit))
            if len(out) >= limit:
                break
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path} ({len(a)} items recorded, {len(b)} now)")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out.extend(_differences(x, y, f"{path}[{i}]", limit))
            if len(out) >= limit:
                break
        return out
    if a != b:
        out.append(f"{path}: {_short(a)} recorded, {_short(b)} now")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _scope(ws, run: Any) -> tuple[list[str] | None, str]:
    if run is None:
        return None, "in this workspace"
    from ..tracking import session
    from ..tracking.run import Run

    if isinstance(run, Run):
        run_id = run.id
    elif isinstance(run, str) and run.strip():
        run_id = session.get_run(run).id
    else:
        raise InvalidInput(f"replay takes a run (a Run or a run id), got {type(run).__name__} {run!r:.40}")
    return ws.traces.descendants(run_id), f"in run {run_id[:10]}"


def replay(run: Any = None, *, strict: bool = True) -> Replay:
    """Answer every traced LLM call from the record from now on, without contacting the endpoint.

    Parameters
    ----------
    run : Run or str, optional
        The run whose calls (and those of the runs under it) answer; every recorded call of the workspace when
        not given.
    strict : bool
        Refuse a call that was not recorded (default). With False it goes to the endpoint and is recorded.

    Returns
    -------
    Replay
        Replaying until :meth:`Replay.stop`, or the end of a ``with`` block.
    """
    global _explicit
    from .. import workspace

    if not isinstance(strict, bool):
        raise InvalidInput(f"strict must be True or False, got {strict!r}")
    ws = workspace.current(create=False)
    run_ids, label = _scope(ws, run)
    handle = Replay(ws, run_ids, label, strict)
    with _lock:
        _explicit = handle
    from .transport import install

    install()
    return handle


def active() -> Replay | None:
    """The replay in force: one started with :func:`replay`, else the one ``MLO_LLM_REPLAY`` asks for."""
    global _from_env
    if _explicit is not None:
        return _explicit
    value = os.environ.get("MLO_LLM_REPLAY", "").strip()
    if not value or value.lower() in ("0", "false", "no"):
        return None
    cached = _from_env
    if cached is not None and cached[0] == value:
        return cached[1]
    from .. import workspace

    ws = workspace.current(create=False)
    run = None if value.lower() in ("1", "true", "yes") else value
    if run is None:
        run = workspace.reproducing()  # the run mlo reproduce replays
    run_ids, label = _scope(ws, run)
    handle = Replay(ws, run_ids, label)
    with _lock:
        _from_env = (value, handle)
    return handle


def reset() -> None:
    global _explicit, _from_env
    with _lock:
        _explicit = None
        _from_env = None
