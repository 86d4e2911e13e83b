"""Cell capture: while a run is active, every executed cell (source, execution count, success, duration) is
recorded through IPython's ``pre_run_cell``/``post_run_cell`` events, and buffered metrics are flushed at the
end of each cell. A run started in the notebook also keeps its context: the cells that ran successfully before
it (imports, data loading), so ``mlo reproduce`` can rebuild a notebook that runs on its own."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager

from ..errors import MloError
from ..tracking import session

CONTEXT_ARTIFACT = "mlo/context.json"


class CellRecorder:
    """Registered on one shell. Nested executions (a cell that runs cells) are recorded once, as the outer cell."""

    def __init__(self, shell):
        self.shell = shell
        self.depth = 0
        self.suspended = 0
        self._pending: tuple[float, object] | None = None
        self._deferred: list[dict] = []
        self.history: list[tuple[int | None, str]] = []  # successful top-level cells of this kernel, in order

    def on_run_start(self, ws, run) -> None:
        """Keep the cells that ran before a top-level run as its context (artifact ``mlo/context.json``)."""
        if not self.history or run.parent_id not in (None, session.attached_run_id()):
            return
        cells = [{"execution_count": n, "source": src} for n, src in self.history]
        session.log_bytes(json.dumps({"cells": cells}, indent=1).encode(), CONTEXT_ARTIFACT, run=run)

    def register(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        session.RUN_START_HOOKS.append(self.on_run_start)

    def unregister(self) -> None:
        for name, cb in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, cb)
            except ValueError:
                pass
        if self.on_run_start in session.RUN_START_HOOKS:
            session.RUN_START_HOOKS.remove(self.on_run_start)

    @contextmanager
    def suspend(self):
        """Record nothing inside (``%%mlo run`` records its own cell)."""
        self.suspended += 1
        try:
            yield
        finally:
            self.suspended -= 1

    def record_own(self, run, source: str, started: float, error: BaseException | None) -> None:
        """Record a cell that ran as ``run`` (``%%mlo run``). Inside a cell execution this waits for
        ``post_run_cell``, which knows the execution count the front end shows; outside one it writes now."""
        cell = {
            "source": source,
            "success": error is None,
            "duration": time.time() - started,
            "started_at": started,
            "error": None if error is None else f"{type(error).__name__}: {error}",
            "run": run,
        }
        if self.depth:
            self._deferred.append(cell)
        else:
            session.record_cell(**cell)

    def pre_run_cell(self, info=None) -> None:
        self.depth += 1
        if self.depth == 1:
            self._pending = (time.time(), session.active_run())

    def post_run_cell(self, result) -> None:
        self.depth = max(self.depth - 1, 0)
        if self.depth:
            return
        try:
            self._record(result)
        except (
            MloError
        ) as exc:  # the cell ran; only its record failed (a store fault): one line, not a traceback
            print(f"mlo: this cell was not recorded: {exc}", file=sys.stderr)

    def _record(self, result) -> None:
        pending, self._pending = self._pending, None
        deferred, self._deferred = self._deferred, []
        try:
            raw = getattr(getattr(result, "info", None), "raw_cell", None)
            if raw and result.success:
                self.history.append((result.execution_count, raw))
            for cell in deferred:
                if raw:  # the exact text the user ran, magic line included
                    cell["source"] = raw
                session.record_cell(execution_count=result.execution_count, **cell)
            if self.suspended or pending is None:
                return
            started, run_before = pending
            run_now = session.active_run()
            targets = [r for r in (run_before, run_now) if r is not None]
            if not targets:
                return
            info = getattr(result, "info", None)
            source = getattr(info, "raw_cell", None) or ""
            err = result.error_in_exec or result.error_before_exec
            error = f"{type(err).__name__}: {err}" if err is not None else None
            duration = time.time() - started
            for run in dict.fromkeys(targets):  # once per run, in order
                session.record_cell(
                    source,
                    execution_count=result.execution_count,
                    success=result.success,
                    duration=duration,
                    started_at=started,
                    error=error,
                    run=run,
                )
        finally:
            session.flush()
