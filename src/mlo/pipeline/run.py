"""Running a pipeline: schedule tasks as their upstream finishes, restore unchanged ones from the cache, execute
the rest (side by side with ``jobs``, or on Dask), stop dependants of a failure, and report.

Exit codes: 0 every task passed (or was cached), 1 a gate failed (and nothing else went wrong), 2 an error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import workspace
from ..data import files
from ..errors import InvalidInput
from ..tracking.short_ids import short_id
from . import execute as ex
from . import plan, spec, unchanged
from .execute import TaskResult

SYMBOLS = {"ok": "✓", "cached": "↺", "gate": "✗", "error": "✗", "skipped": "–"}


@dataclass
class PipelineResult:
    file: str
    run_id: str | None
    tasks: list[TaskResult] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        if any(t.status == "error" for t in self.tasks):
            return 2
        if any(t.status == "gate" for t in self.tasks):
            return 1
        return 0

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in SYMBOLS}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{n} {s}" for s, n in c.items() if n]
        verdict = {0: "passed", 1: "gate failed", 2: "failed"}[self.exit_code]
        return f"pipeline {verdict}: " + ", ".join(parts) + f" in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "tasks": [t.to_dict() for t in self.tasks],
        }

    def _repr_html_(self) -> str:
        from ..report.pipeline import pipeline_html

        return pipeline_html(self)


def parse_overrides(items: dict[str, Any] | list[str] | None) -> dict[str, dict[str, Any]]:
    """``{"train.C": 0.5}`` or ``["train.C=0.5"]`` → ``{"train": {"C": 0.5}}`` (CLI values read as literals)."""
    from .params import parse_value

    out: dict[str, dict[str, Any]] = {}
    if not items:
        return out
    pairs: list[tuple[str, Any]] = []
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidInput(f"-p {item!r}: write stage.param=value, e.g. -p train.C=0.5")
            pairs.append((key, parse_value(value)))
    for key, value in pairs:
        stage, dot, name = key.partition(".")
        if not dot or not stage or not name:
            raise InvalidInput(f"parameter {key!r}: name it stage.param, e.g. train.C")
        out.setdefault(stage, {})[name] = value
    return out


def _dep_digests(ws: workspace.Workspace, root: Path, task: plan.Task) -> dict[str, str]:
    out = {}
    for dep in task.deps:
        path = root / dep
        out[dep] = files.snapshot_path(ws, path, store=False).digest if path.exists() else "missing"
    return out


class _Printer:
    def __init__(self, log: Callable[[str], None] | None, total: int, progress: bool | None):
        self.log = log
        self.bar = None
        if progress is None:
            progress = log is print and sys.stderr.isatty()
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="task", leave=False, file=sys.stderr)

    def task(self, r: TaskResult) -> None:
        if self.log is not None:
            detail = r.message or (f"{r.seconds:.1f} s" + (f"  run {short_id(r.run_id)}" if r.run_id else ""))
            line = f"  {SYMBOLS[r.status]} {r.name:<30} {detail}"
            if self.bar is not None:
                self.bar.write(line)
            else:
                self.log(line)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Local:
    def __init__(self, jobs: int):
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mlo-stage")

    def submit(self, fn: Callable[[], TaskResult]) -> Future:
        return self.pool.submit(fn)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class _Dask:
    """Tasks run in Dask workers (separate processes, or other machines sharing the files and the store)."""

    def __init__(self, address: str | None, jobs: int):
        try:
            from dask.distributed import Client, LocalCluster
        except ModuleNotFoundError:
            raise InvalidInput("the dask executor needs Dask: pip install 'mlo-workbench[dask]'") from None
        self.cluster = None
        if address:
            self.client = Client(address, timeout="30s")
        else:
            self.cluster = LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            )
            self.client = Client(self.cluster)
        self.waiters = ThreadPoolExecutor(max_workers=max(jobs, 1) * 2, thread_name_prefix="mlo-dask")

    def submit_remote(self, payload: dict) -> Future:
        fut = self.client.submit(_remote_task, payload, pure=False)
        return self.waiters.submit(lambda: TaskResult(**fut.result()))

    def close(self) -> None:
        self.waiters.shutdown(wait=True)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _remote_task(payload: dict) -> dict:
    """Run one task in a Dask worker: same store, same files, same code path as a local task."""
    for var in ("MLO_HOME", "MLO_STORE", "MLO_ARTIFACTS"):
        if payload["env"].get(var):
            os.environ[var] = payload["env"][var]
    workspace.reset_cache()
    ws = workspace.current()
    pipeline = spec.load(payload["file"])
    tasks = plan.expand(pipeline, pipeline.select([payload["stage"]]), payload["overrides"])
    task = next(t for t in tasks if t.name == payload["task"])
    r = ex.execute(
        ws, pipeline.root, task, payload["key"], experiment=pipeline.experiment, parent_id=payload["parent"]
    )
    from ..tracking import session

    session.flush()
    return r.to_dict()


def _executor(executor: str, jobs: int):
    if executor == "local":
        return _Local(jobs)
    if executor == "dask" or executor.startswith("dask://"):
        address = executor[len("dask://") :] if executor.startswith("dask://") else None
        return _Dask(f"tcp://{address}" if address and "://" not in address else address, jobs)
    raise InvalidInput(f"unknown executor {executor!r}: use local, dask, or dask://host:port")


def run(
    file: str | os.PathLike = "pipeline.yaml",
    *,
    stages: list[str] | str | None = None,
    jobs: int = 1,
    force: bool = False,
    dry_run: bool = False,
    params: dict[str, Any] | list[str] | None = None,
    executor: str = "local",
    junit: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> PipelineResult:
    """Run a pipeline file; see the module docstring and docs/pipelines.md.

    Parameters
    ----------
    file : path
        The pipeline YAML.
    stages : list of str, optional
        Only these stages (and what they need).
    jobs : int
        Tasks run side by side (independent stages and matrix cells).
    force : bool
        Execute even the tasks whose cache key is unchanged.
    dry_run : bool
        Plan only: list each task as cached or to run, execute nothing.
    params : dict or list of str
        Overrides, ``{"train.C": 0.5}`` or ``["train.C=0.5"]``.
    executor : str
        ``local`` (threads in this process), ``dask`` (a LocalCluster) or ``dask://host:port``.
    junit : path, optional
        Write a JUnit XML report here (one test case per task).
    log : callable or None
        Where progress lines go (``print`` by default; ``None`` for silence).
    """
    t0 = time.perf_counter()
    if not isinstance(jobs, int) or jobs < 1:
        raise InvalidInput(f"jobs must be a whole number >= 1, not {jobs!r}")
    pipeline = spec.load(file)
    names = [stages] if isinstance(stages, str) else stages
    selected = pipeline.select(names) if names else pipeline.order()
    overrides = parse_overrides(params)
    tasks = plan.expand(pipeline, selected, overrides)
    ws = workspace.current()
    result = PipelineResult(str(pipeline.path), None, dry_run=dry_run)
    if not force and not dry_run and unchanged.enabled():
        hits = unchanged.all_cached(ws, pipeline.root, tasks)
        if hits is not None:  # every task unchanged and in place: nothing to run, restore or record
            result.tasks = hits
            if log:
                log(f"pipeline {pipeline.path.name}: {len(tasks)} task{'s' * (len(tasks) != 1)}, all cached")
                for r in hits:
                    log(f"  {SYMBOLS[r.status]} {r.name:<30} {r.message}")
            result.seconds = time.perf_counter() - t0
            if junit:
                from .junit import write_junit

                write_junit(result, Path(junit))
            if log:
                log(result.summary())
            return result
    keys: dict[str, str] = {}
    if dry_run:
        for task in tasks:
            key = plan.cache_key(
                task, _dep_digests(ws, pipeline.root, task), [keys.get(u, "") for u in task.upstream]
            )
            keys[task.name] = key
            hit = None if force else ws.stage_cache.get(key)
            status = "cached" if hit else "to run"
            result.tasks.append(
                TaskResult(
                    task.name, task.stage.name, "cached" if hit else "skipped", key=key, message=status
                )
            )
            if log:
                log(f"  {'↺' if hit else '▶'} {task.name:<30} {status}")
        result.seconds = time.perf_counter() - t0
        return result

    from ..tracking import session  # here: a fully cached pipeline gets by without it

    active = session.active_run()
    prun = session.start_run(
        f"pipeline:{pipeline.path.stem}",
        pipeline.experiment,
        params={
            "file": str(pipeline.path),
            "stages": ",".join(selected),
            "jobs": jobs,
            "force": force,
            "executor": executor,
        },
        tags={"mlo.pipeline": str(pipeline.path)},
        parent=active.id if active is not None else None,
        activate=False,
    )
    result.run_id = prun.id
    if log:
        log(
            f"pipeline {pipeline.path.name}: {len(tasks)} task{'s' * (len(tasks) != 1)}, run {short_id(prun.id)}"
        )
    printer = _Printer(log, len(tasks), progress)
    pool = _executor(executor, jobs)
    done: dict[str, TaskResult] = {}
    pending = list(tasks)
    running: dict[Future, plan.Task] = {}
    try:
        while pending or running:
            for task in list(pending):
                if len(running) >= jobs:
                    break
                ups = [done.get(u) for u in task.upstream]
                if any(u is None for u in ups):
                    continue
                pending.remove(task)
                bad = next((u for u in ups if u.status in ("gate", "error", "skipped")), None)
                if bad is not None:
                    r = TaskResult(
                        task.name, task.stage.name, "skipped", message=f"skipped: {bad.name} did not pass"
                    )
                    done[task.name] = r
                    printer.task(r)
                    continue
                key = plan.cache_key(
                    task, _dep_digests(ws, pipeline.root, task), [keys[u] for u in task.upstream]
                )
                keys[task.name] = key
                hit = None if force else ex.cached(ws, pipeline.root, task, key)
                if hit is not None:
                    done[task.name] = hit
                    printer.task(hit)
                    continue
                if isinstance(pool, _Dask):
                    fut = pool.submit_remote(
                        {
                            "file": str(pipeline.path),
                            "stage": task.stage.name,
                            "task": task.name,
                            "overrides": overrides,
                            "key": key,
                            "parent": prun.id,
                            "env": {v: os.environ.get(v, "") for v in ("MLO_STORE", "MLO_ARTIFACTS")}
                            | {"MLO_HOME": str(ws.home)},
                        }
                    )
                else:
                    fut = pool.submit(
                        lambda task=task, key=key: ex.execute(
                            ws, pipeline.root, task, key, experiment=pipeline.experiment, parent_id=prun.id
                        )
                    )
                running[fut] = task
            if not running:
                if (
                    pending
                ):  # only blocked tasks left: their upstream is in a cycle or missing (cannot happen)
                    raise InvalidInput(f"cannot schedule {', '.join(t.name for t in pending)}")
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                task = running.pop(fut)
                try:
                    r = fut.result()
                except Exception as exc:  # the executor itself failed (e.g. a Dask worker died)
                    r = TaskResult(
                        task.name, task.stage.name, "error", message=f"{type(exc).__name__}: {exc}"
                    )
                done[task.name] = r
                printer.task(r)
    except BaseException as exc:
        # interrupted (Ctrl-C) or the scheduler itself failed: close the pipeline run
        session.end_run("killed" if isinstance(exc, KeyboardInterrupt) else "failed", run=prun)
        raise
    finally:
        pool.close()
        printer.close()
    result.tasks = [done[t.name] for t in tasks if t.name in done]
    result.seconds = time.perf_counter() - t0
    c = result.counts()
    session.log_metrics(
        {
            "tasks": len(tasks),
            "executed": c["ok"],
            "cached": c["cached"],
            "failed": c["gate"] + c["error"],
            "skipped": c["skipped"],
            "seconds": result.seconds,
        },
        run=prun,
    )
    session.end_run("finished" if result.exit_code == 0 else "failed", run=prun)
    if junit:
        from .junit import write_junit

        write_junit(result, Path(junit))
    if log:
        log(result.summary())
    return result


def run_notebook(
    notebook: str | os.PathLike,
    params: dict[str, Any] | None = None,
    *,
    experiment: str | None = None,
    name: str | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
) -> TaskResult:
    """Execute one notebook as a tracked run (``mlo run NB.ipynb -p k v``); parameters are checked first."""
    from .params import check, defaults, read_notebook

    path = Path(notebook).resolve()
    if not path.is_file():
        raise InvalidInput(f"no notebook at {notebook}")
    nb = read_notebook(path)
    declared = defaults(nb)
    values = check(dict(params or {}), declared, path.name)
    stage = spec.Stage(name=name or path.stem, notebook=path, kernel=kernel, timeout=timeout)
    task = plan.Task(
        stage,
        stage.name,
        values,
        [],
        kernel or nb["metadata"].get("kernelspec", {}).get("name") or "python3",
        plan.notebook_source_digest(nb),
    )
    from ..tracking import session

    ws = workspace.current()
    active = session.active_run()
    return ex.execute(
        ws,
        Path(cwd).resolve() if cwd else Path.cwd(),
        task,
        None,
        experiment=experiment or session.current_experiment(),
        parent_id=active.id if active is not None else None,
    )
