"""The process's tracking state: the active run stack, the writers that buffer what runs log, the heartbeat
that keeps live runs from being mistaken for dead ones, and the clean-up at exit."""

from __future__ import annotations

import atexit
import json
import logging
import mimetypes
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from .. import workspace
from ..errors import InvalidInput
from ..names import check_label, check_text, control_character
from ..store.ids import new_id, now_us
from ..store.tags import REPRODUCES_TAG
from . import capture, journal
from .metrics import MetricBuffer, _as_float, check_key, check_series, is_series
from .run import Run, check_status

log = logging.getLogger("mlo")

HEARTBEAT_SECONDS = float(os.environ.get("MLO_HEARTBEAT_SECONDS", "10"))
STALE_SECONDS = float(os.environ.get("MLO_STALE_SECONDS", "300"))  # for runs owned by another host


class RunWriter:
    """What this process holds for a run it writes to: the metric buffer and its capture job."""

    def __init__(self, ws: workspace.Workspace, run_id: str, owned: bool):
        self.ws = ws
        self.run_id = run_id
        self.owned = owned  # this process started (or resumed) the run and must end it
        self.metrics = MetricBuffer(
            lambda series: journal.write_metrics(ws, run_id, series),
            max_points=int(os.environ.get("MLO_FLUSH_POINTS", "200000")),
            max_seconds=float(os.environ.get("MLO_FLUSH_SECONDS", "5")),
        )


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stack: list[Run] = []
        self.writers: dict[str, RunWriter] = {}
        self.experiment: str | None = None
        self.pid = os.getpid()
        self.heartbeat: threading.Thread | None = None
        self.stop = threading.Event()
        self.executor: ThreadPoolExecutor | None = None
        self.uncaught: BaseException | None = None
        self.captures: dict[str, Future] = {}  # run id -> git/environment capture job
        self.capture_queue: list = []
        self.capture_scheduled = False
        self.attach_checked = False


_state = _State()

# Called with (workspace, run) after a run starts, and before it ends: other parts of mlo record what the run
# came from (e.g. the data snapshots in memory become the inputs of a run that named none).
RUN_START_HOOKS: list[Callable[[workspace.Workspace, Run], None]] = []
RUN_END_HOOKS: list[Callable[[workspace.Workspace, Run], None]] = []
# Called with (workspace, run) when this process attaches to the run it was started for (MLO_RUN_ID)
RUN_ATTACH_HOOKS: list[Callable[[workspace.Workspace, Run], None]] = []


def _reset_after_fork() -> None:
    # A forked child logs into the parent's active runs through fresh buffers; it does not own (end) them.
    global _state
    old = _state
    _state = _State()
    _state.experiment = old.experiment
    _state.attach_checked = old.attach_checked
    _state.stack = list(old.stack)
    _state.writers = {
        run.id: RunWriter(old.writers[run.id].ws, run.id, owned=False)
        for run in old.stack
        if run.id in old.writers
    }


os.register_at_fork(after_in_child=_reset_after_fork)


# -- experiments ------------------------------------------------------------------------------------------------
def set_experiment(name: str) -> str:
    """Make ``name`` the experiment of runs started from now on (created on first use)."""
    _state.experiment = check_label(name, "experiment name")
    return _state.experiment


def current_experiment() -> str:
    return _state.experiment or os.environ.get("MLO_EXPERIMENT") or "default"


def chosen_experiment() -> str | None:
    """The experiment set with :func:`set_experiment` (``%mlo experiment``) or ``MLO_EXPERIMENT``; None when
    neither was, and listings then show every experiment."""
    return _state.experiment or os.environ.get("MLO_EXPERIMENT") or None


# -- run lifecycle ----------------------------------------------------------------------------------------------
def start_run(
    name: str | None = None,
    experiment: str | None = None,
    *,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    nested: bool = False,
    parent: str | Run | None = None,
    run_id: str | None = None,
    activate: bool = True,
    run_name: str | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Start a run and make it the active one.

    Parameters
    ----------
    name : str, optional
        A readable name; defaults to ``run-<UTC date>-<time>``. ``run_name=`` (MLflow's spelling) works too.
    experiment : str, optional
        The experiment to file it under; defaults to the one set with :func:`set_experiment`,
        ``MLO_EXPERIMENT`` or ``"default"``.
    params, tags : dict, optional
        Logged with the run in the same transaction.
    nested : bool
        Allow starting while another run is active; the new run becomes its child.
    parent : str or Run, optional
        An explicit parent run (``MLO_PARENT_RUN`` by default).
    run_id : str, optional
        Resume an existing run instead of creating one.
    activate : bool
        Make it the active run (default). ``False`` starts a run that this process owns and must end with
        ``end_run(run=...)`` but that does not become the active one (for runs started on behalf of others,
        such as pipeline stages running side by side).
    run_name, description, parent_run_id : optional
        MLflow's spellings: ``run_name`` is ``name``, ``description`` becomes the run's Markdown note,
        ``parent_run_id`` is ``parent``.

    Returns
    -------
    Run
        Usable as a context manager: the run ends when the block exits (``failed`` on an exception).
    """
    if run_name is not None:
        if name is not None and name != run_name:
            raise InvalidInput("give the run's name once: name= or run_name=, not both")
        name = run_name
    if parent_run_id is not None:
        if parent is not None:
            raise InvalidInput("give the parent once: parent= or parent_run_id=, not both")
        parent = parent_run_id
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"description must be Markdown text, got {type(description).__name__}")
    for label, value in (("run_id", run_id), ("parent", parent)):
        if value is not None and not isinstance(value, (str, Run) if label == "parent" else str):
            raise InvalidInput(
                f"{label} must be a run id{' or a Run' if label == 'parent' else ''}, got {value!r:.40}"
            )
    ws = workspace.current()
    _attach_from_env()
    with _state.lock:
        active = _state.stack[-1] if _state.stack else None
        if active is not None and not _state.writers[active.id].owned and parent is None:
            nested = True  # the run this process was started for (MLO_RUN_ID) is the parent of its runs
        if active is not None and not nested and parent is None and activate:
            raise InvalidInput(
                f"run {active.name!r} ({active.id}) is still active: end it first (mlo.end_run() or %mlo end), "
                "or pass nested=True to start a child run"
            )
        store = ws.runs
        if run_id is not None:
            run = Run(ws, store.resolve_run_id(run_id))
            store.resume_run(run.id, capture.owner())
            if params:
                log_params(params, run=run)
            if tags:
                set_tags(tags, run=run)
        else:
            parent_id = parent.id if isinstance(parent, Run) else parent
            if isinstance(parent_id, str):
                parent_id = store.resolve_run_id(parent_id)  # a full id or a unique prefix
            if parent_id is None:
                parent_id = active.id if (nested and active is not None) else os.environ.get("MLO_PARENT_RUN")
            rid = new_id()
            reproduces = workspace.reproducing()
            if (
                reproduces is not None
            ):  # every run of a replay is part of the reproduction, hidden from listings
                tags = {**(tags or {}), REPRODUCES_TAG: reproduces}
            exp_name = check_label(
                current_experiment() if experiment is None else experiment, "experiment name"
            )
            label = (
                time.strftime("run-%Y%m%d-%H%M%S", time.gmtime())
                if name is None
                else check_label(name, "run name")
            )
            store.create_run(
                run_id=rid,
                experiment_id=store.experiment_id(exp_name),
                name=label,
                start_time=now_us(),
                owner=capture.owner(),
                user=capture.user(),
                source=capture.source_path(),
                parent_id=parent_id,
                params=_encode_params(params or {}),
                tags=_encode_tags(tags or {}),
            )
            run = Run(ws, rid)
        writer = RunWriter(ws, run.id, owned=True)
        _state.writers[run.id] = writer
        if activate:
            _state.stack.append(run)
        _schedule_capture(ws, run.id)
        _ensure_heartbeat()
    if description and description.strip():
        from ..store.lifecycle import LifecycleStore

        LifecycleStore(ws.db).set_note(run.id, description.strip())
    for hook in RUN_START_HOOKS:
        hook(ws, run)
    return run


def end_run(status: str = "finished", *, run: Run | None = None) -> None:
    """End the active run (or ``run``) with ``status``: ``finished``, ``failed`` or ``killed`` (in any case:
    MLflow's ``"FINISHED"`` works)."""
    status = check_status(status)
    _check_run(run)
    with _state.lock:
        if run is None:
            if not _state.stack:
                return
            run = _state.stack[-1]
        w = _state.writers.pop(run.id, None)
        if run in _state.stack:
            _state.stack.remove(run)
    ws = w.ws if w is not None else workspace.current()
    try:
        for hook in RUN_END_HOOKS:
            hook(ws, run)
    except Exception:  # a hook must never keep a run from ending
        logging.getLogger("mlo").warning("recording lineage of run %s failed", run.id, exc_info=True)
    if w is not None:
        # the last metrics and the status in one transaction
        if not w.metrics.flush(lambda series: w.ws.runs.end_run(run.id, status, series=series)):
            w.ws.runs.end_run(run.id, status)
    else:
        ws.runs.end_run(run.id, status)


def active_run() -> Run | None:
    """The innermost active run of this process, or None."""
    _attach_from_env()
    with _state.lock:
        return _state.stack[-1] if _state.stack else None


def is_attached(run: Run) -> bool:
    """Whether ``run`` is active here without being owned (the MLO_RUN_ID run of a pipeline stage)."""
    w = _state.writers.get(run.id)
    return w is not None and not w.owned


def attached_run_id() -> str | None:
    """The run this process was started for (``MLO_RUN_ID``), when it is attached."""
    _attach_from_env()
    with _state.lock:
        for run in _state.stack:
            w = _state.writers.get(run.id)
            if w is not None and not w.owned:
                return run.id
    return None


def _attach_from_env() -> None:
    """A process started for a run (``MLO_RUN_ID``, e.g. a pipeline stage's kernel) logs into it: the run is
    active here from the start, and runs started here become its children. The starter owns and ends it."""
    if _state.attach_checked:
        return
    with _state.lock:
        if _state.attach_checked:
            return
        try:
            run_id = os.environ.get("MLO_RUN_ID")
            if not run_id or _state.stack:
                return
            ws = workspace.current()
            # a stage's kernel keeps its records in the journal its starter named: the id is exact, and the
            # store is not opened for it
            exact = journal.for_run(ws, run_id) is not None
            run = Run(ws, run_id if exact else ws.runs.resolve_run_id(run_id))
            _state.writers[run.id] = RunWriter(ws, run.id, owned=False)
            _state.stack.append(run)
        finally:  # only now: a caller on another thread waits for the lock, then finds the run attached
            _state.attach_checked = True
    _ensure_heartbeat()
    for hook in RUN_ATTACH_HOOKS:
        hook(ws, run)


def is_live(run_id: str) -> bool:
    return run_id in _state.writers


def get_run(ref: str) -> Run:
    """The run with id (or unique id prefix) ``ref``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"run id must be a non-empty string, got {ref!r}")
    ws = workspace.current()
    reap(ws)
    return Run(ws, ws.runs.resolve_run_id(ref))


def _check_run(run: Any) -> None:
    if run is not None and not isinstance(run, Run):
        raise InvalidInput(
            f"run= takes a Run (from mlo.start_run or mlo.get_run), got {type(run).__name__} {run!r:.40}"
        )


def writer(run: Run | None = None) -> RunWriter:
    """The writer of ``run`` or of the active run; starts a run when none is active (like MLflow)."""
    _check_run(run)
    if run is None:
        _attach_from_env()
        stack = _state.stack
        if stack:
            return _state.writers[stack[-1].id]
        run = start_run()
        return _state.writers[run.id]
    w = _state.writers.get(run.id)
    if w is None:
        with _state.lock:
            w = _state.writers.get(run.id)
            if w is None:
                w = _state.writers[run.id] = RunWriter(run._ws, run.id, owned=False)
                _ensure_heartbeat()
    return w


def flush(run_id: str | None = None) -> None:
    """Write buffered metric points now (of one run, or of every run this process writes)."""
    for rid, w in list(_state.writers.items()):
        if run_id is None or rid == run_id:
            w.metrics.flush()


# -- logging ------------------------------------------------------------------------------------------------------
def _encode_value(value: Any) -> str:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def _encode_params(params: dict[str, Any]) -> dict[str, str]:
    if not isinstance(params, dict):
        raise InvalidInput(f"params must be a dict, got {type(params).__name__}")
    return {check_key(k, "param"): _encode_value(v) for k, v in params.items()}


def _encode_tags(tags: dict[str, Any]) -> dict[str, str]:
    if not isinstance(tags, dict):
        raise InvalidInput(f"tags must be a dict, got {type(tags).__name__}")
    return {check_key(k, "tag"): check_text(str(v), f"tag {k!r}") for k, v in tags.items()}


def log_param(key: str, value: Any) -> None:
    """Log one parameter of the active run (any JSON-able value; others are stored as text)."""
    log_params({check_key(key, "param"): value})


def log_params(params: dict[str, Any], *, run: Run | None = None) -> None:
    """Log parameters of the active run (or ``run``); a later value of the same key replaces the earlier."""
    encoded = _encode_params(params)
    w = writer(run)
    w.ws.runs.set_params(w.run_id, encoded)


def log_metric(key: str, value: float, step: int | None = None, *, timestamp: float | None = None) -> None:
    """Log one metric point. ``step`` defaults to the key's previous step + 1 (0 at first). Buffered.

    ``value`` may also be many points at once (a list or 1-D array), with ``step`` an array of as many integers,
    the first step, or None (going on from the key's last step): a training loop can log a whole epoch of batch
    losses in one call."""
    stack = _state.stack
    if key.__class__ is not str or not stack:  # checked before a run is started for it
        check_key(key)
        if is_series(value):
            check_series({key: value}, step)
        else:
            _as_float(key, value)
    w = _state.writers[stack[-1].id] if stack else writer()
    w.metrics.add(key, value, step, timestamp)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    *,
    timestamp: float | None = None,
    run: Run | None = None,
) -> None:
    """Log several metric points at once (all or none are accepted), to the active run or ``run``.

    The values may be arrays of one length (``{"loss": losses, "acc": accs}``) with ``step`` an array of that
    many integers, the first step, or None: every key gets every point, in one call."""
    if not isinstance(metrics, dict):
        raise InvalidInput(f"metrics must be a dict, got {type(metrics).__name__}")
    if run is None and not _state.stack and any(is_series(v) for v in metrics.values()):
        check_series(metrics, step)  # before a run is started for them
    writer(run).metrics.add_many(metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    set_tags({check_key(key, "tag"): value})


def set_tags(tags: dict[str, Any], *, run: Run | None = None) -> None:
    """Set tags (string values) on the active run (or ``run``)."""
    encoded = _encode_tags(tags)
    w = writer(run)
    w.ws.runs.set_tags(w.run_id, encoded)


def artifact_path(path: str | os.PathLike) -> str:
    """Normalize a run-relative artifact path; refuse one that would escape the run's artifact root."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"artifact path must be a string or path, got {type(path).__name__}")
    text = str(path).replace("\\", "/")
    bad = control_character(text)
    if bad is not None:
        raise InvalidInput(f"artifact path {text[:40]!r} holds the control character {bad!r}")
    p = PurePosixPath(text)
    if not text or p.is_absolute() or ".." in p.parts or text.startswith("~"):
        raise InvalidInput(
            f"artifact path {str(path)!r} must be relative and stay inside the run (no '..', no '/')"
        )
    parts = [part for part in p.parts if part not in ("", ".")]
    if not parts:
        raise InvalidInput(f"artifact path {str(path)!r} names no file")
    return "/".join(parts)


def _media_type(path: str) -> str | None:
    return mimetypes.guess_type(path)[0]


def log_artifact(
    local_path: str | os.PathLike, artifact_path_: str | None = None, *, run: Run | None = None
) -> list[str]:
    """Store a file (or every file of a folder) as artifacts of the active run.

    The file is kept under ``artifact_path_/<name>`` (or ``<name>``) in the run; content is deduplicated.
    Returns the artifact paths written.
    """
    if not isinstance(local_path, (str, os.PathLike)):
        raise InvalidInput(f"log_artifact takes a file or folder path, got {type(local_path).__name__}")
    if artifact_path_ is not None and not isinstance(artifact_path_, (str, os.PathLike)):
        raise InvalidInput(f"the artifact path must be a string, got {type(artifact_path_).__name__}")
    src = Path(local_path)
    if not src.exists():
        raise InvalidInput(f"no file or folder at {str(local_path)!r} to log as an artifact")
    prefix = artifact_path(artifact_path_) + "/" if artifact_path_ else ""
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    base = src.parent
    w = writer(run)
    items = []
    for f in files:
        rel = artifact_path(prefix + f.relative_to(base).as_posix())
        digest = w.ws.blobs.put_file(f)
        items.append(
            {"path": rel, "digest": digest, "size": f.stat().st_size, "media_type": _media_type(rel)}
        )
    w.ws.runs.add_artifacts(w.run_id, items)
    return [i["path"] for i in items]


def log_bytes(data: bytes, path: str, *, run: Run | None = None) -> str:
    """Store ``data`` as the artifact ``path`` of the active run."""
    rel = artifact_path(path)  # refused before a run is started for it
    w = writer(run)
    return store_bytes(w.ws, w.run_id, data, rel)


def store_bytes(ws: workspace.Workspace, run_id: str, data: bytes, path: str) -> str:
    """Store ``data`` as the artifact ``path`` of ``run_id``, also of a run that has ended (no writer is kept)."""
    rel = artifact_path(path)
    digest = journal.put_bytes(ws, run_id, data)
    journal.add_artifacts(
        ws, run_id, [{"path": rel, "digest": digest, "size": len(data), "media_type": _media_type(rel)}]
    )
    return rel


def log_text(text: str, path: str, *, run: Run | None = None) -> str:
    """Store ``text`` (UTF-8) as the artifact ``path``."""
    if not isinstance(text, str):
        raise InvalidInput(f"log_text needs a str, got {type(text).__name__}")
    return log_bytes(text.encode("utf-8"), path, run=run)


def log_dict(data: dict, path: str, *, run: Run | None = None) -> str:
    """Store ``data`` as JSON (or YAML when ``path`` ends in .yaml/.yml)."""
    path = artifact_path(path)
    if path.lower().endswith((".yaml", ".yml")):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        try:
            text = json.dumps(data, indent=2, default=str)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"log_dict cannot serialize the value: {exc}") from None
    return log_text(text, path, run=run)


def log_figure(figure: Any, path: str, *, run: Run | None = None, **savefig_kwargs: Any) -> str:
    """Store a matplotlib figure (anything with ``savefig``) as an image artifact; the format follows the suffix."""
    import io

    if not hasattr(figure, "savefig"):
        raise InvalidInput(
            f"log_figure needs a matplotlib Figure (with savefig), got {type(figure).__name__}"
        )
    suffix = PurePosixPath(path).suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    figure.savefig(buf, format=suffix, **{"bbox_inches": "tight", **savefig_kwargs})
    return log_bytes(buf.getvalue(), path, run=run)


def record_cell(
    source: str,
    *,
    execution_count: int | None = None,
    success: bool = True,
    duration: float = 0.0,
    started_at: float | None = None,
    error: str | None = None,
    run: Run | None = None,
) -> None:
    """Record a notebook cell that ran inside ``run`` (default: the active run); flushes metrics first."""
    target = run or active_run()
    if target is None:
        return
    w = _state.writers.get(target.id)
    if w is not None:
        w.metrics.flush()
    ws = w.ws if w is not None else target._ws
    journal.add_cell(
        ws,
        target.id,
        source=source,
        execution_count=execution_count,
        success=bool(success),
        error=error,
        started_at=int((started_at or time.time()) * 1e6),
        duration=float(duration),
    )


# -- capture, heartbeat, reaping, exit ---------------------------------------------------------------------------
def _schedule_capture(ws: workspace.Workspace, run_id: str) -> None:
    """Queue the git/environment capture of a new run. One worker drains the queue in batches, so a burst of
    runs costs one ``git`` call, not one per run; start_run itself returns in about a millisecond."""
    job: Future = Future()
    state = _state
    with state.lock:
        state.captures = {k: f for k, f in state.captures.items() if not f.done()}
        state.captures[run_id] = job
        state.capture_queue.append((ws, run_id, job))
        if state.executor is None:
            state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlo-capture")
        if not state.capture_scheduled:
            state.capture_scheduled = True
            state.executor.submit(_drain_captures, state)


def _drain_captures(state: _State) -> None:
    while True:
        with state.lock:
            batch, state.capture_queue = state.capture_queue, []
            if not batch:
                state.capture_scheduled = False
                return
        try:
            env_json = capture.environment()
            git = capture.git_state()
        except Exception as exc:  # capture is best effort; never break the user's run
            env_json, git = None, None
            log.warning("mlo: could not capture git/environment: %s", exc)
        for ws, run_id, job in batch:
            try:
                values: dict[str, Any] = {}
                if env_json is not None:
                    values["env_digest"] = ws.blobs.put_bytes(env_json)
                if git:
                    values.update(git_commit=git["commit"], git_branch=git["branch"], git_dirty=git["dirty"])
                    if git["diff"]:
                        values["git_diff_digest"] = ws.blobs.put_bytes(git["diff"])
                if values:
                    ws.runs.update_run(run_id, **values)
            except Exception as exc:
                log.warning("mlo: could not record git/environment of run %s: %s", run_id, exc)
            job.set_result(None)


def wait_for_capture(run_id: str | None = None, timeout: float = 30.0) -> None:
    """Wait until the git/environment capture of ``run_id`` (or of every run of this process) is written."""
    jobs = list(_state.captures.values()) if run_id is None else [_state.captures.get(run_id)]
    for job in jobs:
        if job is not None:
            try:
                job.result(timeout=timeout)
            except Exception:
                pass


def _ensure_heartbeat() -> None:
    if _state.heartbeat is not None and _state.heartbeat.is_alive():
        return
    state = _state
    t = threading.Thread(target=_beat, args=(state,), name="mlo-heartbeat", daemon=True)
    state.heartbeat = t
    t.start()


def _beat(state: _State) -> None:
    while not state.stop.wait(HEARTBEAT_SECONDS):
        if state is not _state:  # forked child: this thread belongs to the parent's state
            return
        try:
            for w in list(state.writers.values()):
                if w.metrics.stale():
                    w.metrics.flush()
            by_ws: dict[int, tuple[workspace.Workspace, list[str]]] = {}
            for w in list(state.writers.values()):
                if w.owned:
                    by_ws.setdefault(id(w.ws), (w.ws, []))[1].append(w.run_id)
            for ws, ids in by_ws.values():
                ws.runs.heartbeat(ids)
        except Exception as exc:
            log.debug("mlo heartbeat failed: %s", exc)


def reap(ws: workspace.Workspace) -> list[str]:
    """Mark as ``killed`` the runs left ``running`` by a process that is gone. Returns their ids."""
    me = capture.owner()
    now = now_us()
    dead: dict[str, int] = {}
    for run_id, owner, heartbeat in ws.runs.running():
        if owner == me:
            continue
        alive = capture.owner_alive(owner) if owner else None
        if alive is False or (
            alive is None and heartbeat is not None and now - heartbeat > STALE_SECONDS * 1e6
        ):
            dead[run_id] = heartbeat or now
    if dead:
        ws.runs.mark_killed(dead)
    return list(dead)


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    _state.uncaught = exc
    _previous(exc_type, exc, tb)


sys.excepthook = _excepthook


@atexit.register
def _at_exit() -> None:
    state = _state
    state.stop.set()
    if state.pid != os.getpid():
        return
    status = "failed" if state.uncaught is not None else "finished"
    for job in list(state.captures.values()):
        try:
            job.result(timeout=30)
        except Exception:
            pass
    for w in list(state.writers.values()):
        try:
            w.metrics.flush()
            if w.owned:
                w.ws.runs.end_run(w.run_id, status)
        except Exception as exc:  # the interpreter is going away; report and move on
            print(f"mlo: could not close run {w.run_id} at exit: {exc}", file=sys.stderr)
    state.writers.clear()
    state.stack.clear()


from .system_metrics import install as _install_system_metrics  # noqa: E402

_install_system_metrics()

__all__ = [
    "active_run",
    "end_run",
    "flush",
    "get_run",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "record_cell",
    "set_experiment",
    "set_tags",
    "start_run",
]


def _export_live(ws: workspace.Workspace, run: Run) -> None:
    """Runs out to an OTLP collector as they end, when ``[otel] endpoint`` is set (:mod:`mlo.otlp_live`)."""
    try:
        from ..otlp_live import on_run_end

        on_run_end(ws, run)
    except Exception:  # exporting never keeps a run from ending
        logging.getLogger("mlo").debug("live OTLP export of run %s failed", run.id, exc_info=True)


RUN_END_HOOKS.append(_export_live)
