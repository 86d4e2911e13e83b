"""Cell capture: every top-level cell the kernel executes joins the kernel's history (:mod:`mlo.tracking.history`)
through IPython's ``pre_run_cell``/``post_run_cell`` events: its source, outcome, the files it read and wrote,
whether it drew from a global random generator, and fingerprints of the values it bound. Cells that ran while a
run was active are also recorded on the run, buffered metrics are flushed at the end of each cell, and when a
run ends it keeps the history up to that point (the artifact ``mlo/capture.json``), which ``mlo reproduce``
replays.

The history belongs to the kernel, not to the extension: it survives ``%reload_ext mlo``, and cells that ran
before ``%load_ext mlo`` are recovered from IPython's input history. Hazards to the reproducibility of a run
(a cell it depends on edited since, unseeded randomness, a file read that no snapshot keeps) are shown once per
cause, with the command that fixes them.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..tracking import access, hazards, journal, provenance, session
from ..tracking.fingerprint import fingerprint
from ..tracking.history import CAPTURE_ARTIFACT, Execution, FileState, History, Pin

MAX_MODULE_BYTES = 4 << 20
_MARK = "__mlo_history__"

# per shell: the history and the hazards already shown, kept across %reload_ext (this module is not reloaded)
_HISTORIES: dict[int, History] = {}
_WARNED: dict[int, set[str]] = {}


def history_of(shell) -> History:
    """The execution history of ``shell`` (created on first use)."""
    h = _HISTORIES.get(id(shell))
    if h is None:
        h = _HISTORIES[id(shell)] = History(cwd=os.getcwd(), notebook=_notebook_path(shell))
    return h


def _notebook_path(shell) -> str | None:
    path = os.environ.get("MLO_NOTEBOOK") or getattr(shell, "user_ns", {}).get("__session__")
    return str(path) if path else None


class CellRecorder:
    """Registered on one shell. Nested executions (a cell that runs cells) are recorded once, as the outer cell."""

    def __init__(self, shell):
        self.shell = shell
        self.history = history_of(shell)
        self.warned = _WARNED.setdefault(id(shell), set())
        self._since = 0  # execution count of the last reset: earlier cells are not recovered
        self.depth = 0
        self.suspended = 0
        self._pending: tuple[float, Any, Any] | None = None  # (started, active run, random state)
        self._deferred: list[dict] = []
        self._started: list = []  # top-level runs started during the current cell (`with mlo.start_run()`)
        self._checked: dict[str, set[str]] = {}  # run id -> names whose hazards were looked at
        self._modules: dict[str, tuple[str, bytes]] = {}  # local module name -> (path, source at import)
        self._skip_modules: set[str] = set(sys.modules)  # imported before the history began
        self._initial_path = {os.path.abspath(p) for p in sys.path if p}
        self.show_warnings = os.environ.get("MLO_CAPTURE_WARNINGS", "1") != "0"

    # -- life cycle -----------------------------------------------------------------------------------------
    def register(self) -> None:
        self._restart_if_reset()
        self.recover()
        self._mark_namespace()
        access.install()
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        session.RUN_START_HOOKS.append(self.on_run_start)
        session.RUN_END_HOOKS.append(self.on_run_end)

    def unregister(self) -> None:
        for name, cb in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, cb)
            except ValueError:
                pass
        if self.on_run_end in session.RUN_END_HOOKS:
            session.RUN_END_HOOKS.remove(self.on_run_end)
        if self.on_run_start in session.RUN_START_HOOKS:
            session.RUN_START_HOOKS.remove(self.on_run_start)

    def recover(self) -> None:
        """Add the cells IPython ran since the history's last cell (before ``%load_ext mlo``, or between an
        unload and a load) from its input history; their outcome is unknown."""
        hm = getattr(self.shell, "history_manager", None)
        raw = getattr(hm, "input_hist_raw", None) or []
        current = getattr(self.shell, "execution_count", 0) or 0
        known = [c.execution_count for c in self.history.cells if c.execution_count is not None]
        for n in range(max([*known, self._since], default=0) + 1, min(current, len(raw))):
            source = raw[n]
            if source.strip():
                cell = Execution(len(self.history.cells), source, n, success=None, recovered=True)
                # what it read is not known; the files it names, as they are now, are the best guess
                for path in _files_named(self.history.flow(cell).literals, float("inf"), self.history.cwd)[
                    "read"
                ]:
                    state = FileState.of(path)
                    if state is not None:
                        cell.reads[path] = state
                self.history.cells.append(cell)

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

    # -- events ---------------------------------------------------------------------------------------------
    def _mark_namespace(self) -> None:
        """A hidden name in the namespace: when it is gone, the namespace was reset (``%reset``)."""
        self.shell.user_ns[_MARK] = True
        self.shell.user_ns_hidden[_MARK] = True

    def _restart_if_reset(self) -> None:
        """``%reset`` emptied the namespace (while mlo was loaded or not): nothing bound before it can reach the
        cells after it, so the history starts again."""
        if self.history.cells and _MARK not in self.shell.user_ns:
            self.history = _HISTORIES[id(self.shell)] = History(
                cwd=os.getcwd(), notebook=_notebook_path(self.shell)
            )
            # the cells IPython ran before the reset are not recovered into the new history; when mlo was
            # unloaded meanwhile, the reset came after the unload: the cells since then are recovered (those
            # before the reset bind nothing the cells after it can use)
            now = (getattr(self.shell, "execution_count", 1) or 1) - 1
            self._since = _UNLOADED_AT.pop(id(self.shell), now)
            self._checked.clear()
            self._mark_namespace()

    def pre_run_cell(self, info=None) -> None:
        self.depth += 1
        if self.depth == 1:
            self._restart_if_reset()
        if self.depth == 1:
            self._pending = (time.time(), session.active_run(), _random_state())
            if getattr(info, "store_history", True):
                access.start()

    def post_run_cell(self, result) -> None:
        self.depth = max(self.depth - 1, 0)
        if self.depth:
            return
        pending, self._pending = self._pending, None
        deferred, self._deferred = self._deferred, []
        started_here, self._started = self._started, []
        reads, writes = access.stop()
        try:
            info = getattr(result, "info", None)
            raw = getattr(info, "raw_cell", None) or ""
            for cell in deferred:
                if raw:  # the exact text the user ran, magic line included
                    cell["source"] = raw
                session.record_cell(execution_count=result.execution_count, **cell)
            if info is None or not getattr(info, "store_history", True) or not raw.strip():
                return
            started, run_before, rng_before = pending or (time.time(), None, None)
            run_now = session.active_run()
            own = [c["run"] for c in deferred]
            runs = list(dict.fromkeys(r for r in (*own, *started_here, run_before, run_now) if r is not None))
            err = result.error_in_exec or result.error_before_exec
            error = f"{type(err).__name__}: {err}" if err is not None else None
            duration = time.time() - started
            cell = self._remember(
                result, raw, runs, error, started, duration, reads, writes, rng_before, own or [run_now]
            )
            if not self.suspended and pending is not None:
                for run in dict.fromkeys(r for r in (*started_here, run_before, run_now) if r is not None):
                    if run in own:
                        continue
                    session.record_cell(
                        raw,
                        execution_count=result.execution_count,
                        success=result.success,
                        duration=duration,
                        started_at=started,
                        error=error,
                        run=run,
                    )
            for run in dict.fromkeys(runs):
                if not session.is_live(run.id) or session.is_attached(run):
                    self.save(run, cell.seq)
                self.warn(run, cell)
        except (
            Exception
        ) as exc:  # the cell ran; only its record failed (a store fault): one line, no traceback
            print(f"mlo: this cell was not recorded: {_one_line(exc)}", file=sys.stderr)
        finally:
            try:
                session.flush()
            except Exception as exc:
                print(f"mlo: metrics were not written: {_one_line(exc)}", file=sys.stderr)

    def on_run_start(self, ws, run) -> None:
        """A top-level run started inside a cell (``with mlo.start_run(): …``) owns that cell."""
        if self.depth and not self.suspended and run.parent_id in (None, session.attached_run_id()):
            self._started.append(run)

    def on_run_end(self, ws, run) -> None:
        """A run ended by a later cell (``%mlo end``, ``mlo.end_run()``) keeps the history up to now."""
        if any(run.id in c.runs for c in self.history.cells):
            self.save(run, len(self.history.cells) - 1, ws=ws)

    # -- what a cell leaves behind --------------------------------------------------------------------------
    def _remember(self, result, raw, runs, error, started, duration, reads, writes, rng_before, owners):
        h = self.history
        last = h.cells[-1] if h.cells else None
        if last is not None and last.recovered and last.execution_count == result.execution_count:
            h.cells.pop()  # the cell that loaded mlo, recovered from the input history while it ran
            h._json.pop(id(last), None)
            h._flows.pop(id(last), None)
        code = self.shell.transform_cell(raw) if any(ch in raw for ch in "%!?") else None
        cell = Execution(
            len(h.cells),
            raw,
            result.execution_count,
            code=code if code != raw else None,
            success=bool(result.success),
            error=error,
            started_at=started,
            duration=duration,
            cell_id=getattr(result.info, "cell_id", None),
            runs=[r.id for r in runs],
            rng=rng_before is not None and _random_state() != rng_before,
        )
        flow = h.flow(cell)
        found = _files_named(flow.literals, started, h.cwd)
        for path in sorted(set(reads) | found["read"]):
            state = FileState.of(path)
            if state is not None and path not in writes:
                cell.reads[path] = state
        cell.writes = sorted(set(writes) | found["written"])
        ns = self.shell.user_ns
        owner = next((r for r in owners if r is not None), None)
        for name in sorted(flow.binds):
            if name in ns and not name.startswith("_"):
                value = ns[name]
                fp = fingerprint(value)
                if fp is not None:
                    cell.fingerprints[name] = fp
                provenance.bind(
                    value,
                    provenance.Binding(owner.id if owner else None, cell.seq, cell.execution_count, name),
                )
        h.cells.append(cell)
        for note in provenance.drain_notes():
            binding = note.binding
            obj = note.ref() if note.ref is not None else None
            if binding is None and obj is not None:  # snapshotted in the cell that bound it
                name = next((n for n in flow.binds if ns.get(n) is obj), None)
                if name is not None:
                    binding = provenance.Binding(None, cell.seq, cell.execution_count, name)
            if binding is not None:
                h.pins.append(Pin(binding.seq, binding.name, note.snapshot_id, f"{note.name}@{note.version}"))
        self._scan_modules()
        return cell

    def _scan_modules(self) -> None:
        """Keep the source of local modules (not installed packages) as it was when first imported."""
        new = [n for n in list(sys.modules) if n not in self._skip_modules and n not in self._modules]
        if not new:
            return
        # local: under the working folder, or under a folder the notebook itself put on sys.path
        roots = [self.history.cwd or os.getcwd()]
        roots += [os.path.abspath(p) for p in sys.path if p and os.path.abspath(p) not in self._initial_path]
        roots = [r.rstrip(os.sep) + os.sep for r in roots]
        for name in new:
            self._skip_modules.add(name)
            mod = sys.modules.get(name)
            path = getattr(mod, "__file__", None)
            if not path or not path.endswith(".py") or name.split(".")[0] == "mlo":
                continue
            path = os.path.abspath(path)
            if not path.startswith(tuple(roots)) or _in_environment(path):
                continue
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            if len(data) <= MAX_MODULE_BYTES:
                self._modules[name] = (os.path.abspath(path), data)

    def save(self, run, upto: int, ws=None) -> None:
        """Store with ``run`` the cells of the history up to position ``upto`` that its results depend on
        (artifact ``mlo/capture.json``)."""
        from ..tracking.replay import plan

        ws = ws or run._ws
        h = self.history
        targets = {i for i in h.positions_of_run({run.id}) if i <= upto}
        if not targets:
            return
        for name, (path, data) in self._modules.items():
            if name not in h.modules:
                blob = journal.put_bytes(ws, run.id, data)
                h.modules[name] = {"path": path, "blob": blob, "size": len(data)}
        h.imported = sorted({n.split(".")[0] for n in sys.modules if not n.startswith("_")})
        session.store_bytes(ws, run.id, h.to_bytes(plan(h, targets).positions), CAPTURE_ARTIFACT)

    def warn(self, run, cell: Execution) -> None:
        """Show, once per cause, what threatens the reproducibility of ``run``. For a run still going, only when
        ``cell`` could add a cause (it reads a name not looked at yet, a file, or randomness)."""
        if not self.show_warnings:
            return
        h = self.history
        flow = h.flow(cell)
        seen = self._checked.setdefault(run.id, set())
        if session.is_live(run.id) and not (
            flow.uses - seen or cell.reads or cell.rng or flow.unseeded or cell.success is False
        ):
            return
        seen |= flow.uses
        targets = h.positions_of_run({run.id})
        if not targets:
            return
        found = hazards.find(
            h,
            targets,
            snapshot_sources=lambda: _snapshot_sources(run),
            notebook_cells=lambda: hazards.notebook_cells(h.notebook, h.cwd),
        )
        for hz in found:
            if hz.key in self.warned:
                continue
            self.warned.add(hz.key)
            print(f"mlo: ⚠ {hz.message}\n     fix: {hz.fix}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    from ..errors import MloError

    text = str(exc) if isinstance(exc, MloError) else f"{type(exc).__name__}: {exc}"
    return (text.strip().splitlines() or [""])[0]


def _random_state() -> tuple:
    """A cheap token of the global random generators' state (``random`` and numpy's legacy one)."""
    import random

    state = random.getstate()
    token: list = [state[1][-1], state[1][:4], state[2]]
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            st = np.random.get_state(legacy=True)
            token += [int(st[2]), bytes(st[1][:8].tobytes())]
        except Exception:
            pass
    return tuple(token)


def _files_named(literals: set[str], started: float, cwd: str | None) -> dict[str, set[str]]:
    """Files a cell names in string constants (readers that open files in C++ are not seen otherwise): written
    when modified since the cell started, read otherwise."""
    out: dict[str, set[str]] = {"read": set(), "written": set()}
    base = Path(cwd or os.getcwd())
    for text in literals:
        if "/" not in text and "." not in text:
            continue
        p = Path(text).expanduser()
        p = p if p.is_absolute() else base / p
        try:
            st = p.stat()
        except (OSError, ValueError):
            continue
        if not p.is_file() or "/." in str(p.resolve()):
            continue
        key = "written" if st.st_mtime >= started else "read"
        out[key].add(os.path.abspath(p))
    return out


def _in_environment(path: str) -> bool:
    p = os.path.abspath(path)
    if "site-packages" in p or "dist-packages" in p:
        return True
    return any(p.startswith(prefix + os.sep) for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix})


def _snapshot_sources(run) -> set[str]:
    """Paths of the files and folders the run has snapshots of (taken or loaded in it, or before it)."""
    try:
        staged = journal.stage_inputs(run._ws, run.id)
        if staged is not None:  # a pipeline stage: its deps, snapshotted by the runner (no store opened here)
            return staged
        from ..data.snapshots import in_scope

        ws = run._ws
        with ws.db.read() as conn:
            edges = ws.lineage.edges_touching([f"run:{run.id}"], conn)
        ids = {a.partition(":")[2] for a, b, _ in edges if a.startswith("snapshot:") and b == f"run:{run.id}"}
        ids |= set(in_scope(ws))
        out = set()
        for sid in ids:
            row = ws.snapshots.get(sid)
            if row.kind in ("file", "folder") and row.source:
                out.add(os.path.abspath(row.source))
                if row.kind == "folder":
                    out.update(str(p) for p in Path(row.source).rglob("*") if p.is_file())
        return out
    except Exception:
        return set()


def install(shell) -> CellRecorder:
    """The recorder of ``shell``, registered once (the magics and pipeline stage kernels both call this)."""
    rec = _RECORDERS.get(id(shell))
    if rec is None:
        rec = _RECORDERS[id(shell)] = CellRecorder(shell)
        rec.register()
    return rec


def forget(shell) -> None:
    """Drop the history of ``shell`` (and the hazards shown), as a new kernel would start."""
    uninstall(shell)
    for table in (_HISTORIES, _WARNED, _UNLOADED_AT):
        table.pop(id(shell), None)


def uninstall(shell) -> None:
    rec = _RECORDERS.pop(id(shell), None)
    if rec is not None:
        rec.unregister()
        raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or [""]
        _UNLOADED_AT[id(shell)] = len(raw) - 1  # the last cell IPython has stored


_RECORDERS: dict[int, CellRecorder] = {}
_UNLOADED_AT: dict[int, int] = {}  # shell -> execution count when mlo was unloaded
