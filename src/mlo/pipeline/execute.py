"""One task: restore it from the run cache, or execute its notebook with papermill as a tracked run.

The kernel runs in the pipeline folder with ``MLO_RUN_ID`` set, so whatever the notebook logs lands in the
stage's run (and runs it starts become that run's children). A cell that raises ``GateFailed`` is a gate: the
task fails with exit code 1 semantics and is never retried; other failures are errors, retried ``retries`` times.
A kernel that fails to start (port races, slow machines) is retried on its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import workspace
from ..data import files
from ..store.blobs import hash_file
from ..tracking import journal
from .plan import Task

KERNEL_START_RETRIES = 3
GATE_ERRORS = {"GateFailed"}
STAGE_HOOK = "--IPKernelApp.exec_lines=['import mlo.jupyter.stage']"
_HASH_BELOW = 4 << 20  # bytes: a cached out this small is hashed rather than looked up


@dataclass
class TaskResult:
    name: str
    stage: str
    status: str  # ok | cached | gate | error | skipped
    seconds: float = 0.0
    run_id: str | None = None
    message: str = ""
    cell: int | None = None
    notebook: str | None = None  # the executed notebook
    key: str | None = None
    attempts: int = 0

    @property
    def failed(self) -> bool:
        return self.status in ("gate", "error")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot_name(path: str) -> str:
    """A snapshot name for a pipeline file path: ``data/train.parquet`` → ``data-train.parquet``."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", path.strip("./").replace("/", "-"))
    return name if name and name[0].isalnum() else f"f{name}"


def _kernel_manager(env: dict[str, str], cwd: str, log):
    """A kernel manager class whose kernels start in ``cwd`` with ``env`` added (per task, thread-safe: papermill's
    own ``cwd=`` changes the whole process's folder)."""
    from jupyter_client.manager import AsyncKernelManager

    class TaskKernelManager(AsyncKernelManager):
        # Unix sockets, not TCP ports: no port collisions between kernels started side by side
        transport = "ipc" if os.name == "posix" else "tcp"
        # ipykernel sometimes hangs in its own shutdown; stop waiting for it sooner (metrics are flushed per cell)
        shutdown_wait_time = 1.5

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._socket_dir = None
            if self.transport == "ipc":
                self._socket_dir = tempfile.mkdtemp(prefix="mlo-kernel-")
                self.ip = os.path.join(self._socket_dir, "k")

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if self._socket_dir and not restart:  # the folder of the kernel's sockets
                shutil.rmtree(self._socket_dir, ignore_errors=True)

        async def start_kernel(self, **kw):  # type: ignore[override]
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            kw.setdefault("cwd", cwd)
            if self.kernel_name.startswith("python"):  # ipykernel: flush mlo's metrics after every cell
                kw["extra_arguments"] = [*(kw.get("extra_arguments") or []), STAGE_HOOK]
            kw.setdefault("stdout", log)  # what the kernel process itself prints (not cell output)
            kw.setdefault("stderr", log)
            return await super().start_kernel(**kw)

    return TaskKernelManager


def _is_start_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return (
        "kernel" in text and ("died" in text or "start" in text or "timed out" in text)
    ) or "address" in text


def restore(ws: workspace.Workspace, root: Path, outs: list[dict]) -> int:
    """Put cached outs back where the stage writes them; return how many had to be written."""
    written = 0
    for out in outs:
        target = root / out["path"]
        if out["kind"] == "file" and target.is_file():
            # a small file is hashed; a large one is known by its size, mtime and inode when unchanged since hashed
            if target.stat().st_size <= _HASH_BELOW:
                same = hash_file(target) == out["digest"]
            else:
                same = files.snapshot_path(ws, target, store=False).digest == out["digest"]
            if same:
                continue
        if out["kind"] == "folder" and target.is_dir():
            if files.snapshot_path(ws, target, store=False).digest == out["digest"]:
                continue
        if out["kind"] == "file":
            files.restore(ws, "file", out["blob"], out["path"], target)
        else:
            files.restore(ws, "folder", out["blob"], out["path"], target)
        written += 1
    return written


def _well_formed(outs: object) -> bool:
    keys = ("path", "kind", "digest", "blob")
    return isinstance(outs, list) and all(
        isinstance(o, dict) and all(isinstance(o.get(k), str) for k in keys) for o in outs
    )


def cached(ws: workspace.Workspace, root: Path, task: Task, key: str) -> TaskResult | None:
    try:
        entry = ws.stage_cache.get(key)
    except ValueError:  # a damaged row (not JSON): a miss, and executing the task writes it again
        return None
    if (
        entry is None
        or not _well_formed(entry.outs)
        or not all(ws.blobs.exists(o["blob"]) for o in entry.outs)
    ):
        return None
    t0 = time.perf_counter()
    n = restore(ws, root, entry.outs)
    from ..tracking.short_ids import short_id

    note = f"cached (run {short_id(entry.run_id)})" + (f", restored {n} out{'s' * (n != 1)}" if n else "")
    return TaskResult(
        task.name, task.stage.name, "cached", time.perf_counter() - t0, entry.run_id, note, key=key
    )


def execute(
    ws: workspace.Workspace,
    root: Path,
    task: Task,
    key: str | None,
    *,
    experiment: str,
    parent_id: str | None,
    extra_tags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> TaskResult:
    """Execute the task's notebook as a run (child of ``parent_id``); snapshot deps and outs; fill the cache.
    ``env`` adds variables to the kernel's environment."""
    from ..data.snapshots import snapshot
    from ..tracking import session

    t0 = time.perf_counter()
    stage = task.stage
    tags = {
        "mlo.stage": stage.name,
        "mlo.notebook": str(stage.notebook),
        "mlo.workdir": str(root),
        **(extra_tags or {}),
    }
    if key:
        tags["mlo.cache_key"] = key
    run = session.start_run(
        task.name, experiment, params=task.params, tags=tags, parent=parent_id, activate=False
    )
    result = TaskResult(task.name, stage.name, "error", run_id=run.id, key=key)
    records = None  # the kernel's journal of the run, stored when the kernel has ended
    try:
        for dep in task.deps:
            path = root / dep
            if not path.exists():
                result.message = (
                    f"dep {dep} does not exist (no stage makes it, or the stage that does failed)"
                )
                return result
            snapshot(path, snapshot_name(dep), run=run)
        out_dir = ws.home / "executions"
        out_dir.mkdir(parents=True, exist_ok=True)
        output = out_dir / (re.sub(r"[^A-Za-z0-9_.=,\-]", "_", task.name) + ".ipynb")
        result.notebook = str(output)
        # a journal left by a runner killed during an earlier run of this task: its records belong to that run
        journal.recover(ws, out_dir, output.stem)
        records = output.with_suffix(f".{run.id}.journal")
        inputs = json.dumps([str((root / dep).resolve()) for dep in task.deps])
        kernel_env = {journal.ENV: str(records), journal.INPUTS_ENV: inputs, **(env or {})}
        with journal.Follower(ws, run.id, records):  # the kernel's cells and artifacts show as it runs
            _run_papermill(ws, root, task, run.id, experiment, output, result, kernel_env)
        journal.ingest(ws, run.id, records)
        records = None
        if output.is_file():
            session.log_bytes(output.read_bytes(), "notebook.ipynb", run=run)
        if result.status == "ok":
            outs = []
            for out in task.outs:
                path = root / out
                if not path.exists():
                    result.status = "error"
                    result.message = (
                        f"the notebook ran but did not write {out}, which the stage declares in outs"
                    )
                    break
                snap = snapshot(path, snapshot_name(out), role="output", run=run)
                outs.append(
                    {
                        "path": out,
                        "kind": snap.kind,
                        "digest": snap.digest,
                        "blob": snap.blob,
                        "snapshot_id": snap.id,
                    }
                )
            if result.status == "ok" and key:
                nb_blob = ws.blobs.put_file(output) if output.is_file() else None
                ws.stage_cache.put(key, stage.name, task.name, run.id, outs, nb_blob)
        return result
    except (
        Exception
    ) as exc:  # bookkeeping failed (store, disk): report it on the task, keep the pipeline going
        result.status = "error"
        result.message = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        if records is not None:  # the kernel's records, also when bookkeeping failed after it ended
            try:
                journal.ingest(ws, run.id, records)
            except Exception as exc:
                if not result.failed:
                    result.status, result.message = "error", f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - t0
        if result.failed:
            session.set_tags({"mlo.failure": result.message[:1000]}, run=run)
        session.end_run("finished" if result.status == "ok" else "failed", run=run)


def _run_papermill(
    ws: workspace.Workspace,
    root: Path,
    task: Task,
    run_id: str,
    experiment: str,
    output: Path,
    result: TaskResult,
    extra_env: dict[str, str],
) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    env = {
        "MLO_HOME": str(ws.home),
        "MLO_RUN_ID": run_id,
        "MLO_PARENT_RUN": run_id,
        "MLO_NOTEBOOK": str(task.notebook),
        "MLO_EXPERIMENT": experiment,
    }
    for var in ("MLO_STORE", "MLO_ARTIFACTS"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    env.update(extra_env)
    # what the kernel process prints outside cells (warnings, crashes) goes next to the executed notebook
    with open(output.with_suffix(".kernel.log"), "wb") as log:
        _attempts(papermill, PapermillExecutionError, task, env, root, output, result, log)


def _attempts(
    papermill, execution_error, task: Task, env, root: Path, output: Path, result: TaskResult, log
) -> None:
    retries_left = task.stage.retries
    start_failures = 0
    while True:
        result.attempts += 1
        try:
            papermill.execute_notebook(
                str(task.notebook),
                str(output),
                parameters=task.params,
                kernel_name=task.kernel,
                progress_bar=False,
                execution_timeout=task.stage.timeout,
                start_timeout=120,
                kernel_manager_class=_kernel_manager(env, str(root), log),
            )
            result.status, result.message = "ok", ""
            return
        except execution_error as exc:
            cell = exc.exec_count or exc.cell_index
            result.cell = cell
            first = (exc.evalue or "").strip().splitlines()[0] if exc.evalue else ""
            if exc.ename in GATE_ERRORS:
                result.status, result.message = "gate", f"gate failed in cell {cell}: {first}"
                return
            result.status, result.message = "error", f"{exc.ename} in cell {cell}: {first}"
        except Exception as exc:
            name = type(exc).__name__
            if _is_start_failure(exc) and "DeadKernel" not in name and start_failures < KERNEL_START_RETRIES:
                start_failures += 1
                result.attempts -= 1
                time.sleep(0.5 * start_failures)
                continue
            if "DeadKernel" in name:
                result.status, result.message = "error", "the kernel died (killed, or out of memory)"
            elif "Timeout" in name:
                result.status, result.message = "error", f"timed out after {task.stage.timeout:g} s: {exc}"
            else:
                result.status, result.message = "error", f"{name}: {exc}"
        if retries_left <= 0:
            return
        retries_left -= 1
